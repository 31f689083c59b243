package policy

import (
	"cmp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
)

// Evaluate is the decision engine: from the cluster as seen now, the policy in force, the
// cost model and the ledger, it returns the moves to make and why everything else stays.
// It is a pure function: no clock (now is the evaluation time), no I/O, no randomness, no
// state between calls (hysteresis state comes in as ledger.Conditions and goes out as
// Plan.Conditions). Same inputs, same Plan, whatever the order of the view's slices. A
// nil policy means DefaultPolicy. It never modifies its inputs and is safe for concurrent
// use; slices in the Plan may share backing arrays with each other and with the policy.
//
// The steps, in order:
//  1. index the view and the ledger (in-flight migrations reserve load on their targets);
//  2. step every trigger (hysteresis) and find the candidate containers;
//  3. per candidate, cheap container checks first (never-migrate, pin, in flight,
//     cooldown, memory limit), then score a preselected set of targets: hard filters in
//     order (availability, drain, node selector, ping-pong, headroom, affinity, downtime)
//     and the weighted objectives minus the downtime cost;
//  4. commit the best moves, best first, re-scoring each against the load the earlier
//     commits left, within the time windows, the move budget and the concurrency limits.
func Evaluate(view ClusterView, p *Policy, model CostModel, ledger Ledger, now time.Time) Plan {
	if p == nil {
		d := DefaultPolicy()
		p = &d
	}
	e := &evaluation{view: &view, p: p, model: model, now: now, workspace: &workspace{linkFor: -1}}
	e.cb = p.CostBenefit.withDefaults()
	e.cbOn = e.cb.Enabled
	e.plan = Plan{At: now, Mode: p.Mode}
	if p.Mode == ModeOff {
		e.index(&ledger)
		e.selectManaged()
		for _, it := range e.items {
			it.expl.Reason = ReasonModeOff
		}
		e.plan.Conditions = slices.Clone(ledger.Conditions)
		e.plan.ConditionStats = slices.Clone(ledger.ConditionStats)
		return e.plan
	}
	e.index(&ledger)
	e.selectManaged()
	if e.cbOn {
		e.indexHarm()
	}
	e.indexPlacement()
	e.evalTriggers(&ledger)
	e.preselect()
	e.windowOK = p.Windows.Allowed(now)
	if e.cbOn {
		e.harmNow = make([]float64, len(e.nodes))
		for n := range e.nodes {
			e.refreshHarmNow(n)
		}
	}

	var screened []*item
	for _, it := range e.items {
		if e.screen(it) {
			screened = append(screened, it)
		}
	}
	e.considerAll(screened)
	var movers []*item
	for _, it := range screened {
		if it.best >= 0 {
			movers = append(movers, it)
		}
	}
	e.commit(movers)
	annotateConnections(&e.plan, &view)
	return e.plan
}

// considerPerWorker is the fewest screened containers per extra goroutine in considerAll.
const considerPerWorker = 1024

// considerAll considers the screened containers. Each container's consideration reads
// only state that nothing writes until commit, and writes only to its own item and
// explanation, so on a large view the work is split over goroutines, each with its own
// scratch space: the results are the same whatever the split.
func (e *evaluation) considerAll(items []*item) {
	workers := min(runtime.GOMAXPROCS(0), len(items)/considerPerWorker)
	k := max(e.p.ExplainCandidates, 1)
	if workers <= 1 {
		e.arena = make([]Candidate, len(items)*k)
		for _, it := range items {
			e.consider(it)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (len(items) + workers - 1) / workers
	for w := 1; w < workers; w++ {
		part := items[min(w*chunk, len(items)):min((w+1)*chunk, len(items))]
		ew := e.worker()
		ew.arena = make([]Candidate, len(part)*k)
		wg.Go(func() {
			for _, it := range part {
				ew.consider(it)
			}
		})
	}
	e.arena = make([]Candidate, min(chunk, len(items))*k)
	for _, it := range items[:min(chunk, len(items))] {
		e.consider(it)
	}
	wg.Wait()
}

// worker returns a copy of the evaluation that shares its read-only state and has
// scratch space of its own, for considering containers concurrently with e.
func (e *evaluation) worker() *evaluation {
	w := &evaluation{}
	*w = *e
	w.workspace = &workspace{linkFor: -1, mark: make([]uint32, len(e.mark))}
	if e.hasLinks {
		w.linkStamp = make([]uint32, len(e.linkStamp))
		w.linkRow = make([]pathInfo, len(e.linkRow))
	}
	// Problems found by a worker are not reported: the plan is the caller's.
	w.plan = Plan{}
	return w
}

// evaluation is the working state of one Evaluate call.
type evaluation struct {
	view  *ClusterView
	p     *Policy
	model CostModel
	now   time.Time
	plan  Plan

	nodes     []nodeState
	nodeIdx   map[string]int
	sites     []string
	siteIdx   map[string]int
	sitePaths []pathInfo // len(sites)^2
	// Node links as adjacency lists (the dense row path reads them through is in the
	// workspace).
	hasLinks   bool
	linkStart  []int32
	linkAdj    []nodeLink
	intra      time.Duration
	containers []*Container // all, ID order
	hist       map[string]*history
	inflight   int
	// siteFlights counts migrations in flight between two sites (sitePair), which share
	// the link's bandwidth.
	siteFlights map[[2]int]int

	items     []*item // managed containers, ID order
	terms     []term
	ruleTerms [][2][]int
	byLoad    []int   // usable nodes, least loaded first
	bySite    [][]int // usable nodes per site, least loaded first
	required  [][]int // usable nodes matching each rule's RequireNodes, least loaded first
	// ruleMatchers are the placement rules' container selectors, prepared.
	ruleMatchers []matcher
	// nearSites lists, per site, the sites nearest to it (itself first).
	nearSites [][]int
	// Per placement rule, per node: whether the node matches RequireNodes, and the
	// summed weight of the PreferNodes it matches.
	requireOK [][]bool
	nodePref  [][]float64
	windowOK  bool

	// The cost-benefit rule (benefit.go), when the policy enables it.
	cb        CostBenefit // with defaults
	cbOn      bool
	target    float64 // latency target, seconds
	spread    float64 // half-width of the harm ramp, seconds
	service   float64 // service time, seconds
	uSafe     float64 // utilization at which a user on the node's site reaches the target
	harm      []harmList
	harmNow   []float64 // per node, its harm rate at its load now (nodeHarm, sign 0)
	nodeConts [][]int32 // per node, its containers (indices in containers)
	stats     map[string]ConditionStat

	// The evaluation's scratch space. Everything above is shared by the goroutines of
	// considerAll and evalTriggers and only read while they run; each of them has a
	// workspace of its own (worker), so a field added here cannot become a data race.
	*workspace
}

// workspace is one goroutine's scratch space in an evaluation: reused buffers, stamps and
// backing stores, never shared.
type workspace struct {
	mark     []uint32 // stamps, per node or site: == gen means "seen"
	gen      uint32
	candBuf  []int
	siteBuf  []siteRTT
	nearBuf  []int
	boolPool []bool
	// Backing stores of the items' small slices: each item takes a capped sub-slice, so
	// later appends never write into an earlier item's.
	intPool  []int
	userPool []userSite
	arena    []Candidate // backing store of the explanations' candidates
	scratch  []scored
	textBuf  []byte // for building explanation text
	vm       vm.VM  // runs the trigger expressions
	harmBuf  []harmEntry
	// A dense row of the node links of node linkFor, stamped with linkGen.
	linkFor   int
	linkGen   uint32
	linkStamp []uint32
	linkRow   []pathInfo
}

// item is one managed container under consideration.
type item struct {
	c           *Container
	ci          int // index in evaluation.containers
	src         int // node index, -1 if unknown
	rules       []int
	maxDowntime time.Duration
	cooldown    time.Duration
	methods     uint8 // the methods scoring weighs (methodSC, methodPC bits)
	pin         int   // node index the container is pinned to, -1 for none
	triggers    []string
	candidates  bool // considered for a move
	best        int  // index into expl.Candidates of the best feasible target, -1 for none
	bestScore   float64
	bestRatio   float64 // cost-benefit: the best target's benefit per unit of cost
	horizon     float64 // cost-benefit: expected remaining duration of its condition, seconds
	srcRelief   float64 // cost-benefit: harm rate its leaving removes on its node (consider)
	srcOwn      float64 // cost-benefit: its own users' harm where it runs (consider)
	// cost-benefit: expected remaining duration, seconds, of the conditions of its users
	// (container triggers) and of its node (node triggers)
	userHorizon, nodeHorizon float64
	expl                     *Explanation // in plan.Explanations
	hist                     *history     // the ledger's, nil for none; set by screen

	// Set by prepare.
	prepared   bool
	users      []userSite
	userWeight float64
	srcRTT     float64
	srcPref    float64
	fixedSec   float64 // predicted checkpoint + restore, seconds
	imageBytes float64 // predicted image size
	pcFreeze   float64 // predicted post-copy freeze without the RTT, seconds
	selfMatch  []bool  // per term
}

func (e *evaluation) selectManaged() {
	backing := make([]item, 0, len(e.containers))
	// Explanations live in the plan from the start; the capacity keeps the items'
	// pointers into it valid.
	e.plan.Explanations = make([]Explanation, 0, len(e.containers))
	sel := newMatcher(&e.p.Selector)
	e.ruleMatchers = make([]matcher, len(e.p.Placement))
	for ri := range e.p.Placement {
		e.ruleMatchers[ri] = newMatcher(&e.p.Placement[ri].Containers)
	}
	for ci, c := range e.containers {
		if c.Labels[LabelManaged] != "true" || !sel.matches(c.Labels) {
			continue
		}
		backing = append(backing, item{c: c, ci: ci, src: -1, pin: -1, best: -1,
			maxDowntime: e.p.Constraints.MaxDowntime, cooldown: e.p.Constraints.Cooldown})
		it := &backing[len(backing)-1]
		if ni, ok := e.nodeIdx[c.Node]; ok {
			it.src = ni
		}
		e.plan.Explanations = append(e.plan.Explanations, Explanation{Container: c.ID, Node: c.Node})
		it.expl = &e.plan.Explanations[len(e.plan.Explanations)-1]
		if v, ok := c.Labels[LabelMaxDowntime]; ok {
			if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				if it.maxDowntime == 0 || d < it.maxDowntime {
					it.maxDowntime = d
				}
			} else {
				e.problemf("container %q: label %s=%q is not a duration", c.ID, LabelMaxDowntime, v)
			}
		}
		if v, ok := c.Labels[LabelCooldown]; ok {
			if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				it.cooldown = d
			} else {
				e.problemf("container %q: label %s=%q is not a duration", c.ID, LabelCooldown, v)
			}
		}
		it.methods = e.methods(c)
		e.items = append(e.items, it)
	}
}

// screen runs the container-level checks, cheapest first, and reports whether the
// container goes on to have its targets scored.
func (e *evaluation) screen(it *item) bool {
	c, x := it.c, it.expl
	stay := func(r Reason, detail string) bool { x.Reason, x.Detail = r, detail; return false }
	if c.Labels[LabelNeverMigrate] == "true" {
		return stay(ReasonNeverMigrate, LabelNeverMigrate+"=true")
	}
	if pin, ok := c.Labels[LabelPin]; ok {
		if pin == "true" || pin == c.Node {
			return stay(ReasonPinned, LabelPin+"="+pin)
		}
		ni, known := e.nodeIdx[pin]
		if !known {
			return stay(ReasonPinned, LabelPin+"="+pin+" names no known node")
		}
		it.pin = ni
	}
	if it.src < 0 {
		return stay(ReasonUnknownNode, "node "+strconv.Quote(c.Node)+" is not in the view")
	}
	src := &e.nodes[it.src]
	if src.node.Unavailable {
		return stay(ReasonSourceDown, "node "+src.node.ID+" is unavailable")
	}
	h := e.hist[c.ID]
	it.hist = h
	if h != nil && h.inDoubt {
		return stay(ReasonInDoubt, "a migration of it is in doubt until the nodes settle it")
	}
	if h != nil && h.inflight {
		return stay(ReasonInFlight, "a migration of it is under way")
	}
	if h != nil && it.cooldown > 0 && !h.last.IsZero() && e.now.Sub(h.last) < it.cooldown {
		return stay(ReasonCooldown, "last migration "+e.now.Sub(h.last).Round(time.Second).String()+
			" ago, cooldown "+it.cooldown.String())
	}
	if m := e.p.Constraints.MaxMemoryBytes; m > 0 && c.MemoryBytes > m {
		return stay(ReasonMemoryLimit, formatBytes(c.MemoryBytes)+" in use, limit "+formatBytes(m))
	}
	if it.triggers == nil {
		it.triggers = src.activeTriggers // shared, read-only
	} else {
		it.triggers = append(it.triggers, src.activeTriggers...)
	}
	x.Triggers = it.triggers
	if e.cbOn {
		// The container's own users' part of a move's benefit lasts as long as its
		// conditions (container triggers), the load part as long as its node's; the
		// policy's prior where no trigger says.
		prior := e.cb.Horizon.Seconds()
		it.userHorizon = cmp.Or(it.horizon, prior)
		it.nodeHorizon = cmp.Or(src.horizon, prior)
		it.horizon = max(it.userHorizon, it.nodeHorizon)
	}
	drained := src.node.Drained && e.p.Objectives.EvacuateDrained > 0
	if len(e.p.Triggers) > 0 && len(it.triggers) == 0 && !drained && it.pin < 0 {
		return stay(ReasonNoTrigger, "")
	}
	start := len(e.intPool)
	for ri := range e.ruleMatchers {
		if e.ruleMatchers[ri].matches(c.Labels) {
			e.intPool = append(e.intPool, ri)
		}
	}
	it.rules = e.intPool[start:len(e.intPool):len(e.intPool)]
	it.candidates = true
	return true
}

// consider scores the container's candidate targets and records the best feasible one,
// keeping only the top few for the explanation.
func (e *evaluation) consider(it *item) {
	x := it.expl
	e.prepare(it)
	if e.cbOn {
		e.sourceRelief(it)
		x.Horizon = seconds(it.horizon)
	}
	k := max(e.p.ExplainCandidates, 1)
	top := e.scratch[:0]
	var bestRejected scored
	var n, rejected int
	for _, t := range e.candidateTargets(it) {
		c := e.score(it, t)
		n++
		if c.rejected != "" {
			if rejected == 0 || better(c, bestRejected, false) {
				bestRejected = c
			}
			rejected++
		}
		if len(top) == k && !better(c, top[k-1], true) {
			continue
		}
		i := len(top)
		if i < k {
			top = append(top, c)
		} else {
			i--
		}
		for i > 0 && better(c, top[i-1], true) {
			top[i] = top[i-1]
			i--
		}
		top[i] = c
	}
	e.scratch = top
	if len(e.arena) < len(top) {
		// considerAll sized the arena for one consideration of each container; commit's
		// re-considerations take small chunks.
		e.arena = make([]Candidate, max(len(top), 64))
	}
	x.Candidates = e.arena[:len(top):len(top)]
	e.arena = e.arena[len(top):]
	bestDetail := ""
	for i, sc := range top {
		x.Candidates[i] = e.candidate(it, sc)
		if sc.rejected != "" && sc.t == bestRejected.t {
			bestDetail = x.Candidates[i].Detail
		}
	}
	it.best = -1
	switch {
	case n == 0:
		x.Reason, x.Detail = ReasonNoCandidate, "no node can take it"
	case top[0].rejected == "":
		it.best, it.bestScore = 0, top[0].score
		it.bestRatio = top[0].gain / max(top[0].cost, 1e-9)
		x.Reason, x.Detail = "", ""
	default:
		// Nothing feasible: the reason is the best-scoring target's.
		x.Reason = bestRejected.rejected
		if bestDetail == "" {
			c := e.candidate(it, bestRejected)
			bestDetail = e.detail(it, bestRejected.t, &c)
		}
		x.Detail = "best target " + e.nodes[bestRejected.t].node.ID + ": " + bestDetail
	}
}

// better orders candidates: feasible first (when feasibleFirst), then by score, then by
// node ID (node indices are in ID order), so that ties break the same way every time.
func better(a, b scored, feasibleFirst bool) bool {
	if feasibleFirst && (a.rejected == "") != (b.rejected == "") {
		return a.rejected == ""
	}
	if a.score != b.score {
		return a.score > b.score
	}
	return a.t < b.t
}

// prepare computes, once per container, what scoring every target needs: its users' sites,
// its RTT to them from where it runs, its placement preference where it runs and which
// affinity terms it matches itself.
func (e *evaluation) prepare(it *item) {
	if it.prepared {
		return
	}
	it.prepared = true
	start := len(e.userPool)
	for _, u := range it.c.Users {
		if u.Weight > 0 {
			e.userPool = append(e.userPool, userSite{site: e.siteIdx[u.Site], weight: u.Weight})
			it.userWeight += u.Weight
		}
	}
	it.users = e.userPool[start:len(e.userPool):len(e.userPool)]
	it.srcRTT = e.itemRTT(it, e.nodes[it.src].site)
	gib := float64(it.c.MemoryBytes) / GiB
	it.fixedSec = e.model.Checkpoint.At(gib) + e.model.Restore.At(gib)
	it.imageBytes = e.model.Image.At(gib) * GiB
	if it.methods&methodPC != 0 {
		it.pcFreeze = e.model.PostCopy.Freeze.At(gib)
	}
	if len(e.terms) > 0 {
		if len(e.boolPool) < len(e.terms) {
			e.boolPool = make([]bool, 4096*len(e.terms))
		}
		it.selfMatch = e.boolPool[:len(e.terms):len(e.terms)]
		e.boolPool = e.boolPool[len(e.terms):]
		for ti := range e.terms {
			it.selfMatch[ti] = e.terms[ti].m.matches(it.c.Labels)
		}
	}
	if len(it.rules) > 0 {
		it.srcPref = e.preference(it, it.src)
	}
}

type userSite struct {
	site   int
	weight float64
}

// itemRTT is the weighted mean RTT from a node in site to the container's users.
func (e *evaluation) itemRTT(it *item, site int) float64 {
	if it.userWeight == 0 {
		return 0
	}
	row := e.sitePaths[site*len(e.sites) : (site+1)*len(e.sites)]
	var sum float64
	for _, u := range it.users {
		sum += u.weight * float64(row[u.site].rtt)
	}
	return sum / it.userWeight
}

// candidateTargets returns the node indices worth scoring for the container. On small
// clusters that is every other node; on large ones a preselection, so that an evaluation
// costs O(containers) rather than O(containers × nodes): the least loaded nodes (for the
// load objectives), the most loaded ones (for consolidate), the least loaded nodes of the
// sites nearest the container's users (for followUsers), the least loaded nodes matching
// its rules' required labels, and its pin.
func (e *evaluation) candidateTargets(it *item) []int {
	if it.pin >= 0 {
		out := append(e.candBuf[:0], it.pin)
		e.candBuf = out
		return out
	}
	if len(e.nodes) <= smallCluster {
		out := e.candBuf[:0]
		defer func() { e.candBuf = out }()
		for i := range e.nodes {
			if i != it.src {
				out = append(out, i)
			}
		}
		return out
	}
	e.gen++
	out := e.candBuf[:0]
	defer func() { e.candBuf = out }()
	add := func(list []int, k int) {
		for _, n := range list[:min(k, len(list))] {
			if n != it.src && e.mark[n] != e.gen {
				e.mark[n] = e.gen
				out = append(out, n)
			}
		}
	}
	o := &e.p.Objectives
	add(e.byLoad, preselectLoad)
	if o.Consolidate > 0 {
		hi := e.byLoad[max(0, len(e.byLoad)-preselectLoad):]
		add(hi, preselectLoad)
	}
	for _, ri := range it.rules {
		if e.required[ri] != nil {
			add(e.required[ri], preselectLoad)
		}
	}
	if o.FollowUsers > 0 && len(it.c.Users) > 0 {
		for _, s := range e.nearestSites(it, preselectSites) {
			add(e.bySite[s], preselectPerSite)
		}
	}
	return out
}

// Preselection sizes: enough that the best target is almost always among them, small
// enough that 20,000 containers score in tens of milliseconds.
const (
	smallCluster     = 64
	preselectLoad    = 8
	preselectSites   = 3
	preselectPerSite = 3
)

// nearestSites returns up to k sites with usable nodes, by the container's user RTT. It
// looks only at the sites nearest to each user site rather than at every site.
func (e *evaluation) nearestSites(it *item, k int) []int {
	best := e.siteBuf[:0]
	defer func() { e.siteBuf = best[:0] }()
	e.gen++
	for _, u := range it.users {
		for _, s := range e.nearSites[u.site] {
			if e.mark[s] == e.gen {
				continue
			}
			e.mark[s] = e.gen
			r := e.itemRTT(it, s)
			if len(best) == k && r >= best[k-1].rtt {
				continue
			}
			i := len(best)
			for i > 0 && best[i-1].rtt > r {
				i--
			}
			best = slices.Insert(best, i, siteRTT{s, r})
			if len(best) > k {
				best = best[:k]
			}
		}
	}
	out := e.nearBuf[:0]
	for _, b := range best {
		out = append(out, b.site)
	}
	e.nearBuf = out
	return out
}

type siteRTT struct {
	site int
	rtt  float64
}

// nearSitesPerSite is how many of the nearest sites with usable nodes nearSites keeps.
const nearSitesPerSite = 4

// preselect sorts the usable nodes by load, globally and per site.
func (e *evaluation) preselect() {
	e.mark = make([]uint32, max(len(e.nodes), len(e.sites)))
	e.bySite = make([][]int, len(e.sites))
	for i := range e.nodes {
		if e.nodes[i].usable {
			e.byLoad = append(e.byLoad, i)
		}
	}
	byLoad := func(a, b int) int {
		return cmp.Or(cmp.Compare(e.nodes[a].load(), e.nodes[b].load()), cmp.Compare(a, b))
	}
	slices.SortFunc(e.byLoad, byLoad)
	for _, n := range e.byLoad {
		s := e.nodes[n].site
		e.bySite[s] = append(e.bySite[s], n)
	}
	// For followUsers: per site, the nearest sites that have usable nodes.
	ns := len(e.sites)
	var withNodes []int
	for s := range ns {
		if len(e.bySite[s]) > 0 {
			withNodes = append(withNodes, s)
		}
	}
	e.nearSites = make([][]int, ns)
	if e.p.Objectives.FollowUsers > 0 {
		tmp := make([]int, len(withNodes))
		for s := range ns {
			copy(tmp, withNodes)
			row := e.sitePaths[s*ns : (s+1)*ns]
			slices.SortFunc(tmp, func(a, b int) int { return cmp.Or(cmp.Compare(row[a].rtt, row[b].rtt), cmp.Compare(a, b)) })
			e.nearSites[s] = slices.Clone(tmp[:min(nearSitesPerSite, len(tmp))])
		}
	}

	e.required = make([][]int, len(e.p.Placement))
	e.requireOK = make([][]bool, len(e.p.Placement))
	e.nodePref = make([][]float64, len(e.p.Placement))
	for ri, r := range e.p.Placement {
		if len(r.PreferNodes) > 0 {
			e.nodePref[ri] = make([]float64, len(e.nodes))
			for n := range e.nodes {
				for _, pn := range r.PreferNodes {
					if pn.Nodes.Matches(e.nodes[n].node.Labels) {
						e.nodePref[ri][n] += pn.Weight
					}
				}
			}
		}
		if r.RequireNodes == nil {
			continue
		}
		e.requireOK[ri] = make([]bool, len(e.nodes))
		for n := range e.nodes {
			e.requireOK[ri][n] = r.RequireNodes.Matches(e.nodes[n].node.Labels)
		}
		e.required[ri] = []int{}
		for _, n := range e.byLoad {
			if r.RequireNodes.Matches(e.nodes[n].node.Labels) {
				e.required[ri] = append(e.required[ri], n)
			}
		}
	}
}

// commit turns the best candidates into decisions, best first. After the first decision,
// each container is re-scored against the load the earlier decisions left.
func (e *evaluation) commit(movers []*item) {
	// Best score first, then container ID: movers come in ID order, so their position
	// stands for the ID, and sorting small keys beats chasing the items' pointers.
	keys := make([]moverKey, len(movers))
	for i, it := range movers {
		keys[i] = moverKey{it.bestScore, int32(i)}
		if e.cbOn {
			// Most relief per unit of cost first.
			keys[i].score = it.bestRatio
		}
	}
	slices.SortFunc(keys, func(a, b moverKey) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.pos, b.pos))
	})
	sorted := make([]*item, len(movers))
	for i, k := range keys {
		sorted[i] = movers[k.pos]
	}
	movers = sorted
	c := &e.p.Constraints
	for _, it := range movers {
		x := it.expl
		switch {
		case !e.windowOK:
			loc := e.p.Windows.Location
			if loc == nil {
				loc = time.UTC // a hand-built policy: as Windows.Allowed reads it
			}
			x.Reason, x.Detail = ReasonWindow, "moves are not allowed at "+e.now.In(loc).Format("Mon 15:04 MST")
			continue
		case c.MaxMovesPerEvaluation > 0 && len(e.plan.Decisions) >= c.MaxMovesPerEvaluation:
			x.Reason, x.Detail = ReasonBudget, "maxMovesPerEvaluation "+strconv.Itoa(c.MaxMovesPerEvaluation)+" reached"
			continue
		case c.MaxConcurrent > 0 && e.inflight >= c.MaxConcurrent:
			x.Reason, x.Detail = ReasonConcurrency, "maxConcurrent "+strconv.Itoa(c.MaxConcurrent)+" migrations in flight"
			continue
		case c.MaxConcurrentPerNode > 0 && e.nodes[it.src].inflight >= c.MaxConcurrentPerNode:
			x.Reason, x.Detail = ReasonNodeConcurrent, "source node has "+strconv.Itoa(e.nodes[it.src].inflight)+" migrations in flight"
			continue
		}
		if len(e.plan.Decisions) > 0 {
			e.consider(it)
			if it.best < 0 {
				continue
			}
		}
		best := x.Candidates[it.best]
		t := e.nodeIdx[best.Node]
		d := Decision{
			Container: it.c.ID, From: it.c.Node, To: best.Node,
			Score: best.Score, Gain: best.Gain, Cost: best.Cost, Triggers: it.triggers,
		}
		g := e.gains(it, t)
		for o := range numObjectives {
			if g[o] != 0 {
				d.Objectives = append(d.Objectives, ObjectiveScore{Objective: objectiveNames[o], Gain: g[o]})
			}
		}
		e.plan.Decisions = append(e.plan.Decisions, d)
		x.Moved, x.Reason, x.Detail = true, ReasonMoved, "to "+best.Node
		e.apply(it, t)
	}
}

type moverKey struct {
	score float64
	pos   int32
}

// apply moves the container's load from its node to t in the evaluation's state.
func (e *evaluation) apply(it *item, t int) {
	s, d := &e.nodes[it.src], &e.nodes[t]
	s.cpu -= it.c.CPU
	s.mem -= float64(it.c.MemoryBytes)
	s.heldCPU += it.c.CPU // its capacity stays taken until it completes
	s.heldMem += float64(it.c.MemoryBytes)
	s.count--
	s.inflight++
	d.cpu += it.c.CPU
	d.mem += float64(it.c.MemoryBytes)
	d.count++
	d.inflight++
	e.inflight++
	if e.siteFlights == nil {
		e.siteFlights = map[[2]int]int{}
	}
	e.siteFlights[e.sitePair(it.src, t)]++
	e.moveTerms(it.c, it.src, t)
	if e.cbOn {
		src := e.nodeConts[it.src]
		if i := slices.Index(src, int32(it.ci)); i >= 0 {
			e.nodeConts[it.src] = slices.Delete(src, i, i+1)
		}
		e.nodeConts[t] = append(e.nodeConts[t], int32(it.ci))
		e.harmBuf = e.buildHarm(it.src, e.harmBuf)
		e.harmBuf = e.buildHarm(t, e.harmBuf)
		e.refreshHarmNow(it.src)
		e.refreshHarmNow(t)
	}
}
