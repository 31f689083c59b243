// Package scheduler is godwit's control plane. This part of it is the replicated state
// machine: the State every server holds (the policy in force, the migration ledger, one
// owner node per managed workload, the last move of each workload, drained nodes, the
// cost model's learned coefficients and the engine's trigger state), the Commands that
// change it, and FSM, which applies committed raft log entries to it.
//
// # Rules the state machine keeps
//
//   - Apply is deterministic: it reads only the State and the command. Time comes in as
//     Command.At, stamped by the leader when it proposed the command; Apply never reads
//     the clock, draws random numbers or does floating-point arithmetic (an arm64 server
//     may fuse a multiply-add an amd64 server rounds twice, and the states would part).
//     What needs arithmetic, such as refitting the cost model, is computed by the leader
//     and replicated as a value (SetCostModel).
//   - Every command is checked against the state it is applied to, as Nomad's plan
//     applier re-checks a plan: a PlanMigration for a workload that already has a
//     migration in flight or in doubt, from a node that is not the workload's owner, or
//     to a drained node is refused. A refused command changes nothing; its error (a
//     *Rejection, matching the Err... sentinels with errors.Is) is the raft Apply
//     response, so the proposer learns why.
//   - One owner per workload: ownership moves only when a migration completes, and
//     nothing else may move a workload while its migration is in flight or in doubt.
//   - A malformed log entry (bad JSON, unknown type or version, missing fields) is
//     rejected, never applied, and never panics.
//
// # What it must not do
//
// No network, no Docker, no goroutines of its own, no clock. The raft wiring
// (servers.go), the leader loop (leader.go) and reconciliation after a leader change
// (reconcile.go) build on this API and own all of that.
//
// # Upgrades
//
// Commands carry a version per type. A server refuses a type or version it does not know,
// so a leader must not propose a newer version until every server runs a binary that
// knows it (upgrade followers first), as with Nomad's message types.
package scheduler
