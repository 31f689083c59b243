package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestPostCopyMethod: a container too big to move by stop-and-copy within maxDowntime moves
// by post-copy where the cluster offers it, the decision says so, and the label or the
// policy can forbid it.
func TestPostCopyMethod(t *testing.T) {
	view := func(labels ...string) ClusterView {
		return cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)},
			ctr("big", "a", 1.5, 4, labels...), ctr("fixed", "a", 2.4, 0.1, LabelNeverMigrate, "true"))
	}
	pol := func(method string) *Policy {
		return auto(Objectives{RelieveOverload: 1}, func(p *Policy) {
			p.Constraints.MaxDowntime = 3 * time.Second
			p.Constraints.Method = method
		})
	}
	offered := DefaultCostModel()
	offered.PostCopy.Enabled = true
	// noPC is view with node i unable to do post-copy.
	noPC := func(i int, labels ...string) ClusterView {
		v := view(labels...)
		v.Nodes[i].NoPostCopy = true
		return v
	}
	tests := []struct {
		desc   string
		view   ClusterView
		policy *Policy
		model  CostModel
		method string // of the one move; "none": no move
		reason Reason
	}{
		{"no post-copy offered: stop-and-copy over the limit, no move", view(), pol(""), DefaultCostModel(), "none", ReasonDowntime},
		{"post-copy offered: it moves by post-copy", view(), pol(""), offered, MethodPostCopy, ReasonMoved},
		{"the policy asks for stop-and-copy", view(), pol(MethodStopAndCopy), offered, "none", ReasonDowntime},
		{"the label asks for stop-and-copy", view(LabelMigrationMethod, MethodStopAndCopy), pol(""), offered, "none", ReasonDowntime},
		{"the label asks for post-copy", view(LabelMigrationMethod, MethodPostCopy), pol(MethodStopAndCopy), offered, MethodPostCopy, ReasonMoved},
		{"post-copy asked for but not offered", view(LabelMigrationMethod, MethodPostCopy), pol(""), DefaultCostModel(), "none", ReasonDowntime},
		{"the source cannot do post-copy", noPC(0), pol(""), offered, "none", ReasonDowntime},
		{"the target cannot do post-copy", noPC(1), pol(""), offered, "none", ReasonDowntime},
		{"post-copy forced, the target cannot", noPC(1), pol(MethodPostCopy), offered, "none", ReasonDowntime},
	}
	for _, tc := range tests {
		p := Evaluate(tc.view, tc.policy, tc.model, Ledger{}, t0)
		x := explanation(p, "big")
		if x.Reason != tc.reason {
			t.Errorf("%s: reason %s (%s), want %s", tc.desc, x.Reason, x.Detail, tc.reason)
		}
		if tc.method == "none" {
			if len(p.Decisions) != 0 {
				t.Errorf("%s: moves %v", tc.desc, moves(p))
			}
			continue
		}
		if len(p.Decisions) != 1 {
			t.Fatalf("%s: moves %v", tc.desc, moves(p))
		}
		c := p.Decisions[0].Cost
		if c.Method != tc.method {
			t.Errorf("%s: method %q, want %q", tc.desc, c.Method, tc.method)
		}
		if c.Downtime > 3*time.Second || c.Pages <= 0 || c.Total < c.Downtime+c.Pages {
			t.Errorf("%s: prediction %+v: want a freeze under the limit, then pages", tc.desc, c)
		}
		committed, refused := Commit(tc.view, tc.policy, Ledger{}, p.Decisions, t0)
		if len(refused) != 0 || len(committed) != 1 || committed[0].Record.Method != MethodPostCopy {
			t.Errorf("%s: Commit gave %+v, refused %+v: want one record by post-copy", tc.desc, committed, refused)
		}
	}
	// An unknown method is a problem, read as auto.
	p := Evaluate(view(LabelMigrationMethod, "teleport"), pol(""), offered, Ledger{}, t0)
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "teleport") || len(p.Decisions) != 1 {
		t.Errorf("unknown method: problems %q, moves %v", p.Problems, moves(p))
	}
}

// TestPostCopyCostBenefit: under the cost-benefit rule, post-copy is taken when its freeze
// plus the users slowed while the pages arrive cost less than stop-and-copy's freeze, and
// the explanation says what the cost was made of.
func TestPostCopyCostBenefit(t *testing.T) {
	cb := func(p *Policy) {
		p.Constraints.MaxDowntime = 0
		p.CostBenefit = CostBenefit{Enabled: true, LatencyTarget: 40 * time.Millisecond, ServiceTime: 5 * time.Millisecond,
			Horizon: time.Hour, MaxHorizon: 2 * time.Hour, OutageWeight: 10, MoveCost: 10}
	}
	users := []UserSite{{Site: "s1", Weight: 50}}
	c := ctr("big", "a", 1.5, 4)
	c.Users = users
	fixed := ctr("fixed", "a", 2.4, 0.1, LabelNeverMigrate, "true")
	v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, c, fixed)
	offered := DefaultCostModel()
	offered.PostCopy.Enabled = true
	for _, m := range []CostModel{DefaultCostModel(), offered} {
		p := Evaluate(v, auto(Objectives{}, cb), m, Ledger{}, t0)
		if len(p.Decisions) != 1 {
			t.Fatalf("post-copy offered %v: moves %v (%s)", m.PostCopy.Enabled, moves(p), explanation(p, "big").Detail)
		}
		got, want := p.Decisions[0].Cost.Method, ""
		if m.PostCopy.Enabled {
			want = MethodPostCopy
		}
		if got != want {
			t.Errorf("post-copy offered %v: method %q, want %q", m.PostCopy.Enabled, got, want)
		}
	}
	// Nearly no benefit: the explanation of the rejection names the post-copy pages.
	c.CPU, fixed.CPU = 0.5, 0.5
	v = cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, c, fixed)
	p := Evaluate(v, auto(Objectives{}, cb), offered, Ledger{}, t0)
	x := explanation(p, "big")
	if len(p.Decisions) != 0 || !strings.Contains(x.Detail, "post-copy pages") {
		t.Errorf("idle container: moves %v, reason %s %q", moves(p), x.Reason, x.Detail)
	}
}

// TestFitPostCopyFreeze: post-copy migrations refit the post-copy freeze line and leave
// the stop-and-copy lines alone; stop-and-copy ones leave the freeze alone.
func TestFitPostCopyFreeze(t *testing.T) {
	var pc, sc []Observation
	for i := range 20 {
		gib := 0.25 + 0.25*float64(i%8)
		pc = append(pc, Observation{MemoryBytes: int64(gib * GiB), Freeze: seconds(0.4 + 0.1*gib), ImageBytes: int64(gib * GiB)})
		sc = append(sc, Observation{MemoryBytes: int64(gib * GiB), Checkpoint: seconds(0.3 + 2*gib), Restore: seconds(0.3 + 2*gib)})
	}
	base := DefaultCostModel()
	m := Fit(base, pc, 0)
	if f := m.PostCopy.Freeze; math.Abs(f.Intercept-0.4) > 0.01 || math.Abs(f.Slope-0.1) > 0.01 {
		t.Errorf("post-copy freeze fit %+v, want 0.4 + 0.1/GiB", f)
	}
	if m.Checkpoint != base.Checkpoint || m.Restore != base.Restore {
		t.Errorf("post-copy observations changed the stop-and-copy lines: %+v %+v", m.Checkpoint, m.Restore)
	}
	if m = Fit(base, sc, 0); m.PostCopy.Freeze != base.PostCopy.Freeze {
		t.Errorf("stop-and-copy observations changed the post-copy freeze: %+v", m.PostCopy.Freeze)
	}
}
