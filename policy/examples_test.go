package policy

import (
	"os"
	"testing"
	"time"
)

func loadExample(t *testing.T, name string) *Policy {
	t.Helper()
	data, err := os.ReadFile("../configs/policies/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(name+".yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// What each example policy does on a cluster made for it.
func TestExampleBehaviour(t *testing.T) {
	t.Run("balance-load relieves a node hot for two minutes", func(t *testing.T) {
		p := loadExample(t, "balance-load")
		v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0), node("c", "s1", 0, 0)},
			ctr("h1", "a", 2, 0.25), ctr("h2", "a", 1.8, 0.25), ctr("x", "b", 1, 0.25))
		first := Evaluate(v, p, DefaultCostModel(), Ledger{}, t0)
		if len(first.Decisions) != 0 {
			t.Fatalf("moved before the trigger held for 2m: %v", moves(first))
		}
		plan := Evaluate(v, p, DefaultCostModel(), Ledger{Conditions: first.Conditions}, t0.Add(2*time.Minute))
		if len(plan.Decisions) != 1 || plan.Decisions[0].From != "a" || plan.Decisions[0].To != "c" {
			t.Errorf("moves = %v, want one container off a, to the emptiest node", moves(plan))
		}
	})
	t.Run("follow-users moves a latency-sensitive container to its users", func(t *testing.T) {
		p := loadExample(t, "follow-users")
		c := ctr("w", "a", 0.2, 0.1, "latency", "sensitive")
		c.Users = []UserSite{{Site: "s2", Weight: 3}, {Site: "s1", Weight: 1}}
		v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s2", 0, 0)}, c)
		v.SiteLinks = []Link{{From: "s1", To: "s2", RTT: 60 * time.Millisecond, BandwidthBytesPerSec: 100e6}}
		l := Ledger{Conditions: []ConditionState{{Trigger: "users-far", Subject: "w", Since: t0.Add(-10 * time.Minute)}}}
		// 12:00 UTC is 14:00 in Berlin, outside the forbidden evening.
		plan := Evaluate(v, p, DefaultCostModel(), l, t0)
		if got := moves(plan); len(got) != 1 || got[0] != "w:a->b" {
			t.Errorf("moves = %v (%+v)", got, plan.Explanations)
		}
		evening := Evaluate(v, p, DefaultCostModel(), l, time.Date(2025, 6, 2, 18, 30, 0, 0, time.UTC))
		if x := explanation(evening, "w"); x.Reason != ReasonWindow {
			t.Errorf("at 20:30 Berlin: reason %q, want window", x.Reason)
		}
	})
	t.Run("maintenance-drain empties a drained node one container at a time, at night", func(t *testing.T) {
		p := loadExample(t, "maintenance-drain")
		v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("d1", "a", 0.5, 0.5), ctr("d2", "a", 0.5, 0.5))
		v.Nodes[0].Drained = true
		day := Evaluate(v, p, DefaultCostModel(), Ledger{}, t0)
		if len(day.Decisions) != 0 || explanation(day, "d1").Reason != ReasonWindow {
			t.Errorf("moved on Monday noon: %v %+v", moves(day), day.Explanations)
		}
		night := Evaluate(v, p, DefaultCostModel(), Ledger{}, t0.Add(11*time.Hour))
		if got := moves(night); len(got) != 1 || got[0] != "d1:a->b" {
			t.Errorf("at 23:00: moves = %v", got)
		}
	})
	t.Run("conservative only recommends", func(t *testing.T) {
		p := loadExample(t, "conservative")
		v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("h1", "a", 2, 0.1), ctr("h2", "a", 1.9, 0.1))
		v.Nodes[0].UsedCPU = 4 // saturated
		l := Ledger{Conditions: []ConditionState{{Trigger: "node-overloaded", Subject: "a", Since: t0.Add(-time.Hour)}}}
		plan := Evaluate(v, p, DefaultCostModel(), l, t0)
		if plan.Mode != ModeRecommend || len(plan.Decisions) != 1 {
			t.Errorf("mode %s, moves %v; want one recommendation; %+v", plan.Mode, moves(plan), plan.Explanations)
		}
	})
}
