package policy

import (
	"math"
	"strconv"
	"time"
)

// Objective slots in a gains vector.
const (
	objRelieve = iota
	objBalance
	objFollow
	objEvacuate
	objConsolidate
	objPlacement
	numObjectives
)

// pinGain is the gain of moving a container to the node its godwit.io/pin label names:
// as much as evacuating a drained node, so that only hard constraints stop it.
const pinGain = 1.0

var objectiveNames = [numObjectives]Objective{
	ObjectiveRelieveOverload, ObjectiveBalanceLoad, ObjectiveFollowUsers,
	ObjectiveEvacuateDrained, ObjectiveConsolidate, ObjectivePlacement,
}

// scored is a candidate target while the engine ranks it: small, so that ranking tens of
// candidates per container copies little. Only the few kept for the explanation become a
// Candidate with a full Prediction.
type scored struct {
	t        int
	gain     float64
	score    float64
	downtime float64 // predicted, seconds
	pages    float64 // post-copy: predicted time its pages arrive after the restore, seconds
	cost     float64 // cost-benefit: user-seconds
	rejected Reason
	post     bool // by post-copy
}

// score evaluates moving the container to node t: the gain and the cost, then the hard
// filters in order, cheapest first. A rejected candidate still carries its score, so that
// explanations can show what the best target would have given.
func (e *evaluation) score(it *item, t int) scored {
	sc := scored{t: t}
	p := e.sharedPath(it.src, t)
	bw, rtt := p.bandwidth, p.rtt
	if bw <= 0 {
		bw = e.model.DefaultBandwidthBytesPerSec
	}
	send := rtt.Seconds() // the image's transfer
	if bw > 0 {
		send += it.imageBytes / bw
	}
	g := e.gains(it, t)
	for _, v := range g {
		sc.gain += v
	}
	if e.cbOn {
		sc.gain = e.cb.ScoreValue*sc.gain + e.benefit(it, t)
	}
	sc.downtime = it.fixedSec + send
	sc.cost = e.methodCost(it, t, sc.downtime, 0)
	if it.methods&methodPC != 0 && !e.nodes[it.src].node.NoPostCopy && !e.nodes[t].node.NoPostCopy {
		// Post-copy (where both nodes can do it) when it is the only method, or the one within the downtime limit, or
		// equally within it and cheaper.
		down, pages := it.pcFreeze+rtt.Seconds(), send
		cost := e.methodCost(it, t, down, pages)
		limit := it.maxDowntime.Seconds()
		scOK, pcOK := limit <= 0 || sc.downtime <= limit, limit <= 0 || down <= limit
		if it.methods&methodSC == 0 || pcOK && !scOK || pcOK == scOK && cost < sc.cost {
			sc.downtime, sc.pages, sc.cost, sc.post = down, pages, cost, true
		}
	}
	if math.IsNaN(sc.gain) || math.IsInf(sc.gain, 0) {
		sc.gain = 0 // a view with absurd numbers: never a reason to move
	}
	sc.score = sc.gain - sc.cost
	sc.rejected = e.reject(it, t, &sc)
	return sc
}

// methodCost is the cost of a move frozen for downtime seconds and then, by post-copy,
// degraded for pages seconds: under the cost-benefit rule in user-seconds (the degraded
// users count as harmed, PostCopy.Slowdown of them), otherwise DowntimeCost per second
// frozen or fully degraded.
func (e *evaluation) methodCost(it *item, t int, downtime, pages float64) float64 {
	slow := pages * e.model.PostCopy.Slowdown
	if e.cbOn {
		return e.moveCost(it, t, downtime) + slow*it.weight()
	}
	return e.p.Constraints.DowntimeCost * (downtime + slow)
}

// candidate turns a scored target into a Candidate for the explanation.
func (e *evaluation) candidate(it *item, sc scored) Candidate {
	p := e.sharedPath(it.src, sc.t)
	c := Candidate{Node: e.nodes[sc.t].node.ID, Score: sc.score, Gain: sc.gain, Rejected: sc.rejected}
	if sc.post {
		c.Cost = e.model.PredictPostCopy(it.c.MemoryBytes, p.bandwidth, p.rtt)
	} else {
		c.Cost = e.model.Predict(it.c.MemoryBytes, p.bandwidth, p.rtt)
	}
	// gain-too-small, cost-over-benefit and within-margin say nothing the Score, Gain and
	// Cost fields do not (the container's own Detail spells the best one out).
	if r := c.Rejected; r != "" && r != ReasonGainTooSmall && r != ReasonCostOverBenefit && r != ReasonMargin {
		c.Detail = e.detail(it, sc.t, &c)
	}
	return c
}

// reject applies the hard filters to a move of it to t, in order; "" means it passes.
func (e *evaluation) reject(it *item, t int, cand *scored) Reason {
	n := &e.nodes[t]
	c := &e.p.Constraints
	switch {
	case t == it.src:
		return ReasonSameNode
	case n.node.Unavailable:
		return ReasonTargetDown
	case n.node.Drained:
		return ReasonTargetDrained
	case it.pin >= 0 && t != it.pin:
		return ReasonNodeSelector
	}
	for _, ri := range it.rules {
		if ok := e.requireOK[ri]; ok != nil && !ok[t] {
			return ReasonNodeSelector
		}
	}
	if h := it.hist; h != nil && c.PingPongWindow > 0 {
		for _, d := range h.left {
			if d.node == t && e.now.Sub(d.at) < c.PingPongWindow {
				return ReasonPingPong
			}
		}
	}
	if !e.fits(it.c, n) {
		return ReasonHeadroom
	}
	if r := e.requiredAffinity(it, t); r != "" {
		return r
	}
	if it.maxDowntime > 0 && cand.downtime > it.maxDowntime.Seconds() {
		return ReasonDowntime
	}
	if e.cbOn {
		if cand.score <= 0 {
			return ReasonCostOverBenefit
		}
		if cand.gain < (1+e.cb.Margin)*cand.cost+e.cb.MinBenefit {
			return ReasonMargin
		}
	} else if cand.score < c.MinImprovement || cand.score <= 0 {
		return ReasonGainTooSmall
	}
	if c.MaxConcurrentPerNode > 0 && n.inflight >= c.MaxConcurrentPerNode {
		return ReasonNodeConcurrent
	}
	return ""
}

// fits reports whether n keeps its headroom with c on it.
func (e *evaluation) fits(c *Container, n *nodeState) bool {
	k := &e.p.Constraints
	if !n.usable {
		return false
	}
	cpu, mem := n.taken(c)
	return util(cpu, n.cpuCap) <= 1-k.HeadroomCPU && util(mem, n.memCap) <= 1-k.HeadroomMemory
}

// gains returns each objective's weighted gain of moving it to t.
//
//   - relieveOverload: the utilization above the threshold removed from the source,
//     minus what the move adds above it on the target, summed over CPU and memory;
//   - balanceLoad: the drop in the sum of squared utilizations of source and target,
//     averaged over CPU and memory. It is positive only when the source is busier than
//     the target by more than the container's share, so a move never makes the reverse
//     move attractive: the objective itself does not ping-pong;
//   - followUsers: the relative drop in the users' weighted RTT, (before-after)/(before+10ms);
//   - evacuateDrained: 1 when leaving a drained node;
//   - consolidate: the opposite of balanceLoad, plus 0.1 when the move empties the source;
//   - placement: preferred node labels and preferred (anti-)affinity, target minus source;
//     pinGain for moving a container to the node it is pinned to.
func (e *evaluation) gains(it *item, t int) (g [numObjectives]float64) {
	o := &e.p.Objectives
	s, d := &e.nodes[it.src], &e.nodes[t]
	c := it.c
	cm := float64(c.MemoryBytes)
	sc0, sc1 := util(s.cpu, s.cpuCap), util(s.cpu-c.CPU, s.cpuCap)
	sm0, sm1 := util(s.mem, s.memCap), util(s.mem-cm, s.memCap)
	dc0, dc1 := util(d.cpu, d.cpuCap), util(d.cpu+c.CPU, d.cpuCap)
	dm0, dm1 := util(d.mem, d.memCap), util(d.mem+cm, d.memCap)
	cb := e.cbOn // the harm model replaces the overload and latency objectives
	if o.RelieveOverload != 0 && !cb {
		th := o.OverloadThreshold
		over := func(u float64) float64 { return max(0, u-th) }
		g[objRelieve] = o.RelieveOverload * (over(sc0) - over(sc1) + over(sm0) - over(sm1) -
			(over(dc1) - over(dc0)) - (over(dm1) - over(dm0)))
	}
	if o.BalanceLoad != 0 || o.Consolidate != 0 {
		bal := (sc0*sc0 + dc0*dc0 - sc1*sc1 - dc1*dc1 + sm0*sm0 + dm0*dm0 - sm1*sm1 - dm1*dm1) / 2
		g[objBalance] = o.BalanceLoad * bal
		if o.Consolidate != 0 {
			cons := -bal
			if s.count == 1 {
				cons += 0.1
			}
			g[objConsolidate] = o.Consolidate * cons
		}
	}
	if o.FollowUsers != 0 && !cb && it.userWeight > 0 && s.site != d.site {
		before, after := it.srcRTT, e.itemRTT(it, d.site)
		g[objFollow] = o.FollowUsers * (before - after) / (before + float64(10*time.Millisecond))
	}
	if o.EvacuateDrained != 0 && s.node.Drained {
		g[objEvacuate] = o.EvacuateDrained
	}
	if len(it.rules) > 0 {
		g[objPlacement] = e.preference(it, t) - it.srcPref
	}
	if it.pin >= 0 && t == it.pin {
		g[objPlacement] += pinGain // a container pinned elsewhere goes home
	}
	return g
}

// detail explains a rejection, for people. It builds the text in a reused buffer, so
// that each detail costs one allocation.
func (e *evaluation) detail(it *item, t int, cand *Candidate) string {
	n := &e.nodes[t]
	k := &e.p.Constraints
	b := e.textBuf[:0]
	defer func() { e.textBuf = b[:0] }()
	switch cand.Rejected {
	case ReasonHeadroom:
		b = append(b, "CPU would be "...)
		cpu, mem := n.taken(it.c)
		b = appendPct(b, util(cpu, n.cpuCap))
		b = append(b, " and memory "...)
		b = appendPct(b, util(mem, n.memCap))
		b = append(b, " of "...)
		b = append(b, n.node.ID...)
		b = append(b, ", limits "...)
		b = appendPct(b, 1-k.HeadroomCPU)
		b = append(b, " and "...)
		b = appendPct(b, 1-k.HeadroomMemory)
		return string(b)
	case ReasonDowntime:
		return "predicted downtime " + cand.Cost.Downtime.Round(time.Millisecond).String() +
			" above " + it.maxDowntime.String()
	case ReasonGainTooSmall:
		b = append(b, "score "...)
		b = appendF3(b, cand.Score)
		b = append(b, " (gain "...)
		b = appendF3(b, cand.Gain)
		b = append(b, " - downtime cost "...)
		b = appendF3(b, cand.Gain-cand.Score)
		b = append(b, ") below minImprovement "...)
		b = appendF3(b, k.MinImprovement)
		return string(b)
	case ReasonCostOverBenefit, ReasonMargin:
		b = append(b, "benefit "...)
		b = strconv.AppendFloat(b, cand.Gain, 'f', 0, 64)
		b = append(b, " user-s over "...)
		b = append(b, seconds(it.horizon).Round(time.Second).String()...)
		b = append(b, ", cost "...)
		b = strconv.AppendFloat(b, cand.Gain-cand.Score, 'f', 0, 64)
		b = append(b, " user-s (downtime "...)
		b = append(b, cand.Cost.Downtime.Round(100*time.Millisecond).String()...)
		b = append(b, " x "...)
		b = strconv.AppendFloat(b, it.weight()+e.cb.Dependents, 'f', 0, 64)
		b = append(b, " users and dependents x "...)
		b = strconv.AppendFloat(b, e.cb.OutageWeight, 'f', -1, 64)
		if cand.Cost.Method == MethodPostCopy {
			b = append(b, " + post-copy pages "...)
			b = append(b, cand.Cost.Pages.Round(100*time.Millisecond).String()...)
			b = append(b, " x "...)
			b = strconv.AppendFloat(b, it.weight()*e.model.PostCopy.Slowdown, 'f', 0, 64)
			b = append(b, " users slowed"...)
		}
		if n.site != e.nodes[it.src].site {
			b = append(b, " + transfer"...)
		}
		if cand.Rejected == ReasonMargin {
			b = append(b, "), below the margin "...)
			b = strconv.AppendFloat(b, 1+e.cb.Margin, 'f', 2, 64)
			b = append(b, " x cost + "...)
			b = strconv.AppendFloat(b, e.cb.MinBenefit, 'f', 0, 64)
			return string(b)
		}
		b = append(b, ')')
		return string(b)
	case ReasonPingPong:
		return "it left " + n.node.ID + " less than " + k.PingPongWindow.String() + " ago"
	case ReasonNodeConcurrent:
		b = strconv.AppendInt(b, int64(n.inflight), 10)
		b = append(b, " migrations in flight on "...)
		b = append(b, n.node.ID...)
		return string(b)
	case ReasonNodeSelector:
		if it.pin >= 0 {
			return "pinned to " + e.nodes[it.pin].node.ID
		}
		return n.node.ID + " lacks the labels a placement rule requires"
	}
	return string(cand.Rejected)
}

func appendPct(b []byte, v float64) []byte {
	return append(strconv.AppendFloat(b, 100*v, 'f', 0, 64), '%')
}

func appendF3(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'f', 3, 64) }

func formatBytes(b int64) string {
	return strconv.FormatFloat(float64(b)/GiB, 'f', 2, 64) + "GiB"
}

// Method bits of item.methods.
const (
	methodSC uint8 = 1 << iota // stop-and-copy
	methodPC                   // post-copy
)

// methods returns the methods a move of c may use: the label's or the policy's choice,
// post-copy only where the cost model says the cluster offers it (and, per move, where
// neither node is NoPostCopy: score). An unknown name is reported as a problem and read as
// auto.
func (e *evaluation) methods(c *Container) uint8 {
	m := e.p.Constraints.Method
	if v, ok := c.Labels[LabelMigrationMethod]; ok {
		m = v
	}
	offered := methodSC
	if e.model.PostCopy.Enabled {
		offered |= methodPC
	}
	switch m {
	case MethodStopAndCopy:
		return methodSC
	case MethodPostCopy:
		if offered&methodPC != 0 {
			return methodPC
		}
		return methodSC
	case "", MethodAuto:
	default:
		e.problemf("container %q: migration method %q is not stop-and-copy, post-copy or auto", c.ID, m)
	}
	return offered
}
