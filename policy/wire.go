package policy

// The file format, version godwit.io/v1: the wire types a policy file decodes into. They
// say what the file may contain (every field optional unless noted, unknown fields are
// errors) and generate the JSON schema; Parse validates them, fills the defaults and
// converts them to Policy. Field comments are the format's documentation.

// APIVersion and Kind that a policy file must declare.
const (
	APIVersion = "godwit.io/v1"
	KindPolicy = "Policy"
)

// FileV1 is a whole policy file.
type FileV1 struct {
	APIVersion string     `json:"apiVersion" jsonschema:"required,enum=godwit.io/v1" jsonschema_description:"Format version: godwit.io/v1."`
	Kind       string     `json:"kind" jsonschema:"required,enum=Policy" jsonschema_description:"Always Policy."`
	Metadata   MetadataV1 `json:"metadata,omitempty"`
	Spec       SpecV1     `json:"spec,omitempty" jsonschema_description:"What godwit should do."`
}

// MetadataV1 names the policy.
type MetadataV1 struct {
	Name        string `json:"name,omitempty" jsonschema_description:"The policy's name, shown by godwit status."`
	Description string `json:"description,omitempty" jsonschema_description:"Free text for people."`
}

// SpecV1 is the policy proper.
type SpecV1 struct {
	Mode              *string           `json:"mode,omitempty" jsonschema:"enum=off,enum=recommend,enum=auto" jsonschema_description:"off: decide nothing; recommend (default): decide and explain, never act; auto: carry the decisions out."`
	Interval          *Duration         `json:"interval,omitempty" jsonschema_description:"How often the leader evaluates the policy (default 30s, at least 1s)."`
	Selector          *SelectorV1       `json:"selector,omitempty" jsonschema_description:"Narrows which containers labelled godwit.io/managed=true are managed (default: all)."`
	Triggers          []TriggerV1       `json:"triggers,omitempty" jsonschema_description:"Conditions that make containers candidates for a move. Without triggers every managed container is a candidate at every evaluation."`
	Objectives        *ObjectivesV1     `json:"objectives,omitempty" jsonschema_description:"Weighted goals. When absent: relieveOverload 1 and evacuateDrained 1; when present, unnamed objectives weigh 0."`
	Constraints       *ConstraintsV1    `json:"constraints,omitempty" jsonschema_description:"Hard limits on moves."`
	Placement         []PlacementRuleV1 `json:"placement,omitempty" jsonschema_description:"Where containers may and would like to run."`
	Windows           *WindowsV1        `json:"windows,omitempty" jsonschema_description:"When moves may start (default: any time)."`
	CostBenefit       *CostBenefitV1    `json:"costBenefit,omitempty" jsonschema_description:"Decide by expected benefit against cost, in user-seconds, instead of by weighted scores (present: on)."`
	ExplainCandidates *int              `json:"explainCandidates,omitempty" jsonschema:"minimum=1,maximum=100" jsonschema_description:"Candidate targets listed per container in explanations (default 3)."`
}

// CostBenefitV1 switches the cost-benefit rule on and tunes it. The unit is the user-second:
// one user over the latency target (or not served) for one second.
type CostBenefitV1 struct {
	LatencyTarget *Duration `json:"latencyTarget,omitempty" jsonschema_description:"Latency (RTT from the users' site plus queueing on the node) above which a user counts as harmed (default 40ms)."`
	ServiceTime   *Duration `json:"serviceTime,omitempty" jsonschema_description:"A request's processing time on an idle node; queueing delay is serviceTime/(1-utilization) (default 5ms)."`
	Horizon       *Duration `json:"horizon,omitempty" jsonschema_description:"Expected duration of a condition before its trigger has any history (default 30m)."`
	MaxHorizon    *Duration `json:"maxHorizon,omitempty" jsonschema_description:"Longest expected remaining duration of a condition (default 2h)."`
	OutageWeight  *float64  `json:"outageWeight,omitempty" jsonschema:"minimum=1" jsonschema_description:"User-seconds of harm one second of a user's outage (the container frozen by a migration) counts for (default 10)."`
	Dependents    *float64  `json:"dependents,omitempty" jsonschema:"minimum=0" jsonschema_description:"Users' worth of harm a container's outage does beyond its own users: the services that stall while it is frozen (default 4)."`
	MoveCost      *float64  `json:"moveCost,omitempty" jsonschema:"minimum=0" jsonschema_description:"Fixed user-seconds every migration costs: the risk of a rollback, the checkpoint's load, attention (default 3000)."`
	TransferCost  *float64  `json:"transferCost,omitempty" jsonschema:"minimum=0" jsonschema_description:"User-seconds one GiB sent between sites costs (default 60)."`
	Margin        *float64  `json:"margin,omitempty" jsonschema:"minimum=0" jsonschema_description:"Hysteresis: the benefit must be at least (1+margin) times the cost (default 0.5)."`
	MinBenefit    *float64  `json:"minBenefit,omitempty" jsonschema:"minimum=0" jsonschema_description:"Hysteresis: and exceed the cost by at least this many user-seconds (default 60)."`
	ScoreValue    *float64  `json:"scoreValue,omitempty" jsonschema:"minimum=0" jsonschema_description:"User-seconds per unit of the other objectives' score (evacuateDrained, consolidate, placement) (default 3600)."`
}

// TriggerV1 is one trigger.
type TriggerV1 struct {
	Name  string    `json:"name" jsonschema:"required,pattern=^[a-z0-9]([a-z0-9-]*[a-z0-9])?$" jsonschema_description:"Unique name, lower-case letters, digits and dashes."`
	Scope *string   `json:"scope,omitempty" jsonschema:"enum=node,enum=container" jsonschema_description:"node (default): evaluated per node, makes its managed containers candidates; container: evaluated per managed container."`
	When  string    `json:"when" jsonschema:"required" jsonschema_description:"Firing condition, an expr-lang boolean over node.{cpu,memory,pressure,containers,drained,cpuCores,memoryGiB,labels,site,id} and, for container scope, container.{cpu,memoryGiB,downtime,userRTT,labels,name,image,id}. Utilizations are 0..1, downtime seconds, userRTT milliseconds."`
	Until string    `json:"until,omitempty" jsonschema_description:"Return-to-normal condition: once fired, the trigger stays active until this holds (hysteresis). Default: not when."`
	For   *Duration `json:"for,omitempty" jsonschema_description:"How long when must hold before the trigger fires (default 0)."`
}

// ObjectivesV1 weighs the goals; a weight of 0 switches a goal off.
type ObjectivesV1 struct {
	RelieveOverload   *float64 `json:"relieveOverload,omitempty" jsonschema:"minimum=0" jsonschema_description:"Move load off nodes above overloadThreshold."`
	OverloadThreshold *float64 `json:"overloadThreshold,omitempty" jsonschema:"exclusiveMinimum=0,maximum=1" jsonschema_description:"CPU or memory utilization above which a node is overloaded (default 0.85)."`
	BalanceLoad       *float64 `json:"balanceLoad,omitempty" jsonschema:"minimum=0" jsonschema_description:"Even out utilization across nodes."`
	FollowUsers       *float64 `json:"followUsers,omitempty" jsonschema:"minimum=0" jsonschema_description:"Move containers closer to their users (lower RTT)."`
	EvacuateDrained   *float64 `json:"evacuateDrained,omitempty" jsonschema:"minimum=0" jsonschema_description:"Move containers off drained nodes."`
	Consolidate       *float64 `json:"consolidate,omitempty" jsonschema:"minimum=0" jsonschema_description:"Pack containers onto fewer nodes."`
}

// ConstraintsV1 are hard limits; a move that breaks one is never made.
type ConstraintsV1 struct {
	MaxDowntime           *Duration   `json:"maxDowntime,omitempty" jsonschema_description:"Largest predicted downtime of a move (default 10s, 0: no limit). Containers may lower it with the label godwit.io/max-downtime."`
	MaxMemory             *ByteSize   `json:"maxMemory,omitempty" jsonschema_description:"Largest container (memory in use) migrated live, e.g. 8GiB (default: no limit)."`
	MaxConcurrent         *int        `json:"maxConcurrent,omitempty" jsonschema:"minimum=0" jsonschema_description:"Migrations in flight in the whole cluster (default 2, 0: no limit)."`
	MaxConcurrentPerNode  *int        `json:"maxConcurrentPerNode,omitempty" jsonschema:"minimum=0" jsonschema_description:"Migrations in flight touching one node (default 1, 0: no limit)."`
	MaxMovesPerEvaluation *int        `json:"maxMovesPerEvaluation,omitempty" jsonschema:"minimum=0" jsonschema_description:"Decisions per evaluation (default 4, 0: no limit)."`
	Cooldown              *Duration   `json:"cooldown,omitempty" jsonschema_description:"Least time between two migrations of one container (default 10m). Containers may override it with godwit.io/cooldown."`
	PingPongWindow        *Duration   `json:"pingPongWindow,omitempty" jsonschema_description:"A container is not moved back to a node it left within this window (default 1h)."`
	MinImprovement        *float64    `json:"minImprovement,omitempty" jsonschema:"minimum=0" jsonschema_description:"Least net score (weighted gain minus downtime cost) worth a move (default 0.05)."`
	DowntimeCost          *float64    `json:"downtimeCost,omitempty" jsonschema:"minimum=0" jsonschema_description:"Score one second of predicted downtime costs (default 0.01)."`
	Headroom              *HeadroomV1 `json:"headroom,omitempty" jsonschema_description:"Capacity that must stay free on a target after a move."`
	Method                *string     `json:"method,omitempty" jsonschema:"enum=auto,enum=stop-and-copy,enum=post-copy" jsonschema_description:"Migration method: auto (the default in the simulator; a live leader offers post-copy only when the policy names auto or post-copy) takes the cheaper of stop-and-copy and post-copy where both nodes of a move can do post-copy; stop-and-copy never uses post-copy; post-copy uses it wherever both nodes can (stop-and-copy elsewhere). Containers may override it with godwit.io/migration-method."`
}

// HeadroomV1 is the share of capacity a target keeps free after a move.
type HeadroomV1 struct {
	CPU    *float64 `json:"cpu,omitempty" jsonschema:"minimum=0,exclusiveMaximum=1" jsonschema_description:"Share of CPU kept free (default 0.1)."`
	Memory *float64 `json:"memory,omitempty" jsonschema:"minimum=0,exclusiveMaximum=1" jsonschema_description:"Share of memory kept free (default 0.1)."`
}

// SelectorV1 matches labels; every condition must hold.
type SelectorV1 struct {
	MatchLabels      map[string]string `json:"matchLabels,omitempty" jsonschema_description:"Labels that must be present with these values."`
	MatchExpressions []RequirementV1   `json:"matchExpressions,omitempty"`
}

// RequirementV1 is one label requirement.
type RequirementV1 struct {
	Key      string   `json:"key" jsonschema:"required"`
	Operator string   `json:"operator" jsonschema:"required,enum=In,enum=NotIn,enum=Exists,enum=DoesNotExist"`
	Values   []string `json:"values,omitempty" jsonschema_description:"Required for In and NotIn, forbidden for Exists and DoesNotExist."`
}

// PlacementRuleV1 constrains where the containers it selects run.
type PlacementRuleV1 struct {
	Containers   SelectorV1         `json:"containers,omitempty" jsonschema_description:"The containers the rule applies to (default: all managed)."`
	RequireNodes *SelectorV1        `json:"requireNodes,omitempty" jsonschema_description:"Targets must carry these labels."`
	PreferNodes  []NodePreferenceV1 `json:"preferNodes,omitempty" jsonschema_description:"Soft node preferences."`
	Affinity     []AffinityTermV1   `json:"affinity,omitempty" jsonschema_description:"Run near containers matching these terms."`
	AntiAffinity []AffinityTermV1   `json:"antiAffinity,omitempty" jsonschema_description:"Run away from containers matching these terms."`
}

// NodePreferenceV1 adds weight to targets matching nodes.
type NodePreferenceV1 struct {
	Nodes  SelectorV1 `json:"nodes"`
	Weight float64    `json:"weight" jsonschema:"required" jsonschema_description:"Score added on a matching node; negative to avoid."`
}

// AffinityTermV1 relates the rule's containers to other containers.
type AffinityTermV1 struct {
	Containers SelectorV1 `json:"containers" jsonschema_description:"The other containers."`
	Topology   *string    `json:"topology,omitempty" jsonschema:"enum=node,enum=site" jsonschema_description:"Same node (default) or same site."`
	Required   bool       `json:"required,omitempty" jsonschema_description:"A hard constraint instead of a preference."`
	Weight     float64    `json:"weight,omitempty" jsonschema:"minimum=0" jsonschema_description:"Score of a preference (not required)."`
}

// WindowsV1 say when moves may start.
type WindowsV1 struct {
	Timezone string     `json:"timezone,omitempty" jsonschema_description:"IANA time zone of the windows (default UTC)."`
	Allow    []WindowV1 `json:"allow,omitempty" jsonschema_description:"Moves start only inside one of these (default: any time)."`
	Forbid   []WindowV1 `json:"forbid,omitempty" jsonschema_description:"Moves never start inside these."`
}

// WindowV1 is a daily time range; end before start wraps past midnight.
type WindowV1 struct {
	Days  []string `json:"days,omitempty" jsonschema:"enum=mon,enum=tue,enum=wed,enum=thu,enum=fri,enum=sat,enum=sun" jsonschema_description:"Days the window starts on (default: every day)."`
	Start string   `json:"start" jsonschema:"required,pattern=^([01][0-9]|2[0-3]):[0-5][0-9]$" jsonschema_description:"HH:MM."`
	End   string   `json:"end" jsonschema:"required,pattern=^([01][0-9]|2[0-4]):[0-5][0-9]$" jsonschema_description:"HH:MM; equal to start means the whole day."`
}
