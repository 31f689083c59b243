package policy

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHarmListMatchesBruteForce checks the binary-searched harm of a node's users against
// summing every user's ramp.
func TestHarmListMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := &evaluation{}
	for trial := range 200 {
		var entries []harmEntry
		for range rng.IntN(30) {
			entries = append(entries, harmEntry{slack: rng.Float64()*0.08 - 0.02, weight: float64(1 + rng.IntN(5))})
		}
		e.harm = []harmList{{}}
		e.nodeConts = [][]int32{nil}
		slices.SortFunc(entries, func(a, b harmEntry) int { return cmpFloat(a.slack, b.slack) })
		h := &e.harm[0]
		var ws float64
		for _, x := range entries {
			h.total += x.weight
			ws += x.weight * x.slack
			h.slack, h.cum, h.cumWS = append(h.slack, x.slack), append(h.cum, h.total), append(h.cumWS, ws)
		}
		w := 0.01
		for range 20 {
			q := rng.Float64() * 0.1
			var want float64
			for _, x := range entries {
				want += x.weight * userHarm(x.slack, q, w)
			}
			if got := h.harmed(q, w); math.Abs(got-want) > 1e-9 {
				t.Fatalf("trial %d: harmed(%v) = %v, brute force %v", trial, q, got, want)
			}
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestConditionRemaining(t *testing.T) {
	e := &evaluation{cb: CostBenefit{Enabled: true, Horizon: 30 * time.Minute, MaxHorizon: 2 * time.Hour}}
	e.stats = map[string]ConditionStat{"long": {Trigger: "long", Ended: 50, Mean: 4 * time.Hour}}
	tests := []struct {
		desc    string
		trigger string
		age     time.Duration
		want    time.Duration
	}{
		{"no history: the prior less the age", "new", 5 * time.Minute, 25 * time.Minute},
		{"no history, older than the prior: at least its age", "new", 50 * time.Minute, 50 * time.Minute},
		{"history: the learned mean (shrunk a little toward the prior), capped", "long", 10 * time.Minute, 2 * time.Hour},
		{"very old: capped", "new", 10 * time.Hour, 2 * time.Hour},
	}
	for _, tc := range tests {
		got := seconds(e.conditionRemaining(tc.trigger, tc.age))
		if got.Round(time.Second) != tc.want {
			t.Errorf("%s: %v, want %v", tc.desc, got, tc.want)
		}
	}
	// Few observations barely move the prior; many dominate it.
	e.stats["short"] = ConditionStat{Trigger: "short", Ended: 1, Mean: 2 * time.Minute}
	if got := seconds(e.conditionRemaining("short", 0)); got < 15*time.Minute || got > 25*time.Minute {
		t.Errorf("one short condition: %v, want between the two", got)
	}
	e.stats["short"] = ConditionStat{Trigger: "short", Ended: 50, Mean: 2 * time.Minute}
	if got := seconds(e.conditionRemaining("short", 0)); got > 4*time.Minute {
		t.Errorf("fifty short conditions: %v, want near 2m", got)
	}
}

// cbPolicy is a cost-benefit policy in auto mode without budget limits.
func cbPolicy(edit func(*Policy)) *Policy {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	p.Objectives = Objectives{EvacuateDrained: 1, OverloadThreshold: 0.85}
	p.CostBenefit = CostBenefit{Enabled: true}.withDefaults()
	p.Constraints.MaxConcurrent = 0
	p.Constraints.MaxConcurrentPerNode = 0
	p.Constraints.MaxMovesPerEvaluation = 0
	p.Constraints.MaxDowntime = 0
	if edit != nil {
		edit(&p)
	}
	if err := p.Compile(); err != nil {
		panic(err)
	}
	return &p
}

func withUsers(c Container, site string, n float64) Container {
	c.Users = []UserSite{{Site: site, Weight: n}}
	return c
}

func TestCostBenefitDecisions(t *testing.T) {
	// Two sites 45 ms apart over a slow link; node a is saturated.
	nodes := func() []Node {
		return []Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0), node("far", "s2", 0, 0)}
	}
	slow := []Link{{From: "s1", To: "s2", RTT: 45 * time.Millisecond, BandwidthBytesPerSec: 12.5e6}}
	view := func(cs ...Container) ClusterView {
		v := cluster(nodes(), cs...)
		v.SiteLinks = slow
		return v
	}
	busy := []Container{
		withUsers(ctr("w1", "a", 1.5, 0.25), "s1", 20),
		withUsers(ctr("w2", "a", 1.4, 0.25), "s1", 20),
		withUsers(ctr("w3", "a", 0.9, 0.25), "s1", 20),
	}
	t.Run("relieves a saturated node, cheapest relief first, never to a far site", func(t *testing.T) {
		p := Evaluate(view(busy...), cbPolicy(nil), DefaultCostModel(), Ledger{}, t0)
		if len(p.Decisions) == 0 {
			t.Fatalf("no move off a node at 95%%: %+v", p.Explanations)
		}
		for _, d := range p.Decisions {
			if d.To == "far" {
				t.Errorf("%s moved to the far site: its users would all be over the target", d.Container)
			}
			if d.Score <= 0 || d.Gain <= d.Score {
				t.Errorf("decision %+v: want a positive net benefit below the gross benefit", d)
			}
		}
		if x := explanation(p, p.Decisions[0].Container); x.Horizon != 30*time.Minute {
			t.Errorf("horizon %v, want the prior 30m (no trigger covers it)", x.Horizon)
		}
	})
	t.Run("a big container over a slow link does not pay for itself", func(t *testing.T) {
		v := view(withUsers(ctr("db", "a", 3.8, 6), "s2", 5))
		v.Nodes[2].CPUCores, v.Nodes[2].MemoryBytes = 64, 256*GiB // room for it
		p := Evaluate(v, cbPolicy(nil), DefaultCostModel(), Ledger{}, t0)
		x := explanation(p, "db")
		if x.Moved {
			t.Fatalf("db moved: %+v", x)
		}
		var far *Candidate
		for i := range x.Candidates {
			if x.Candidates[i].Node == "far" {
				far = &x.Candidates[i]
			}
		}
		if far == nil || (far.Rejected != ReasonCostOverBenefit && far.Rejected != ReasonMargin) {
			t.Fatalf("db to far: %+v, want cost-over-benefit or within-margin", far)
		}
		if far.Score >= 0 && far.Rejected == ReasonCostOverBenefit {
			t.Errorf("far: score %v, want negative for cost-over-benefit", far.Score)
		}
		// The container's own detail spells out its best target's numbers.
		v2 := view(withUsers(ctr("db", "a", 3.8, 6), "s2", 5))
		v2.Nodes = []Node{v2.Nodes[0], v.Nodes[2]}
		x2 := explanation(Evaluate(v2, cbPolicy(nil), DefaultCostModel(), Ledger{}, t0), "db")
		if !strings.Contains(x2.Detail, "user-s") || !strings.Contains(x2.Detail, "best target far") {
			t.Errorf("detail %q does not give the numbers", x2.Detail)
		}
	})
	t.Run("the same move with its users waiting far away for hours does", func(t *testing.T) {
		v := view(withUsers(ctr("db", "a", 0.5, 1), "s2", 20))
		v.Nodes[2].CPUCores, v.Nodes[2].MemoryBytes = 64, 256*GiB
		pol := cbPolicy(func(p *Policy) {
			p.Triggers = []Trigger{{Name: "far", Scope: ScopeContainer, When: "container.userRTT > 15"}}
		})
		ledger := Ledger{ConditionStats: []ConditionStat{{Trigger: "far", Ended: 50, Mean: 8 * time.Hour}}}
		p := Evaluate(v, pol, DefaultCostModel(), ledger, t0)
		if got := moves(p); !slices.Equal(got, []string{"db:a->far"}) {
			t.Fatalf("moves %v, want db to its users: %+v", got, explanation(p, "db"))
		}
		if x := explanation(p, "db"); x.Horizon != 2*time.Hour {
			t.Errorf("horizon %v, want maxHorizon", x.Horizon)
		}
	})
	t.Run("a margin too wide for the benefit: within-margin", func(t *testing.T) {
		pol := cbPolicy(func(p *Policy) { p.CostBenefit.Margin = 1e6 })
		p := Evaluate(view(busy...), pol, DefaultCostModel(), Ledger{}, t0)
		if len(p.Decisions) != 0 {
			t.Fatalf("moves %v despite the margin", moves(p))
		}
		for _, x := range p.Explanations {
			if x.Reason != ReasonMargin && x.Reason != ReasonCostOverBenefit {
				t.Errorf("%s: %s, want within-margin or cost-over-benefit", x.Container, x.Reason)
			}
		}
	})
	t.Run("an idle cluster: nothing worth a move", func(t *testing.T) {
		idle := []Container{withUsers(ctr("w1", "a", 0.5, 0.25), "s1", 20), withUsers(ctr("w2", "b", 0.5, 0.25), "s1", 20)}
		p := Evaluate(view(idle...), cbPolicy(nil), DefaultCostModel(), Ledger{}, t0)
		if len(p.Decisions) != 0 {
			t.Errorf("moves %v on an idle cluster", moves(p))
		}
	})
}

// TestConditionStatsLearned checks that a condition's duration is learned when it ends and
// carried in the plan.
func TestConditionStatsLearned(t *testing.T) {
	pol := cbPolicy(func(p *Policy) {
		p.Mode = ModeRecommend
		p.Triggers = []Trigger{{Name: "hot", Scope: ScopeNode, When: "node.cpu > 0.8"}}
	})
	hot := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("c", "a", 3.6, 0.25))
	cool := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("c", "a", 1, 0.25))
	var l Ledger
	for i, v := range []ClusterView{hot, hot, hot, cool} {
		p := Evaluate(v, pol, DefaultCostModel(), l, t0.Add(time.Duration(i)*10*time.Minute))
		l.Conditions, l.ConditionStats = p.Conditions, p.ConditionStats
	}
	want := []ConditionStat{{Trigger: "hot", Ended: 1, Mean: 30 * time.Minute}}
	if !slices.Equal(l.ConditionStats, want) {
		t.Errorf("stats %+v, want %+v", l.ConditionStats, want)
	}
}

// TestWindowWithoutLocation checks a hand-built policy with windows and no time zone: the
// engine reads it as UTC, as Windows.Allowed does, rather than panicking.
func TestWindowWithoutLocation(t *testing.T) {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	p.Windows = Windows{Forbid: []Window{{Start: 0, End: 0}}} // the whole day, every day
	v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("h1", "a", 2, 0.25), ctr("h2", "a", 1.9, 0.25))
	plan := Evaluate(v, &p, DefaultCostModel(), Ledger{}, t0)
	for _, x := range plan.Explanations {
		if x.Reason == ReasonWindow && !strings.Contains(x.Detail, "UTC") {
			t.Errorf("detail %q: want the time in UTC", x.Detail)
		}
	}
}

// TestInFlightShareTheLink checks that the engine predicts a transfer over a link with a
// migration already on it at half the link's bandwidth.
func TestInFlightShareTheLink(t *testing.T) {
	v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0), node("x", "s2", 0, 0), node("y", "s2", 0, 0)},
		ctr("c", "a", 3.8, 1), ctr("moving", "b", 0.1, 1))
	v.SiteLinks = []Link{{From: "s1", To: "s2", RTT: 10 * time.Millisecond, BandwidthBytesPerSec: 100e6}}
	pol := auto(Objectives{RelieveOverload: 1}, nil)
	transfer := func(l Ledger) time.Duration {
		for _, c := range explanation(Evaluate(v, pol, DefaultCostModel(), l, t0), "c").Candidates {
			if c.Node == "x" {
				return c.Cost.Transfer
			}
		}
		t.Fatal("x not among c's candidates")
		return 0
	}
	alone := transfer(Ledger{})
	shared := transfer(Ledger{Migrations: []MigrationRecord{{ID: "m1", Container: "moving", From: "b", To: "y", Start: t0, State: StateTransferring}}})
	rtt := 10 * time.Millisecond
	if got, want := shared-rtt, 2*(alone-rtt); got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("transfer with a migration on the link %v, alone %v: want twice the time", shared, alone)
	}
}
