package policy

import "time"

// Ledger is what the engine needs to know about the past: the migrations (in flight and
// recent) and the trigger conditions carried over from the previous evaluation. The
// scheduler keeps it in raft; the simulator keeps it in memory.
type Ledger struct {
	// Migrations are the known migrations, in any order. Records older than the longest
	// of the policy's cooldown and anti-ping-pong windows may be dropped by the caller.
	Migrations []MigrationRecord `json:"migrations,omitempty"`
	// Conditions is Plan.Conditions of the previous evaluation, passed back unchanged.
	// It is how the engine, which keeps no state, knows for how long a trigger's
	// condition has held (its `for` duration) and whether it is still active until its
	// return-to-normal threshold is reached (hysteresis). Empty means "no history":
	// every condition starts now.
	Conditions []ConditionState `json:"conditions,omitempty"`
	// ConditionStats is Plan.ConditionStats of the previous evaluation, passed back
	// unchanged: how long each trigger's conditions have lasted, which the cost-benefit
	// rule takes as the expected duration of the next one. Empty means "no history".
	ConditionStats []ConditionStat `json:"conditionStats,omitempty"`
}

// ConditionStat is what the engine has learned of one trigger's conditions: how many have
// ended and how long they lasted (from when `when` first held to when `until` held), as a
// running mean over about the last conditionStatWindow of them.
type ConditionStat struct {
	Trigger string        `json:"trigger"`
	Ended   int           `json:"ended"`
	Mean    time.Duration `json:"mean"`
}

// conditionStatWindow is how many recent conditions the running mean of ConditionStat
// follows: enough to average a day's spikes, few enough to follow a change of season.
const conditionStatWindow = 50

// MigrationRecord is one migration of one container, in flight or finished.
//
// How a migration in flight (any state that is not terminal, in-doubt included) counts, in
// Evaluate and Commit alike:
//
//   - On its source, the container's CPU and memory count until the migration completes:
//     the view shows the container there (an agent measures what runs on it, and the
//     source keeps its copy until the target has confirmed a running restore), and the
//     ledger adds nothing.
//   - On its target, the container's CPU and memory are reserved from the moment the
//     record is planned, from the ledger, so that two plans do not fill the same node.
//     The view must not count it there as well: a view shows what runs, and the target
//     runs nothing of it until the restore. When the view already shows the container on
//     the target, the view counts it and the ledger reserves nothing. Either way it is
//     counted exactly once on each of the two nodes.
//   - It counts once toward maxConcurrent, and once toward maxConcurrentPerNode of its
//     source and of its target.
//   - Nothing else moves the container while it is in flight or in doubt.
//
// Within one evaluation Evaluate also projects the load of the moves it has just decided
// off their sources, to score the next ones; the capacity they leave stays held on the
// source (headroom) until the migration completes, as above.
type MigrationRecord struct {
	// ID identifies the migration; phases are idempotent per ID.
	ID string `json:"id"`
	// Container is the container's ID.
	Container string `json:"container"`
	// From and To are node IDs.
	From string `json:"from"`
	To   string `json:"to"`
	// Start is when the migration was planned; End when it reached a terminal state
	// (zero while in flight).
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	// State is the current phase.
	State MigrationState `json:"state"`
	// Downtime is the measured downtime (zero while unknown).
	Downtime time.Duration `json:"downtime,omitempty"`
	// MemoryBytes is the container's memory when it was checkpointed, for refitting the
	// cost model.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// Method is the decision's migration method (MethodPostCopy; empty: stop-and-copy).
	Method string `json:"method,omitempty"`
}

// ConditionState is the hysteresis state of one trigger for one subject (a node ID for
// node triggers, a container ID for container triggers).
type ConditionState struct {
	// Trigger is the trigger's name in the policy.
	Trigger string `json:"trigger"`
	// Subject is the node or container ID the condition is about.
	Subject string `json:"subject"`
	// Since is when the trigger's `when` expression started to hold without a break
	// (zero when it does not hold now).
	Since time.Time `json:"since,omitzero"`
	// Active is true once `when` has held for the trigger's `for` duration, and stays
	// true until the `until` expression (return to normal) holds.
	Active bool `json:"active,omitempty"`
	// ActiveSince is when the condition became active.
	ActiveSince time.Time `json:"activeSince,omitzero"`
}

// Prune returns the ledger without the finished migrations the engine no longer looks at:
// those that ended longer ago than the longest of the policy's cooldown (or any container
// cooldown up to maxCooldown) and ping-pong window. In-flight migrations and conditions are
// kept. The scheduler and the simulator call it to keep the ledger bounded.
func (l Ledger) Prune(p *Policy, maxCooldown time.Duration, now time.Time) Ledger {
	keep := max(p.Constraints.Cooldown, p.Constraints.PingPongWindow, maxCooldown)
	out := Ledger{Conditions: l.Conditions, ConditionStats: l.ConditionStats}
	for _, m := range l.Migrations {
		last := m.Start
		if m.End.After(last) {
			last = m.End
		}
		if !m.State.Terminal() || now.Sub(last) < keep {
			out.Migrations = append(out.Migrations, m)
		}
	}
	return out
}
