package policy

import "testing"

func TestSmokeRelieve(t *testing.T) {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)},
		ctr("c1", "a", 2, 0.25), ctr("c2", "a", 1.9, 0.25), ctr("c3", "b", 0.2, 0.25))
	plan := Evaluate(v, &p, DefaultCostModel(), Ledger{}, t0)
	t.Logf("%v %+v", moves(plan), plan.Explanations)
	if len(plan.Decisions) != 1 {
		t.Fatalf("want one move, got %v", moves(plan))
	}
}
