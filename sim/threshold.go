package sim

import (
	"sort"
	"time"

	"github.com/godwit-io/godwit/policy"
)

// ThresholdRebalancer is the baseline a descheduler-style tool gives (LowNodeUtilization):
// every interval, containers leave nodes above High for the least loaded node below Low,
// largest CPU first, until the source is under High. It knows no cooldown, no user
// locality and no cost beyond refusing a full target, which is what the policy is compared
// against. It is not godwit's decision engine.
type ThresholdRebalancer struct {
	Config ThresholdConfig
}

// Name implements Planner.
func (t *ThresholdRebalancer) Name() string { return ArmThreshold }

// Plan implements Planner.
func (t *ThresholdRebalancer) Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult {
	cfg := t.Config
	util := make([]float64, len(view.Nodes))
	memUsed := make([]float64, len(view.Nodes))
	idx := make(map[string]int, len(view.Nodes))
	for i, n := range view.Nodes {
		idx[n.ID] = i
		util[i] = n.UsedCPU / n.CPUCores
		memUsed[i] = float64(n.UsedMemoryBytes)
	}
	inFlight := map[string]bool{}
	for _, m := range ledger.Migrations {
		if !m.State.Terminal() {
			inFlight[m.Container] = true
		}
	}
	// The view shows what runs on each node; an in-flight migration also holds its
	// container's capacity on the target (as the decision engine reserves it).
	if len(inFlight) > 0 {
		byID := make(map[string]int, len(view.Containers))
		for ci, c := range view.Containers {
			byID[c.ID] = ci
		}
		for _, m := range ledger.Migrations {
			ci, okC := byID[m.Container]
			ni, okN := idx[m.To]
			if m.State.Terminal() || !okC || !okN || view.Containers[ci].Node == m.To {
				continue
			}
			util[ni] += view.Containers[ci].CPU / view.Nodes[ni].CPUCores
			memUsed[ni] += float64(view.Containers[ci].MemoryBytes)
		}
	}
	// Containers of each overloaded node, largest CPU first.
	byNode := map[int][]int{}
	for ci, c := range view.Containers {
		ni, ok := idx[c.Node]
		if !ok || view.Nodes[ni].Unavailable || inFlight[c.ID] || util[ni] <= cfg.High {
			continue
		}
		if c.Labels[policy.LabelManaged] != "true" || c.Labels[policy.LabelNeverMigrate] == "true" {
			continue
		}
		byNode[ni] = append(byNode[ni], ci)
	}
	sources := make([]int, 0, len(byNode))
	for ni := range byNode {
		sources = append(sources, ni)
	}
	sort.Slice(sources, func(i, j int) bool {
		a, b := sources[i], sources[j]
		return util[a] > util[b] || util[a] == util[b] && a < b
	})
	var out []policy.Decision
	for _, src := range sources {
		cs := byNode[src]
		sort.SliceStable(cs, func(i, j int) bool { return view.Containers[cs[i]].CPU > view.Containers[cs[j]].CPU })
		for _, ci := range cs {
			if len(out) >= cfg.MaxMovesPerInterval || util[src] <= cfg.High {
				break
			}
			c := view.Containers[ci]
			dst := -1
			for ni, n := range view.Nodes {
				if ni == src || n.Unavailable || n.Drained || util[ni] >= cfg.Low {
					continue
				}
				if util[ni]+c.CPU/n.CPUCores > cfg.High || memUsed[ni]+float64(c.MemoryBytes) > float64(n.MemoryBytes) {
					continue
				}
				if dst < 0 || util[ni] < util[dst] {
					dst = ni
				}
			}
			if dst < 0 {
				break
			}
			// The simulator predicts the cost from the link it models.
			out = append(out, policy.Decision{Container: c.ID, From: c.Node, To: view.Nodes[dst].ID})
			util[src] -= c.CPU / view.Nodes[src].CPUCores
			util[dst] += c.CPU / view.Nodes[dst].CPUCores
			memUsed[dst] += float64(c.MemoryBytes)
		}
	}
	return PlanResult{Decisions: out}
}

var _ Planner = (*ThresholdRebalancer)(nil)
