package policy

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Commitment is a decision Commit accepted, with the ledger record it adds.
type Commitment struct {
	Decision Decision `json:"decision"`
	// Record is the migration to record: State planned, Start now, the container's memory
	// as the view shows it. Its ID is empty: the caller names the migration (the leader
	// with a fresh ID, the simulator with its own sequence) before recording it.
	Record MigrationRecord `json:"record"`
}

// Refusal is a decision Commit refused, and why.
type Refusal struct {
	Decision Decision `json:"decision"`
	// Reason is one of the engine's reasons: stale, unknown-node, same-node, in-doubt,
	// in-flight, source-unavailable, target-unavailable, target-drained, concurrency,
	// node-concurrency, cooldown, ping-pong, headroom.
	Reason Reason `json:"reason"`
	// Detail says more, for people.
	Detail string `json:"detail,omitempty"`
}

// Commit is the one step from decisions to ledger entries, the same for the leader and the
// simulator: it re-checks each decision, in order, against the ledger it would join, as
// that ledger grows with the decisions accepted before it, and against the view (Nomad's
// plan apply: the plan was made on a snapshot that may be stale by now). It returns the
// decisions that hold, each with the record to add, and those that do not, each with a
// typed reason. Like Evaluate it is pure: no clock (now is the commit time), no I/O, no
// state; it never modifies its inputs; a nil policy means DefaultPolicy.
//
// The checks, cheapest first, in this order:
//  1. the view: the container is in it, on the decision's source; source and target are
//     known nodes, not the same (stale, unknown-node, same-node);
//  2. the ledger: no migration of the container in doubt or in flight (in-doubt,
//     in-flight), including one accepted earlier in this call;
//  3. the nodes: the source available, the target available and not drained
//     (source-unavailable, target-unavailable, target-drained);
//  4. the concurrency limits, counting the migrations in flight and those accepted before:
//     maxConcurrent, then maxConcurrentPerNode on the source and on the target
//     (concurrency, node-concurrency);
//  5. the container's history: cooldown (its godwit.io/cooldown label first), then the
//     ping-pong window (cooldown, ping-pong);
//  6. the target's headroom with the container on it, counting what runs there, what the
//     migrations in flight to it (and those accepted before) reserve, each exactly once
//     (headroom). MigrationRecord says how a migration in flight counts.
//
// A plan Evaluate has just made from the same view, policy, ledger and now passes every
// check. What Commit does not re-check is the plan's own business: scores, the move
// budget, the time windows, placement rules and the downtime limit.
func Commit(view ClusterView, p *Policy, ledger Ledger, decisions []Decision, now time.Time) (committed []Commitment, refused []Refusal) {
	if len(decisions) == 0 {
		return nil, nil // most rounds: no need to index anything
	}
	if p == nil {
		d := DefaultPolicy()
		p = &d
	}
	e := &evaluation{view: &view, p: p, now: now, workspace: &workspace{linkFor: -1}}
	e.index(&ledger)
	for _, d := range decisions {
		r, detail, c := e.recheck(&d)
		if r != "" {
			refused = append(refused, Refusal{Decision: d, Reason: r, Detail: detail})
			continue
		}
		committed = append(committed, Commitment{Decision: d, Record: MigrationRecord{
			Container: d.Container, From: d.From, To: d.To, Start: now, State: StatePlanned,
			MemoryBytes: c.MemoryBytes, Method: d.Cost.Method,
		}})
		e.hold(c, e.nodeIdx[d.From], e.nodeIdx[d.To])
	}
	return committed, refused
}

// recheck applies Commit's checks to d; it returns "" and the container when d holds.
func (e *evaluation) recheck(d *Decision) (Reason, string, *Container) {
	c := e.container(d.Container)
	if c == nil {
		return ReasonStale, "container " + strconv.Quote(d.Container) + " is not in the view", nil
	}
	if c.Node != d.From {
		return ReasonStale, "the view shows it on " + strconv.Quote(c.Node) + ", not on " + strconv.Quote(d.From), nil
	}
	si, ok := e.nodeIdx[d.From]
	if !ok {
		return ReasonUnknownNode, "node " + strconv.Quote(d.From) + " is not in the view", nil
	}
	ti, ok := e.nodeIdx[d.To]
	if !ok {
		return ReasonUnknownNode, "node " + strconv.Quote(d.To) + " is not in the view", nil
	}
	if si == ti {
		return ReasonSameNode, "it runs on " + d.To + " already", nil
	}
	h := e.hist[c.ID]
	if h != nil && h.inDoubt {
		return ReasonInDoubt, "a migration of it is in doubt until the nodes settle it", nil
	}
	if h != nil && h.inflight {
		return ReasonInFlight, "a migration of it is under way", nil
	}
	src, dst := &e.nodes[si], &e.nodes[ti]
	switch {
	case src.node.Unavailable:
		return ReasonSourceDown, "node " + src.node.ID + " is unavailable", nil
	case dst.node.Unavailable:
		return ReasonTargetDown, "node " + dst.node.ID + " is unavailable", nil
	case dst.node.Drained:
		return ReasonTargetDrained, "node " + dst.node.ID + " is drained", nil
	}
	k := &e.p.Constraints
	if k.MaxConcurrent > 0 && e.inflight >= k.MaxConcurrent {
		return ReasonConcurrency, "maxConcurrent " + strconv.Itoa(k.MaxConcurrent) + " migrations in flight", nil
	}
	for _, n := range []*nodeState{src, dst} {
		if k.MaxConcurrentPerNode > 0 && n.inflight >= k.MaxConcurrentPerNode {
			return ReasonNodeConcurrent, strconv.Itoa(n.inflight) + " migrations in flight on " + n.node.ID, nil
		}
	}
	if h != nil {
		cooldown := k.Cooldown
		if v, ok := c.Labels[LabelCooldown]; ok {
			if cd, err := time.ParseDuration(v); err == nil && cd >= 0 {
				cooldown = cd
			}
		}
		if cooldown > 0 && !h.last.IsZero() && e.now.Sub(h.last) < cooldown {
			return ReasonCooldown, "last migration " + e.now.Sub(h.last).Round(time.Second).String() +
				" ago, cooldown " + cooldown.String(), nil
		}
		if k.PingPongWindow > 0 {
			for _, dep := range h.left {
				if dep.node == ti && e.now.Sub(dep.at) < k.PingPongWindow {
					return ReasonPingPong, "it left " + dst.node.ID + " less than " + k.PingPongWindow.String() + " ago", nil
				}
			}
		}
	}
	if !e.fits(c, dst) {
		cpu, mem := dst.taken(c)
		return ReasonHeadroom, "CPU would be " + pct(util(cpu, dst.cpuCap)) + " and memory " +
			pct(util(mem, dst.memCap)) + " of " + dst.node.ID + ", limits " + pct(1-k.HeadroomCPU) +
			" and " + pct(1-k.HeadroomMemory), nil
	}
	return "", "", c
}

// hold records in the commit's state a migration of c from s to t just accepted: it is in
// flight (the container is held, the concurrency limits count it), and its load is
// reserved on the target as the ledger's record will reserve it; on the source the view
// counts it still.
func (e *evaluation) hold(c *Container, s, t int) {
	h := e.hist[c.ID]
	if h == nil {
		h = &history{}
		e.hist[c.ID] = h
	}
	h.inflight = true
	if e.now.After(h.last) {
		h.last = e.now
	}
	e.inflight++
	e.nodes[s].inflight++
	e.nodes[t].inflight++
	e.reserve(c, t)
}

// container returns the view's container with the given ID, nil if none.
func (e *evaluation) container(id string) *Container {
	i, ok := slices.BinarySearchFunc(e.containers, id, func(c *Container, id string) int { return cmp.Compare(c.ID, id) })
	if !ok {
		return nil
	}
	return e.containers[i] // in ID order
}

func pct(v float64) string { return string(appendPct(nil, v)) }
