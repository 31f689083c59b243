package policy

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// The cost-benefit rule (Policy.CostBenefit), in user-seconds.
//
// Harm: a user is harmed while its latency, the RTT from its site to the container's node
// plus the node's queueing delay ServiceTime/(1-u) at CPU utilization u, is above the
// latency target. The estimate is rough (RTT jitter, access links, the queueing model), so
// harm rises linearly from 0 at target-spread to 1 at target+spread (spread: harmSpread of
// the target) rather than in one step; this also gives a move credit for bringing users
// closer to the target when it does not get them all the way. Each node keeps its
// containers' user sites as a harmList sorted by slack (target minus RTT), so the users
// harmed at a queueing delay q are two binary searches away. Past uSafe, the utilization at which a user on the node's own site reaches the
// target, harm rises linearly to every user of the node at full CPU: latency noise spreads
// the threshold, and without the ramp no single move off a node far above uSafe would
// show any benefit although a few of them relieve it.
//
// Benefit of a move: the harm per second it removes on the source, on the target and for
// the container's own users, times the expected remaining duration of the condition that
// made it a candidate (conditionRemaining). Cost: the predicted downtime times the
// container's users times OutageWeight, plus TransferCost per GiB sent between sites.

// harmSpread is the half-width of the harm ramp around the latency target, as a share of
// the target: a 40 ms target ramps from 34 to 46 ms, about the RTT jitter and access-link
// spread of metro links. (In the suite, ±25% made the engine chase users who were barely
// harmed; ±10% hid the harm of nodes just under the target.)
const harmSpread = 0.15

// harmList is the user sites of the containers on one node, by slack.
type harmList struct {
	slack []float64 // seconds, ascending
	cum   []float64 // cum[i]: total weight of slack[:i+1]
	cumWS []float64 // cumWS[i]: total weight*slack of slack[:i+1]
	total float64
}

type harmEntry struct{ slack, weight float64 }

// harmed is the harm of the list's users at queueing delay q: users with slack below
// q-w count fully, those with slack in [q-w, q+w) by how far along the ramp they are.
func (h *harmList) harmed(q, w float64) float64 {
	lo := sort.SearchFloat64s(h.slack, q-w)
	hi := lo + sort.SearchFloat64s(h.slack[lo:], q+w)
	var full, cw, cws float64
	if lo > 0 {
		full = h.cum[lo-1]
		cw, cws = h.cum[lo-1], h.cumWS[lo-1]
	}
	if hi == lo {
		return full
	}
	pw, pws := h.cum[hi-1]-cw, h.cumWS[hi-1]-cws
	return full + ((q+w)*pw-pws)/(2*w)
}

// userHarm is one user's harm (0..1) at slack s and queueing delay q.
func userHarm(s, q, w float64) float64 { return min(1, max(0, (q-s+w)/(2*w))) }

// nominalUsers is the weight of a container that names no users: one, on its node's site.
const nominalUsers = 1.0

// indexHarm builds every node's harm list from the containers on it.
func (e *evaluation) indexHarm() {
	cb := &e.cb
	e.target = cb.LatencyTarget.Seconds()
	e.spread = harmSpread * e.target
	e.service = cb.ServiceTime.Seconds()
	if room := e.target - e.intra.Seconds(); room > e.service {
		e.uSafe = 1 - e.service/room
	}
	e.nodeConts = make([][]int32, len(e.nodes))
	for ci, c := range e.containers {
		if ni, ok := e.nodeIdx[c.Node]; ok {
			e.nodeConts[ni] = append(e.nodeConts[ni], int32(ci))
		}
	}
	e.harm = make([]harmList, len(e.nodes))
	var buf []harmEntry
	for n := range e.nodes {
		buf = e.buildHarm(n, buf)
	}
}

// buildHarm (re)builds node n's harm list; buf is scratch space, returned for reuse.
func (e *evaluation) buildHarm(n int, buf []harmEntry) []harmEntry {
	buf = buf[:0]
	ns := len(e.sites)
	row := e.sitePaths[e.nodes[n].site*ns : (e.nodes[n].site+1)*ns]
	for _, ci := range e.nodeConts[n] {
		c := e.containers[ci]
		named := false
		for _, u := range c.Users {
			if u.Weight > 0 {
				buf = append(buf, harmEntry{e.target - row[e.siteIdx[u.Site]].rtt.Seconds(), u.Weight})
				named = true
			}
		}
		if !named {
			buf = append(buf, harmEntry{e.target - e.intra.Seconds(), nominalUsers})
		}
	}
	slices.SortFunc(buf, func(a, b harmEntry) int { return cmp.Compare(a.slack, b.slack) })
	h := &e.harm[n]
	h.slack, h.cum, h.cumWS, h.total = make([]float64, len(buf)), make([]float64, len(buf)), make([]float64, len(buf)), 0
	var ws float64
	for i, x := range buf {
		h.total += x.weight
		ws += x.weight * x.slack
		h.slack[i], h.cum[i], h.cumWS[i] = x.slack, h.total, ws
	}
	return buf
}

// queue is the queueing delay, in seconds, of a node at utilization u (u < 1).
func (e *evaluation) queue(u float64) float64 { return e.service / (1 - u) }

// itemWeight is the container's users, or nominalUsers when it names none.
func (it *item) weight() float64 {
	if it.userWeight > 0 {
		return it.userWeight
	}
	return nominalUsers
}

// itemHarmed is the weight of the container's users harmed at queueing delay q were it
// on a node of site.
func (e *evaluation) itemHarmed(it *item, site int, q float64) float64 {
	if it.userWeight == 0 {
		return nominalUsers * userHarm(e.target-e.intra.Seconds(), q, e.spread)
	}
	row := e.sitePaths[site*len(e.sites) : (site+1)*len(e.sites)]
	var w float64
	for _, u := range it.users {
		w += u.weight * userHarm(e.target-row[u.site].rtt.Seconds(), q, e.spread)
	}
	return w
}

// nodeHarm is the harm rate (users harmed) of node n at utilization u, with the
// container's users added (sign 1) or taken away (sign -1), or as it is (sign 0). It also
// returns the harm of the container's own users there (0 for sign 0), before the ramp.
func (e *evaluation) nodeHarm(n int, u float64, it *item, sign float64) (harmed, own float64) {
	h := &e.harm[n]
	q := e.harmQueue(u)
	harmed, total := h.harmed(q, e.spread), h.total
	if sign != 0 {
		own = e.itemHarmed(it, e.nodes[n].site, q)
		harmed += sign * own
		total += sign * it.weight()
	}
	if u > e.uSafe {
		harmed += (total - harmed) * min(1, (u-e.uSafe)/(1-e.uSafe))
	}
	return harmed, own
}

// refreshHarmNow recomputes node n's harm rate at its load now, which scoring reads for
// every candidate: once per node and evaluation, and again when a committed move changes
// the node's load.
func (e *evaluation) refreshHarmNow(n int) {
	d := &e.nodes[n]
	e.harmNow[n], _ = e.nodeHarm(n, util(d.cpu, d.cpuCap), nil, 0)
}

// harmQueue is the queueing delay the harm lists are read at for utilization u: up to
// uSafe; past it, nodeHarm's ramp takes over.
func (e *evaluation) harmQueue(u float64) float64 { return e.queue(min(max(u, 0), e.uSafe)) }

// sourceRelief sets the harm rate the container's leaving removes on its node, whatever the
// target, and its own users' harm there; consider calls it once per container (the node's
// load changes only between considerations, when a move is committed).
func (e *evaluation) sourceRelief(it *item) {
	s := &e.nodes[it.src]
	us0, us1 := util(s.cpu, s.cpuCap), util(s.cpu-it.c.CPU, s.cpuCap)
	after, _ := e.nodeHarm(it.src, us1, it, -1)
	it.srcRelief = e.harmNow[it.src] - after
	it.srcOwn = e.itemHarmed(it, s.site, e.harmQueue(us0))
}

// relief is the harm rate a move of it to t removes (negative when it adds harm): on the
// source (it.srcRelief), on the target and for the container's own users; and the part of
// it that is the container's own users'.
func (e *evaluation) relief(it *item, t int) (total, own float64) {
	d := &e.nodes[t]
	after, ownAfter := e.nodeHarm(t, util(d.cpu+it.c.CPU, d.cpuCap), it, 1)
	return it.srcRelief + e.harmNow[t] - after, it.srcOwn - ownAfter
}

// benefit is the harm a move of it to t removes over the expected durations: the change
// for the container's own users over their condition's (userHorizon), the rest (the
// other users of the source and of the target) over the node's (nodeHorizon).
func (e *evaluation) benefit(it *item, t int) float64 {
	total, own := e.relief(it, t)
	return own*it.userHorizon + (total-own)*it.nodeHorizon
}

// moveCost is the cost of a move in user-seconds: the downtime of the container's users
// and the transfer's load when it crosses sites.
func (e *evaluation) moveCost(it *item, t int, downtime float64) float64 {
	c := e.cb.MoveCost + downtime*(it.weight()+e.cb.Dependents)*e.cb.OutageWeight
	if e.nodes[t].site != e.nodes[it.src].site {
		c += e.cb.TransferCost * it.imageBytes / GiB
	}
	return c
}

// conditionRemaining is the expected remaining duration, in seconds, of a condition of
// the trigger that has held for age: the mean duration of the trigger's past conditions
// (shrunk toward the policy's horizon while there are few) less its age, but at least its
// age (a condition that has lasted long tends to last: the median remaining life of a
// heavy-tailed duration is its age), and at most the policy's maxHorizon.
func (e *evaluation) conditionRemaining(trigger string, age time.Duration) float64 {
	cb := &e.cb
	mean := cb.Horizon.Seconds()
	if st, ok := e.stats[trigger]; ok && st.Ended > 0 {
		n := float64(min(st.Ended, conditionStatWindow))
		mean = (n*st.Mean.Seconds() + conditionPrior*mean) / (n + conditionPrior)
	}
	a := max(age.Seconds(), 0)
	return min(max(mean-a, a), cb.MaxHorizon.Seconds())
}

// conditionPrior is how many conditions' worth of weight the policy's horizon keeps
// against the learned mean.
const conditionPrior = 2

// learnConditions folds the durations of the conditions that ended in this evaluation
// into the trigger statistics and stores them in the plan, for the policy's triggers.
func (e *evaluation) learnConditions(ended map[string][]time.Duration) {
	out := make([]ConditionStat, 0, len(e.p.Triggers))
	for _, t := range e.p.Triggers {
		st, ok := e.stats[t.Name]
		if !ok {
			st = ConditionStat{Trigger: t.Name}
		}
		for _, d := range ended[t.Name] {
			st.Ended++
			n := min(st.Ended, conditionStatWindow)
			st.Mean += (d - st.Mean) / time.Duration(n)
		}
		if st.Ended > 0 {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b ConditionStat) int { return cmp.Compare(a.Trigger, b.Trigger) })
	out = slices.CompactFunc(out, func(a, b ConditionStat) bool { return a.Trigger == b.Trigger })
	e.plan.ConditionStats = out
}
