// Package agent is `godwit agent`: the one process an operator runs on every node. It joins
// the parts that exist elsewhere into one process and owns none of their logic:
//
//   - the gossip agent (gossip.Agent), whose node labels carry the node's role, site, the
//     address of its migration service and, on servers, its raft address (labels.go);
//   - the node's migration service (migrate.Node) over the node's container runtime
//     (Docker, or any migrate.Runtime a test passes);
//   - on servers, the control plane (scheduler.ControlPlane): raft peers come from gossip,
//     the leader's cluster view and directory of migration services from the gossip view,
//     and the leader puts the configured policy file in force (reread when it changes and on
//     SIGHUP; policyfile.go) and records drains it sees in gossip (servers.go);
//   - the HTTPS API (internal/api) on the node's API address, published through gossip
//     as godwit.io/api-addr so that agents can forward requests to the leader;
//   - the node's container inventory, read from the runtime and published through gossip
//     (inventory.go);
//   - one slog logger for all of it, memberlist's and raft's logs included (log.go).
//
// The agent's configuration file is strict YAML; every error is reported at file:line:col,
// all of them at once (config.go, decode.go); Check reads the files it names (check.go).
//
// What it must not do: decide anything (policy does), record anything but through raft
// commands (scheduler does), or move containers itself (migrate does).
package agent
