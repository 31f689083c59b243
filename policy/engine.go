package policy

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Evaluate is the decision engine: from the cluster as seen now, the policy in force, the
// cost model and the ledger, it returns the moves to make and why everything else stays.
// It is a pure function: no clock (now is the evaluation time), no I/O, no randomness, no
// state between calls (hysteresis state comes in as ledger.Conditions and goes out as
// Plan.Conditions). Same inputs, same Plan. It never modifies its inputs and is safe for
// concurrent use; slices in the Plan may share backing arrays with each other.
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
	e := &evaluation{view: &view, p: p, model: model, now: now}
	e.plan = Plan{At: now, Mode: p.Mode}
	if p.Mode == ModeOff {
		e.index(&ledger)
		e.selectManaged()
		for _, it := range e.items {
			e.plan.Explanations = append(e.plan.Explanations, Explanation{
				Container: it.c.ID, Node: it.c.Node, Reason: ReasonModeOff})
		}
		e.plan.Conditions = slices.Clone(ledger.Conditions)
		return e.plan
	}
	e.index(&ledger)
	e.selectManaged()
	e.indexPlacement()
	e.evalTriggers(&ledger)
	e.preselect()
	e.windowOK = p.Windows.Allowed(now)

	var movers []*item
	for _, it := range e.items {
		if e.screen(it) {
			e.consider(it)
			if it.best >= 0 {
				movers = append(movers, it)
			}
		}
	}
	e.commit(movers)

	e.plan.Explanations = make([]Explanation, len(e.items))
	for i, it := range e.items {
		e.plan.Explanations[i] = it.expl
	}
	return e.plan
}

// evaluation is the working state of one Evaluate call.
type evaluation struct {
	view  *ClusterView
	p     *Policy
	model CostModel
	now   time.Time
	plan  Plan

	nodes      []nodeState
	nodeIdx    map[string]int
	sites      []string
	siteIdx    map[string]int
	sitePaths  []pathInfo // len(sites)^2
	links      map[uint64]pathInfo
	intra      time.Duration
	containers []*Container // all, ID order
	hist       map[string]*history
	inflight   int

	items     []*item // managed containers, ID order
	terms     []term
	ruleTerms [][2][]int
	byLoad    []int   // usable nodes, least loaded first
	bySite    [][]int // usable nodes per site, least loaded first
	required  [][]int // usable nodes matching each rule's RequireNodes, least loaded first
	mark      []uint32
	gen       uint32
	scratch   []Candidate
	windowOK  bool
}

// item is one managed container under consideration.
type item struct {
	c           *Container
	src         int // node index, -1 if unknown
	rules       []int
	maxDowntime time.Duration
	cooldown    time.Duration
	pin         int // node index the container is pinned to, -1 for none
	triggers    []string
	candidates  bool // considered for a move
	best        int  // index into expl.Candidates of the best feasible target, -1 for none
	bestScore   float64
	expl        Explanation
}

func (e *evaluation) selectManaged() {
	for _, c := range e.containers {
		if c.Labels[LabelManaged] != "true" || !e.p.Selector.Matches(c.Labels) {
			continue
		}
		it := &item{c: c, src: -1, pin: -1, best: -1,
			maxDowntime: e.p.Constraints.MaxDowntime, cooldown: e.p.Constraints.Cooldown}
		if ni, ok := e.nodeIdx[c.Node]; ok {
			it.src = ni
		}
		it.expl = Explanation{Container: c.ID, Node: c.Node}
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
		e.items = append(e.items, it)
	}
}

// screen runs the container-level checks, cheapest first, and reports whether the
// container goes on to have its targets scored.
func (e *evaluation) screen(it *item) bool {
	c, x := it.c, &it.expl
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
	it.triggers = append(it.triggers, src.activeTriggers...)
	x.Triggers = it.triggers
	drained := src.node.Drained && e.p.Objectives.EvacuateDrained > 0
	if len(e.p.Triggers) > 0 && len(it.triggers) == 0 && !drained && it.pin < 0 {
		return stay(ReasonNoTrigger, "")
	}
	for ri, r := range e.p.Placement {
		if r.Containers.Matches(c.Labels) {
			it.rules = append(it.rules, ri)
		}
	}
	it.candidates = true
	return true
}

// consider scores the container's candidate targets and records the best feasible one.
func (e *evaluation) consider(it *item) {
	x := &it.expl
	cands := e.scratch[:0]
	for _, t := range e.candidateTargets(it) {
		cands = append(cands, e.score(it, t))
	}
	e.scratch = cands
	// Best first: feasible before rejected, then by score, then node ID.
	slices.SortFunc(cands, func(a, b Candidate) int {
		if (a.Rejected == "") != (b.Rejected == "") {
			if a.Rejected == "" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Node, b.Node))
	})
	k := min(len(cands), max(e.p.ExplainCandidates, 1))
	x.Candidates = slices.Clone(cands[:k])
	for i := range x.Candidates {
		if c := &x.Candidates[i]; c.Rejected != "" {
			c.Detail = e.detail(it, e.nodeIdx[c.Node], c)
		}
	}
	it.best = -1
	switch {
	case len(cands) == 0:
		x.Reason, x.Detail = ReasonNoCandidate, "no node can take it"
	case cands[0].Rejected == "":
		it.best, it.bestScore = 0, cands[0].Score
		x.Reason, x.Detail = "", ""
	default:
		// Nothing feasible: the reason is the best-scoring target's.
		top := cands[0]
		for _, c := range cands[1:] {
			if c.Score > top.Score {
				top = c
			}
		}
		x.Reason = top.Rejected
		x.Detail = "best target " + top.Node + ": " + e.detail(it, e.nodeIdx[top.Node], &top)
	}
}

// candidateTargets returns the node indices worth scoring for the container. On small
// clusters that is every other node; on large ones a preselection, so that an evaluation
// costs O(containers) rather than O(containers × nodes): the least loaded nodes (for the
// load objectives), the most loaded ones (for consolidate), the least loaded nodes of the
// sites nearest the container's users (for followUsers), the least loaded nodes matching
// its rules' required labels, and its pin.
func (e *evaluation) candidateTargets(it *item) []int {
	if it.pin >= 0 {
		return []int{it.pin}
	}
	if len(e.nodes) <= smallCluster {
		out := make([]int, 0, len(e.nodes))
		for i := range e.nodes {
			if i != it.src {
				out = append(out, i)
			}
		}
		return out
	}
	e.gen++
	out := make([]int, 0, 2*preselectLoad)
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
		for _, s := range e.nearestSites(it.c, preselectSites) {
			add(e.bySite[s], preselectPerSite)
		}
	}
	return out
}

// Preselection sizes: enough that the best target is almost always among them, small
// enough that 20,000 containers score in tens of milliseconds.
const (
	smallCluster     = 64
	preselectLoad    = 16
	preselectSites   = 3
	preselectPerSite = 4
)

// nearestSites returns up to k sites with usable nodes, by the container's user RTT.
func (e *evaluation) nearestSites(c *Container, k int) []int {
	type sr struct {
		site int
		rtt  time.Duration
	}
	best := make([]sr, 0, k+1)
	for s := range e.sites {
		if len(e.bySite[s]) == 0 {
			continue
		}
		r := e.userRTT(c, s)
		if len(best) == k && r >= best[k-1].rtt {
			continue
		}
		i := len(best)
		for i > 0 && best[i-1].rtt > r {
			i--
		}
		best = slices.Insert(best, i, sr{s, r})
		if len(best) > k {
			best = best[:k]
		}
	}
	out := make([]int, len(best))
	for i, b := range best {
		out[i] = b.site
	}
	return out
}

// preselect sorts the usable nodes by load, globally and per site.
func (e *evaluation) preselect() {
	e.mark = make([]uint32, len(e.nodes))
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
	e.required = make([][]int, len(e.p.Placement))
	for ri, r := range e.p.Placement {
		if r.RequireNodes == nil {
			continue
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
	slices.SortFunc(movers, func(a, b *item) int {
		return cmp.Or(cmp.Compare(b.bestScore, a.bestScore), cmp.Compare(a.c.ID, b.c.ID))
	})
	c := &e.p.Constraints
	for _, it := range movers {
		x := &it.expl
		switch {
		case !e.windowOK:
			x.Reason, x.Detail = ReasonWindow, "moves are not allowed at "+e.now.In(e.p.Windows.Location).Format("Mon 15:04 MST")
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

// apply moves the container's load from its node to t in the evaluation's state.
func (e *evaluation) apply(it *item, t int) {
	s, d := &e.nodes[it.src], &e.nodes[t]
	s.cpu -= it.c.CPU
	s.mem -= float64(it.c.MemoryBytes)
	s.count--
	s.inflight++
	d.cpu += it.c.CPU
	d.mem += float64(it.c.MemoryBytes)
	d.count++
	d.inflight++
	e.inflight++
	e.moveTerms(it.c, it.src, t)
}
