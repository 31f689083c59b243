package policy

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// nodeState is a node as the engine tracks it during one evaluation: its load moves as the
// evaluation commits decisions.
type nodeState struct {
	node     *Node
	site     int
	cpu, mem float64 // in use, cores and bytes
	// heldCPU and heldMem are what the moves this evaluation decided off the node still
	// hold on it: their load leaves cpu and mem (the plan's projection, for scoring) but
	// their capacity stays taken until they complete (headroom). See MigrationRecord.
	heldCPU, heldMem float64
	cpuCap, memCap   float64
	count            int
	inflight         int  // migrations touching this node
	usable           bool // may receive containers: available and not drained
	activeTriggers   []string
	horizon          float64 // cost-benefit: longest expected remaining duration of its conditions, s
}

func (n *nodeState) cpuUtil() float64 { return util(n.cpu, n.cpuCap) }
func (n *nodeState) memUtil() float64 { return util(n.mem, n.memCap) }
func (n *nodeState) load() float64    { return max(n.cpuUtil(), n.memUtil()) }

// taken is the CPU and memory taken on n with c on it as well: what runs or is reserved
// there, what moves decided off it still hold, and c.
func (n *nodeState) taken(c *Container) (cpu, mem float64) {
	return n.cpu + n.heldCPU + c.CPU, n.mem + n.heldMem + float64(c.MemoryBytes)
}

func util(used, capacity float64) float64 {
	if capacity <= 0 {
		return 1
	}
	return used / capacity
}

// history is what the ledger says about one container.
type history struct {
	inflight bool      // a migration in flight or in doubt holds it
	inDoubt  bool      // that migration is in doubt
	last     time.Time // latest start or end of any migration
	left     []departure
}

type departure struct {
	node int
	at   time.Time
}

// pathInfo is what the engine knows of a path between two sites.
type pathInfo struct {
	rtt       time.Duration
	bandwidth float64
}

// index builds the evaluation's lookup structures from the view and the ledger. Nodes and
// containers are put in ID order so that results never depend on the order of the input.
func (e *evaluation) index(ledger *Ledger) {
	v := e.view
	e.nodeIdx = make(map[string]int, len(v.Nodes))
	order := make([]int, len(v.Nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(v.Nodes[a].ID, v.Nodes[b].ID) })
	e.siteIdx = map[string]int{}
	e.nodes = make([]nodeState, 0, len(v.Nodes))
	for _, i := range order {
		n := &v.Nodes[i]
		if _, dup := e.nodeIdx[n.ID]; dup {
			e.problemf("duplicate node %q ignored", n.ID)
			continue
		}
		e.nodeIdx[n.ID] = len(e.nodes)
		e.nodes = append(e.nodes, nodeState{
			node: n, site: e.site(n.Site),
			cpu: n.UsedCPU, mem: float64(n.UsedMemoryBytes),
			cpuCap: n.CPUCores, memCap: float64(n.MemoryBytes),
			usable: !n.Drained && !n.Unavailable && n.CPUCores > 0 && n.MemoryBytes > 0,
		})
	}

	// Containers, in ID order.
	e.containers = make([]*Container, 0, len(v.Containers))
	for i := range v.Containers {
		e.containers = append(e.containers, &v.Containers[i])
	}
	slices.SortStableFunc(e.containers, func(a, b *Container) int { return cmp.Compare(a.ID, b.ID) })
	e.containers = slices.CompactFunc(e.containers, func(a, b *Container) bool {
		if a.ID == b.ID {
			e.problemf("duplicate container %q ignored", b.ID)
			return true
		}
		return false
	})
	counted := make([]int, len(e.nodes))
	for _, c := range e.containers {
		if ni, ok := e.nodeIdx[c.Node]; ok {
			counted[ni]++
		}
		for _, u := range c.Users {
			e.site(u.Site)
		}
	}
	for i := range e.nodes {
		e.nodes[i].count = e.nodes[i].node.ContainerCount
		if e.nodes[i].count == 0 {
			e.nodes[i].count = counted[i]
		}
	}

	// Paths. Sites are known now except those only named by site links.
	for _, l := range v.SiteLinks {
		e.site(l.From)
		e.site(l.To)
	}
	ns := len(e.sites)
	e.intra = v.IntraSiteRTT
	if e.intra <= 0 {
		e.intra = time.Millisecond
	}
	e.sitePaths = make([]pathInfo, ns*ns)
	for i := range e.sitePaths {
		e.sitePaths[i] = pathInfo{rtt: e.model.DefaultRTT}
		if i/ns == i%ns {
			e.sitePaths[i].rtt = e.intra
		}
	}
	for _, l := range v.SiteLinks {
		a, b := e.siteIdx[l.From], e.siteIdx[l.To]
		p := pathInfo{rtt: l.RTT, bandwidth: l.BandwidthBytesPerSec}
		e.sitePaths[a*ns+b] = p
		e.sitePaths[b*ns+a] = p
	}
	if len(v.Links) > 0 {
		// Node links as adjacency lists (CSR), in input order so that, as with a map,
		// the last link given for a pair wins.
		type nl struct{ a, b int }
		ends := make([]nl, 0, len(v.Links))
		e.linkStart = make([]int32, len(e.nodes)+1)
		for _, l := range v.Links {
			a, okA := e.nodeIdx[l.From]
			b, okB := e.nodeIdx[l.To]
			if !okA || !okB {
				ends = append(ends, nl{-1, -1})
				continue
			}
			ends = append(ends, nl{a, b})
			e.linkStart[a+1]++
			if a != b {
				e.linkStart[b+1]++
			}
		}
		for i := range e.nodes {
			e.linkStart[i+1] += e.linkStart[i]
		}
		e.linkAdj = make([]nodeLink, e.linkStart[len(e.nodes)])
		fill := slices.Clone(e.linkStart[:len(e.nodes)])
		for i, l := range v.Links {
			a, b := ends[i].a, ends[i].b
			if a < 0 {
				continue
			}
			p := pathInfo{rtt: l.RTT, bandwidth: l.BandwidthBytesPerSec}
			e.linkAdj[fill[a]] = nodeLink{peer: int32(b), p: p}
			fill[a]++
			if a != b {
				e.linkAdj[fill[b]] = nodeLink{peer: int32(a), p: p}
				fill[b]++
			}
		}
		e.linkStamp = make([]uint32, len(e.nodes))
		e.linkRow = make([]pathInfo, len(e.nodes))
		e.linkFor = -1
		e.hasLinks = true
	}

	// The ledger: in-flight migrations, last moves, departures.
	e.hist = map[string]*history{}
	for i := range ledger.Migrations {
		m := &ledger.Migrations[i]
		h := e.hist[m.Container]
		if h == nil {
			h = &history{}
			e.hist[m.Container] = h
		}
		at := m.Start
		if m.End.After(at) {
			at = m.End
		}
		if at.After(h.last) {
			h.last = at
		}
		from, okF := e.nodeIdx[m.From]
		to, okT := e.nodeIdx[m.To]
		if m.State.InFlight() {
			h.inflight = true
			h.inDoubt = h.inDoubt || m.State == StateInDoubt
			e.inflight++
			if okF && okT {
				if e.siteFlights == nil {
					e.siteFlights = map[[2]int]int{}
				}
				e.siteFlights[e.sitePair(from, to)]++
			}
			if okF {
				e.nodes[from].inflight++
			}
			if okT {
				e.nodes[to].inflight++
				// Reserve the container's load on the target until the view shows it
				// there, so that two evaluations do not fill the same node; on the
				// source the view counts it (MigrationRecord says why).
				if c := e.container(m.Container); c != nil {
					e.reserve(c, to)
				}
			}
		} else if m.State == StateCompleted && okF {
			h.left = append(h.left, departure{node: from, at: at})
		}
	}
}

// reserve holds c's CPU and memory on node t for a migration of c to t in flight, unless
// the view already shows c there: counted exactly once.
func (e *evaluation) reserve(c *Container, t int) {
	if c.Node == e.nodes[t].node.ID {
		return
	}
	e.nodes[t].cpu += c.CPU
	e.nodes[t].mem += float64(c.MemoryBytes)
}

func (e *evaluation) site(name string) int {
	if i, ok := e.siteIdx[name]; ok {
		return i
	}
	e.siteIdx[name] = len(e.sites)
	e.sites = append(e.sites, name)
	return len(e.sites) - 1
}

// nodeLink is one measured node link, seen from one of its ends.
type nodeLink struct {
	peer int32
	p    pathInfo
}

// path returns the network path between two nodes: the node link if measured, else the
// path between their sites, with the cost model's defaults for what is unknown.
func (e *evaluation) path(a, b int) pathInfo {
	if e.hasLinks {
		if e.linkFor != a {
			// Spread a's links over a dense row, stamped so that it needs no clearing.
			e.linkFor = a
			e.linkGen++
			for _, l := range e.linkAdj[e.linkStart[a]:e.linkStart[a+1]] {
				e.linkStamp[l.peer] = e.linkGen
				e.linkRow[l.peer] = l.p
			}
		}
		if e.linkStamp[b] == e.linkGen {
			return e.linkRow[b]
		}
	}
	return e.sitePaths[e.nodes[a].site*len(e.sites)+e.nodes[b].site]
}

// sharedPath is path(a, b) with the bandwidth the migrations in flight between the two
// nodes' sites leave: 1/(k+1) of it with k of them (in the ledger, or decided earlier in
// this evaluation), as concurrent transfers share a link.
func (e *evaluation) sharedPath(a, b int) pathInfo {
	p := e.path(a, b)
	if len(e.siteFlights) == 0 {
		return p
	}
	if k := e.siteFlights[e.sitePair(a, b)]; k > 0 {
		if p.bandwidth <= 0 {
			p.bandwidth = e.model.DefaultBandwidthBytesPerSec
		}
		p.bandwidth /= float64(k + 1)
	}
	return p
}

// sitePair is the unordered pair of the sites of nodes a and b.
func (e *evaluation) sitePair(a, b int) [2]int {
	sa, sb := e.nodes[a].site, e.nodes[b].site
	return [2]int{min(sa, sb), max(sa, sb)}
}

// userRTT is the weighted mean RTT from a node in site to the container's users.
func (e *evaluation) userRTT(c *Container, site int) time.Duration {
	var sum, w float64
	ns := len(e.sites)
	for _, u := range c.Users {
		if u.Weight <= 0 {
			continue
		}
		sum += u.Weight * float64(e.sitePaths[site*ns+e.siteIdx[u.Site]].rtt)
		w += u.Weight
	}
	if w == 0 {
		return 0
	}
	return time.Duration(sum / w)
}

func (e *evaluation) problemf(format string, args ...any) {
	if len(e.plan.Problems) < maxProblems {
		e.plan.Problems = append(e.plan.Problems, fmt.Sprintf(format, args...))
	}
}

// maxProblems bounds Plan.Problems: a view with thousands of bad entries needs the first
// few reported, not all.
const maxProblems = 100
