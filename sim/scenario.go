package sim

import (
	"time"

	"github.com/godwit-io/godwit/policy"
)

// APIVersion and ScenarioKind identify a scenario file.
const (
	APIVersion   = "godwit.io/v1"
	ScenarioKind = "Scenario"
)

// Scenario is a validated, defaulted and expanded simulation scenario: every node group and
// container group has been expanded into single nodes and containers.
type Scenario struct {
	Name string
	// File is the path the scenario came from ("" when parsed from memory); relative trace
	// and policy paths are resolved against its directory.
	File string

	// Start is the wall-clock time of simulated time zero; it is what the decision engine
	// sees as now. Default 2026-01-05T00:00:00Z (a Monday), so diurnal peaks land at
	// recognisable hours.
	Start time.Time
	// Duration of the simulation. Default 24h.
	Duration time.Duration
	// DecisionInterval is how often the planner runs. Default 60s, the leader's default.
	DecisionInterval time.Duration
	// SampleInterval is how often metrics are taken. Default the decision interval.
	SampleInterval time.Duration
	// Seed drives every random choice; same seed, same output bytes.
	Seed uint64

	// PolicyFile is the policy the "policy" arm runs, if the scenario names one.
	PolicyFile string

	Sites      []Site
	Links      []Link
	Nodes      []Node
	Containers []Container
	Events     []Event

	// IntraSite is the link between two nodes of one site and DefaultLink the one between
	// sites with no link of their own and no coordinates.
	IntraSite   LinkSpec
	DefaultLink *LinkSpec

	Migration MigrationConfig
	SLO       SLOConfig
	Latency   LatencyConfig
	Failover  FailoverConfig
	Threshold ThresholdConfig
	// OverloadAbove is the CPU utilisation above which a node counts as overloaded in the
	// metrics. Default 0.9.
	OverloadAbove float64
}

// Site is a location: a group of nodes close to each other and to the users there.
type Site struct {
	Name string
	// Coordinates are optional network coordinates in milliseconds (Vivaldi-like); the RTT
	// between two sites without a link is their distance.
	Coordinates *[2]float64
	// Cloud marks a central site: far from users, large.
	Cloud bool
}

// LinkSpec is the network between two places.
type LinkSpec struct {
	RTT           time.Duration
	BandwidthMbps float64
}

// Link is the network between two sites, both directions.
type Link struct {
	A, B string
	LinkSpec
}

// Node is one machine.
type Node struct {
	Name      string
	Site      string
	CPU       float64 // cores
	MemoryGiB float64
	Labels    map[string]string
	// Coordinates override the site's.
	Coordinates *[2]float64
}

// Container is one managed (or unmanaged) container and the users it serves.
type Container struct {
	Name      string
	Node      string // initial placement
	MemoryGiB float64
	// ImageMiB is the image size sent when the target lacks it (0: assume present).
	ImageMiB float64
	Labels   map[string]string
	CPU      Workload
	Users    []UserGroup
}

// MigrationConfig shapes how simulated migrations go.
type MigrationConfig struct {
	// Noise is the spread of the actual migration time around the cost model's prediction,
	// as the standard deviation of a log-normal factor with mean 1. Default 0.2: real
	// checkpoints vary by tens of percent with page-cache state.
	Noise float64
	// FailureRate is the probability that a migration fails and rolls back to the source
	// after taking its time. Default 0.
	FailureRate float64
	// Checkpoint and Restore, when set, are the modelled cluster's real checkpoint and
	// restore times (seconds = intercept + slope x GiB), which the planners' cost model
	// does not know: it starts from Config.Model and is refitted from the simulated
	// migrations as they end (unless Config.FixedModel). Nil: the cost model's lines.
	Checkpoint, Restore *policy.Linear
}

// SLOConfig is what users are promised.
type SLOConfig struct {
	// LatencyMs is the user-perceived latency above which a user-sample is a violation.
	// Default 50ms, a common interactive edge target.
	LatencyMs float64
}

// LatencyConfig is the user-perceived latency model:
// latency = access + rtt(user site, node site) + service / (1 - min(util, MaxUtil)).
type LatencyConfig struct {
	// AccessMs is the last-mile latency from a user to its site. Default 2ms.
	AccessMs float64
	// ServiceMs is the processing time on an idle node. Default 5ms.
	ServiceMs float64
	// MaxUtil caps the queueing factor. Default 0.95 (factor 20).
	MaxUtil float64
}

// FailoverConfig is what happens to containers on a failed node.
type FailoverConfig struct {
	// RestartAfter, if set, cold-restarts the containers of a failed node on the least
	// loaded live node of the same site (else any site) after this delay, as an orchestrator's
	// restart policy would. Zero: they stay down until their node recovers.
	RestartAfter time.Duration
}

// ThresholdConfig configures the descheduler-style baseline.
type ThresholdConfig struct {
	// High is the CPU utilisation above which a node sheds containers. Default 0.8.
	High float64
	// Low is the utilisation under which a node may take them. Default 0.5.
	Low float64
	// MaxMovesPerInterval bounds moves per decision. Default 10.
	MaxMovesPerInterval int
}

// EventType is what a scenario event does.
type EventType string

// Event types.
const (
	EventNodeFailure  EventType = "nodeFailure"
	EventNodeRecovery EventType = "nodeRecovery"
	EventDrain        EventType = "drain"
	EventUndrain      EventType = "undrain"
	EventPolicyChange EventType = "policyChange"
)

// Event happens at one time.
type Event struct {
	At   time.Duration
	Type EventType
	Node string
	// PolicyFile is the new policy for EventPolicyChange.
	PolicyFile string
	pos        pos
}
