// Package metrics is the agent's Prometheus instrumentation, in a registry of its own with
// the Go and process collectors:
//
//   - collectors that read what the agent already knows at scrape time: the replicated
//     ledger and raft on servers, the gossip view on every agent. Nothing of these is on a
//     hot path: every value is computed when Prometheus scrapes, from a read of the state
//     (scheduler.FSM.Read holds the state's read lock for one pass over the ledger) or from
//     a copy (the gossip view, raft's statistics);
//   - Events, a server's counters and histograms of what happens as it happens (decision
//     rounds, recorded outcomes, raft applies), fed through scheduler.Observer.
//
// Labels are bounded: phases, results, actions, reasons, cost-model phases and member
// statuses are fixed sets, trigger names come from the policy file. No workload, node or
// migration ID is ever a label value.
//
// What this package must not do: change anything it reads, or block the code that reports
// an event to it.
package metrics
