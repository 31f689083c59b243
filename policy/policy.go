package policy

import (
	"time"

	"github.com/expr-lang/expr/vm"
)

// Mode is what the scheduler does with the engine's decisions.
type Mode string

// Modes.
const (
	// ModeOff: the engine decides nothing.
	ModeOff Mode = "off"
	// ModeRecommend: decide and explain, never act.
	ModeRecommend Mode = "recommend"
	// ModeAuto: the scheduler carries the decisions out.
	ModeAuto Mode = "auto"
)

// Policy is the internal, validated and defaulted form of a policy file: what Parse
// returns and what Evaluate reads. Build one with Parse, or start from DefaultPolicy and
// call Compile after changing triggers. Evaluate only reads a Policy, so one may be shared
// by concurrent evaluations.
type Policy struct {
	// Name is metadata.name.
	Name string
	// Mode is off, recommend or auto.
	Mode Mode
	// Interval is how often the leader evaluates.
	Interval time.Duration
	// Selector narrows which containers carrying godwit.io/managed=true are managed.
	Selector Selector
	// Triggers make containers candidates for a move. When there are none, every managed
	// container is a candidate at every evaluation.
	Triggers []Trigger
	// Objectives are the weighted goals a move is scored against.
	Objectives Objectives
	// Constraints are hard limits on moves.
	Constraints Constraints
	// Placement are rules on where containers may and would like to run.
	Placement []PlacementRule
	// Windows limit when moves may start.
	Windows Windows
	// CostBenefit, when enabled, decides by expected benefit against cost in
	// user-seconds instead of by weighted scores; see CostBenefit.
	CostBenefit CostBenefit
	// ExplainCandidates is how many candidate targets each explanation lists.
	ExplainCandidates int
}

// Scope is what a trigger is evaluated for.
type Scope string

// Scopes.
const (
	// ScopeNode triggers are evaluated per node; when active, the node's managed
	// containers are candidates.
	ScopeNode Scope = "node"
	// ScopeContainer triggers are evaluated per managed container.
	ScopeContainer Scope = "container"
)

// Trigger is a condition that, once it has held for For, makes containers candidates for a
// move, until Until (the return-to-normal condition) holds.
type Trigger struct {
	Name  string
	Scope Scope
	// When is the firing expression (expr-lang), e.g. "node.cpu > 0.85".
	When string
	// Until is the return-to-normal expression; empty means "not When" (no hysteresis
	// beyond For).
	Until string
	// For is how long When must hold before the trigger fires.
	For time.Duration

	when, until *vm.Program // compiled by Compile
}

// Objective names one goal.
type Objective string

// Objectives.
const (
	ObjectiveRelieveOverload Objective = "relieveOverload"
	ObjectiveBalanceLoad     Objective = "balanceLoad"
	ObjectiveFollowUsers     Objective = "followUsers"
	ObjectiveEvacuateDrained Objective = "evacuateDrained"
	ObjectiveConsolidate     Objective = "consolidate"
	ObjectivePlacement       Objective = "placement" // preferred placement rules
)

// Objectives are the weights of each goal; a zero weight switches the goal off.
type Objectives struct {
	// RelieveOverload moves load off nodes whose CPU or memory utilization is above
	// OverloadThreshold.
	RelieveOverload   float64
	OverloadThreshold float64
	// BalanceLoad evens utilization out (reduces the sum of squared utilizations).
	BalanceLoad float64
	// FollowUsers moves containers closer to their users (lower weighted RTT).
	FollowUsers float64
	// EvacuateDrained moves containers off drained nodes.
	EvacuateDrained float64
	// Consolidate packs containers onto fewer nodes (the opposite of BalanceLoad).
	Consolidate float64
}

// Constraints are hard limits: a move that breaks one is never made.
type Constraints struct {
	// MaxDowntime caps a move's predicted downtime (0: no cap). Containers may tighten it
	// with godwit.io/max-downtime.
	MaxDowntime time.Duration
	// MaxMemoryBytes is the largest container (memory in use) migrated live (0: no cap).
	MaxMemoryBytes int64
	// MaxConcurrent caps migrations in flight in the cluster, counting the ledger's
	// (0: no cap).
	MaxConcurrent int
	// MaxConcurrentPerNode caps migrations in flight touching one node, as source or
	// target (0: no cap).
	MaxConcurrentPerNode int
	// MaxMovesPerEvaluation caps the decisions of one evaluation (0: no cap).
	MaxMovesPerEvaluation int
	// Cooldown is the minimum time between two migrations of one container.
	Cooldown time.Duration
	// PingPongWindow forbids moving a container back to a node it left within this window.
	PingPongWindow time.Duration
	// MinImprovement is the least net score (gain minus downtime cost) worth a move.
	MinImprovement float64
	// DowntimeCost is the score a second of predicted downtime costs.
	DowntimeCost float64
	// HeadroomCPU and HeadroomMemory are the shares of a target's capacity that must stay
	// free after a move (0.1 = the target ends at most 90% full).
	HeadroomCPU    float64
	HeadroomMemory float64
	// Method is the migration method: MethodStopAndCopy, MethodPostCopy, or MethodAuto
	// (empty: auto), the cheapest of those the cost model says the cluster offers
	// (CostModel.PostCopy.Enabled). The label godwit.io/migration-method overrides it per
	// container. Post-copy is only ever chosen where the cluster offers it.
	Method string
}

// CostBenefit is the cost-benefit decision rule. The unit is the user-second: one user
// served over the latency target, or not at all, for one second.
//
// A move's benefit is the harm it removes per second (users whose latency, the RTT from
// their site plus the queueing delay of a node as busy as theirs, is over LatencyTarget;
// on the source, on the target and for the container's own users) times the expected
// remaining duration of the condition that made the container a candidate, learned from
// how long the policy's trigger conditions have lasted (Ledger.ConditionStats). Its cost
// is the predicted downtime times the container's users times OutageWeight, plus
// TransferCost per GiB sent
// between sites. A move is made when benefit - cost is positive and the benefit clears
// the hysteresis margin: benefit >= (1+Margin)*cost + MinBenefit. The relieveOverload,
// followUsers and balanceLoad objectives are replaced by the harm model; the others
// (evacuateDrained, consolidate, placement, pins) still count, ScoreValue user-seconds
// per unit of their weighted score. Constraints stay hard limits.
type CostBenefit struct {
	// Enabled switches the rule on (a costBenefit block in the policy file).
	Enabled bool
	// LatencyTarget is the user-perceived latency (RTT plus queueing) a user is harmed
	// above.
	LatencyTarget time.Duration
	// ServiceTime is a request's processing time on an idle node: queueing delay is
	// ServiceTime / (1 - utilization), M/M/1.
	ServiceTime time.Duration
	// Horizon is the expected duration of a condition before there is any history of
	// that trigger's conditions, and for candidates no trigger covers.
	Horizon time.Duration
	// MaxHorizon caps the expected remaining duration of any condition.
	MaxHorizon time.Duration
	// OutageWeight is how many user-seconds of harm one second of a user's outage (the
	// container frozen) counts for: an outage breaks sessions and requests fail, which
	// is worse than the same time over the latency target.
	OutageWeight float64
	// Dependents is how many users' worth of harm a container's outage does beyond its
	// own users: the services that call it and stall while it is frozen, which the view
	// does not show.
	Dependents float64
	// MoveCost is the fixed cost of any migration, in user-seconds: the risk that it
	// fails and rolls back, the checkpoint's load on both nodes, someone's attention.
	// It is what makes one move that relieves a node preferable to several that each
	// relieve it a little.
	MoveCost float64
	// TransferCost is the cost, in user-seconds, of sending one GiB between two sites
	// (the link and node load a transfer takes from everyone else).
	TransferCost float64
	// Margin and MinBenefit are the hysteresis: a move needs benefit >= (1+Margin)*cost +
	// MinBenefit (user-seconds).
	Margin     float64
	MinBenefit float64
	// ScoreValue converts the other objectives' weighted score into user-seconds.
	ScoreValue float64
}

// Selector matches labels: every MatchLabels pair and every requirement must hold. The
// empty selector matches everything.
type Selector struct {
	MatchLabels      map[string]string
	MatchExpressions []Requirement
}

// Operator of a label requirement.
type Operator string

// Operators.
const (
	OpIn           Operator = "In"
	OpNotIn        Operator = "NotIn"
	OpExists       Operator = "Exists"
	OpDoesNotExist Operator = "DoesNotExist"
)

// Requirement is one label requirement.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string
}

// PlacementRule constrains where the containers it selects may run.
type PlacementRule struct {
	// Containers selects the containers the rule applies to.
	Containers Selector
	// RequireNodes is a hard node selector: targets must match it.
	RequireNodes *Selector
	// PreferNodes are soft node preferences.
	PreferNodes []NodePreference
	// Affinity and AntiAffinity relate the container to other containers.
	Affinity     []AffinityTerm
	AntiAffinity []AffinityTerm
}

// NodePreference adds Weight to a target matching Nodes.
type NodePreference struct {
	Nodes  Selector
	Weight float64
}

// AffinityTerm relates a container to the containers matching Containers within a
// topology scope (the same node or the same site). Required terms are hard constraints;
// the others add (affinity) or subtract (anti-affinity) Weight.
type AffinityTerm struct {
	Containers Selector
	Topology   Topology
	Required   bool
	Weight     float64
}

// Topology is the scope of an affinity term.
type Topology string

// Topologies.
const (
	TopologyNode Topology = "node"
	TopologySite Topology = "site"
)

// Windows say when moves may start. With no Allow windows any time is allowed; a time
// inside any Forbid window is never allowed.
type Windows struct {
	// Location is the time zone the windows are written in.
	Location *time.Location
	Allow    []Window
	Forbid   []Window
}

// Window is a daily time range on some weekdays. End before Start wraps past midnight
// (22:00-06:00); the day is the day the window starts.
type Window struct {
	// Days the window starts on; empty means every day.
	Days []time.Weekday
	// Start and End are offsets from midnight.
	Start, End time.Duration
}

// Zero values in a Policy mean "no limit" or "off", not "default": DefaultPolicy has the
// defaults, and Parse starts from it.

// DefaultPolicy returns the policy an empty file gives: recommend-only, a 30 s interval,
// relieve overload and evacuate drained nodes, and conservative constraints. See
// defaults.go for the reason behind each value.
func DefaultPolicy() Policy {
	var p Policy
	applyDefaults(&p)
	return p
}
