package sim

import (
	"cmp"
	"slices"
	"time"

	"github.com/godwit-io/godwit/policy"
)

// The stronger baselines: what an operator could run instead of godwit's engine without
// any cost model. Like ThresholdRebalancer they are not godwit's decision engine; they see
// the same view and ledger.

// LowNodeConfig configures the LowNodeUtilization baseline.
type LowNodeConfig struct {
	// A node with CPU or memory utilisation above Target is over-utilised; one with both
	// below Low is under-utilised and may take containers, up to Target.
	Low, Target float64
	// Cooldown is the least time between two moves of one container.
	Cooldown time.Duration
	// MaxMovesPerInterval bounds moves per decision.
	MaxMovesPerInterval int
}

// DefaultLowNodeConfig returns the descheduler's usual thresholds (20/50 are its
// examples; edge nodes run hotter, so 50/70), a 30 min cooldown and ten moves per interval.
func DefaultLowNodeConfig() LowNodeConfig {
	return LowNodeConfig{Low: 0.5, Target: 0.7, Cooldown: 30 * time.Minute, MaxMovesPerInterval: 10}
}

// LowNodeUtilization is the baseline the Kubernetes descheduler's LowNodeUtilization
// plugin gives, with a per-container cooldown: containers leave over-utilised nodes (CPU
// or memory) for the least loaded under-utilised node until the source is back under the
// target, the most CPU per byte moved first. It counts in-flight migrations' capacity on
// their targets, knows nothing of users, and has no cost model.
type LowNodeUtilization struct {
	Config LowNodeConfig
}

// Name implements Planner.
func (*LowNodeUtilization) Name() string { return ArmLowNode }

// Plan implements Planner.
func (b *LowNodeUtilization) Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult {
	cfg := b.Config
	st := newBaselineState(view, ledger, now, cfg.Cooldown)
	over := func(n int) bool { return st.cpu[n] > cfg.Target || st.mem[n] > cfg.Target }
	var sources []int
	for n := range view.Nodes {
		if !view.Nodes[n].Unavailable && over(n) {
			sources = append(sources, n)
		}
	}
	slices.SortFunc(sources, func(a, b int) int { return cmp.Or(cmp.Compare(st.cpu[b], st.cpu[a]), cmp.Compare(a, b)) })
	var out []policy.Decision
	for _, src := range sources {
		cs := st.movable(src)
		// Most CPU per byte moved first: the cheapest relief.
		slices.SortStableFunc(cs, func(a, b int) int {
			ca, cb := &view.Containers[a], &view.Containers[b]
			return cmp.Compare(cb.CPU/float64(max(cb.MemoryBytes, 1)), ca.CPU/float64(max(ca.MemoryBytes, 1)))
		})
		for _, ci := range cs {
			if len(out) >= cfg.MaxMovesPerInterval || !over(src) {
				break
			}
			c := &view.Containers[ci]
			dst := -1
			for n := range view.Nodes {
				if n == src || !st.usable(n) || st.cpu[n] >= cfg.Low || st.mem[n] >= cfg.Low {
					continue
				}
				cu, mu := st.after(n, c)
				if cu > cfg.Target || mu > cfg.Target {
					continue
				}
				if dst < 0 || st.cpu[n] < st.cpu[dst] {
					dst = n
				}
			}
			if dst < 0 {
				continue
			}
			out = append(out, st.move(ci, src, dst))
		}
	}
	return PlanResult{Decisions: out}
}

// FollowConfig configures the follow-the-users baseline.
type FollowConfig struct {
	// MinGain is the least drop in the users' weighted RTT worth a move.
	MinGain time.Duration
	// MaxUtil is the most CPU (and memory) utilisation a target may reach.
	MaxUtil float64
	// Cooldown is the least time between two moves of one container.
	Cooldown time.Duration
	// MaxMovesPerInterval bounds moves per decision.
	MaxMovesPerInterval int
}

// DefaultFollowConfig returns 10 ms (a quarter of a 40 ms budget), targets up to 80%, a
// 30 min cooldown and ten moves per interval.
func DefaultFollowConfig() FollowConfig {
	return FollowConfig{MinGain: 10 * time.Millisecond, MaxUtil: 0.8, Cooldown: 30 * time.Minute, MaxMovesPerInterval: 10}
}

// FollowUsers is a greedy follow-the-users baseline: each container goes to the least
// loaded node of the site with the lowest weighted RTT to its users, when that saves at
// least MinGain, the biggest saving first. It knows nothing of load beyond a target's
// room, and has no cost model.
type FollowUsers struct {
	Config FollowConfig
}

// Name implements Planner.
func (*FollowUsers) Name() string { return ArmFollow }

// Plan implements Planner.
func (b *FollowUsers) Plan(view *policy.ClusterView, ledger *policy.Ledger, now time.Time) PlanResult {
	cfg := b.Config
	st := newBaselineState(view, ledger, now, cfg.Cooldown)
	// RTT between sites, from the view's site links.
	sites := map[string]int{}
	var names []string
	site := func(s string) int {
		i, ok := sites[s]
		if !ok {
			i = len(names)
			sites[s] = i
			names = append(names, s)
		}
		return i
	}
	nodeSite := make([]int, len(view.Nodes))
	for n := range view.Nodes {
		nodeSite[n] = site(view.Nodes[n].Site)
	}
	for _, l := range view.SiteLinks {
		site(l.From)
		site(l.To)
	}
	for _, c := range view.Containers {
		for _, u := range c.Users {
			site(u.Site)
		}
	}
	intra := view.IntraSiteRTT
	if intra <= 0 {
		intra = time.Millisecond
	}
	const unknown = time.Hour
	rtt := make([][]time.Duration, len(names))
	for i := range rtt {
		rtt[i] = make([]time.Duration, len(names))
		for j := range rtt[i] {
			rtt[i][j] = unknown
		}
		rtt[i][i] = intra
	}
	for _, l := range view.SiteLinks {
		a, b := sites[l.From], sites[l.To]
		rtt[a][b], rtt[b][a] = l.RTT, l.RTT
	}
	weighted := func(c *policy.Container, s int) time.Duration {
		var sum, w float64
		for _, u := range c.Users {
			sum += u.Weight * float64(rtt[s][sites[u.Site]])
			w += u.Weight
		}
		if w == 0 {
			return 0
		}
		return time.Duration(sum / w)
	}
	type cand struct {
		ci, site int
		gain     time.Duration
	}
	var cands []cand
	for n := range view.Nodes {
		if view.Nodes[n].Unavailable {
			continue
		}
		for _, ci := range st.movable(n) {
			c := &view.Containers[ci]
			if len(c.Users) == 0 {
				continue
			}
			cur := weighted(c, nodeSite[n])
			best, bestRTT := -1, cur
			for s := range names {
				if r := weighted(c, s); r < bestRTT {
					best, bestRTT = s, r
				}
			}
			if best >= 0 && cur-bestRTT >= cfg.MinGain {
				cands = append(cands, cand{ci, best, cur - bestRTT})
			}
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Or(cmp.Compare(b.gain, a.gain), cmp.Compare(a.ci, b.ci)) })
	var out []policy.Decision
	for _, k := range cands {
		if len(out) >= cfg.MaxMovesPerInterval {
			break
		}
		c := &view.Containers[k.ci]
		src := st.idx[c.Node]
		dst := -1
		for n := range view.Nodes {
			if nodeSite[n] != k.site || n == src || !st.usable(n) {
				continue
			}
			if cu, mu := st.after(n, c); cu > cfg.MaxUtil || mu > cfg.MaxUtil {
				continue
			}
			if dst < 0 || st.cpu[n] < st.cpu[dst] {
				dst = n
			}
		}
		if dst >= 0 {
			out = append(out, st.move(k.ci, src, dst))
		}
	}
	return PlanResult{Decisions: out}
}

// baselineState is what the baselines track while planning: utilisations (with in-flight
// migrations' capacity held on their targets), which containers may move.
type baselineState struct {
	view     *policy.ClusterView
	idx      map[string]int
	cpu, mem []float64 // utilisation
	busy     map[string]bool
	byNode   [][]int
}

func newBaselineState(view *policy.ClusterView, ledger *policy.Ledger, now time.Time, cooldown time.Duration) *baselineState {
	st := &baselineState{view: view, idx: make(map[string]int, len(view.Nodes)), busy: map[string]bool{}}
	st.cpu = make([]float64, len(view.Nodes))
	st.mem = make([]float64, len(view.Nodes))
	st.byNode = make([][]int, len(view.Nodes))
	for i, n := range view.Nodes {
		st.idx[n.ID] = i
		st.cpu[i] = n.UsedCPU / n.CPUCores
		st.mem[i] = float64(n.UsedMemoryBytes) / float64(n.MemoryBytes)
	}
	byID := make(map[string]int, len(view.Containers))
	for ci, c := range view.Containers {
		byID[c.ID] = ci
		if n, ok := st.idx[c.Node]; ok {
			st.byNode[n] = append(st.byNode[n], ci)
		}
	}
	for _, m := range ledger.Migrations {
		last := m.Start
		if m.End.After(last) {
			last = m.End
		}
		if !m.State.Terminal() || now.Sub(last) < cooldown {
			st.busy[m.Container] = true
		}
		ci, okC := byID[m.Container]
		to, okN := st.idx[m.To]
		if m.State.Terminal() || !okC || !okN || view.Containers[ci].Node == m.To {
			continue
		}
		c := &view.Containers[ci]
		st.cpu[to] += c.CPU / view.Nodes[to].CPUCores
		st.mem[to] += float64(c.MemoryBytes) / float64(view.Nodes[to].MemoryBytes)
	}
	return st
}

// movable returns the managed containers of node n that may move now.
func (st *baselineState) movable(n int) []int {
	var out []int
	for _, ci := range st.byNode[n] {
		c := &st.view.Containers[ci]
		if c.Labels[policy.LabelManaged] != "true" || c.Labels[policy.LabelNeverMigrate] == "true" || st.busy[c.ID] {
			continue
		}
		out = append(out, ci)
	}
	return out
}

func (st *baselineState) usable(n int) bool {
	v := &st.view.Nodes[n]
	return !v.Unavailable && !v.Drained && v.CPUCores > 0 && v.MemoryBytes > 0
}

// after is node n's utilisation with c on it.
func (st *baselineState) after(n int, c *policy.Container) (float64, float64) {
	v := &st.view.Nodes[n]
	return st.cpu[n] + c.CPU/v.CPUCores, st.mem[n] + float64(c.MemoryBytes)/float64(v.MemoryBytes)
}

// move records a move of container ci from src to dst and returns its decision.
func (st *baselineState) move(ci, src, dst int) policy.Decision {
	c := &st.view.Containers[ci]
	s, d := &st.view.Nodes[src], &st.view.Nodes[dst]
	st.cpu[src] -= c.CPU / s.CPUCores
	st.mem[src] -= float64(c.MemoryBytes) / float64(s.MemoryBytes)
	st.cpu[dst] += c.CPU / d.CPUCores
	st.mem[dst] += float64(c.MemoryBytes) / float64(d.MemoryBytes)
	st.busy[c.ID] = true
	return policy.Decision{Container: c.ID, From: c.Node, To: d.ID}
}

var (
	_ Planner = (*LowNodeUtilization)(nil)
	_ Planner = (*FollowUsers)(nil)
)
