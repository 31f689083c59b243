package policy

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCommit(t *testing.T) {
	// a and b hold one container each; c is empty. Every node has 4 cores and 8 GiB, 10%
	// headroom by default: a target may take up to 3.6 cores and 7.2 GiB.
	base := func() ClusterView {
		return cluster([]Node{node("a", "s", 0, 0), node("b", "s", 0, 0), node("c", "s", 0, 0)},
			ctr("x", "a", 1, 1), ctr("y", "b", 1, 1), ctr("z", "a", 2, 3, LabelCooldown, "1m"))
	}
	move := func(c, from, to string) Decision { return Decision{Container: c, From: from, To: to} }
	inflight := func(c, from, to string, st MigrationState) MigrationRecord {
		return MigrationRecord{ID: "m-" + c, Container: c, From: from, To: to, Start: t0.Add(-time.Minute), State: st}
	}
	done := func(c, from, to string, ago time.Duration) MigrationRecord {
		return MigrationRecord{ID: "d-" + c, Container: c, From: from, To: to, Start: t0.Add(-ago - time.Minute),
			End: t0.Add(-ago), State: StateCompleted}
	}
	type result struct {
		Accepted []string
		Refused  map[string]Reason // container → reason (the last refusal of it)
	}
	tests := []struct {
		name   string
		view   func(v *ClusterView)
		policy func(p *Policy)
		ledger []MigrationRecord
		plan   []Decision
		want   result
	}{
		{name: "a decision that holds is recorded as planned",
			plan: []Decision{move("x", "a", "c")},
			want: result{Accepted: []string{"x:a->c"}}},
		{name: "a container the view no longer has is stale",
			plan: []Decision{move("gone", "a", "c")},
			want: result{Refused: map[string]Reason{"gone": ReasonStale}}},
		{name: "a container that is no longer on the decision's source is stale",
			plan: []Decision{move("x", "b", "c")},
			want: result{Refused: map[string]Reason{"x": ReasonStale}}},
		{name: "an unknown target",
			plan: []Decision{move("x", "a", "nowhere")},
			want: result{Refused: map[string]Reason{"x": ReasonUnknownNode}}},
		{name: "to where it runs",
			plan: []Decision{move("x", "a", "a")},
			want: result{Refused: map[string]Reason{"x": ReasonSameNode}}},
		{name: "a migration of it in flight",
			ledger: []MigrationRecord{inflight("x", "a", "b", StatePreparing)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Refused: map[string]Reason{"x": ReasonInFlight}}},
		{name: "a migration of it in flight under an older state name",
			ledger: []MigrationRecord{inflight("x", "a", "b", StateTransferring)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Refused: map[string]Reason{"x": ReasonInFlight}}},
		{name: "a migration of it in doubt",
			ledger: []MigrationRecord{inflight("x", "a", "b", StateInDoubt)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Refused: map[string]Reason{"x": ReasonInDoubt}}},
		{name: "the same container twice in one plan: the second is in flight by then",
			plan: []Decision{move("x", "a", "c"), move("x", "a", "b")},
			want: result{Accepted: []string{"x:a->c"}, Refused: map[string]Reason{"x": ReasonInFlight}}},
		{name: "the source became unavailable",
			view: func(v *ClusterView) { v.Nodes[0].Unavailable = true },
			plan: []Decision{move("x", "a", "c")},
			want: result{Refused: map[string]Reason{"x": ReasonSourceDown}}},
		{name: "the target became unavailable",
			view: func(v *ClusterView) { v.Nodes[2].Unavailable = true },
			plan: []Decision{move("x", "a", "c")},
			want: result{Refused: map[string]Reason{"x": ReasonTargetDown}}},
		{name: "the target was drained",
			view: func(v *ClusterView) { v.Nodes[2].Drained = true },
			plan: []Decision{move("x", "a", "c")},
			want: result{Refused: map[string]Reason{"x": ReasonTargetDrained}}},
		{name: "maxConcurrent counts the ledger's and the plan's earlier ones",
			policy: func(p *Policy) { p.Constraints.MaxConcurrent = 2 },
			ledger: []MigrationRecord{inflight("q", "b", "c", StatePlanned)},
			plan:   []Decision{move("y", "b", "c"), move("x", "a", "c"), move("z", "a", "b")},
			want: result{Accepted: []string{"y:b->c"},
				Refused: map[string]Reason{"x": ReasonConcurrency, "z": ReasonConcurrency}}},
		{name: "maxConcurrentPerNode counts a migration in flight to the target",
			policy: func(p *Policy) { p.Constraints.MaxConcurrentPerNode = 1 },
			ledger: []MigrationRecord{inflight("q", "b", "c", StateRestoring)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Refused: map[string]Reason{"x": ReasonNodeConcurrent}}},
		{name: "maxConcurrentPerNode counts the plan's earlier ones on the source",
			policy: func(p *Policy) { p.Constraints.MaxConcurrentPerNode = 1 },
			plan:   []Decision{move("x", "a", "c"), move("z", "a", "b")},
			want:   result{Accepted: []string{"x:a->c"}, Refused: map[string]Reason{"z": ReasonNodeConcurrent}}},
		{name: "a migration that ended counts toward nothing",
			policy: func(p *Policy) { p.Constraints.MaxConcurrent, p.Constraints.Cooldown = 1, 0 },
			ledger: []MigrationRecord{done("q", "b", "c", time.Minute), {ID: "f", Container: "q", From: "b", To: "c",
				Start: t0.Add(-time.Hour), End: t0.Add(-time.Hour), State: StateFailed}},
			plan: []Decision{move("x", "a", "c")},
			want: result{Accepted: []string{"x:a->c"}}},
		{name: "cooldown",
			policy: func(p *Policy) { p.Constraints.Cooldown = time.Hour },
			ledger: []MigrationRecord{done("x", "b", "a", 10*time.Minute)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Refused: map[string]Reason{"x": ReasonCooldown}}},
		{name: "a container's cooldown label overrides the policy's",
			policy: func(p *Policy) { p.Constraints.Cooldown, p.Constraints.PingPongWindow = time.Hour, 0 },
			ledger: []MigrationRecord{done("z", "b", "a", 10*time.Minute)},
			plan:   []Decision{move("z", "a", "c")},
			want:   result{Accepted: []string{"z:a->c"}}},
		{name: "ping-pong",
			policy: func(p *Policy) { p.Constraints.Cooldown, p.Constraints.PingPongWindow = 0, time.Hour },
			ledger: []MigrationRecord{done("x", "c", "a", 10*time.Minute)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Refused: map[string]Reason{"x": ReasonPingPong}}},
		{name: "ping-pong only back to where it left",
			policy: func(p *Policy) { p.Constraints.Cooldown, p.Constraints.PingPongWindow = 0, time.Hour },
			ledger: []MigrationRecord{done("x", "b", "a", 10*time.Minute)},
			plan:   []Decision{move("x", "a", "c")},
			want:   result{Accepted: []string{"x:a->c"}}},
		{name: "headroom counts the plan's earlier moves onto the target",
			// z (2 cores) then x (1 core) onto c is 3 cores: fits; then y (1 core) is 4.
			plan: []Decision{move("z", "a", "c"), move("x", "a", "c"), move("y", "b", "c")},
			want: result{Accepted: []string{"z:a->c", "x:a->c"}, Refused: map[string]Reason{"y": ReasonHeadroom}}},
		{name: "headroom counts a migration in flight to the target (reserved from the ledger)",
			view: func(v *ClusterView) {
				v.Containers = append(v.Containers, ctr("w", "b", 2.5, 1))
				v.Nodes[1].UsedCPU += 2.5
				v.Nodes[1].UsedMemoryBytes += GiB
			},
			ledger: []MigrationRecord{inflight("w", "b", "c", StateStreaming)},
			plan:   []Decision{move("z", "a", "c")},
			want:   result{Refused: map[string]Reason{"z": ReasonHeadroom}}},
		{name: "a container the view already shows on its target is not reserved again",
			// w runs on c in the view (counted there: 1.5 cores) while the ledger still
			// has its migration in flight; z's 2 cores fit (3.5 <= 3.6). Counted twice,
			// c would have 5 and refuse.
			view: func(v *ClusterView) {
				v.Containers = append(v.Containers, ctr("w", "c", 1.5, 1))
				v.Nodes[2].UsedCPU += 1.5
				v.Nodes[2].UsedMemoryBytes += GiB
			},
			ledger: []MigrationRecord{inflight("w", "b", "c", StateRestoring)},
			plan:   []Decision{move("z", "a", "c")},
			want:   result{Accepted: []string{"z:a->c"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := base()
			if tc.view != nil {
				tc.view(&v)
			}
			p := DefaultPolicy()
			// No concurrency limits unless the case sets them.
			p.Constraints.MaxConcurrent, p.Constraints.MaxConcurrentPerNode = 0, 0
			if tc.policy != nil {
				tc.policy(&p)
			}
			l := Ledger{Migrations: tc.ledger}
			before := cloneLedger(l)
			committed, refused := Commit(v, &p, l, tc.plan, t0)
			var got result
			for _, c := range committed {
				r := c.Record
				got.Accepted = append(got.Accepted, r.Container+":"+r.From+"->"+r.To)
				if r.State != StatePlanned || !r.Start.Equal(t0) || r.ID != "" || r.Container != c.Decision.Container {
					t.Errorf("record %+v", r)
				}
			}
			for _, r := range refused {
				if got.Refused == nil {
					got.Refused = map[string]Reason{}
				}
				got.Refused[r.Decision.Container] = r.Reason
				if r.Detail == "" {
					t.Errorf("%s refused (%s) without a detail", r.Decision.Container, r.Reason)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if len(committed)+len(refused) != len(tc.plan) {
				t.Errorf("%d decisions, %d committed, %d refused", len(tc.plan), len(committed), len(refused))
			}
			if !reflect.DeepEqual(before, l) {
				t.Error("Commit changed its ledger")
			}
		})
	}
}

func TestCommitRecord(t *testing.T) {
	v := cluster([]Node{node("a", "s", 0, 0), node("b", "s", 0, 0)}, ctr("x", "a", 1, 1.5))
	d := Decision{Container: "x", From: "a", To: "b", Score: 0.3, Cost: Prediction{Downtime: time.Second}}
	committed, refused := Commit(v, nil, Ledger{}, []Decision{d}, t0)
	want := []Commitment{{Decision: d, Record: MigrationRecord{Container: "x", From: "a", To: "b", Start: t0,
		State: StatePlanned, MemoryBytes: int64(1.5 * GiB)}}}
	if diff := cmp.Diff(want, committed); diff != "" || len(refused) > 0 {
		t.Errorf("(-want +got):\n%s\nrefused %v", diff, refused)
	}
	_, refused = Commit(v, nil, Ledger{}, []Decision{{Container: "x", From: "a", To: "b2"}}, t0)
	if len(refused) != 1 || !strings.Contains(refused[0].Detail, `"b2"`) {
		t.Errorf("refusal %+v does not name the unknown node", refused)
	}
}

// A migrating container counts exactly once on its target, in Evaluate and in Commit
// alike: reserved from the ledger while the view does not show it there, counted by the
// view once it does, never both.
func TestInFlightCountedOnce(t *testing.T) {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	p.Objectives = Objectives{BalanceLoad: 1}
	p.Constraints.MinImprovement, p.Constraints.DowntimeCost, p.Constraints.MaxDowntime = 0, 0, 0
	p.Constraints.MaxConcurrentPerNode = 0
	// s is busy (3 cores); t has 1 core in use; w (1.5 cores) is on its way from o to t.
	// Moving k (1 core) from s to t: 1 + 1.5 + 1 = 3.5 cores, under t's limit of 3.6;
	// counted twice (view and reservation) it would be 5 and refused for headroom.
	for _, where := range []string{"o", "t"} {
		t.Run("w in the view on "+where, func(t *testing.T) {
			// k is pinned to t, so that only a hard constraint keeps it off t.
			v := cluster([]Node{node("o", "x", 0, 0), node("s", "x", 0, 0), node("t", "x", 0, 0)},
				ctr("k", "s", 1, 0.5, LabelPin, "t"), ctr("s2", "s", 2, 0.5, LabelNeverMigrate, "true"),
				ctr("t1", "t", 1, 0.5, LabelNeverMigrate, "true"), ctr("w", where, 1.5, 0.5))
			l := Ledger{Migrations: []MigrationRecord{{ID: "m", Container: "w", From: "o", To: "t",
				Start: t0.Add(-time.Minute), State: StateStreaming}}}
			plan := Evaluate(v, &p, DefaultCostModel(), l, t0)
			var toT bool
			for _, d := range plan.Decisions {
				toT = toT || d.Container == "k" && d.To == "t"
			}
			if !toT {
				t.Errorf("Evaluate does not move k to t: %v %+v", moves(plan), explanation(plan, "k"))
			}
			committed, refused := Commit(v, &p, l, []Decision{{Container: "k", From: "s", To: "t"}}, t0)
			if len(committed) != 1 {
				t.Errorf("Commit refuses k to t: %+v", refused)
			}
			// With 0.2 more cores, k no longer fits: w is counted once, not zero times.
			k := &v.Containers[0]
			k.CPU += 0.2
			v.Nodes[1].UsedCPU += 0.2
			if _, refused := Commit(v, &p, l, []Decision{{Container: "k", From: "s", To: "t"}}, t0); len(refused) != 1 || refused[0].Reason != ReasonHeadroom {
				t.Errorf("Commit: k at 1.2 cores fits t: w not counted (%+v)", refused)
			}
			plan = Evaluate(v, &p, DefaultCostModel(), l, t0)
			if x := explanation(plan, "k"); x.Reason != ReasonHeadroom {
				t.Errorf("Evaluate: k at 1.2 cores: %s (%s), want headroom", x.Reason, x.Detail)
			}
		})
	}
}

// A move decided off a node frees its load for scoring the plan's next moves, but not its
// capacity: it stays on the source until it completes, so nothing else moves into it in
// the same plan, as Commit would refuse.
func TestDepartureHoldsCapacity(t *testing.T) {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	p.Objectives = Objectives{BalanceLoad: 1}
	p.Constraints.MinImprovement, p.Constraints.DowntimeCost, p.Constraints.MaxDowntime = 0, 0, 0
	p.Constraints.MaxMovesPerEvaluation, p.Constraints.MaxConcurrent, p.Constraints.MaxConcurrentPerNode = 0, 0, 0
	// b is full (3.5 of 3.6 cores); its big container goes to the empty c first. a is
	// busy too, and c has no room left for a1 then; without held capacity the plan would
	// move a1 into the room big leaves on b, which b does not have until big's migration
	// completes.
	v := cluster([]Node{node("a", "x", 0, 0), node("b", "x", 0, 0), node("c", "x", 0, 0)},
		ctr("big", "b", 3, 4), ctr("b2", "b", 0.5, 0.5, LabelNeverMigrate, "true"),
		ctr("a1", "a", 1, 0.5), ctr("a2", "a", 1.6, 0.5, LabelNeverMigrate, "true"))
	plan := Evaluate(v, &p, DefaultCostModel(), Ledger{}, t0)
	if len(plan.Decisions) == 0 || plan.Decisions[0].Container != "big" {
		t.Fatalf("the case does not start with big: %v", moves(plan))
	}
	if x := explanation(plan, "a1"); x.Reason != ReasonHeadroom {
		t.Errorf("a1: %s (%s), want headroom", x.Reason, x.Detail)
	}
	for _, d := range plan.Decisions {
		if d.To == "b" {
			t.Errorf("moves %s into b's held capacity: %v", d.Container, moves(plan))
		}
	}
	if _, refused := Commit(v, &p, Ledger{}, plan.Decisions, t0); len(refused) > 0 {
		t.Errorf("Commit refuses Evaluate's fresh plan: %+v", refused)
	}
}

// On random clusters, Commit accepts every decision of a plan Evaluate has just made from
// the same inputs (the two agree on every check), records each once, in order, and is
// deterministic; committed again on the ledger it produced, the same plan is refused
// whole.
func TestPropertyCommitAcceptsFreshPlans(t *testing.T) {
	total := 0
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := 3 + rng.IntN(80)
		v, l := randomCluster(rng, n, n*(1+rng.IntN(20)))
		p := randomPolicy(rng)
		p.Constraints.Cooldown = time.Duration(rng.IntN(3)) * 30 * time.Minute
		p.Constraints.PingPongWindow = time.Duration(rng.IntN(3)) * time.Hour
		now := t0.Add(time.Duration(rng.IntN(7*24)) * time.Hour)
		plan := Evaluate(v, p, DefaultCostModel(), l, now)
		committed, refused := Commit(v, p, l, plan.Decisions, now)
		for _, r := range refused {
			t.Errorf("seed %d: %s %s->%s refused: %s (%s)", seed, r.Decision.Container, r.Decision.From, r.Decision.To, r.Reason, r.Detail)
		}
		for i, c := range committed {
			if !reflect.DeepEqual(c.Decision, plan.Decisions[i]) {
				t.Fatalf("seed %d: commitment %d is not decision %d", seed, i, i)
			}
		}
		total += len(committed)
		again, _ := Commit(v, p, l, plan.Decisions, now)
		if !reflect.DeepEqual(committed, again) {
			t.Fatalf("seed %d: two commits differ", seed)
		}
		grown := cloneLedger(l)
		for i, c := range committed {
			c.Record.ID = "new-" + c.Record.Container + "-" + string(rune('a'+i%26))
			grown.Migrations = append(grown.Migrations, c.Record)
		}
		if ok, _ := Commit(v, p, grown, plan.Decisions, now); len(ok) > 0 {
			t.Errorf("seed %d: %d decisions committed twice", seed, len(ok))
		}
	}
	if total == 0 {
		t.Fatal("no decisions at all: the property is vacuous")
	}
	t.Logf("%d decisions committed", total)
}

// BenchmarkCommit is Commit on the view of BenchmarkEvaluate (1,000 nodes, 20,000
// containers) with the plan Evaluate makes there, without a move budget.
func BenchmarkCommit(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	v, l := randomCluster(rng, 1000, 20000)
	p := randomPolicy(rng)
	p.Constraints.MaxMovesPerEvaluation = 0
	plan := Evaluate(v, p, DefaultCostModel(), l, t0)
	for b.Loop() {
		Commit(v, p, l, plan.Decisions, t0)
	}
	b.ReportMetric(float64(len(plan.Decisions)), "decisions")
}

// On random clusters and random decisions (not the engine's: any container to any node),
// what Commit accepts never breaks a limit it guards, checked with accounting of its own:
// one migration per container at a time, both nodes up, the target not drained, the
// concurrency limits with the ledger's migrations in flight, cooldown, ping-pong, and the
// target's headroom with every migration in flight to it reserved once and every one
// leaving a node still counted there.
func TestPropertyCommitKeepsLimits(t *testing.T) {
	var accepted, refusedN int
	for seed := range uint64(80) {
		rng := rand.New(rand.NewPCG(seed, 11))
		n := 3 + rng.IntN(30)
		v, l := randomCluster(rng, n, n*(1+rng.IntN(10)))
		p := randomPolicy(rng)
		p.Constraints.Cooldown = time.Duration(rng.IntN(3)) * 30 * time.Minute
		p.Constraints.PingPongWindow = time.Duration(rng.IntN(3)) * time.Hour
		if rng.IntN(3) == 0 {
			p.Constraints.MaxConcurrent, p.Constraints.MaxConcurrentPerNode = 0, 0
		}
		now := t0
		var ds []Decision
		for range 1 + rng.IntN(3*n) {
			c := v.Containers[rng.IntN(len(v.Containers))]
			from := c.Node
			if rng.IntN(10) == 0 {
				from = v.Nodes[rng.IntN(n)].ID // a stale decision
			}
			ds = append(ds, Decision{Container: c.ID, From: from, To: v.Nodes[rng.IntN(n)].ID})
		}
		committed, refused := Commit(v, p, l, ds, now)
		accepted += len(committed)
		refusedN += len(refused)

		nodes, ctrs := map[string]Node{}, map[string]Container{}
		cpu, mem := map[string]float64{}, map[string]float64{}
		for _, nd := range v.Nodes {
			nodes[nd.ID] = nd
			cpu[nd.ID], mem[nd.ID] = nd.UsedCPU, float64(nd.UsedMemoryBytes)
		}
		for _, c := range v.Containers {
			ctrs[c.ID] = c
		}
		busy, perNode, inflight := map[string]bool{}, map[string]int{}, 0
		reserve := func(container, to string) {
			if c, ok := ctrs[container]; ok && c.Node != to {
				cpu[to] += c.CPU
				mem[to] += float64(c.MemoryBytes)
			}
		}
		for _, m := range l.Migrations {
			if !m.State.Terminal() {
				busy[m.Container] = true
				inflight++
				perNode[m.From]++
				perNode[m.To]++
				reserve(m.Container, m.To)
			}
		}
		k := p.Constraints
		for _, cm := range committed {
			r := cm.Record
			fail := func(what string) { t.Errorf("seed %d: %s %s->%s accepted: %s", seed, r.Container, r.From, r.To, what) }
			c, from, to := ctrs[r.Container], nodes[r.From], nodes[r.To]
			switch {
			case c.Node != r.From || r.From == r.To:
				fail("not where it runs")
			case busy[r.Container]:
				fail("already in flight")
			case from.Unavailable || to.Unavailable || to.Drained:
				fail("endpoints")
			}
			inflight++
			perNode[r.From]++
			perNode[r.To]++
			if k.MaxConcurrent > 0 && inflight > k.MaxConcurrent {
				fail("maxConcurrent")
			}
			if k.MaxConcurrentPerNode > 0 && (perNode[r.From] > k.MaxConcurrentPerNode || perNode[r.To] > k.MaxConcurrentPerNode) {
				fail("maxConcurrentPerNode")
			}
			for _, m := range l.Migrations {
				last := m.Start
				if m.End.After(last) {
					last = m.End
				}
				if m.Container == r.Container && now.Sub(last) < k.Cooldown {
					fail("cooldown")
				}
				if m.Container == r.Container && m.State == StateCompleted && m.From == r.To && now.Sub(last) < k.PingPongWindow {
					fail("ping-pong")
				}
			}
			reserve(r.Container, r.To)
			if cpu[r.To] > to.CPUCores*(1-k.HeadroomCPU)+1e-9 || mem[r.To] > float64(to.MemoryBytes)*(1-k.HeadroomMemory)+1 {
				fail("headroom")
			}
			busy[r.Container] = true
		}
	}
	if accepted == 0 || refusedN == 0 {
		t.Fatalf("%d accepted, %d refused: the property is vacuous", accepted, refusedN)
	}
	t.Logf("%d accepted, %d refused", accepted, refusedN)
}
