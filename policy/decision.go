package policy

import "time"

// Plan is the result of one evaluation: the moves to make, why everything else stays, and
// the trigger state to pass back next time.
type Plan struct {
	// At is the evaluation time (the now given to Evaluate).
	At time.Time `json:"at"`
	// Mode is the policy's mode. In ModeRecommend the decisions are advice: the scheduler
	// must show them and not act. In ModeOff there are none.
	Mode Mode `json:"mode"`
	// Decisions are the moves to make, best first. At most one per container.
	Decisions []Decision `json:"decisions,omitempty"`
	// Explanations has one entry per managed container, sorted by container ID.
	Explanations []Explanation `json:"explanations,omitempty"`
	// Conditions is the new trigger state; pass it back as Ledger.Conditions.
	Conditions []ConditionState `json:"conditions,omitempty"`
	// ConditionStats is the learned duration of each trigger's conditions; pass it back
	// as Ledger.ConditionStats.
	ConditionStats []ConditionStat `json:"conditionStats,omitempty"`
	// Problems lists inputs the engine could not make sense of (a container on an unknown
	// node, a trigger that failed at run time). They never stop an evaluation.
	Problems []string `json:"problems,omitempty"`
}

// Decision is one move the engine recommends.
type Decision struct {
	// Container is the container's ID; From and To are node IDs.
	Container string `json:"container"`
	From      string `json:"from"`
	To        string `json:"to"`
	// Score is the net benefit: Gain minus the cost of the move's predicted downtime, in
	// the objectives' units (user-seconds under the cost-benefit rule). Every decision
	// has Score >= the policy's minImprovement, or, under the cost-benefit rule, clears
	// its margin.
	Score float64 `json:"score"`
	// Gain is the weighted sum of the objectives' gains (under the cost-benefit rule: the
	// expected benefit in user-seconds).
	Gain float64 `json:"gain"`
	// Objectives is each objective's weighted contribution to Gain.
	Objectives []ObjectiveScore `json:"objectives,omitempty"`
	// Cost is the cost model's prediction for this move.
	Cost Prediction `json:"cost"`
	// Triggers are the active triggers that made the container a candidate.
	Triggers []string `json:"triggers,omitempty"`
}

// ObjectiveScore is one objective's weighted contribution to a candidate's gain.
type ObjectiveScore struct {
	Objective Objective `json:"objective"`
	Gain      float64   `json:"gain"`
}

// Explanation says what the engine thought about one managed container.
type Explanation struct {
	// Container and Node (where it runs now).
	Container string `json:"container"`
	Node      string `json:"node"`
	// Moved is true when a Decision moves this container.
	Moved bool `json:"moved"`
	// Reason is why it stays (ReasonMoved when it moves).
	Reason Reason `json:"reason"`
	// Detail says more, for people.
	Detail string `json:"detail,omitempty"`
	// Triggers are the active triggers covering the container.
	Triggers []string `json:"triggers,omitempty"`
	// Horizon is the expected remaining duration of the condition that made it a
	// candidate, over which the cost-benefit rule counts a move's benefit (zero when the
	// rule is off or the container was not scored).
	Horizon time.Duration `json:"horizon,omitempty"`
	// Candidates are the best targets considered, best first (at most the policy's
	// explainCandidates), with why each was rejected.
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Candidate is one target considered for a container.
type Candidate struct {
	Node  string  `json:"node"`
	Score float64 `json:"score"`
	Gain  float64 `json:"gain"`
	// Cost is the predicted cost of moving there.
	Cost Prediction `json:"cost"`
	// Rejected is why the container does not move there; empty for the chosen target.
	Rejected Reason `json:"rejected,omitempty"`
	// Detail says more about the rejection, for people (empty for gain-too-small,
	// cost-over-benefit and within-margin, whose numbers are in Score, Gain and Cost).
	Detail string `json:"detail,omitempty"`
}

// Reason is why a container stays, or why a target was rejected. Reasons are stable
// strings: metrics count them and `godwit policy explain` shows them.
type Reason string

// Reasons.
const (
	ReasonMoved Reason = "moved"

	// Why a container is not considered at all.
	ReasonModeOff      Reason = "mode-off"      // the policy's mode is off
	ReasonNeverMigrate Reason = "never-migrate" // godwit.io/never-migrate=true
	ReasonPinned       Reason = "pinned"        // godwit.io/pin keeps it where it is
	ReasonNoTrigger    Reason = "no-trigger"    // no active trigger covers it
	ReasonInFlight     Reason = "in-flight"     // a migration of it is under way
	ReasonInDoubt      Reason = "in-doubt"      // a migration of it is in doubt, not settled
	ReasonCooldown     Reason = "cooldown"      // it moved too recently
	ReasonWindow       Reason = "window"        // outside the allowed time windows
	ReasonMemoryLimit  Reason = "memory-limit"  // too big for live migration
	ReasonSourceDown   Reason = "source-unavailable"
	ReasonUnknownNode  Reason = "unknown-node" // the view has no such node
	ReasonNoCandidate  Reason = "no-candidate" // no target passed the constraints
	// Why Commit refuses a decision whose view is out of date: the container is no longer
	// in the view, or no longer on the decision's source.
	ReasonStale Reason = "stale"

	// Why a target is rejected (also a container's reason when every target fails it).
	ReasonSameNode      Reason = "same-node"
	ReasonTargetDrained Reason = "target-drained"
	ReasonTargetDown    Reason = "target-unavailable"
	ReasonHeadroom      Reason = "headroom"       // the target would be too full
	ReasonDowntime      Reason = "downtime"       // predicted downtime above the limit
	ReasonNodeSelector  Reason = "node-selector"  // target lacks required labels (or pin)
	ReasonAffinity      Reason = "affinity"       // a required affinity not met
	ReasonAntiAffinity  Reason = "anti-affinity"  // a required anti-affinity broken
	ReasonPingPong      Reason = "ping-pong"      // it left that node recently
	ReasonGainTooSmall  Reason = "gain-too-small" // gain minus cost below minImprovement
	// Cost-benefit rule: the expected benefit does not pay for the predicted cost, or
	// pays for it but not by the hysteresis margin.
	ReasonCostOverBenefit Reason = "cost-over-benefit"
	ReasonMargin          Reason = "within-margin"
	ReasonBudget          Reason = "budget"           // per-evaluation move budget spent
	ReasonConcurrency     Reason = "concurrency"      // cluster-wide concurrent limit reached
	ReasonNodeConcurrent  Reason = "node-concurrency" // per-node concurrent limit reached
)
