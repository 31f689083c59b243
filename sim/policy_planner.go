package sim

import (
	"time"

	"github.com/godwit-io/godwit/policy"
)

// PolicyPlanner runs godwit's decision engine, policy.Evaluate: the same function, with the
// same inputs, that the leader calls. It carries the trigger hysteresis state between
// evaluations as the leader does through raft.
type PolicyPlanner struct {
	Policy *policy.Policy
	Model  policy.CostModel
	// Label names the arm ("policy" when empty).
	Label string
}

// Name implements Planner.
func (p *PolicyPlanner) Name() string {
	if p.Label != "" {
		return p.Label
	}
	return ArmPolicy
}

// Plan implements Planner. Decisions of a recommend-mode policy are carried out too: the
// simulation shows what the policy would do if it were let loose.
func (p *PolicyPlanner) Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult {
	plan := policy.Evaluate(*view, p.Policy, p.Model, *ledger, now)
	ledger.Conditions = plan.Conditions
	ledger.ConditionStats = plan.ConditionStats
	return PlanResult{Decisions: plan.Decisions, Explanations: plan.Explanations}
}

// SetModel implements ModelSetter: the simulator's refitted cost model.
func (p *PolicyPlanner) SetModel(m policy.CostModel) { p.Model = m }

// SetPolicy switches the policy in force (a policyChange event).
func (p *PolicyPlanner) SetPolicy(pol *policy.Policy) { p.Policy = pol }

var (
	_ Planner     = (*PolicyPlanner)(nil)
	_ ModelSetter = (*PolicyPlanner)(nil)
)
