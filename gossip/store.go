package gossip

import (
	"math"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

// store holds what one agent knows of every node, itself included. It is pure: no
// network, no clock of its own (callers pass now), no locking (the Agent locks). Its
// rules:
//
//   - a state replaces the held one only if its Version is newer (stale never overwrites
//     newer);
//   - an inventory is taken if its version is newer than the held inventory, even from a
//     state whose summary is not newer (the full inventory may arrive after a summary
//     sent without it);
//   - a node that failed or left has a stale inventory until it is alive again and has
//     sent a state newer than the last one seen before the failure (a restarted node
//     sends one at once; a node wrongly declared dead at its next refresh), which
//     vouches for its inventory version.
type store struct {
	self          string
	loadThreshold float64
	nodes         map[string]*record
}

type record struct {
	name        string
	addr        string
	status      Status
	statusSince time.Time
	meta        nodeMeta

	state     *nodeState // newest accepted; its Containers are not used (see containers)
	updatedAt time.Time

	containers []Container
	invHave    Version // version of containers
	failHead   Version // head when the node last failed or left; zero if not since

	coord   *coordinate.Coordinate
	coordAt time.Time

	announced    bool // announcedLoad is set
	announcedLod Load
}

func newStore(self string, loadThreshold float64) *store {
	return &store{self: self, loadThreshold: loadThreshold, nodes: map[string]*record{}}
}

func (s *store) get(name string) *record {
	r := s.nodes[name]
	if r == nil {
		r = &record{name: name}
		s.nodes[name] = r
	}
	return r
}

// head is the version of the newest state held for name.
func (s *store) head(name string) Version {
	if r := s.nodes[name]; r != nil && r.state != nil {
		return r.state.Version
	}
	return Version{}
}

// merge applies st, received at now. accepted says the summary was newer (worth
// re-broadcasting); events are what subscribers should hear.
func (s *store) merge(st *nodeState, now time.Time) (accepted bool, events []Event) {
	r := s.get(st.Name)
	// A zero Version marks an inventory-only state (see pushPullStates).
	if !st.Version.IsZero() && (r.state == nil || r.state.Version.Less(st.Version)) {
		accepted = true
		cp := *st
		cp.Containers = nil
		cp.Labels = cloneLabels(st.Labels)
		cp.Links = append([]LinkEstimate(nil), st.Links...)
		if st.Coordinate != nil {
			cp.Coordinate = st.Coordinate.Clone()
			// A coordinate from the node itself is fresher than one from a ping reply
			// received before this state.
			if r.coord == nil || !now.Before(r.coordAt) {
				r.coord, r.coordAt = st.Coordinate.Clone(), now
			}
		}
		r.state = &cp
		r.updatedAt = now
		if ev, ok := s.loadEvent(r, st.Load, now); ok {
			events = append(events, ev)
		}
		if r.status == StatusAlive && !r.failHead.IsZero() && r.failHead.Less(st.Version) {
			r.failHead = Version{}
		}
		if st.Leaving && r.status == StatusFailed {
			// Its farewell arrived after memberlist's verdict: it left, it did not crash.
			events = append(events, s.setStatus(st.Name, "", StatusLeft, now)...)
		}
	}
	if st.HasInventory && r.invHave.Less(st.InventoryVersion) {
		r.containers = cloneContainers(st.Containers)
		r.invHave = st.InventoryVersion
	}
	return accepted, events
}

// loadEvent decides whether load differs enough from the last announced load.
func (s *store) loadEvent(r *record, l Load, now time.Time) (Event, bool) {
	if !r.announced {
		r.announced, r.announcedLod = true, l
		return Event{}, false
	}
	prev := r.announcedLod
	if math.Abs(l.CPUFraction()-prev.CPUFraction()) < s.loadThreshold &&
		math.Abs(l.MemoryFraction()-prev.MemoryFraction()) < s.loadThreshold {
		return Event{}, false
	}
	r.announcedLod = l
	return Event{Type: EventLoadChange, Node: r.name, At: now, Load: l, PrevLoad: prev}, true
}

// setStatus records what membership says about a node.
//
// memberlist's NotifyLeave does not say whether a node left or died (the Node it passes
// keeps its old State), so a failure of a node whose last state said it was leaving is
// taken as a leave.
func (s *store) setStatus(name, addr string, st Status, now time.Time) []Event {
	r := s.get(name)
	if st == StatusFailed && r.state != nil && r.state.Leaving {
		st = StatusLeft
	}
	if addr != "" {
		r.addr = addr
	}
	if r.status == st {
		return nil
	}
	r.status, r.statusSince = st, now
	switch st {
	case StatusAlive:
		if !r.failHead.IsZero() && r.failHead.Less(s.head(name)) {
			r.failHead = Version{} // it spoke since the failure
		}
		return []Event{{Type: EventJoin, Node: name, At: now}}
	case StatusFailed, StatusLeft:
		if r.status == StatusFailed && st == StatusLeft {
			return []Event{{Type: EventLeave, Node: name, At: now}} // a correction
		}
		r.failHead = s.head(name)
		if r.failHead.IsZero() {
			r.failHead = Version{Seq: 1} // nothing held: any inventory is newer
		}
		typ := EventFailed
		if st == StatusLeft {
			typ = EventLeave
		}
		return []Event{{Type: typ, Node: name, At: now}}
	}
	return nil
}

func (s *store) aliveCount() int {
	n := 0
	for _, r := range s.nodes {
		if r.status == StatusAlive {
			n++
		}
	}
	return n
}

func (s *store) setMeta(name string, m nodeMeta) { s.get(name).meta = m }

// setCoord records a coordinate heard in a ping reply.
func (s *store) setCoord(name string, c *coordinate.Coordinate, now time.Time) {
	r := s.get(name)
	r.coord, r.coordAt = c.Clone(), now
}

// reap forgets nodes that failed or left more than retention ago.
func (s *store) reap(now time.Time, retention time.Duration) []string {
	var gone []string
	for name, r := range s.nodes {
		if name == s.self {
			continue
		}
		if (r.status == StatusFailed || r.status == StatusLeft) && now.Sub(r.statusSince) > retention {
			delete(s.nodes, name)
			gone = append(gone, name)
		}
	}
	return gone
}

// gaps counts what membership and state gossip disagree on for longer than grace: an
// alive member with no state, or a state of a node memberlist has not reported (heard
// within recent, so a late echo of a long-gone node does not count forever). Either
// means a broadcast or an alive message missed this node; one push-pull heals both.
func (s *store) gaps(now time.Time, grace, recent time.Duration) int {
	n := 0
	for name, r := range s.nodes {
		switch {
		case name == s.self:
		case r.status == StatusAlive && r.state == nil && now.Sub(r.statusSince) >= grace:
			n++
		case r.status == StatusUnknown && r.state != nil && now.Sub(r.updatedAt) >= grace && now.Sub(r.updatedAt) < recent:
			n++
		}
	}
	return n
}

// pushPullStates returns the states worth sending in push-pull: those of alive nodes,
// with the inventory held for them.
func (s *store) pushPullStates() []*nodeState {
	out := make([]*nodeState, 0, len(s.nodes))
	for _, r := range s.nodes {
		if r.state == nil || r.status != StatusAlive {
			continue
		}
		st := *r.state
		if !r.invHave.IsZero() {
			st.HasInventory = true
			st.InventoryVersion = r.invHave
			st.Containers = r.containers
			if r.invHave.Less(r.state.InventoryVersion) {
				// Only an older inventory is held: send it under its own version, and the
				// summary without one, so a receiver learns both truthfully.
				out = append(out, &nodeState{Name: st.Name, Version: Version{}, InventoryVersion: r.invHave, HasInventory: true, Containers: r.containers})
				st.HasInventory, st.Containers, st.InventoryVersion = false, nil, r.state.InventoryVersion
			}
		}
		out = append(out, &st)
	}
	return out
}

// snapshot deep-copies everything into a ClusterView. selfCoord is the local node's
// current coordinate.
func (s *store) snapshot(now time.Time, selfCoord *coordinate.Coordinate) ClusterView {
	nodes := make([]NodeView, 0, len(s.nodes))
	for name, r := range s.nodes {
		n := NodeView{
			Name:             name,
			Addr:             r.addr,
			Status:           r.status,
			StatusSince:      r.statusSince,
			Containers:       cloneContainers(r.containers),
			InventoryVersion: r.invHave,
			UpdatedAt:        r.updatedAt,
			Drain:            r.meta.Drain,
		}
		if r.state != nil {
			n.Version = r.state.Version
			n.Load = r.state.Load
			n.Labels = cloneLabels(r.state.Labels)
			n.Drain = r.state.Drain
			n.Links = append([]LinkEstimate(nil), r.state.Links...)
		} else if r.meta.Site != "" {
			n.Labels = map[string]string{LabelSite: r.meta.Site}
		}
		if name != s.self {
			declared := Version{}
			if r.state != nil {
				declared = r.state.InventoryVersion
			}
			n.InventoryStale = r.status != StatusAlive || r.invHave.Less(declared) || !r.failHead.IsZero()
		}
		switch {
		case name == s.self && selfCoord != nil:
			n.Coordinate = selfCoord.Clone()
		case r.coord != nil:
			n.Coordinate = r.coord.Clone()
		}
		nodes = append(nodes, n)
	}
	return newClusterView(s.self, now, nodes)
}
