package sim

import (
	"bytes"
	"container/heap"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godwit-io/godwit/policy"
)

func loadSmall(t testing.TB) *Scenario {
	t.Helper()
	sc, err := LoadScenario("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// recordingPlanner wraps the policy arm's planner and keeps a deep copy of what it was given
// and what it returned at every evaluation.
type recordingPlanner struct {
	inner Planner
	calls []recordedCall
}

type recordedCall struct {
	view      policy.ClusterView
	ledger    policy.Ledger
	now       time.Time
	decisions []policy.Decision
}

func (r *recordingPlanner) Name() string { return r.inner.Name() }

func (r *recordingPlanner) Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult {
	call := recordedCall{view: copyView(view), ledger: copyLedger(ledger), now: now}
	res := r.inner.Plan(view, ledger, now)
	call.decisions = slices.Clone(res.Decisions)
	r.calls = append(r.calls, call)
	return res
}

func copyView(v *policy.ClusterView) policy.ClusterView {
	out := *v
	out.Nodes = slices.Clone(v.Nodes)
	out.Containers = slices.Clone(v.Containers)
	for i := range out.Containers {
		out.Containers[i].Users = slices.Clone(v.Containers[i].Users)
	}
	out.Links = slices.Clone(v.Links)
	out.SiteLinks = slices.Clone(v.SiteLinks)
	return out
}

func copyLedger(l *policy.Ledger) policy.Ledger {
	return policy.Ledger{Migrations: slices.Clone(l.Migrations), Conditions: slices.Clone(l.Conditions),
		ConditionStats: slices.Clone(l.ConditionStats)}
}

// TestDecisionsAreTheEngines proves the simulator runs godwit's decision engine and the
// leader's path: at every evaluation, policy.Evaluate on the same view, policy, cost model,
// ledger and time returns exactly the decisions the simulator acted on, and the simulator
// started exactly the migrations policy.Commit accepts of them (all of them: a fresh plan
// passes its re-check whole).
func TestDecisionsAreTheEngines(t *testing.T) {
	sc := loadSmall(t)
	pol := SimPolicy()
	model := policy.DefaultCostModel()
	rec := &recordingPlanner{inner: &PolicyPlanner{Policy: pol, Model: model}}
	res, err := RunPlanner(sc, Config{Policy: pol, Model: model}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := int(sc.Duration / sc.DecisionInterval); len(rec.calls) != want {
		t.Fatalf("%d evaluations, want %d", len(rec.calls), want)
	}
	if res.Summary.Migrations == 0 {
		t.Fatal("the scenario produced no migration: the test proves nothing")
	}
	if res.Summary.StaleDecisions != 0 {
		t.Errorf("%d decisions refused on re-check", res.Summary.StaleDecisions)
	}
	type move struct{ c, from, to string }
	started := map[time.Duration][]move{}
	for _, m := range res.Migrations {
		started[m.Start] = append(started[m.Start], move{m.Container, m.From, m.To})
	}
	var withDecisions int
	var conditions []policy.ConditionState
	var stats []policy.ConditionStat
	for i, call := range rec.calls {
		// The ledger's conditions and what the engine learned of them are the previous
		// plan's, passed back unchanged.
		if diff := cmp.Diff(conditions, call.ledger.Conditions); diff != "" && i > 0 {
			t.Fatalf("evaluation %d: conditions not carried over (-previous +given):\n%s", i, diff)
		}
		if diff := cmp.Diff(stats, call.ledger.ConditionStats); diff != "" && i > 0 {
			t.Fatalf("evaluation %d: condition statistics not carried over (-previous +given):\n%s", i, diff)
		}
		plan := policy.Evaluate(call.view, pol, model, call.ledger, call.now)
		conditions, stats = plan.Conditions, plan.ConditionStats
		if diff := cmp.Diff(plan.Decisions, call.decisions); diff != "" {
			t.Fatalf("evaluation %d at %v: simulator's decisions differ from policy.Evaluate (-engine +sim):\n%s", i, call.now, diff)
		}
		// What starts is what policy.Commit accepts of them, as the leader records it.
		committed, _ := policy.Commit(call.view, pol, call.ledger, plan.Decisions, call.now)
		var want []move
		for _, c := range committed {
			want = append(want, move{c.Record.Container, c.Record.From, c.Record.To})
		}
		if got := started[call.now.Sub(sc.Start)]; !cmp.Equal(got, want, cmp.AllowUnexported(move{})) {
			t.Fatalf("evaluation %d: started %v, engine decided %v", i, got, want)
		}
		if len(want) > 0 {
			withDecisions++
		}
	}
	t.Logf("%d evaluations, %d with decisions, %d migrations", len(rec.calls), withDecisions, res.Summary.Migrations)
}

// TestViewInvariants checks the views the simulator builds: one owner per container, node
// loads that add up to what runs on them (the capacity a migration in flight holds on its
// target is in the ledger, which the engine reserves, so it must not be in the view too:
// counted exactly once), failed nodes unavailable.
func TestViewInvariants(t *testing.T) {
	for _, post := range []bool{false, true} {
		t.Run(map[bool]string{false: "stop-and-copy", true: "post-copy"}[post], func(t *testing.T) { testViewInvariants(t, post) })
	}
}

// postCopyPlanner makes every move of its inner planner a post-copy one.
type postCopyPlanner struct{ inner Planner }

func (p postCopyPlanner) Name() string { return p.inner.Name() }

func (p postCopyPlanner) Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult {
	res := p.inner.Plan(view, ledger, now)
	for i := range res.Decisions {
		res.Decisions[i].Cost.Method = policy.MethodPostCopy
	}
	return res
}

func testViewInvariants(t *testing.T, post bool) {
	sc := loadSmall(t)
	// Slow checkpoints (post-copy: slow freezes), so that migrations are still in flight at
	// the next evaluation.
	model := policy.DefaultCostModel()
	model.Checkpoint.Slope = 200
	var inner Planner = &ThresholdRebalancer{Config: ThresholdConfig{High: 0.6, Low: 0.5, MaxMovesPerInterval: 2}}
	if post {
		model.PostCopy.Enabled = true
		model.PostCopy.Freeze.Slope = 200
		inner = postCopyPlanner{inner}
	}
	rec := &recordingPlanner{inner: inner}
	res, err := RunPlanner(sc, Config{Model: model}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if post && res.Summary.PostCopy == 0 {
		t.Fatal("no post-copy migration ended")
	}
	var sawInFlight, sawDown, sawDrained bool
	for i, call := range rec.calls {
		v := call.view
		idx := map[string]int{}
		for ni, n := range v.Nodes {
			idx[n.ID] = ni
			sawDown = sawDown || n.Unavailable
			sawDrained = sawDrained || n.Drained
		}
		cpu := make([]float64, len(v.Nodes))
		seen := map[string]bool{}
		for _, c := range v.Containers {
			if seen[c.ID] {
				t.Fatalf("evaluation %d: container %s twice", i, c.ID)
			}
			seen[c.ID] = true
			ni, ok := idx[c.Node]
			if !ok {
				t.Fatalf("evaluation %d: %s on unknown node %q", i, c.ID, c.Node)
			}
			if !v.Nodes[ni].Unavailable {
				cpu[ni] += c.CPU
			}
		}
		cpuOf := map[string]float64{}
		for _, c := range v.Containers {
			cpuOf[c.ID] = c.CPU
		}
		for _, m := range call.ledger.Migrations {
			if m.State.Terminal() {
				continue
			}
			sawInFlight = true
			if v.Nodes[idx[m.From]].Unavailable || v.Nodes[idx[m.To]].Unavailable {
				t.Errorf("evaluation %d: migration %s in flight touching a failed node", i, m.ID)
			}
			if cpuOf[m.Container] <= 0 {
				t.Errorf("evaluation %d: migration %s of an idle container proves nothing", i, m.ID)
			}
		}
		for ni, n := range v.Nodes {
			if d := n.UsedCPU - cpu[ni]; d > 1e-9 || d < -1e-9 {
				t.Fatalf("evaluation %d: node %s UsedCPU %v, its containers add up to %v", i, n.ID, n.UsedCPU, cpu[ni])
			}
		}
	}
	if !sawInFlight || !sawDown || !sawDrained {
		t.Errorf("scenario did not exercise in-flight %v, failed node %v, drained node %v", sawInFlight, sawDown, sawDrained)
	}
}

func TestMigrationsTakePredictedTime(t *testing.T) {
	sc := loadSmall(t)
	sc.Migration.Noise = 0
	sc.Migration.FailureRate = 0
	sc.Events = nil
	model := policy.DefaultCostModel()
	// A fixed model: the refitted one would differ from the truth by rounding.
	// One move at a time: concurrent transfers share their link, which the prediction
	// made when each starts cannot know (TestConcurrentMigrationsShareTheLink).
	res, err := RunPlanner(sc, Config{Model: model, FixedModel: true}, &ThresholdRebalancer{Config: ThresholdConfig{High: 0.5, Low: 0.45, MaxMovesPerInterval: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Migrations) == 0 {
		t.Fatal("no migrations")
	}
	for _, m := range res.Migrations {
		if m.End == 0 {
			continue
		}
		if m.Downtime != m.Predicted {
			t.Errorf("%s: downtime %v, predicted %v (no noise)", m.ID, m.Downtime, m.Predicted)
		}
		if got, want := m.End-m.Start, model.Overhead+m.Predicted; got != want {
			t.Errorf("%s: took %v, want overhead+downtime %v", m.ID, got, want)
		}
		if !m.Completed {
			t.Errorf("%s rolled back with failureRate 0", m.ID)
		}
	}
}

func TestNoMigrationArmNeverMoves(t *testing.T) {
	sc := loadSmall(t)
	res, err := RunPlanner(sc, Config{Model: policy.DefaultCostModel()}, NoMigration{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Migrations != 0 || res.Summary.DowntimeS != 0 {
		t.Errorf("none arm: %+v", res.Summary)
	}
	if res.Summary.NodeFailures != 1 || res.Summary.Restarts == 0 || res.Summary.UnavailableUserMinutes == 0 {
		t.Errorf("failure not simulated: %+v", res.Summary)
	}
}

// runOutputs runs every arm and renders every output.
func runOutputs(t testing.TB, sc *Scenario) map[string][]byte {
	t.Helper()
	cfg := Config{Policy: SimPolicy(), Model: policy.DefaultCostModel(), KeepNodeSeries: true}
	results, err := Run(sc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := NewRunSummary(sc, "sim-default", results)
	out := map[string][]byte{}
	for name, f := range map[string]func(*bytes.Buffer) error{
		"timeseries.csv": func(b *bytes.Buffer) error { return WriteTimeSeriesCSV(b, results) },
		"migrations.csv": func(b *bytes.Buffer) error { return WriteMigrationsCSV(b, results) },
		"nodes.csv":      func(b *bytes.Buffer) error { return WriteNodesCSV(b, results) },
		"summary.json":   func(b *bytes.Buffer) error { return WriteSummaryJSON(b, sum) },
		"summary.txt":    func(b *bytes.Buffer) error { return WriteSummaryTable(b, sum) },
		"report.html": func(b *bytes.Buffer) error {
			return WriteReport(b, ReportInput{Scenario: sc, Summary: sum, Results: results})
		},
	} {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	return out
}

func TestDeterministicForSeed(t *testing.T) {
	for _, name := range []string{"small", "default-3h"} {
		t.Run(name, func(t *testing.T) {
			load := func() *Scenario {
				if name == "small" {
					return loadSmall(t)
				}
				sc, err := DefaultScenario()
				if err != nil {
					t.Fatal(err)
				}
				sc.Duration = 3 * time.Hour
				return sc
			}
			a, b := runOutputs(t, load()), runOutputs(t, load())
			for f := range a {
				if !bytes.Equal(a[f], b[f]) {
					t.Errorf("%s differs between two runs with the same seed", f)
				}
			}
			sc := load()
			sc.Seed++
			c := runOutputs(t, sc)
			if bytes.Equal(a["timeseries.csv"], c["timeseries.csv"]) {
				t.Error("another seed gave the same time series")
			}
		})
	}
}

func TestArmsSeeTheSameWorld(t *testing.T) {
	sc := loadSmall(t)
	results, err := Run(sc, Config{Policy: SimPolicy(), Model: policy.DefaultCostModel()}, []string{ArmNone, ArmNone})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(results[0].Samples, results[1].Samples); diff != "" {
		t.Errorf("two none arms differ:\n%s", diff)
	}
	// Demand does not depend on decisions: the mean utilisation over all nodes is the same
	// in every arm while no migration holds double capacity and no node is down.
	all, err := Run(sc, Config{Policy: SimPolicy(), Model: policy.DefaultCostModel()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if all[0].Samples[0] != all[1].Samples[0] {
		t.Errorf("first samples differ: %+v vs %+v", all[0].Samples[0], all[1].Samples[0])
	}
}

func TestRunUnknownArm(t *testing.T) {
	_, err := Run(loadSmall(t), Config{Policy: SimPolicy()}, []string{"magic"})
	if err == nil || !errorsIs(err, ErrUnknownArm) {
		t.Errorf("err = %v, want ErrUnknownArm", err)
	}
}

func TestPolicyChangeEvent(t *testing.T) {
	sc := loadSmall(t)
	sc.Events = append(sc.Events, Event{At: 2 * time.Hour, Type: EventPolicyChange, PolicyFile: "off.yaml"})
	res, err := RunPlanner(sc, Config{Policy: SimPolicy(), Model: policy.DefaultCostModel()}, &PolicyPlanner{Policy: SimPolicy(), Model: policy.DefaultCostModel()})
	if err != nil {
		t.Fatal(err)
	}
	var before int
	for _, m := range res.Migrations {
		if m.Start > 2*time.Hour {
			t.Errorf("%s started at %v, after the switch to a policy with mode off", m.ID, m.Start)
		}
		before++
	}
	if before == 0 {
		t.Error("no migration before the switch: the test proves nothing")
	}
	sc.Events[len(sc.Events)-1].PolicyFile = "missing.yaml"
	if _, err := RunPlanner(sc, Config{Model: policy.DefaultCostModel()}, &PolicyPlanner{Policy: SimPolicy(), Model: policy.DefaultCostModel()}); err == nil {
		t.Error("a missing policy file did not fail the run")
	}
}

// TestInFlightHeldOnce checks that the simulated cluster holds an in-flight migration's
// capacity on the target exactly once: in its own accounting (which the metrics read),
// and not in the view, where the ledger's in-flight record stands for it.
func TestInFlightHeldOnce(t *testing.T) {
	sc := loadSmall(t)
	w := newWorld(sc, &Config{Model: policy.DefaultCostModel()}, NoMigration{})
	w.refresh()
	ci := 0
	c := &w.containers[ci]
	from := c.node
	to := (from + 1) % len(w.nodes)
	before := w.nodes[to].cpu
	startMigration(t, w, ci, to)
	if got, want := w.nodes[to].cpu, before+c.cpu; got != want {
		t.Fatalf("simulated target load %v, want %v (held once)", got, want)
	}
	w.fresh = -1
	w.refresh()
	if got, want := w.nodes[to].cpu, before+c.cpu; got != want {
		t.Fatalf("after refresh: simulated target load %v, want %v (held once)", got, want)
	}
	w.updateView()
	if got := w.view.Nodes[to].UsedCPU; got != before {
		t.Errorf("view shows target load %v, want %v: the hold is the ledger's", got, before)
	}
	if n := len(w.ledger.Migrations); n != 1 || w.ledger.Migrations[0].State.Terminal() {
		t.Fatalf("ledger %+v: want one migration in flight", w.ledger.Migrations)
	}
}

// TestConcurrentMigrationsShareTheLink checks that a second migration started on a link
// while one is on it is predicted with half its bandwidth, as policy.Evaluate predicts it
// (what it really gets: TestTransfersShareTheLink).
func TestConcurrentMigrationsShareTheLink(t *testing.T) {
	sc := loadSmall(t)
	sc.Migration.Noise = 0
	w := newWorld(sc, &Config{Model: policy.DefaultCostModel()}, NoMigration{})
	w.refresh()
	// Two containers of the same size on site a, both to site b.
	var pair []int
	for ci := range w.containers {
		if w.sc.Nodes[w.containers[ci].node].Site == "a" && w.containers[ci].memBytes == w.containers[0].memBytes {
			pair = append(pair, ci)
		}
	}
	to := -1
	for n := range w.nodes {
		if w.sc.Nodes[n].Site == "b" {
			to = n
			break
		}
	}
	if len(pair) < 2 || to < 0 {
		t.Fatal("small scenario lacks two equal containers on site a and a node on site b")
	}
	startMigration(t, w, pair[0], to)
	startMigration(t, w, pair[1], to)
	f0, f1 := w.flights[pair[0]], w.flights[pair[1]]
	rtt := w.net.rtt[w.nodes[f0.from].site][w.nodes[to].site]
	if got, want := f1.predicted.Transfer-rtt, 2*(f0.predicted.Transfer-rtt); got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("second migration's transfer %v, want twice the first's %v (half the bandwidth)", f1.predicted.Transfer, f0.predicted.Transfer)
	}
}

// TestCostModelRefitted checks that when the modelled cluster's checkpoints and restores
// are slower than the planners' cost model says, the model is refitted from the simulated
// migrations during the run: the policy ends up predicting what they really take.
func TestCostModelRefitted(t *testing.T) {
	sc := loadSmall(t)
	sc.Migration.Noise = 0.1
	sc.Migration.Checkpoint = &policy.Linear{Intercept: 0.5, Slope: 4}
	sc.Migration.Restore = &policy.Linear{Intercept: 1, Slope: 6}
	model := policy.DefaultCostModel()
	pol := SimPolicy()
	pp := &PolicyPlanner{Policy: pol, Model: model}
	res, err := RunPlanner(sc, Config{Policy: pol, Model: model}, pp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Completed < 5 {
		t.Fatalf("%d completed migrations: too few to refit", res.Summary.Completed)
	}
	if got := pp.Model.Checkpoint.Slope; math.Abs(got-4) > 0.5 {
		t.Errorf("refitted checkpoint slope %.2f s/GiB, the cluster's is 4", got)
	}
	if got := pp.Model.Restore.Slope; math.Abs(got-6) > 0.8 {
		t.Errorf("refitted restore slope %.2f s/GiB, the cluster's is 6", got)
	}
	// The first migration was predicted with the default model, the last with the refit.
	var done []MigrationLog
	for _, m := range res.Migrations {
		if m.Completed {
			done = append(done, m)
		}
	}
	relErr := func(m MigrationLog) float64 {
		return math.Abs(m.Predicted.Seconds()-m.Downtime.Seconds()) / m.Downtime.Seconds()
	}
	if first, last := relErr(done[0]), relErr(done[len(done)-1]); last >= first || last > 0.3 {
		t.Errorf("prediction error first %.0f%%, last %.0f%%: want the refit to have closed it", 100*first, 100*last)
	}

	// With FixedModel the planner keeps the model it was given.
	pp2 := &PolicyPlanner{Policy: pol, Model: model}
	if _, err := RunPlanner(sc, Config{Policy: pol, Model: model, FixedModel: true}, pp2); err != nil {
		t.Fatal(err)
	}
	if pp2.Model != model {
		t.Error("FixedModel: the planner's model changed")
	}
}

// startMigration moves container ci to node to the way decide does: the decision goes
// through policy.Commit against the simulator's view and ledger, and only an accepted
// record starts.
func startMigration(t *testing.T, w *world, ci, to int) {
	t.Helper()
	w.updateView()
	d := policy.Decision{Container: w.containers[ci].spec.Name, From: w.nodes[w.containers[ci].node].spec.Name,
		To: w.nodes[to].spec.Name}
	committed, refused := policy.Commit(w.view, w.commitPolicy(), w.ledger, []policy.Decision{d}, w.at())
	if len(committed) != 1 {
		t.Fatalf("%s to %s refused: %+v", d.Container, d.To, refused)
	}
	w.start(ci, to, committed[0].Record)
}

// scriptedPlanner returns the same decisions at every evaluation, whatever it is shown.
type scriptedPlanner struct{ decisions []policy.Decision }

func (*scriptedPlanner) Name() string { return "scripted" }

func (s *scriptedPlanner) Plan(*policy.ClusterView, *policy.Ledger, time.Time) PlanResult {
	return PlanResult{Decisions: s.decisions}
}

// TestDecisionsGoThroughCommit checks that the simulator starts only what policy.Commit
// accepts, counts the rest by Commit's reason, and records each migration's steps through
// the transition table (planned, preparing, then its outcome).
func TestDecisionsGoThroughCommit(t *testing.T) {
	sc := loadSmall(t)
	sc.Events = nil
	sc.Migration.FailureRate = 0
	sc.Duration = 3 * sc.DecisionInterval // three evaluations
	w := newWorld(sc, &Config{Model: policy.DefaultCostModel()}, nil)
	c := w.containers[0].spec.Name
	from := w.nodes[w.containers[0].node].spec.Name
	other := w.nodes[(w.containers[0].node+1)%len(w.nodes)].spec.Name
	planner := &scriptedPlanner{decisions: []policy.Decision{
		{Container: c, From: from, To: other},        // starts, and ends before the next evaluation
		{Container: c, From: from, To: other},        // the same again: in flight by now
		{Container: "nobody", From: from, To: other}, // not in the view
		{Container: w.containers[1].spec.Name, From: w.nodes[w.containers[1].node].spec.Name, To: "nowhere"},
	}}
	w.planner = planner
	if err := w.run(); err != nil {
		t.Fatal(err)
	}
	res := w.result.Summary
	if res.Migrations != 1 || res.Completed != 1 {
		t.Fatalf("%d migrations started, %d completed: want 1 and 1", res.Migrations, res.Completed)
	}
	// The first evaluation refuses the duplicate (in flight), the stranger (stale) and
	// the unknown node; the next two, once c has moved, both moves of c as stale too.
	want := []ReasonCount{{policy.ReasonInFlight, 1}, {policy.ReasonStale, 7}, {policy.ReasonUnknownNode, 3}}
	if d := cmp.Diff(want, res.Refused); d != "" || res.StaleDecisions != 11 {
		t.Errorf("refusals (-want +got):\n%s\n%d in all", d, res.StaleDecisions)
	}
	if n := len(w.ledger.Migrations); n != 1 {
		t.Fatalf("%d ledger records, want 1", n)
	}
	if r := w.ledger.Migrations[0]; r.Container != c || r.From != from || r.To != other || r.State != policy.StateCompleted ||
		r.End.IsZero() || r.Downtime <= 0 {
		t.Errorf("ledger record %+v", r)
	}
}

// startPostCopy starts container ci's migration to node to by post-copy, through
// policy.Commit as decide does.
func startPostCopy(t *testing.T, w *world, ci, to int) *flight {
	t.Helper()
	w.updateView()
	d := policy.Decision{Container: w.containers[ci].spec.Name, From: w.nodes[w.containers[ci].node].spec.Name,
		To: w.nodes[to].spec.Name, Cost: policy.Prediction{Method: policy.MethodPostCopy}}
	committed, refused := policy.Commit(w.view, w.commitPolicy(), w.ledger, []policy.Decision{d}, w.at())
	if len(committed) != 1 || committed[0].Record.Method != policy.MethodPostCopy {
		t.Fatalf("%s to %s: committed %+v, refused %+v", d.Container, d.To, committed, refused)
	}
	w.start(ci, to, committed[0].Record)
	return w.flights[ci]
}

// TestPostCopyMigration checks the simulator's post-copy method: the container is frozen
// for the model's fixed freeze, then runs with its users counted over the SLO while its
// pages arrive at the link's speed; its capacity stays held on both nodes, once, until
// every page is there; a failure of the target while pages arrive rolls it back to the
// source's complete copy, a failure of the source loses it with the node.
func TestPostCopyMigration(t *testing.T) {
	setup := func() (*world, int, int) {
		sc := loadSmall(t)
		sc.Migration.Noise, sc.Migration.FailureRate = 0, 0
		model := policy.DefaultCostModel()
		model.PostCopy.Enabled = true
		w := newWorld(sc, &Config{Model: model}, NoMigration{})
		w.refresh()
		ci := slices.IndexFunc(w.containers, func(c simContainer) bool { return len(c.users) > 0 })
		to := (w.containers[ci].node + 1) % len(w.nodes)
		return w, ci, to
	}
	w, ci, to := setup()
	c := &w.containers[ci]
	from := c.node
	f := startPostCopy(t, w, ci, to)
	a, b := w.nodes[from].site, w.nodes[to].site
	want := w.truth.PredictPostCopy(c.memBytes, w.net.bw[a][b], w.net.rtt[a][b])
	if !f.post || f.restored-f.freeze != want.Downtime || want.Pages <= 0 {
		t.Fatalf("flight frozen %v, want %v", f.restored-f.freeze, want.Downtime)
	}
	stop := w.truth.Predict(c.memBytes, w.net.bw[a][b], w.net.rtt[a][b])
	if c.memBytes >= policy.GiB && want.Downtime >= stop.Downtime {
		t.Errorf("post-copy freeze %v not below stop-and-copy's %v for %d MiB", want.Downtime, stop.Downtime, c.memBytes>>20)
	}
	// While the pages arrive: available, degraded, its users over the SLO, held on both.
	runFlights(w, f.restored+want.Pages/2)
	w.fresh = -1
	w.refresh()
	if !w.available(ci) || !w.degraded(ci) {
		t.Fatalf("while pages arrive: available %v, degraded %v", w.available(ci), w.degraded(ci))
	}
	onTo := c.cpu
	for k := range w.containers {
		if w.containers[k].node == to {
			onTo += w.containers[k].cpu
		}
	}
	if got := w.nodes[to].cpu; math.Abs(got-onTo) > 1e-9 {
		t.Errorf("target load %v while pages arrive, want %v (held once)", got, onTo)
	}
	w.rec.sample()
	if s := w.rec.samples[len(w.rec.samples)-1]; s.Violations < len(c.users) {
		t.Errorf("sample while degraded: %d violations, want at least its %d users", s.Violations, len(c.users))
	}
	runFlights(w, f.restored+want.Pages)
	if f.degraded() != want.Pages {
		t.Errorf("degraded %v, want %v", f.degraded(), want.Pages)
	}
	if c.node != to || w.degraded(ci) {
		t.Fatalf("after the pages: on node %d (want %d), degraded %v", c.node, to, w.degraded(ci))
	}
	r := w.ledger.Migrations[0]
	if r.State != policy.StateCompleted || r.Downtime != want.Downtime || r.Method != policy.MethodPostCopy {
		t.Errorf("ledger record %+v: want completed by post-copy, downtime %v", r, want.Downtime)
	}
	if m := w.rec.migs[0]; m.Method != policy.MethodPostCopy || m.Degraded != want.Pages {
		t.Errorf("migration log %+v", m)
	}

	for _, failed := range []string{"target", "source"} {
		w, ci, to := setup()
		c := &w.containers[ci]
		from := c.node
		f := startPostCopy(t, w, ci, to)
		runFlights(w, f.restored+time.Millisecond)
		if f.phase != phaseTransfer {
			t.Fatalf("%s: a millisecond after the restore the pages are not arriving (phase %d)", failed, f.phase)
		}
		node := to
		if failed == "source" {
			node = from
		}
		if err := w.scenarioEvent(&Event{Type: EventNodeFailure, Node: w.nodes[node].spec.Name}); err != nil {
			t.Fatal(err)
		}
		if c.node != from || w.flights[ci] != nil || w.degraded(ci) {
			t.Fatalf("%s failed while pages arrived: container on %d (want the source %d), flight %v", failed, c.node, from, w.flights[ci])
		}
		if got, want := w.available(ci), failed == "target"; got != want {
			t.Errorf("%s failed while pages arrived: available %v, want %v", failed, got, want)
		}
		if st := w.ledger.Migrations[0].State; st != policy.StateRolledBack {
			t.Errorf("%s failed: ledger state %s, want rolled-back", failed, st)
		}
	}
}

// runFlights handles the world's migration events up to until, and sets the clock there.
func runFlights(w *world, until time.Duration) {
	for w.queue.Len() > 0 && w.queue[0].at <= until {
		e := heap.Pop(&w.queue).(event)
		w.now = e.at
		if f := w.flights[e.index]; e.kind == evMigrationEnd && f != nil && f.ver == e.ver {
			w.step(f)
		}
	}
	w.now = until
}

// TestTransfersShareTheLink checks that transfers on one link share its bandwidth for as
// long as they overlap: two equal migrations started together each send at half the
// link's speed, and a third started later slows the first two down while it sends.
func TestTransfersShareTheLink(t *testing.T) {
	sc := loadSmall(t)
	sc.Migration.Noise, sc.Migration.FailureRate = 0, 0
	w := newWorld(sc, &Config{Model: policy.DefaultCostModel()}, NoMigration{})
	w.refresh()
	var same []int
	for ci := range w.containers {
		if w.sc.Nodes[w.containers[ci].node].Site == "a" && w.containers[ci].memBytes == w.containers[0].memBytes {
			same = append(same, ci)
		}
	}
	to := slices.IndexFunc(w.nodes, func(n simNode) bool { return n.spec.Site == "b" })
	if len(same) < 3 || to < 0 {
		t.Fatal("small scenario lacks three equal containers on site a and a node on site b")
	}
	a, b := w.nodes[w.containers[same[0]].node].site, w.nodes[to].site
	alone := w.truth.Predict(w.containers[same[0]].memBytes, w.net.bw[a][b], w.net.rtt[a][b])
	send := alone.Transfer - w.net.rtt[a][b] // the image at the link's full speed
	startMigration(t, w, same[0], to)
	startMigration(t, w, same[1], to)
	f0, f1 := w.flights[same[0]], w.flights[same[1]]
	runFlights(w, f0.freeze+alone.Checkpoint+send/2)
	// Halfway through the first's time alone, a third starts; it sends from after its
	// checkpoint on.
	startMigration(t, w, same[2], to)
	f2 := w.flights[same[2]]
	runFlights(w, f0.start+time.Hour)
	if w.flights[same[0]] != nil || w.flights[same[1]] != nil || w.flights[same[2]] != nil {
		t.Fatal("migrations still in flight after an hour")
	}
	near := func(got, want time.Duration) bool { return got > want-time.Millisecond && got < want+time.Millisecond }
	// The three send 3 images' worth over the link; the first two started together and
	// are alike, so they end together, the third last.
	if f0.downtime() != f1.downtime() {
		t.Errorf("equal migrations started together: downtimes %v and %v", f0.downtime(), f1.downtime())
	}
	if f0.downtime() <= alone.Downtime+send/2 || f0.downtime() >= alone.Downtime+2*send {
		t.Errorf("first downtime %v: want slower than alone %v by more than half a transfer, less than two", f0.downtime(), alone.Downtime)
	}
	// The link never idles while any of them sends: the last byte goes out 3 images'
	// time after the first send began.
	lastSent := f2.restored - alone.Restore - w.net.rtt[a][b]
	if firstSend := f0.freeze + alone.Checkpoint; !near(lastSent-firstSend, 3*send) {
		t.Errorf("the link carried 3 images in %v, want %v (shared, never idle)", lastSent-firstSend, 3*send)
	}
}
