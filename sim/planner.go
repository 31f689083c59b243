package sim

import (
	"time"

	"github.com/godwit-io/godwit/policy"
)

// Planner decides which containers move at one decision time. It sees the simulated
// cluster exactly as the leader sees the live one: a policy.ClusterView, the migration
// ledger and the time. Planners run on one goroutine per arm and must not keep the view or
// the ledger after Plan returns (the simulator reuses them).
type Planner interface {
	// Name is the arm's name in outputs.
	Name() string
	// Plan returns the moves to start now. It may update ledger.Conditions (trigger
	// hysteresis carried between evaluations).
	Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult
}

// PlanResult is what one planner evaluation produced.
type PlanResult struct {
	Decisions []policy.Decision
	// Explanations are the policy engine's reasons for each managed container, when the
	// planner has them.
	Explanations []policy.Explanation
}

// Arm names.
const (
	ArmPolicy    = "policy"
	ArmNone      = "none"
	ArmThreshold = "threshold"
	ArmLowNode   = "lownode"
	ArmFollow    = "follow"
)

// NoMigration is the baseline that never moves anything.
type NoMigration struct{}

// Name implements Planner.
func (NoMigration) Name() string { return ArmNone }

// Plan implements Planner.
func (NoMigration) Plan(*policy.ClusterView, *policy.Ledger, time.Time) PlanResult {
	return PlanResult{}
}

var _ Planner = NoMigration{}
