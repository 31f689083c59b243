package sim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/godwit-io/godwit/policy"
)

// Config says how to run a scenario beyond what the scenario file holds.
type Config struct {
	// Policy is the policy the policy arm runs.
	Policy *policy.Policy
	// Model is the cost model the planners and the simulated migrations use.
	Model policy.CostModel
	// LoadPolicy loads the policy file of a policyChange event. Nil: read the file
	// (relative to the scenario's directory) and parse it with policy.Parse.
	LoadPolicy func(path string) (*policy.Policy, error)
	// KeepNodeSeries keeps each node's utilisation at each sample (for the report's
	// per-node plot and nodes CSV). It costs nodes x samples float32s.
	KeepNodeSeries bool
	// FixedModel keeps the planners' cost model as Model for the whole run. By default it
	// is refitted (policy.Fit) from every simulated migration as it ends, as the leader
	// refits it from real ones, so that a policy is judged with the model it would have.
	FixedModel bool
}

// ModelSetter is a Planner that decides with a cost model the simulator refits during a
// run (PolicyPlanner). SetModel is called before each Plan.
type ModelSetter interface {
	SetModel(policy.CostModel)
}

// world is one arm's simulated cluster.
type world struct {
	sc      *Scenario
	cfg     *Config
	planner Planner

	siteIndex map[string]int
	nodeIndex map[string]int
	net       *network

	nodes      []simNode
	containers []simContainer
	users      []user

	view   policy.ClusterView
	ledger policy.Ledger

	queue   eventQueue
	seq     int
	now     time.Duration
	fresh   time.Duration // time the loads were last computed for; -1: never
	migSeq  int
	flights map[int]*flight // by container index
	// links lists, per link (the two sites, lower first), the containers whose
	// migrations are sending over it now, in the order they started sending.
	links map[[2]int][]int

	containerIdx map[string]int
	// maxCooldown is the longest godwit.io/cooldown label, for pruning the ledger.
	maxCooldown time.Duration

	rec    *recorder
	result *Result

	// truth is the modelled cluster's real migration costs; model is what the planner
	// knows, refitted from obs.
	truth, model policy.CostModel
	obs          []policy.Observation
}

type simNode struct {
	spec    *Node
	site    int
	down    bool
	drained bool
	cpu     float64 // used, cores
	mem     float64 // used, bytes
}

type simContainer struct {
	spec     *Container
	node     int
	memBytes int64
	cpu      float64
	demand   *demand
	managed  bool
	users    []int32 // indices in world.users
	// The container is frozen by a migration in [frozenFrom, frozenUntil), and runs
	// degraded, its pages arriving by post-copy, in [frozenUntil, degradedUntil).
	frozenFrom, frozenUntil, degradedUntil time.Duration
	// sites backs the view's Users, reused at every decision.
	sites []policy.UserSite
}

type flightPhase int

const (
	phaseLocal flightPhase = iota
	phaseTransfer
	phaseTail
)

// never is a time after every run's end.
const never = time.Duration(math.MaxInt64)

// downtime is how long the migration kept the container frozen.
func (f *flight) downtime() time.Duration { return max(0, min(f.restored, f.end)-f.freeze) }

// degraded is how long a post-copy migration's container ran while its pages arrived.
func (f *flight) degraded() time.Duration {
	if !f.post {
		return 0
	}
	return max(0, f.end-f.restored)
}

// flight is a migration in progress.
type flight struct {
	id        string
	container int
	from, to  int
	start     time.Duration
	freeze    time.Duration // when the container stops
	restored  time.Duration // when it runs again (on the target, unless it fails)
	end       time.Duration // when the migration ends (post-copy: every page arrived)
	predicted policy.Prediction
	fail      bool
	// post is a post-copy migration: from restored to end the container runs degraded
	// while its pages arrive; the source keeps a complete copy until end, so a failure
	// of the target rolls it back there, and a failure of the source loses it with the
	// node, as before the restore.
	post bool

	// The migration's course: a local phase (stop-and-copy: the checkpoint; post-copy:
	// the whole freeze), the transfer of the image over the link, shared with the other
	// transfers on it, then a tail (stop-and-copy: the RTT and the restore; post-copy:
	// the RTT).
	phase       flightPhase
	link        [2]int
	local, tail time.Duration
	bytes       float64 // the image, to send in the transfer phase
	left        float64 // bytes still to send
	rate        float64 // bytes per second it gets now
	rateAt      time.Duration
	ver         int // of its pending event; an event of an older version is stale
	// obs is what the migration measures, for refitting the planner's model.
	obs policy.Observation
}

// event kinds, in the order they are handled at one instant: migrations end before the
// scenario's events, metrics are sampled before the planner acts.
type eventKind int

const (
	evMigrationEnd eventKind = iota
	evScenario
	evRestart
	evSample
	evDecision
)

type event struct {
	at    time.Duration
	kind  eventKind
	seq   int
	index int // scenario event, container, ...
	ver   int // a migration's event: the flight's version it was scheduled for
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.at != b.at {
		return a.at < b.at
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	return a.seq < b.seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (w *world) schedule(at time.Duration, kind eventKind, index int) {
	w.seq++
	heap.Push(&w.queue, event{at: at, kind: kind, seq: w.seq, index: index})
}

// scheduleFlight schedules f's next step at at, making its pending event stale.
func (w *world) scheduleFlight(f *flight, at time.Duration) {
	f.ver++
	w.seq++
	heap.Push(&w.queue, event{at: at, kind: evMigrationEnd, seq: w.seq, index: f.container, ver: f.ver})
}

func newWorld(sc *Scenario, cfg *Config, planner Planner) *world {
	w := &world{sc: sc, cfg: cfg, planner: planner, fresh: -1, flights: map[int]*flight{}, links: map[[2]int][]int{}}
	w.model, w.truth = cfg.Model, cfg.Model
	if l := sc.Migration.Checkpoint; l != nil {
		w.truth.Checkpoint = *l
	}
	if l := sc.Migration.Restore; l != nil {
		w.truth.Restore = *l
	}
	w.siteIndex = make(map[string]int, len(sc.Sites))
	for i, s := range sc.Sites {
		w.siteIndex[s.Name] = i
	}
	w.net = newNetwork(sc, w.siteIndex)
	w.nodeIndex = make(map[string]int, len(sc.Nodes))
	w.nodes = make([]simNode, len(sc.Nodes))
	for i := range sc.Nodes {
		n := &sc.Nodes[i]
		w.nodeIndex[n.Name] = i
		w.nodes[i] = simNode{spec: n, site: w.siteIndex[n.Site]}
	}
	defaultSites := []int{}
	for i, s := range sc.Sites {
		if !s.Cloud {
			defaultSites = append(defaultSites, i)
		}
	}
	w.containers = make([]simContainer, len(sc.Containers))
	for ci := range sc.Containers {
		c := &sc.Containers[ci]
		sc := &w.containers[ci]
		*sc = simContainer{
			spec:       c,
			node:       w.nodeIndex[c.Node],
			memBytes:   int64(c.MemoryGiB * policy.GiB),
			demand:     newDemand(&c.CPU, w.sc.Seed, ci, w.sc.Duration),
			managed:    c.Labels[policy.LabelManaged] == "true",
			frozenFrom: -1, frozenUntil: -1, degradedUntil: -1,
		}
		for gi := range c.Users {
			g := &c.Users[gi]
			start := w.nodes[sc.node].site
			if g.Site != "" {
				start = w.siteIndex[g.Site]
			}
			var cands []int
			if g.Mobility.Model == MobilityRandomWaypoint {
				cands = defaultSites
				if len(g.Mobility.Sites) > 0 {
					cands = make([]int, len(g.Mobility.Sites))
					for k, s := range g.Mobility.Sites {
						cands[k] = w.siteIndex[s]
					}
				}
			}
			for k := range g.Count {
				u := user{container: ci, site: start, group: g, index: k, sites: cands}
				if g.Mobility.Model == MobilityRandomWaypoint {
					// Each user its own stream: the same walk in every arm.
					u.rng = rand.New(rand.NewPCG(w.sc.Seed^0x6a09e667f3bcc909, uint64(ci)<<20|uint64(gi)<<10|uint64(k)))
					u.next = pause(u.rng, g.Mobility.PauseMin, g.Mobility.PauseMax)
				}
				sc.users = append(sc.users, int32(len(w.users)))
				w.users = append(w.users, u)
			}
		}
	}
	for ci := range sc.Containers {
		if v, ok := sc.Containers[ci].Labels[policy.LabelCooldown]; ok {
			if d, err := time.ParseDuration(v); err == nil {
				w.maxCooldown = max(w.maxCooldown, d)
			}
		}
	}
	w.buildStaticView()
	w.rec = newRecorder(w)
	return w
}

// buildStaticView fills the parts of the view that do not change: node identities, site
// links and intra-site node links.
func (w *world) buildStaticView() {
	sc := w.sc
	v := &w.view
	v.Nodes = make([]policy.Node, len(w.nodes))
	for i, n := range w.nodes {
		v.Nodes[i] = policy.Node{
			ID: n.spec.Name, Site: n.spec.Site, Labels: n.spec.Labels,
			CPUCores: n.spec.CPU, MemoryBytes: int64(n.spec.MemoryGiB * policy.GiB),
		}
	}
	v.Containers = make([]policy.Container, len(w.containers))
	for i, c := range w.containers {
		v.Containers[i] = policy.Container{
			ID: c.spec.Name, Name: c.spec.Name, Labels: c.spec.Labels, MemoryBytes: c.memBytes,
		}
	}
	for i := range sc.Sites {
		for j := i + 1; j < len(sc.Sites); j++ {
			v.SiteLinks = append(v.SiteLinks, policy.Link{
				From: sc.Sites[i].Name, To: sc.Sites[j].Name,
				RTT: w.net.rtt[i][j], BandwidthBytesPerSec: w.net.bw[i][j],
			})
		}
	}
	v.IntraSiteRTT = sc.IntraSite.RTT
	// Node links inside a site carry the LAN bandwidth, which site links cannot say.
	bySite := make([][]int, len(sc.Sites))
	for i, n := range w.nodes {
		bySite[n.site] = append(bySite[n.site], i)
	}
	for s, ns := range bySite {
		for a := range ns {
			for b := a + 1; b < len(ns); b++ {
				v.Links = append(v.Links, policy.Link{
					From: w.nodes[ns[a]].spec.Name, To: w.nodes[ns[b]].spec.Name,
					RTT: w.net.rtt[s][s], BandwidthBytesPerSec: w.net.bw[s][s],
				})
			}
		}
	}
}

// refresh brings demands, user positions and node loads to now.
func (w *world) refresh() {
	if w.fresh == w.now {
		return
	}
	w.fresh = w.now
	for i := range w.nodes {
		w.nodes[i].cpu, w.nodes[i].mem = 0, 0
	}
	for ci := range w.containers {
		c := &w.containers[ci]
		c.cpu = c.demand.at(w.now)
		n := &w.nodes[c.node]
		if !n.down {
			n.cpu += c.cpu
			n.mem += float64(c.memBytes)
		}
		// A migration in flight holds the container's capacity on its target too.
		if f := w.flights[ci]; f != nil {
			t := &w.nodes[f.to]
			t.cpu += c.cpu
			t.mem += float64(c.memBytes)
		}
	}
	for i := range w.users {
		u := &w.users[i]
		if u.group.Mobility.Model != MobilityStatic {
			u.advance(w.now, w.siteIndex)
		}
	}
}

// available reports whether container ci serves its users now.
func (w *world) available(ci int) bool {
	c := &w.containers[ci]
	if w.nodes[c.node].down {
		return false
	}
	return !(w.now >= c.frozenFrom && w.now < c.frozenUntil)
}

// degraded reports whether container ci runs with a post-copy migration's pages still
// arriving.
func (w *world) degraded(ci int) bool {
	c := &w.containers[ci]
	return w.now >= c.frozenUntil && w.now < c.degradedUntil
}

// updateView writes the dynamic state into the view the planner sees. A node's load is what
// runs on it, as an agent measures it: the capacity an in-flight migration holds on its
// target is not in the view, because the ledger says it (policy.Evaluate reserves it from
// the ledger's in-flight records), so that it is counted exactly once.
func (w *world) updateView() {
	v := &w.view
	held := make([][2]float64, len(w.nodes))
	for _, f := range w.flights {
		c := &w.containers[f.container]
		held[f.to][0] += c.cpu
		held[f.to][1] += float64(c.memBytes)
	}
	for i := range w.nodes {
		n := &w.nodes[i]
		vn := &v.Nodes[i]
		vn.UsedCPU = max(0, n.cpu-held[i][0])
		vn.UsedMemoryBytes = int64(max(0, n.mem-held[i][1]))
		vn.Drained = n.drained
		vn.Unavailable = n.down
	}
	counts := make([]float64, len(w.sc.Sites))
	for ci := range w.containers {
		c := &w.containers[ci]
		vc := &v.Containers[ci]
		vc.Node = w.nodes[c.node].spec.Name
		vc.CPU = c.cpu
		c.sites = c.sites[:0]
		if len(c.users) > 0 {
			for _, ui := range c.users {
				counts[w.users[ui].site]++
			}
			for _, ui := range c.users {
				s := w.users[ui].site
				if counts[s] > 0 {
					c.sites = append(c.sites, policy.UserSite{Site: w.sc.Sites[s].Name, Weight: counts[s]})
					counts[s] = 0
				}
			}
		}
		vc.Users = c.sites
	}
}

// run executes the arm to the end.
func (w *world) run() error {
	sc := w.sc
	for i := range sc.Events {
		w.schedule(sc.Events[i].At, evScenario, i)
	}
	w.schedule(0, evSample, 0)
	w.schedule(sc.DecisionInterval, evDecision, 0)
	for w.queue.Len() > 0 {
		e := heap.Pop(&w.queue).(event)
		if e.at > sc.Duration {
			break
		}
		w.now = e.at
		switch e.kind {
		case evMigrationEnd:
			if f := w.flights[e.index]; f != nil && f.ver == e.ver {
				w.step(f)
			}
		case evScenario:
			if err := w.scenarioEvent(&sc.Events[e.index]); err != nil {
				return err
			}
		case evRestart:
			w.restart(e.index)
		case evSample:
			w.refresh()
			w.rec.sample()
			if next := w.now + sc.SampleInterval; next <= sc.Duration {
				w.schedule(next, evSample, 0)
			}
		case evDecision:
			w.refresh()
			w.decide()
			if next := w.now + sc.DecisionInterval; next <= sc.Duration {
				w.schedule(next, evDecision, 0)
			}
		}
	}
	w.rec.finish()
	return nil
}

func (w *world) at() time.Time { return w.sc.Start.Add(w.now) }

// decide runs the planner and starts its moves. It takes the leader's path: the decisions
// go through policy.Commit, which re-checks each against the view and the ledger it joins
// (as that ledger grows with the ones accepted before it), and only the records it accepts
// become migrations.
func (w *world) decide() {
	w.updateView()
	w.trimLedger()
	if ms, ok := w.planner.(ModelSetter); ok {
		ms.SetModel(w.model)
	}
	now := w.at()
	res := w.planner.Plan(&w.view, &w.ledger, now)
	w.rec.explanations(res.Explanations)
	committed, refused := policy.Commit(w.view, w.commitPolicy(), w.ledger, res.Decisions, now)
	w.rec.refused(refused)
	for _, c := range committed {
		// Commit accepted it against this very view: the container and its target exist.
		ci, _ := w.containerIndex(c.Record.Container)
		w.start(ci, w.nodeIndex[c.Record.To], c.Record)
	}
}

// unconstrained is the policy the baselines' decisions are committed under: no limits of
// godwit's own (no concurrency caps, cooldown or ping-pong window, a target may fill up),
// only what any migration needs (the container where the decision says, not already
// moving, both nodes up, the target not drained and with room). Each baseline applies its
// own limits when it plans.
var unconstrained = &policy.Policy{}

// commitPolicy is the policy whose constraints policy.Commit re-checks decisions against:
// the policy arm's own (DefaultPolicy when it has none, as for Evaluate), unconstrained
// for the baselines.
func (w *world) commitPolicy() *policy.Policy {
	if pp, ok := w.planner.(*PolicyPlanner); ok {
		return pp.Policy
	}
	return unconstrained
}

func (w *world) containerIndex(id string) (int, bool) {
	if w.containerIdx == nil {
		w.containerIdx = make(map[string]int, len(w.containers))
		for i := range w.containers {
			w.containerIdx[w.containers[i].spec.Name] = i
		}
	}
	i, ok := w.containerIdx[id]
	return i, ok
}

// start begins the migration of container ci to node to that policy.Commit accepted as
// rec, by the record's method (post-copy only where the modelled cluster offers it). It
// takes the cost model's predicted time for the modelled link, times a seeded log-normal
// noise factor. The ledger records it planned, then preparing (the source has the order)
// at once.
func (w *world) start(ci, to int, rec policy.MigrationRecord) {
	c := &w.containers[ci]
	from := c.node
	a, b := w.nodes[from].site, w.nodes[to].site
	// The planner predicts with the bandwidth the migrations already on the link leave,
	// 1/(k+1) of it, as policy.Evaluate does; the modelled transfer shares the link with
	// every transfer on it for as long as they overlap (step, reshare).
	k := 0
	for _, g := range w.flights {
		ga, gb := w.nodes[g.from].site, w.nodes[g.to].site
		if ga == a && gb == b || ga == b && gb == a {
			k++
		}
	}
	bw := w.net.bw[a][b] / float64(k+1)
	rtt := w.net.rtt[a][b]
	// What the planner expects (for the log) and what the modelled cluster does.
	post := rec.Method == policy.MethodPostCopy && w.truth.PostCopy.Enabled
	pred := w.model.Predict(c.memBytes, bw, rtt)
	truth := w.truth.Predict(c.memBytes, w.net.bw[a][b], rtt)
	if post {
		pred = w.model.PredictPostCopy(c.memBytes, bw, rtt)
		truth = w.truth.PredictPostCopy(c.memBytes, w.net.bw[a][b], rtt)
	}
	w.migSeq++
	key := mix64(w.sc.Seed ^ uint64(w.migSeq)*0xd1b54a32d192ed03)
	factor := 1.0
	if sigma := w.sc.Migration.Noise; sigma > 0 {
		factor = math.Exp(sigma*hashNormal(key, 1) - sigma*sigma/2)
	}
	fail := w.sc.Migration.FailureRate > 0 && float64(mix64(key^2)>>11)/(1<<53) < w.sc.Migration.FailureRate
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * factor) }
	overhead := scale(w.truth.Overhead)
	f := &flight{
		id:        w.planner.Name() + "-" + strconv.Itoa(w.migSeq),
		container: ci, from: from, to: to,
		start: w.now, freeze: w.now + overhead, restored: never, end: never,
		predicted: pred, fail: fail, post: post,
		link:  [2]int{min(a, b), max(a, b)},
		bytes: w.truth.Image.At(float64(c.memBytes)/policy.GiB) * policy.GiB * factor,
		local: scale(truth.Checkpoint), tail: scale(truth.Restore + rtt),
		obs: policy.Observation{
			MemoryBytes: c.memBytes,
			Checkpoint:  scale(truth.Checkpoint),
			Restore:     scale(truth.Restore),
			ImageBytes:  truth.ImageBytes,
		},
	}
	degraded := time.Duration(-1)
	if post {
		f.local, f.tail = scale(truth.Downtime), scale(rtt)
		f.restored = f.freeze + f.local
		degraded = never
		f.obs.Freeze = max(0, f.local-rtt)
	}
	w.flights[ci] = f
	c.frozenFrom, c.frozenUntil, c.degradedUntil = f.freeze, f.restored, degraded
	rec.ID = f.id
	w.ledger.Migrations = append(w.ledger.Migrations, rec)
	w.advance(f, policy.StatePreparing)
	// Capacity is now held on the target as well.
	w.nodes[to].cpu += c.cpu
	w.nodes[to].mem += float64(c.memBytes)
	w.rec.started(f)
	w.scheduleFlight(f, f.freeze+f.local)
}

// step takes flight f to its next phase, at the time its pending event was scheduled for.
func (w *world) step(f *flight) {
	c := &w.containers[f.container]
	switch f.phase {
	case phaseLocal:
		if f.post && f.fail {
			// A failed post-copy migration fails before the restore and rolls back then.
			f.end = w.now
			w.finish(f.container)
			return
		}
		f.phase, f.left, f.rate, f.rateAt = phaseTransfer, f.bytes, 0, w.now
		w.links[f.link] = append(w.links[f.link], f.container)
		w.reshare(f.link)
	case phaseTransfer:
		w.leaveLink(f)
		f.phase = phaseTail
		if !f.post {
			f.restored = w.now + f.tail
			c.frozenUntil = f.restored
		}
		w.scheduleFlight(f, w.now+f.tail)
	case phaseTail:
		f.end = w.now
		w.finish(f.container)
	}
}

// leaveLink takes f's transfer off its link, which the others then share.
func (w *world) leaveLink(f *flight) {
	if f.phase != phaseTransfer {
		return
	}
	l := w.links[f.link]
	if i := slices.Index(l, f.container); i >= 0 {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(w.links, f.link)
		return
	}
	w.links[f.link] = l
	w.reshare(f.link)
}

// reshare divides a link's bandwidth equally among the transfers on it now, and moves
// each one's end to when its remaining bytes will have gone at its new share.
func (w *world) reshare(link [2]int) {
	l := w.links[link]
	bw := w.net.bw[link[0]][link[1]]
	if bw <= 0 {
		bw = w.truth.DefaultBandwidthBytesPerSec
	}
	rate := bw / float64(len(l))
	for _, ci := range l {
		f := w.flights[ci]
		f.left = max(0, f.left-f.rate*(w.now-f.rateAt).Seconds())
		f.rate, f.rateAt = rate, w.now
		w.scheduleFlight(f, w.now+durationOf(f.left/rate))
	}
}

// durationOf converts seconds to a Duration as policy.CostModel.Predict does.
func durationOf(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// finish ends the migration of container ci, completed or rolled back.
func (w *world) finish(ci int) {
	f := w.flights[ci]
	if f == nil {
		return // aborted by a node failure
	}
	w.leaveLink(f)
	delete(w.flights, ci)
	w.fresh = -1
	c := &w.containers[ci]
	c.frozenUntil, c.degradedUntil = min(c.frozenUntil, f.end), min(c.degradedUntil, f.end)
	completed := !f.fail && !w.nodes[f.to].down
	switch {
	case completed:
		w.advance(f, policy.StateCompleted)
	case w.now < f.freeze:
		w.advance(f, policy.StateFailed) // aborted before the freeze: nothing changed
	default:
		w.advance(f, policy.StateRolledBack)
	}
	w.ledgerRecord(f).Downtime = f.downtime()
	if completed {
		c.node = f.to
		if !w.cfg.FixedModel {
			w.obs = append(w.obs, f.obs)
			if len(w.obs) > 2*policy.DefaultFitWindow {
				w.obs = append(w.obs[:0], w.obs[len(w.obs)-policy.DefaultFitWindow:]...)
			}
			w.model = policy.Fit(w.cfg.Model, w.obs, 0)
		}
	}
	w.rec.finished(f, completed)
}

// advance records f's step to state to in the ledger, through the transition table, as
// the leader's state machine records a node's report.
func (w *world) advance(f *flight, to policy.MigrationState) {
	if err := w.ledger.Advance(f.id, to, w.at()); err != nil {
		panic("sim: " + err.Error()) // the simulator broke its own ledger
	}
}

// ledgerRecord finds f's record (the ledger may have been trimmed since it started).
func (w *world) ledgerRecord(f *flight) *policy.MigrationRecord {
	for i := len(w.ledger.Migrations) - 1; i >= 0; i-- {
		if w.ledger.Migrations[i].ID == f.id {
			return &w.ledger.Migrations[i]
		}
	}
	panic("sim: migration missing from the ledger: " + f.id)
}

// trimLedger keeps the ledger bounded over long runs, as the leader does: the policy arm
// with policy.Ledger.Prune, the baselines (which have no cooldowns) after two hours.
func (w *world) trimLedger() {
	if pp, ok := w.planner.(*PolicyPlanner); ok && pp.Policy != nil {
		w.ledger = w.ledger.Prune(pp.Policy, w.maxCooldown, w.at())
		return
	}
	cut := w.at().Add(-2 * time.Hour)
	out := w.ledger.Migrations[:0]
	for _, m := range w.ledger.Migrations {
		if !m.State.Terminal() || m.End.After(cut) {
			out = append(out, m)
		}
	}
	w.ledger.Migrations = out
}

func (w *world) scenarioEvent(e *Event) error {
	w.fresh = -1
	switch e.Type {
	case EventNodeFailure:
		ni := w.nodeIndex[e.Node]
		if w.nodes[ni].down {
			return nil
		}
		w.nodes[ni].down = true
		w.rec.failures++
		// Migrations touching the node end now: from it, the container is lost with the
		// node; to it, the container goes on at the source.
		for _, ci := range w.sortedFlights() {
			f := w.flights[ci]
			if f.from != ni && f.to != ni {
				continue
			}
			f.fail = true
			f.end = w.now
			f.restored = min(f.restored, w.now)
			c := &w.containers[ci]
			c.frozenUntil, c.degradedUntil = min(c.frozenUntil, w.now), w.now
			if c.frozenFrom > w.now {
				c.frozenFrom = w.now
			}
			w.finish(ci)
		}
		if ra := w.sc.Failover.RestartAfter; ra > 0 {
			w.schedule(w.now+ra, evRestart, ni)
		}
	case EventNodeRecovery:
		w.nodes[w.nodeIndex[e.Node]].down = false
	case EventDrain:
		w.nodes[w.nodeIndex[e.Node]].drained = true
	case EventUndrain:
		w.nodes[w.nodeIndex[e.Node]].drained = false
	case EventPolicyChange:
		pp, ok := w.planner.(*PolicyPlanner)
		if !ok {
			return nil // baselines have no policy
		}
		load := w.cfg.LoadPolicy
		if load == nil {
			load = w.loadPolicy
		}
		pol, err := load(e.PolicyFile)
		if err != nil {
			return fmt.Errorf("sim: policy change at %v: %w", e.At, err)
		}
		pp.SetPolicy(pol)
	}
	return nil
}

func (w *world) loadPolicy(path string) (*policy.Policy, error) {
	if !filepath.IsAbs(path) && w.sc.File != "" {
		path = filepath.Join(filepath.Dir(w.sc.File), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return policy.Parse(path, data)
}

// restart cold-starts the containers of failed node ni elsewhere, if it is still down.
func (w *world) restart(ni int) {
	if !w.nodes[ni].down {
		return
	}
	w.refresh()
	site := w.nodes[ni].site
	for ci := range w.containers {
		c := &w.containers[ci]
		if c.node != ni {
			continue
		}
		best := -1
		for j := range w.nodes {
			n := &w.nodes[j]
			if n.down || n.drained || n.mem+float64(c.memBytes) > n.spec.MemoryGiB*policy.GiB {
				continue
			}
			if best < 0 {
				best = j
				continue
			}
			b := &w.nodes[best]
			sameJ, sameB := n.site == site, b.site == site
			if sameJ != sameB {
				if sameJ {
					best = j
				}
				continue
			}
			if n.cpu/n.spec.CPU < b.cpu/b.spec.CPU {
				best = j
			}
		}
		if best < 0 {
			continue
		}
		c.node = best
		w.nodes[best].cpu += c.cpu
		w.nodes[best].mem += float64(c.memBytes)
		w.rec.restarts++
	}
}

func (w *world) sortedFlights() []int {
	out := make([]int, 0, len(w.flights))
	for ci := range w.flights {
		out = append(out, ci)
	}
	sort.Ints(out)
	return out
}
