package agent

// Node labels the agent publishes through gossip, beside the operator's labels and the site
// (gossip.LabelSite). Keys under labelPrefix are godwit's: a config may not set them.
const (
	labelPrefix = "godwit.io/"
	// LabelRole is the node's role: server or client.
	LabelRole = "godwit.io/role"
	// LabelMigrationAddr is the IP:port of the node's migration service.
	LabelMigrationAddr = "godwit.io/migration-addr"
	// LabelRaftAddr is a server's raft IP:port.
	LabelRaftAddr = "godwit.io/raft-addr"
	// LabelAPIAddr is the IP:port of the node's HTTPS API (internal/api).
	LabelAPIAddr = "godwit.io/api-addr"
)
