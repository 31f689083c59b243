package sim

import (
	"fmt"
	"strings"
	"sync"

	"github.com/godwit-io/godwit/policy"
)

// DefaultArms are the arms Run compares: the policy against no migration, a threshold
// rebalancer, a descheduler-style LowNodeUtilization rebalancer with a cooldown and a
// greedy follow-the-users mover.
var DefaultArms = []string{ArmPolicy, ArmNone, ArmThreshold, ArmLowNode, ArmFollow}

// Planners builds the planner of each named arm.
func Planners(sc *Scenario, cfg *Config, arms []string) ([]Planner, error) {
	out := make([]Planner, 0, len(arms))
	for _, a := range arms {
		switch a {
		case ArmPolicy:
			if cfg.Policy == nil {
				return nil, fmt.Errorf("sim: the policy arm needs a policy")
			}
			// Its own planner: a policyChange event swaps the planner's policy.
			out = append(out, &PolicyPlanner{Policy: cfg.Policy, Model: cfg.Model})
		case ArmNone:
			out = append(out, NoMigration{})
		case ArmThreshold:
			out = append(out, &ThresholdRebalancer{Config: sc.Threshold})
		case ArmLowNode:
			out = append(out, &LowNodeUtilization{Config: DefaultLowNodeConfig()})
		case ArmFollow:
			out = append(out, &FollowUsers{Config: DefaultFollowConfig()})
		default:
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownArm, a, strings.Join(DefaultArms, ", "))
		}
	}
	return out, nil
}

// RunPlanner simulates the scenario with one planner. It is deterministic: the same
// scenario, config and planner give the same Result.
func RunPlanner(sc *Scenario, cfg Config, p Planner) (*Result, error) {
	w := newWorld(sc, &cfg, p)
	if err := w.run(); err != nil {
		return nil, err
	}
	return w.result, nil
}

// Run simulates the scenario once per arm (nil: DefaultArms), the arms in parallel. Every arm
// sees the same workload, user movements and events; only the decisions differ. Results
// come in the order of arms.
func Run(sc *Scenario, cfg Config, arms []string) ([]*Result, error) {
	if arms == nil {
		arms = DefaultArms
	}
	planners, err := Planners(sc, &cfg, arms)
	if err != nil {
		return nil, err
	}
	results := make([]*Result, len(planners))
	errs := make([]error, len(planners))
	var wg sync.WaitGroup
	for i, p := range planners {
		wg.Go(func() {
			results[i], errs[i] = RunPlanner(sc, cfg, p)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

// SimPolicy is the policy a simulation runs when none is given: DefaultPolicyYAML, parsed by
// the policy package's parser.
func SimPolicy() *policy.Policy {
	p, err := policy.Parse("sim-default", []byte(DefaultPolicyYAML))
	if err != nil {
		panic("sim: built-in policy does not parse: " + err.Error())
	}
	return p
}
