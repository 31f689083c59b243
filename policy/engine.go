package policy

import "time"

// Evaluate is the decision engine: from the cluster as seen now, the policy in force, the
// cost model and the ledger, it returns the moves to make and why everything else stays.
// It is a pure function: no clock (now is the evaluation time), no I/O, no randomness, no
// state between calls (hysteresis state comes in as ledger.Conditions and goes out as
// Plan.Conditions). Same inputs, same Plan. It never modifies its inputs and is safe for
// concurrent use.
func Evaluate(view ClusterView, p *Policy, model CostModel, ledger Ledger, now time.Time) Plan {
	return Plan{At: now, Mode: p.Mode}
}
