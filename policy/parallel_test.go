package policy

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// TestEvaluateParallelSameAsSerial guards the parallel path of Evaluate (above about a
// thousand screened containers the work is split over the CPUs): with one CPU and with four,
// the same inputs give the same Plan, including trigger conditions, a trigger that reads
// $env and one that fails at run time, with and without the cost-benefit rule.
func TestEvaluateParallelSameAsSerial(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		v, l := randomCluster(rng, 300, 9000)
		p := randomPolicy(rand.New(rand.NewPCG(seed, 4)))
		p.CostBenefit = CostBenefit{Enabled: seed%2 == 0, MoveCost: 10}
		p.Triggers = append(p.Triggers, Trigger{Name: "far", Scope: ScopeContainer, When: "container.userRTT > 15 || container.cpu > 0.4", Until: "container.userRTT < 8", For: time.Minute},
			Trigger{Name: "env", Scope: ScopeContainer, When: "$env.container.cpu > 0.3"},
			Trigger{Name: "bad", Scope: ScopeContainer, When: "container.id > 'c06000' && int(container.id) > 0"})
		if err := p.Compile(); err != nil {
			t.Fatal(err)
		}
		prev := runtime.GOMAXPROCS(1)
		a := Evaluate(v, p, DefaultCostModel(), l, t0)
		l.Conditions = a.Conditions
		a2 := Evaluate(v, p, DefaultCostModel(), l, t0.Add(2*time.Minute))
		runtime.GOMAXPROCS(4)
		b := Evaluate(v, p, DefaultCostModel(), l, t0.Add(2*time.Minute))
		l.Conditions = nil
		b0 := Evaluate(v, p, DefaultCostModel(), l, t0)
		runtime.GOMAXPROCS(prev)
		if !reflect.DeepEqual(a, b0) || !reflect.DeepEqual(a2, b) {
			t.Fatal("differ")
		}
		t.Log(len(a.Conditions), len(a2.Conditions), len(a2.Decisions), a.Problems)
	}
}
