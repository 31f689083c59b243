// Package metrics is the agent's Prometheus instrumentation: collectors that read what the
// agent already knows at scrape time (the replicated ledger and raft on servers, the gossip
// view on every agent) and a registry of its own with the Go and process collectors.
//
// Nothing here is on a hot path: every value is computed when Prometheus scrapes, from a
// read of the state (scheduler.FSM.Read holds the state's read lock for the length of one
// pass over the ledger) or from a copy (the gossip view, raft's statistics).
//
// Labels are bounded: phases, results, cost-model phases and member statuses are fixed
// sets. No workload, node or migration ID is ever a label value.
//
// What this package must not do: change anything it reads, or keep counters of its own
// that would need hooks in migrate, scheduler or gossip.
package metrics
