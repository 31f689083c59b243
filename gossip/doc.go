// Package gossip is godwit's membership and cluster-knowledge layer.
//
// Every agent runs one Agent. Agents find each other with hashicorp/memberlist (SWIM) and
// share, with no central collector, what the scheduler needs to decide:
//
//   - each node's load (CPU and memory in use against the node's configured capacity,
//     memory pressure), its labels (site, zone, arch, ...), its drain flag and its managed
//     container inventory;
//   - network coordinates (Vivaldi, hashicorp/serf/coordinate) fed by the RTTs of the
//     probes memberlist already makes, so any node can estimate the RTT between any two
//     nodes without probing every pair;
//   - per-link bandwidth estimates fed from real transfers (ObserveTransfer), each with
//     the time it was observed.
//
// Node state travels in three ways: a tiny NodeMeta (memberlist's alive messages, far
// below memberlist.MetaMaxSize), versioned state broadcasts through a transmit-limited
// queue (broadcast.go) that every receiver re-broadcasts once it accepts them
// (an epidemic, so a change reaches all nodes in O(log N) gossip rounds), and the
// push-pull anti-entropy exchange (LocalState/MergeRemoteState). memberlist runs push-pull
// only every 30 s (stretched to ~90 s at 100 nodes), and when many nodes join at once a late
// joiner can miss an early node's alive messages altogether; so an agent that sees a gap (an
// alive member without state, or a state from a node memberlist has not reported) starts a
// push-pull of its own at once, backing off while the gap does not shrink (repairLoop in
// agent.go). Every state carries a per-origin Version (agent start epoch, sequence); a state
// never replaces a newer one.
//
// Other packages read a ClusterView: a consistent, deep-copied snapshot (Agent.View), and
// subscribe to changes (Agent.Subscribe): join, leave, failure, and load changes beyond a
// threshold. Delivery never blocks memberlist: a full subscriber loses events and can
// count them, and can always read a fresh View.
//
// What this package must not do: import policy, scheduler, migrate or sim; decide
// anything; talk to Docker. It is filled by the agent (inventory, LoadSource) and read by
// the leader. DelayTransport emulates edge link delays for tests and dev clusters only;
// real RTTs come from real probes.
package gossip
