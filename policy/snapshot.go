package policy

import "time"

// ClusterView is a read-only snapshot of the cluster as the decision engine sees it: the
// nodes, the containers running on them and the links between them. gossip/ fills it from
// the live cluster, sim/ from its model, tests by hand. It is plain data; Evaluate never
// modifies it, so one view may be shared by concurrent evaluations.
type ClusterView struct {
	// Nodes are the cluster's nodes. Order does not matter; IDs must be unique.
	Nodes []Node `json:"nodes" yaml:"nodes"`
	// Containers are the containers running on the nodes, managed by godwit or not
	// (unmanaged containers still count toward placement rules such as anti-affinity).
	Containers []Container `json:"containers" yaml:"containers"`
	// Links are measured network paths between two nodes. A link is symmetric: one entry
	// for (a, b) serves (b, a) too.
	Links []Link `json:"links,omitempty" yaml:"links,omitempty"`
	// SiteLinks are paths between two sites (From and To are site names). They give the
	// RTT from a node to a container's users, and stand in for a missing node link.
	SiteLinks []Link `json:"siteLinks,omitempty" yaml:"siteLinks,omitempty"`
	// IntraSiteRTT is the RTT assumed between two endpoints of the same site when no link
	// says otherwise (zero means 1ms).
	IntraSiteRTT time.Duration `json:"intraSiteRTT,omitempty" yaml:"intraSiteRTT,omitempty"`
}

// Node is one machine of the cluster and its current load.
type Node struct {
	// ID is the node's unique name.
	ID string `json:"id" yaml:"id"`
	// Site is where the node stands (a point of presence, a rack, a town). Users are
	// located by site.
	Site string `json:"site,omitempty" yaml:"site,omitempty"`
	// Labels are the node's labels, matched by placement rules.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// CPUCores is the CPU capacity in cores.
	CPUCores float64 `json:"cpuCores" yaml:"cpuCores"`
	// MemoryBytes is the memory capacity.
	MemoryBytes int64 `json:"memoryBytes" yaml:"memoryBytes"`
	// UsedCPU is the CPU in use, in cores, including every container on the node.
	UsedCPU float64 `json:"usedCPU" yaml:"usedCPU"`
	// UsedMemoryBytes is the memory in use, including every container on the node.
	UsedMemoryBytes int64 `json:"usedMemoryBytes" yaml:"usedMemoryBytes"`
	// MemoryPressure is the share of time tasks stalled on memory (PSI "some" avg10, 0..1).
	MemoryPressure float64 `json:"memoryPressure,omitempty" yaml:"memoryPressure,omitempty"`
	// Drained marks a node being emptied for maintenance: nothing moves onto it, and the
	// evacuateDrained objective moves its containers away.
	Drained bool `json:"drained,omitempty" yaml:"drained,omitempty"`
	// Unavailable marks a node that cannot take part in a migration now (not reachable,
	// agent not ready). Nothing moves onto or off it.
	Unavailable bool `json:"unavailable,omitempty" yaml:"unavailable,omitempty"`
	// ContainerCount is the number of containers on the node as the node reports it,
	// including containers absent from ClusterView.Containers. Zero means "count them
	// from ClusterView.Containers".
	ContainerCount int `json:"containerCount,omitempty" yaml:"containerCount,omitempty"`
	// NoPostCopy marks a node that cannot take part in a post-copy migration (its runtime's
	// post-copy pre-flight failed, or it did not say it can): a move from or to it is
	// scored and made by stop-and-copy only, whatever the cost model offers.
	NoPostCopy bool `json:"noPostCopy,omitempty" yaml:"noPostCopy,omitempty"`
}

// Container is one running container.
type Container struct {
	// ID is the container's unique ID, stable across migrations.
	ID string `json:"id" yaml:"id"`
	// Name is the human-readable name.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Node is the ID of the node the container runs on.
	Node string `json:"node" yaml:"node"`
	// Image is the container image reference.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// MemoryBytes is the memory in use: what a checkpoint has to dump.
	MemoryBytes int64 `json:"memoryBytes" yaml:"memoryBytes"`
	// CPU is the CPU in use, in cores.
	CPU float64 `json:"cpu" yaml:"cpu"`
	// Labels are the container's labels. godwit.io/managed=true makes it managed; other
	// godwit.io/ labels carry per-container overrides (see the Label constants).
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Users says where the container's users are, by site, with the share of traffic
	// from each. Weights need not sum to one.
	Users []UserSite `json:"users,omitempty" yaml:"users,omitempty"`
}

// UserSite is a place a container's users connect from, with its weight.
type UserSite struct {
	Site   string  `json:"site" yaml:"site"`
	Weight float64 `json:"weight" yaml:"weight"`
}

// Link is a measured network path between two endpoints (node IDs in ClusterView.Links,
// site names in ClusterView.SiteLinks).
type Link struct {
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
	// RTT is the round-trip time.
	RTT time.Duration `json:"rtt" yaml:"rtt"`
	// BandwidthBytesPerSec is the available bandwidth; zero means unknown (the cost
	// model's default applies).
	BandwidthBytesPerSec float64 `json:"bandwidthBytesPerSec,omitempty" yaml:"bandwidthBytesPerSec,omitempty"`
}

// Container labels godwit reads. Values are case-sensitive.
const (
	// LabelManaged set to "true" puts a container under godwit's management.
	LabelManaged = "godwit.io/managed"
	// LabelPin set to a node ID keeps the container on that node (moving it there if it
	// runs elsewhere); set to "true" it keeps the container where it is.
	LabelPin = "godwit.io/pin"
	// LabelNeverMigrate set to "true" means the container is never moved.
	LabelNeverMigrate = "godwit.io/never-migrate"
	// LabelMaxDowntime is a duration ("2s") capping the predicted downtime of moving this
	// container; it can only tighten the policy's maxDowntime.
	LabelMaxDowntime = "godwit.io/max-downtime"
	// LabelCooldown is a duration overriding the policy's per-container cooldown.
	LabelCooldown = "godwit.io/cooldown"
	// LabelMigrationMethod is stop-and-copy, post-copy or auto, overriding the policy's
	// method for this container.
	LabelMigrationMethod = "godwit.io/migration-method"
)
