package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// auto returns the default policy in auto mode with only the given objectives, no budget
// limits and no downtime cost, then lets edit adjust it.
func auto(o Objectives, edit func(*Policy)) *Policy {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	if o.OverloadThreshold == 0 {
		o.OverloadThreshold = 0.85
	}
	p.Objectives = o
	p.Constraints.MaxConcurrent = 0
	p.Constraints.MaxConcurrentPerNode = 0
	p.Constraints.MaxMovesPerEvaluation = 0
	p.Constraints.DowntimeCost = 0
	p.Constraints.MinImprovement = 0.01
	if edit != nil {
		edit(&p)
	}
	if err := p.Compile(); err != nil {
		panic(err)
	}
	return &p
}

type check struct {
	container string
	reason    Reason
}

func TestEvaluateTable(t *testing.T) {
	relieve := Objectives{RelieveOverload: 1}
	balance := Objectives{BalanceLoad: 1}
	three := func() []Node { return []Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0), node("c", "s1", 0, 0)} }
	hot := func(extra ...Container) ClusterView {
		cs := append([]Container{ctr("h1", "a", 2, 0.25), ctr("h2", "a", 1.9, 0.25)}, extra...)
		return cluster(three(), cs...)
	}
	tests := []struct {
		desc   string
		view   ClusterView
		policy *Policy
		ledger Ledger
		now    time.Time
		want   []string // moves, in order
		checks []check
	}{
		{desc: "relieveOverload moves one container off the hot node; balanceLoad picks the emptiest target",
			view: cluster(three(), ctr("h1", "a", 2, 0.25), ctr("h2", "a", 1.9, 0.25), ctr("x", "b", 1, 0.25)), policy: auto(Objectives{RelieveOverload: 1, BalanceLoad: 0.01}, nil),
			want: []string{"h1:a->c"}, checks: []check{{"h2", ReasonGainTooSmall}, {"x", ReasonGainTooSmall}}},
		{desc: "balanceLoad evens out and never moves back (no ping-pong from the objective)",
			view:   cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("c1", "a", 1, 0.1), ctr("c2", "a", 1, 0.1), ctr("c3", "a", 0.5, 0.1)),
			policy: auto(balance, nil), want: []string{"c1:a->b"}},
		{desc: "balanceLoad does not move a container when the difference is smaller than its share",
			view:   cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("c1", "a", 1, 0.1), ctr("c2", "b", 0.8, 0.1)),
			policy: auto(balance, nil), checks: []check{{"c1", ReasonGainTooSmall}, {"c2", ReasonGainTooSmall}}},
		{desc: "followUsers moves toward the users' site",
			view: func() ClusterView {
				c := ctr("w", "a", 0.1, 0.1)
				c.Users = []UserSite{{Site: "s2", Weight: 1}}
				v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s2", 0, 0)}, c)
				v.SiteLinks = []Link{{From: "s1", To: "s2", RTT: 40 * time.Millisecond}}
				return v
			}(), policy: auto(Objectives{FollowUsers: 1}, nil), want: []string{"w:a->b"}},
		{desc: "evacuateDrained empties a drained node, never onto a drained one",
			view: func() ClusterView {
				v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0), node("c", "s1", 0, 0)}, ctr("d1", "a", 0.5, 0.1), ctr("d2", "a", 0.5, 0.1))
				v.Nodes[0].Drained, v.Nodes[1].Drained = true, true
				return v
			}(), policy: auto(Objectives{EvacuateDrained: 1}, nil), want: []string{"d1:a->c", "d2:a->c"}},
		{desc: "consolidate packs onto the busier node",
			view:   cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("small", "a", 0.2, 0.1), ctr("big", "b", 2, 1)),
			policy: auto(Objectives{Consolidate: 1}, nil), want: []string{"small:a->b"}},
		{desc: "mode off decides nothing", view: hot(), policy: auto(relieve, func(p *Policy) { p.Mode = ModeOff }),
			checks: []check{{"h1", ReasonModeOff}}},
		{desc: "recommend still decides", view: hot(), policy: auto(relieve, func(p *Policy) { p.Mode = ModeRecommend }),
			want: []string{"h1:a->b"}},
		{desc: "never-migrate and pin=true stay",
			view:   hot(ctr("n", "a", 0.1, 0.1, LabelNeverMigrate, "true"), ctr("p", "a", 0.1, 0.1, LabelPin, "true")),
			policy: auto(relieve, nil), want: []string{"h1:a->b"}, checks: []check{{"n", ReasonNeverMigrate}, {"p", ReasonPinned}}},
		{desc: "pin to another node moves it there, only there",
			view: cluster(three(), ctr("p", "b", 0.1, 0.1, LabelPin, "c")), policy: auto(relieve, nil),
			want: []string{"p:b->c"}},
		{desc: "maxDowntime (global) rejects a slow move",
			view: hot(), policy: auto(relieve, func(p *Policy) { p.Constraints.MaxDowntime = time.Second }),
			checks: []check{{"h1", ReasonDowntime}, {"h2", ReasonDowntime}}},
		{desc: "max-downtime label tightens per container",
			view: cluster(three(), ctr("h1", "a", 2, 0.25, LabelMaxDowntime, "1s"), ctr("h2", "a", 1.9, 0.25)), policy: auto(relieve, nil),
			want: []string{"h2:a->b"}, checks: []check{{"h1", ReasonDowntime}}},
		{desc: "maxMemory keeps big containers in place",
			view: cluster(three(), ctr("h1", "a", 2, 2), ctr("h2", "a", 1.9, 0.25)), policy: auto(relieve, func(p *Policy) { p.Constraints.MaxMemoryBytes = GiB }),
			want: []string{"h2:a->b"}, checks: []check{{"h1", ReasonMemoryLimit}}},
		{desc: "maxMovesPerEvaluation is a budget",
			view: func() ClusterView {
				v := cluster(three(), ctr("d1", "a", 0.5, 0.1), ctr("d2", "a", 0.5, 0.1))
				v.Nodes[0].Drained = true
				return v
			}(), policy: auto(Objectives{EvacuateDrained: 1}, func(p *Policy) { p.Constraints.MaxMovesPerEvaluation = 1 }),
			want: []string{"d1:a->b"}, checks: []check{{"d2", ReasonBudget}}},
		{desc: "maxConcurrent counts the ledger's in-flight migrations",
			view: hot(ctr("z", "c", 0.1, 0.1)), policy: auto(relieve, func(p *Policy) { p.Constraints.MaxConcurrent = 1 }),
			ledger: Ledger{Migrations: []MigrationRecord{{ID: "m", Container: "z", From: "b", To: "c", Start: t0.Add(-time.Minute), State: StateTransferring}}},
			checks: []check{{"h1", ReasonConcurrency}, {"z", ReasonInFlight}}},
		{desc: "maxConcurrentPerNode: the target busy with another migration is skipped",
			view: hot(ctr("z", "c", 0.1, 0.1)), policy: auto(relieve, func(p *Policy) { p.Constraints.MaxConcurrentPerNode = 1 }),
			ledger: Ledger{Migrations: []MigrationRecord{{ID: "m", Container: "q", From: "b", To: "x", Start: t0.Add(-time.Minute), State: StatePlanned}}},
			want:   []string{"h1:a->c"}},
		{desc: "cooldown", view: hot(), policy: auto(relieve, nil),
			ledger: Ledger{Migrations: []MigrationRecord{
				{ID: "m1", Container: "h1", From: "c", To: "a", Start: t0.Add(-3 * time.Minute), End: t0.Add(-2 * time.Minute), State: StateCompleted},
				{ID: "m2", Container: "h2", From: "c", To: "a", Start: t0.Add(-3 * time.Minute), End: t0.Add(-2 * time.Minute), State: StateFailed}}},
			checks: []check{{"h1", ReasonCooldown}, {"h2", ReasonCooldown}}},
		{desc: "cooldown label overrides", view: cluster(three(), ctr("h1", "a", 2, 0.25, LabelCooldown, "1m"), ctr("h2", "a", 1.9, 0.25)), policy: auto(relieve, nil),
			ledger: Ledger{Migrations: []MigrationRecord{{ID: "m1", Container: "h1", From: "c", To: "a", Start: t0.Add(-3 * time.Minute), End: t0.Add(-2 * time.Minute), State: StateCompleted}}},
			want:   []string{"h1:a->b"}},
		{desc: "ping-pong: not back to the node it left, even after its cooldown",
			view: cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("h1", "a", 2, 0.25), ctr("h2", "a", 1.9, 0.25)), policy: auto(relieve, nil),
			ledger: Ledger{Migrations: []MigrationRecord{
				{ID: "m1", Container: "h1", From: "b", To: "a", Start: t0.Add(-30 * time.Minute), End: t0.Add(-29 * time.Minute), State: StateCompleted},
				{ID: "m2", Container: "h2", From: "b", To: "a", Start: t0.Add(-30 * time.Minute), End: t0.Add(-29 * time.Minute), State: StateCompleted}}},
			checks: []check{{"h1", ReasonPingPong}, {"h2", ReasonPingPong}}},
		{desc: "minImprovement", view: hot(), policy: auto(relieve, func(p *Policy) { p.Constraints.MinImprovement = 0.5 }),
			checks: []check{{"h1", ReasonGainTooSmall}}},
		{desc: "downtime cost can outweigh the gain", view: hot(), policy: auto(relieve, func(p *Policy) { p.Constraints.DowntimeCost = 1 }),
			checks: []check{{"h1", ReasonGainTooSmall}}},
		{desc: "headroom: no target may end up too full",
			view:   cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("h1", "a", 2, 0.25), ctr("h2", "a", 1.9, 0.25), ctr("f", "b", 2.2, 0.1)),
			policy: auto(relieve, nil), checks: []check{{"h1", ReasonHeadroom}, {"h2", ReasonHeadroom}}},
		{desc: "requireNodes",
			view: func() ClusterView {
				v := hot()
				v.Nodes[2].Labels = map[string]string{"gpu": "true"}
				return v
			}(), policy: auto(relieve, func(p *Policy) {
				p.Placement = []PlacementRule{{RequireNodes: &Selector{MatchLabels: map[string]string{"gpu": "true"}}}}
			}), want: []string{"h1:a->c"}},
		{desc: "required anti-affinity: not next to another replica",
			view: hot(ctr("r", "b", 0.1, 0.1, "app", "h")), policy: auto(relieve, func(p *Policy) {
				p.Placement = []PlacementRule{{AntiAffinity: []AffinityTerm{{Containers: Selector{MatchLabels: map[string]string{"app": "h"}}, Topology: TopologyNode, Required: true}}}}
			}), want: []string{"h1:a->c"}},
		{desc: "required affinity: only next to its database",
			view: hot(ctr("db", "c", 0.1, 0.1, "app", "db")), policy: auto(relieve, func(p *Policy) {
				p.Placement = []PlacementRule{{Containers: Selector{MatchExpressions: []Requirement{{Key: "app", Operator: OpDoesNotExist}}},
					Affinity: []AffinityTerm{{Containers: Selector{MatchLabels: map[string]string{"app": "db"}}, Topology: TopologyNode, Required: true}}}}
			}), want: []string{"h1:a->c"}},
		{desc: "preferNodes tips the balance",
			view: func() ClusterView {
				v := hot()
				v.Nodes[2].Labels = map[string]string{"ssd": "true"}
				return v
			}(), policy: auto(relieve, func(p *Policy) {
				p.Placement = []PlacementRule{{PreferNodes: []NodePreference{{Nodes: Selector{MatchLabels: map[string]string{"ssd": "true"}}, Weight: 0.01}}}}
			}), want: []string{"h1:a->c"}},
		{desc: "forbidden window", view: hot(), policy: auto(relieve, func(p *Policy) {
			p.Windows.Forbid = []Window{{Start: 11 * time.Hour, End: 13 * time.Hour}}
		}), checks: []check{{"h1", ReasonWindow}}},
		{desc: "outside the allowed windows (22:00-06:00 wraps midnight)", view: hot(), policy: auto(relieve, func(p *Policy) {
			p.Windows.Allow = []Window{{Start: 22 * time.Hour, End: 6 * time.Hour}}
		}), checks: []check{{"h1", ReasonWindow}}},
		{desc: "inside the allowed window after midnight", view: hot(), now: t0.Add(14 * time.Hour), policy: auto(relieve, func(p *Policy) {
			p.Windows.Allow = []Window{{Days: []time.Weekday{time.Monday}, Start: 22 * time.Hour, End: 6 * time.Hour}}
		}), want: []string{"h1:a->b"}},
		{desc: "node trigger not yet held for its duration", view: hot(), policy: auto(relieve, func(p *Policy) {
			p.Triggers = []Trigger{{Name: "hot", Scope: ScopeNode, When: "node.cpu > 0.9", For: time.Minute}}
		}), checks: []check{{"h1", ReasonNoTrigger}}},
		{desc: "node trigger held long enough", view: hot(), policy: auto(relieve, func(p *Policy) {
			p.Triggers = []Trigger{{Name: "hot", Scope: ScopeNode, When: "node.cpu > 0.9", For: time.Minute}}
		}), ledger: Ledger{Conditions: []ConditionState{{Trigger: "hot", Subject: "a", Since: t0.Add(-2 * time.Minute)}}},
			want: []string{"h1:a->b"}},
		{desc: "container trigger", view: hot(), policy: auto(relieve, func(p *Policy) {
			p.Triggers = []Trigger{{Name: "big", Scope: ScopeContainer, When: `container.cpu > 1.95 && container.downtime < 10 && node.id == "a"`}}
		}), want: []string{"h1:a->b"}, checks: []check{{"h2", ReasonNoTrigger}}},
		{desc: "unmanaged and unselected containers are not explained, but count for placement",
			view: func() ClusterView {
				c := ctr("u", "a", 0.1, 0.1)
				delete(c.Labels, LabelManaged)
				return hot(c, ctr("other", "a", 0.1, 0.1, "team", "x"))
			}(), policy: auto(relieve, func(p *Policy) {
				p.Selector = Selector{MatchExpressions: []Requirement{{Key: "team", Operator: OpNotIn, Values: []string{"x"}}}}
			}), want: []string{"h1:a->b"}, checks: []check{{"u", ""}, {"other", ""}}},
		{desc: "unknown node and unavailable source",
			view: func() ClusterView {
				v := hot(ctr("lost", "nowhere", 0.1, 0.1))
				v.Nodes = append(v.Nodes, node("d", "s1", 0, 0))
				v.Nodes[3].Unavailable = true
				v.Containers = append(v.Containers, ctr("down", "d", 0.1, 0.1))
				return v
			}(), policy: auto(relieve, nil), want: []string{"h1:a->b"}, checks: []check{{"lost", ReasonUnknownNode}, {"down", ReasonSourceDown}}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			plan := Evaluate(tc.view, tc.policy, DefaultCostModel(), tc.ledger, now)
			if diff := cmp.Diff(tc.want, moves(plan)); diff != "" {
				t.Errorf("moves (-want +got):\n%s\nexplanations: %+v", diff, plan.Explanations)
			}
			for _, c := range tc.checks {
				x := explanation(plan, c.container)
				if x.Reason != c.reason {
					t.Errorf("%s: reason %q (%s), want %q; candidates %+v", c.container, x.Reason, x.Detail, c.reason, x.Candidates)
				}
			}
			for _, x := range plan.Explanations {
				if x.Reason == "" {
					t.Errorf("%s has no reason", x.Container)
				}
			}
		})
	}
}
