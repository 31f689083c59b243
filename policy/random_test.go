package policy

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// randomCluster builds a cluster of n nodes over n/10+1 sites and m managed containers
// (plus some unmanaged), with loads, labels, users, drains and a ledger, all from rng.
func randomCluster(rng *rand.Rand, n, m int) (ClusterView, Ledger) {
	sites := n/10 + 1
	var v ClusterView
	for i := range n {
		nd := Node{
			ID:          fmt.Sprintf("n%04d", i),
			Site:        fmt.Sprintf("s%02d", rng.IntN(sites)),
			CPUCores:    float64(int(4) << rng.IntN(3)),
			MemoryBytes: int64(8<<rng.IntN(3)) * GiB,
			Labels:      map[string]string{"zone": fmt.Sprintf("z%d", rng.IntN(3))},
		}
		if rng.IntN(4) == 0 {
			nd.Labels["gpu"] = "true"
		}
		nd.Drained = rng.IntN(30) == 0
		nd.Unavailable = rng.IntN(50) == 0
		nd.MemoryPressure = rng.Float64() * 0.3
		v.Nodes = append(v.Nodes, nd)
	}
	for a := range sites {
		for b := a + 1; b < sites; b++ {
			v.SiteLinks = append(v.SiteLinks, Link{From: fmt.Sprintf("s%02d", a), To: fmt.Sprintf("s%02d", b),
				RTT: time.Duration(2+rng.IntN(80)) * time.Millisecond, BandwidthBytesPerSec: float64(50+rng.IntN(200)) * 1e6})
		}
	}
	apps := []string{"web", "db", "cache", "video", "game"}
	for i := range m {
		nd := &v.Nodes[rng.IntN(n)]
		c := Container{
			ID:          fmt.Sprintf("c%05d", i),
			Node:        nd.ID,
			CPU:         0.05 + rng.Float64()*nd.CPUCores/8,
			MemoryBytes: int64((0.05 + rng.Float64()*0.6) * GiB),
			Labels:      map[string]string{LabelManaged: "true", "app": apps[rng.IntN(len(apps))]},
		}
		switch rng.IntN(40) {
		case 0:
			c.Labels[LabelNeverMigrate] = "true"
		case 1:
			c.Labels[LabelPin] = v.Nodes[rng.IntN(n)].ID
		case 2:
			c.Labels[LabelMaxDowntime] = "1500ms"
		case 3:
			delete(c.Labels, LabelManaged)
		case 4:
			c.Labels["role"] = "replica"
		}
		for range rng.IntN(3) {
			c.Users = append(c.Users, UserSite{Site: fmt.Sprintf("s%02d", rng.IntN(sites)), Weight: rng.Float64()})
		}
		v.Containers = append(v.Containers, c)
	}
	for i := range v.Nodes {
		nd := &v.Nodes[i]
		nd.UsedCPU = rng.Float64() * nd.CPUCores * 0.2 // system load
		nd.UsedMemoryBytes = int64(rng.Float64() * float64(nd.MemoryBytes) * 0.1)
	}
	idx := map[string]int{}
	for i, nd := range v.Nodes {
		idx[nd.ID] = i
	}
	for _, c := range v.Containers {
		nd := &v.Nodes[idx[c.Node]]
		nd.UsedCPU += c.CPU
		nd.UsedMemoryBytes += c.MemoryBytes
	}
	var l Ledger
	now := t0
	for i := range m / 20 {
		c := v.Containers[rng.IntN(m)]
		st := []MigrationState{StateCompleted, StateCompleted, StateFailed, StatePlanned, StateRestoring}[rng.IntN(5)]
		r := MigrationRecord{ID: fmt.Sprintf("m%d", i), Container: c.ID, From: v.Nodes[rng.IntN(n)].ID, To: c.Node,
			Start: now.Add(-time.Duration(rng.IntN(7200)) * time.Second), State: st}
		if !st.Terminal() && i >= 3 {
			st = StateCompleted // a few in flight, as in a calm cluster
		}
		r.State = st
		if st.Terminal() {
			r.End = r.Start.Add(5 * time.Second)
		} else {
			r.To = v.Nodes[rng.IntN(n)].ID
		}
		l.Migrations = append(l.Migrations, r)
	}
	return v, l
}

// randomPolicy returns a policy using every objective and constraint kind.
func randomPolicy(rng *rand.Rand) *Policy {
	p := DefaultPolicy()
	p.Mode = ModeAuto
	p.Objectives = Objectives{
		RelieveOverload: rng.Float64() * 2, OverloadThreshold: 0.6 + rng.Float64()*0.3,
		BalanceLoad: rng.Float64(), FollowUsers: rng.Float64(), EvacuateDrained: rng.Float64() * 2,
		Consolidate: rng.Float64() * 0.2,
	}
	p.Constraints.MaxConcurrent = 2 + rng.IntN(10)
	p.Constraints.MaxConcurrentPerNode = 1 + rng.IntN(2)
	p.Constraints.MaxMovesPerEvaluation = 1 + rng.IntN(20)
	p.Constraints.MaxMemoryBytes = int64(0.5 * GiB)
	p.Constraints.MinImprovement = rng.Float64() * 0.05
	p.Constraints.MaxDowntime = time.Duration(1+rng.IntN(10)) * time.Second
	if rng.IntN(2) == 0 {
		p.Triggers = []Trigger{{Name: "hot", Scope: ScopeNode, When: "node.cpu > 0.5 || node.memory > 0.5"}}
	}
	p.Placement = []PlacementRule{
		{Containers: Selector{MatchLabels: map[string]string{"app": "video"}},
			RequireNodes: &Selector{MatchLabels: map[string]string{"gpu": "true"}}},
		{Containers: Selector{MatchLabels: map[string]string{"role": "replica"}},
			AntiAffinity: []AffinityTerm{{Containers: Selector{MatchLabels: map[string]string{"role": "replica"}}, Topology: TopologyNode, Required: true}}},
		{Containers: Selector{MatchLabels: map[string]string{"app": "web"}},
			PreferNodes:  []NodePreference{{Nodes: Selector{MatchLabels: map[string]string{"zone": "z1"}}, Weight: 0.1}},
			AntiAffinity: []AffinityTerm{{Containers: Selector{MatchLabels: map[string]string{"app": "db"}}, Topology: TopologySite, Weight: 0.05}}},
	}
	if rng.IntN(2) == 0 {
		// The cost-benefit rule, with a fixed cost small enough that it moves things.
		p.CostBenefit = CostBenefit{Enabled: true, MoveCost: rng.Float64() * 100}
	}
	if err := p.Compile(); err != nil {
		panic(err)
	}
	return &p
}
