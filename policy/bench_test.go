package policy

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvaluate is one evaluation of 1,000 nodes and 20,000 containers.
func BenchmarkEvaluate(b *testing.B) {
	rng := rand.New(rand.NewPCG(42, 7))
	v, l := randomCluster(rng, 1000, 20000)
	for _, bc := range []struct {
		name        string
		trigger, cb bool
	}{{"all-candidates", false, false}, {"node-trigger", true, false}, {"cost-benefit", true, true}} {
		p := randomPolicy(rand.New(rand.NewPCG(3, 4)))
		p.Triggers = nil
		p.CostBenefit = CostBenefit{Enabled: bc.cb}
		if bc.trigger {
			p.Triggers = []Trigger{{Name: "hot", Scope: ScopeNode, When: "node.cpu > 0.6 || node.memory > 0.6", Until: "node.cpu < 0.5"}}
		}
		if err := p.Compile(); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var plan Plan
			cpu0 := cpuTime()
			for b.Loop() {
				plan = Evaluate(v, p, DefaultCostModel(), l, t0)
			}
			// CPU time per evaluation (all threads, GC included): on a shared, busy
			// machine ns/op measures the neighbours too.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(plan.Decisions)), "moves")
		})
	}
}
