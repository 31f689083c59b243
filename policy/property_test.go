package policy

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// On random clusters and policies, no decision breaks a hard constraint, and the same
// inputs always give the same plan, whatever the order of the input slices.
func TestPropertyHardConstraints(t *testing.T) {
	total := 0
	defer func() {
		if total == 0 {
			t.Errorf("no moves at all: the property is vacuous")
		}
		t.Logf("%d moves checked", total)
	}()
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 99))
		n := 3 + rng.IntN(100)
		v, l := randomCluster(rng, n, n*(1+rng.IntN(20)))
		p := randomPolicy(rng)
		now := t0.Add(time.Duration(rng.IntN(7*24)) * time.Hour)
		if rng.IntN(3) == 0 {
			p.Windows.Forbid = []Window{{Start: 0, End: 12 * time.Hour}}
		}
		plan := Evaluate(v, p, DefaultCostModel(), l, now)
		checkPlan(t, seed, v, p, l, now, plan)
		total += len(plan.Decisions)

		// Determinism: again, and with the inputs shuffled.
		again := Evaluate(v, p, DefaultCostModel(), l, now)
		if !reflect.DeepEqual(plan, again) {
			t.Fatalf("seed %d: two evaluations differ", seed)
		}
		shuffled := v
		shuffled.Nodes = append([]Node(nil), v.Nodes...)
		shuffled.Containers = append([]Container(nil), v.Containers...)
		rng.Shuffle(len(shuffled.Nodes), func(i, j int) { shuffled.Nodes[i], shuffled.Nodes[j] = shuffled.Nodes[j], shuffled.Nodes[i] })
		rng.Shuffle(len(shuffled.Containers), func(i, j int) {
			shuffled.Containers[i], shuffled.Containers[j] = shuffled.Containers[j], shuffled.Containers[i]
		})
		if got := Evaluate(shuffled, p, DefaultCostModel(), l, now); !reflect.DeepEqual(moves(plan), moves(got)) {
			t.Fatalf("seed %d: input order changed the moves: %v vs %v", seed, moves(plan), moves(got))
		}
	}
}

// checkPlan verifies every decision against the hard constraints, independently of the
// engine's code paths.
func checkPlan(t *testing.T, seed uint64, v ClusterView, p *Policy, l Ledger, now time.Time, plan Plan) {
	t.Helper()
	nodes := map[string]Node{}
	for _, n := range v.Nodes {
		nodes[n.ID] = n
	}
	cpu, mem := map[string]float64{}, map[string]float64{}
	for _, n := range v.Nodes {
		cpu[n.ID], mem[n.ID] = n.UsedCPU, float64(n.UsedMemoryBytes)
	}
	ctrs := map[string]Container{}
	for _, c := range v.Containers {
		ctrs[c.ID] = c
	}
	inflight, perNode := 0, map[string]int{}
	for _, m := range l.Migrations {
		if !m.State.Terminal() {
			inflight++
			perNode[m.From]++
			perNode[m.To]++
			if c, ok := ctrs[m.Container]; ok && c.Node != m.To {
				cpu[m.To] += c.CPU
				mem[m.To] += float64(c.MemoryBytes)
			}
		}
	}
	k := p.Constraints
	if k.MaxMovesPerEvaluation > 0 && len(plan.Decisions) > k.MaxMovesPerEvaluation {
		t.Errorf("seed %d: %d moves > budget %d", seed, len(plan.Decisions), k.MaxMovesPerEvaluation)
	}
	if len(plan.Decisions) > 0 && !p.Windows.Allowed(now) {
		t.Errorf("seed %d: moves outside the windows", seed)
	}
	seen := map[string]bool{}
	for _, d := range plan.Decisions {
		fail := func(format string, args ...any) {
			t.Errorf("seed %d: %s %s->%s: "+format, append([]any{seed, d.Container, d.From, d.To}, args...)...)
		}
		c := ctrs[d.Container]
		to, from := nodes[d.To], nodes[d.From]
		if seen[d.Container] {
			fail("moved twice")
		}
		seen[d.Container] = true
		if c.Labels[LabelManaged] != "true" || c.Labels[LabelNeverMigrate] == "true" {
			fail("not movable")
		}
		if pin, ok := c.Labels[LabelPin]; ok && pin != d.To {
			fail("pinned to %s", pin)
		}
		if d.From != c.Node || d.From == d.To || to.Drained || to.Unavailable || from.Unavailable {
			fail("bad endpoints")
		}
		if k.MaxMemoryBytes > 0 && c.MemoryBytes > k.MaxMemoryBytes {
			fail("memory limit")
		}
		maxDown := k.MaxDowntime
		if s, ok := c.Labels[LabelMaxDowntime]; ok {
			if dd, err := time.ParseDuration(s); err == nil && (maxDown == 0 || dd < maxDown) {
				maxDown = dd
			}
		}
		if maxDown > 0 && d.Cost.Downtime > maxDown {
			fail("downtime %v > %v", d.Cost.Downtime, maxDown)
		}
		if d.Score < k.MinImprovement {
			fail("score %v below minImprovement", d.Score)
		}
		cpu[d.From] -= c.CPU
		mem[d.From] -= float64(c.MemoryBytes)
		cpu[d.To] += c.CPU
		mem[d.To] += float64(c.MemoryBytes)
		if cpu[d.To] > to.CPUCores*(1-k.HeadroomCPU)+1e-9 || mem[d.To] > float64(to.MemoryBytes)*(1-k.HeadroomMemory)+1 {
			fail("headroom")
		}
		inflight++
		perNode[d.From]++
		perNode[d.To]++
		if k.MaxConcurrent > 0 && inflight > k.MaxConcurrent {
			fail("cluster concurrency %d", inflight)
		}
		if k.MaxConcurrentPerNode > 0 && (perNode[d.From] > k.MaxConcurrentPerNode || perNode[d.To] > k.MaxConcurrentPerNode) {
			fail("node concurrency")
		}
		for _, m := range l.Migrations {
			if m.Container != d.Container {
				continue
			}
			if !m.State.Terminal() {
				fail("already in flight")
			}
			last := m.Start
			if m.End.After(last) {
				last = m.End
			}
			if now.Sub(last) < k.Cooldown {
				fail("cooldown")
			}
			if m.State == StateCompleted && m.From == d.To && now.Sub(last) < k.PingPongWindow {
				fail("ping-pong")
			}
		}
		for _, r := range p.Placement {
			if !r.Containers.Matches(c.Labels) {
				continue
			}
			if r.RequireNodes != nil && !r.RequireNodes.Matches(to.Labels) {
				fail("node selector")
			}
			for _, a := range r.AntiAffinity {
				if !a.Required {
					continue
				}
				for _, o := range v.Containers {
					where := o.Node
					for _, dd := range plan.Decisions {
						if dd.Container == o.ID {
							where = dd.To
						}
					}
					if o.ID != c.ID && a.Containers.Matches(o.Labels) && where == d.To && a.Topology == TopologyNode {
						fail("anti-affinity with %s", o.ID)
					}
				}
			}
		}
	}
	for _, x := range plan.Explanations {
		if x.Reason == "" || (x.Moved != (x.Reason == ReasonMoved)) {
			t.Errorf("seed %d: %s: bad explanation %+v", seed, x.Container, x)
		}
		if x.Moved && !seen[x.Container] {
			t.Errorf("seed %d: %s explained as moved without a decision", seed, x.Container)
		}
	}
}

// Hysteresis: a trigger fires after `for`, stays active between the thresholds and clears
// only at the return-to-normal threshold; the state travels through the ledger.
func TestHysteresis(t *testing.T) {
	p := auto(Objectives{RelieveOverload: 1}, func(p *Policy) {
		p.Triggers = []Trigger{{Name: "hot", When: "node.cpu > 0.9", Until: "node.cpu < 0.6", For: 2 * time.Minute}}
	})
	at := func(cpu float64) ClusterView {
		v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)}, ctr("c", "a", cpu*4, 0.1))
		v.Containers[0].Labels[LabelNeverMigrate] = "true" // watch the trigger, not the moves
		return v
	}
	var l Ledger
	steps := []struct {
		minute int
		cpu    float64
		active bool
	}{
		{0, 0.95, false}, // starts holding
		{1, 0.95, false}, // held 1m < 2m
		{2, 0.95, true},  // held 2m: fires
		{3, 0.75, true},  // between the thresholds: stays active
		{4, 0.95, true},  // still
		{5, 0.55, false}, // below 0.6: back to normal
		{6, 0.95, false}, // holding again, the `for` starts over
		{7, 0.85, false}, // broken before 2m
		{8, 0.95, false}, // starts over
		{10, 0.95, true}, // 2m later
	}
	for _, s := range steps {
		plan := Evaluate(at(s.cpu), p, DefaultCostModel(), l, t0.Add(time.Duration(s.minute)*time.Minute))
		active := false
		for _, c := range plan.Conditions {
			if c.Trigger == "hot" && c.Subject == "a" && c.Active {
				active = true
			}
		}
		if active != s.active {
			t.Errorf("minute %d cpu %.2f: active %v, want %v (%+v)", s.minute, s.cpu, active, s.active, plan.Conditions)
		}
		l.Conditions = plan.Conditions
	}
}

// Moving a container off a hot node and evaluating again on the cluster as it then is does
// not move it back, with the default policy.
func TestNoPingPongOverEvaluations(t *testing.T) {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	p.Objectives.BalanceLoad = 1
	v := cluster([]Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0)},
		ctr("c1", "a", 2, 0.25), ctr("c2", "a", 1.9, 0.25), ctr("c3", "b", 0.5, 0.25))
	var l Ledger
	now := t0
	var history []string
	for i := range 20 {
		plan := Evaluate(v, &p, DefaultCostModel(), l, now)
		l.Conditions = plan.Conditions
		for _, d := range plan.Decisions {
			history = append(history, d.Container+":"+d.From+"->"+d.To)
			l.Migrations = append(l.Migrations, MigrationRecord{ID: strings.Repeat("m", i+1), Container: d.Container,
				From: d.From, To: d.To, Start: now, End: now.Add(d.Cost.Total), State: StateCompleted})
			for j := range v.Containers {
				if v.Containers[j].ID == d.Container {
					v.Containers[j].Node = d.To
				}
			}
			v = cluster(v.Nodes, v.Containers...)
		}
		now = now.Add(p.Interval * 10) // well past every cooldown
	}
	moved := map[string]int{}
	for _, h := range history {
		moved[strings.SplitN(h, ":", 2)[0]]++
	}
	for c, n := range moved {
		if n > 1 {
			t.Errorf("%s moved %d times: %v", c, n, history)
		}
	}
	if len(history) == 0 {
		t.Errorf("nothing moved off the hot node")
	}
}
