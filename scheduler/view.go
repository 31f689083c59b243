package scheduler

import (
	"sort"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// LabelPostCopy is the node label an agent gossips as "true" when its migration runtime
// passed the post-copy pre-flight at start (migrate.PostCopier.CheckPostCopy): BuildView
// marks every other node policy.Node.NoPostCopy, so a move is by post-copy only when both
// its nodes said they can.
const LabelPostCopy = "godwit.io/post-copy"

// ViewInputs is what the replicated state adds to the gossiped cluster when the leader
// builds the decision engine's view.
type ViewInputs struct {
	// Drained nodes (by name), as recorded through raft; a node's own drain flag counts too.
	Drained map[string]bool
	// Users are where each workload's users are (`godwit users set`), by workload identity;
	// they override the sites a container reports itself.
	Users map[string][]policy.UserSite
	// Owners is the ledger's owner of each workload: when gossip shows a workload on two
	// nodes (a stale inventory), the owner's copy is the one that counts.
	Owners map[string]string
}

// sitePairSample bounds the nodes per site whose coordinates are compared when a site pair's
// RTT is estimated: the median of up to sitePairSample² node pairs is plenty, and it keeps
// the view's cost linear in the cluster's size instead of quadratic.
const sitePairSample = 8

// BuildView turns the gossiped cluster into policy.ClusterView: nodes with their site,
// capacity and load (a node that is not alive, or whose inventory is stale, is Unavailable:
// nothing moves onto or off it), containers keyed by workload identity (the
// godwit.io/workload label, else the container ID, so a workload keeps its ID across moves),
// unmanaged containers included (placement rules count them), nodes that did not gossip
// LabelPostCopy=true marked NoPostCopy, and links between sites: the
// median RTT of node pairs from Vivaldi coordinates, and the median measured bandwidth. It is
// a pure function of its inputs.
func BuildView(g gossip.ClusterView, in ViewInputs) policy.ClusterView {
	var view policy.ClusterView
	sites := map[string][]gossip.NodeView{}
	seen := map[string]int{} // workload → index in view.Containers
	nodes := append([]gossip.NodeView(nil), g.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	for _, n := range nodes {
		site := n.Labels[gossip.LabelSite]
		pn := policy.Node{
			ID: n.Name, Site: site, Labels: copyLabels(n.Labels),
			CPUCores: n.Load.CPUCapacity, MemoryBytes: int64(n.Load.MemoryCapacity),
			UsedCPU: n.Load.CPUCores, UsedMemoryBytes: int64(n.Load.MemoryBytes), MemoryPressure: n.Load.MemoryPressure,
			Drained:        n.Drain || in.Drained[n.Name],
			Unavailable:    n.Status != gossip.StatusAlive || n.InventoryStale,
			ContainerCount: len(n.Containers),
			NoPostCopy:     n.Labels[LabelPostCopy] != "true",
		}
		view.Nodes = append(view.Nodes, pn)
		if n.Status == gossip.StatusAlive {
			sites[site] = append(sites[site], n)
		}
		for _, c := range n.Containers {
			id := c.Labels[migrate.LabelWorkload]
			if id == "" {
				id = c.ID
			}
			pc := policy.Container{ID: id, Name: c.Name, Node: n.Name, Image: c.Image, MemoryBytes: int64(c.MemoryBytes),
				CPU: c.CPUCores, Labels: copyLabels(c.Labels), Users: usersOf(id, c, in.Users)}
			if i, dup := seen[id]; dup {
				if owner := in.Owners[id]; owner == n.Name {
					view.Containers[i] = pc
				}
				continue
			}
			seen[id] = len(view.Containers)
			view.Containers = append(view.Containers, pc)
		}
	}
	view.SiteLinks, view.IntraSiteRTT = siteLinks(g, sites)
	return view
}

// usersOf is where a container's users are, by precedence: the sites recorded through the
// API (newer information, reported as users move), else its godwit.io/user-sites label
// (set when the container was deployed; an invalid label counts as none, and the agent
// that runs the container logs why), else the sites gossip carries for it, weight 1 each.
func usersOf(id string, c gossip.Container, set map[string][]policy.UserSite) []policy.UserSite {
	if u, ok := set[id]; ok {
		return append([]policy.UserSite(nil), u...)
	}
	if v, ok := c.Labels[policy.LabelUserSites]; ok {
		u, _ := policy.ParseUserSites(v)
		return u
	}
	var out []policy.UserSite
	for _, s := range c.UserSites {
		out = append(out, policy.UserSite{Site: s, Weight: 1})
	}
	return out
}

// siteLinks estimates each pair of sites' RTT (median over sampled node pairs) and
// bandwidth (median of the estimates measured between their nodes), and the RTT within a
// site (median over all sites' sampled pairs; 0 when unknown).
func siteLinks(g gossip.ClusterView, sites map[string][]gossip.NodeView) ([]policy.Link, time.Duration) {
	names := make([]string, 0, len(sites))
	for s, ns := range sites {
		names = append(names, s)
		if len(ns) > sitePairSample {
			sites[s] = ns[:sitePairSample] // already sorted by name: the same sample every time
		}
	}
	sort.Strings(names)
	bw := map[[2]string]float64{}
	for _, n := range g.Nodes {
		for _, l := range n.Links {
			bw[[2]string{n.Name, l.Peer}] = l.BytesPerSecond
		}
	}
	var links []policy.Link
	var intra []time.Duration
	for i, a := range names {
		for _, b := range names[i:] {
			var rtts []time.Duration
			var bws []float64
			for _, na := range sites[a] {
				for _, nb := range sites[b] {
					if na.Name == nb.Name {
						continue
					}
					if na.Coordinate != nil && nb.Coordinate != nil && na.Coordinate.IsCompatibleWith(nb.Coordinate) {
						rtts = append(rtts, na.Coordinate.DistanceTo(nb.Coordinate))
					}
					if v, ok := bw[[2]string{na.Name, nb.Name}]; ok && v > 0 {
						bws = append(bws, v)
					} else if v, ok := bw[[2]string{nb.Name, na.Name}]; ok && v > 0 {
						bws = append(bws, v)
					}
				}
			}
			if a == b {
				intra = append(intra, rtts...)
				continue
			}
			if len(rtts) == 0 && len(bws) == 0 {
				continue
			}
			links = append(links, policy.Link{From: a, To: b, RTT: median(rtts), BandwidthBytesPerSec: medianFloat(bws)})
		}
	}
	return links, median(intra)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func medianFloat(f []float64) float64 {
	if len(f) == 0 {
		return 0
	}
	sort.Float64s(f)
	return f[len(f)/2]
}

func copyLabels(l map[string]string) map[string]string {
	if l == nil {
		return nil
	}
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}
