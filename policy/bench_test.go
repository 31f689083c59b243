package policy

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkEvaluate is one evaluation of 1,000 nodes and 20,000 containers.
func BenchmarkEvaluate(b *testing.B) {
	rng := rand.New(rand.NewPCG(42, 7))
	v, l := randomCluster(rng, 1000, 20000)
	for _, bc := range []struct {
		name    string
		trigger bool
	}{{"all-candidates", false}, {"node-trigger", true}} {
		p := randomPolicy(rand.New(rand.NewPCG(3, 4)))
		p.Triggers = nil
		if bc.trigger {
			p.Triggers = []Trigger{{Name: "hot", Scope: ScopeNode, When: "node.cpu > 0.6 || node.memory > 0.6", Until: "node.cpu < 0.5"}}
		}
		if err := p.Compile(); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var plan Plan
			for b.Loop() {
				plan = Evaluate(v, p, DefaultCostModel(), l, t0)
			}
			b.ReportMetric(float64(len(plan.Decisions)), "moves")
		})
	}
}
