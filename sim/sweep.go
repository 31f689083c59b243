package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/policy"
)

// ErrInvalidSweep is returned by ParseParam and Sweep for a malformed parameter grid.
var ErrInvalidSweep = errors.New("sim: invalid sweep")

// DefaultPolicyYAML is the policy file the simulator runs when none is given (and `sim
// suite` runs on every scenario): the cost-benefit rule in auto mode, with triggers so that
// only containers on busy or drained nodes, or far from their users, are scored. One policy
// for every kind of day: it was not tuned to one scenario (configs/scenarios, several
// seeds; see the README's figures).
const DefaultPolicyYAML = `apiVersion: godwit.io/v1
kind: Policy
metadata:
  name: sim-default
spec:
  mode: auto
  # Decide by cost and benefit in user-seconds (policy.CostBenefit): a move is made when
  # the harm it removes over the expected duration of the condition pays for its
  # downtime and fixed cost, by a margin. No downtime cap does the deciding.
  costBenefit:
    latencyTarget: 40ms
  objectives:
    evacuateDrained: 1
    # Among targets that harm no one, prefer the emptier: fewer moves later.
    balanceLoad: 0.2
  constraints:
    maxDowntime: 15m       # an operator's limit, not the cost model
    cooldown: 1h
    maxConcurrent: 4
  # Triggers only say which containers are worth scoring, and their conditions' durations
  # are what the engine learns how long a condition lasts from.
  triggers:
    - name: hot-node
      when: node.cpu > 0.7 || node.memory > 0.9
      until: node.cpu < 0.6 && node.memory < 0.8
      for: 1m
    - name: drained
      when: node.drained
    - name: far-users
      scope: container
      when: container.userRTT > 15
      until: container.userRTT < 8
      for: 5m
`

// Param is one swept policy field: a dotted path in the policy file and its values, e.g.
// spec.constraints.cooldown=5m,10m,30m.
type Param struct {
	Path   string
	Values []string
}

// ParseParam parses PATH=V1,V2,...
func ParseParam(s string) (Param, error) {
	path, vals, ok := strings.Cut(s, "=")
	if !ok || path == "" || vals == "" {
		return Param{}, fmt.Errorf("%w: %q: want PATH=V1,V2,... (e.g. spec.constraints.cooldown=5m,10m)", ErrInvalidSweep, s)
	}
	p := Param{Path: strings.TrimPrefix(path, ".")}
	for _, v := range strings.Split(vals, ",") {
		if v = strings.TrimSpace(v); v != "" {
			p.Values = append(p.Values, v)
		}
	}
	return p, nil
}

// DefaultSweepParams is the grid `godwit sim sweep` explores when given none: the overload
// threshold, cooldown, minimum improvement and maximum downtime (24 points).
func DefaultSweepParams() []Param {
	return []Param{
		{Path: "spec.objectives.overloadThreshold", Values: []string{"0.75", "0.9"}},
		{Path: "spec.constraints.cooldown", Values: []string{"5m", "15m", "1h"}},
		{Path: "spec.constraints.minImprovement", Values: []string{"0.02", "0.1"}},
		{Path: "spec.constraints.maxDowntime", Values: []string{"3s", "10s"}},
	}
}

// SweepConfig configures a sweep.
type SweepConfig struct {
	// BasePolicy is the policy file the grid modifies (DefaultPolicyYAML when empty).
	BasePolicy []byte
	Params     []Param
	// ParsePolicy turns a policy file into a policy (default policy.Parse).
	ParsePolicy func(name string, data []byte) (*policy.Policy, error)
	Model       policy.CostModel
	// Workers run grid points in parallel (default: all cores).
	Workers int
}

// SweepPoint is one grid point's outcome.
type SweepPoint struct {
	// Values are the swept values, in the order of the params.
	Values []string
	// PolicyFile is the policy file of this point.
	PolicyFile []byte
	Summary    Summary
	// Pareto marks points no other point beats on all of SLO violations, migrations and
	// downtime.
	Pareto bool
}

// Objectives a sweep can pick its best point by.
const (
	ObjectiveSLO        = "slo"
	ObjectiveMigrations = "migrations"
	ObjectiveDowntime   = "downtime"
	ObjectiveBalanced   = "balanced"
)

// Sweep runs the policy arm of the scenario at every point of the grid, on all cores, and
// marks the Pareto front of (SLO violation user-minutes, migrations, downtime). Points come
// in grid order, whatever the scheduling: the output is deterministic.
func Sweep(sc *Scenario, cfg SweepConfig) ([]SweepPoint, error) {
	if cfg.ParsePolicy == nil {
		cfg.ParsePolicy = policy.Parse
	}
	base := cfg.BasePolicy
	if len(base) == 0 {
		base = []byte(DefaultPolicyYAML)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("%w: base policy: %v", ErrInvalidSweep, err)
	}
	n := 1
	for _, p := range cfg.Params {
		if len(p.Values) == 0 {
			return nil, fmt.Errorf("%w: %s has no values", ErrInvalidSweep, p.Path)
		}
		n *= len(p.Values)
	}
	if n > 100_000 {
		return nil, fmt.Errorf("%w: %d grid points is too many", ErrInvalidSweep, n)
	}
	points := make([]SweepPoint, n)
	// Build every point's policy first, so that a bad value fails before any run.
	pols := make([]*policy.Policy, n)
	for i := range points {
		vals := make([]string, len(cfg.Params))
		k := i
		for j := len(cfg.Params) - 1; j >= 0; j-- {
			p := cfg.Params[j]
			vals[j] = p.Values[k%len(p.Values)]
			k /= len(p.Values)
		}
		file, err := setPaths(&doc, cfg.Params, vals)
		if err != nil {
			return nil, err
		}
		name := "sweep[" + strings.Join(vals, ",") + "]"
		pol, err := cfg.ParsePolicy(name, file)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidSweep, name, err)
		}
		points[i] = SweepPoint{Values: vals, PolicyFile: file}
		pols[i] = pol
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	jobs := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range jobs {
				r, err := RunPlanner(sc, Config{Policy: pols[i], Model: cfg.Model}, &PolicyPlanner{Policy: pols[i], Model: cfg.Model})
				if err != nil {
					errs[i] = err
					continue
				}
				points[i].Summary = r.Summary
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	markPareto(points)
	return points, nil
}

func sweepCosts(s Summary) [3]float64 {
	return [3]float64{s.SLOViolationUserMinutes, float64(s.Migrations), s.DowntimeS}
}

func markPareto(points []SweepPoint) {
	for i := range points {
		a := sweepCosts(points[i].Summary)
		points[i].Pareto = true
		for j := range points {
			b := sweepCosts(points[j].Summary)
			if i != j && b[0] <= a[0] && b[1] <= a[1] && b[2] <= a[2] && (b[0] < a[0] || b[1] < a[1] || b[2] < a[2]) {
				points[i].Pareto = false
				break
			}
		}
	}
}

// Best picks the point that is best for objective among the Pareto front: fewest SLO
// violations, fewest migrations or least downtime (each then by the other two), or
// (balanced) the least sum of the three costs each divided by its largest value on the
// front. Remaining ties go to the earlier grid point.
func Best(points []SweepPoint, objective string) (int, error) {
	var order [3]int
	switch objective {
	case ObjectiveSLO:
		order = [3]int{0, 1, 2}
	case ObjectiveMigrations:
		order = [3]int{1, 0, 2}
	case ObjectiveDowntime:
		order = [3]int{2, 0, 1}
	case ObjectiveBalanced:
	default:
		return -1, fmt.Errorf("%w: unknown objective %q (known: slo, migrations, downtime, balanced)", ErrInvalidSweep, objective)
	}
	var front []int
	for i, p := range points {
		if p.Pareto {
			front = append(front, i)
		}
	}
	if len(front) == 0 {
		return -1, fmt.Errorf("%w: no points", ErrInvalidSweep)
	}
	var maxc [3]float64
	for _, i := range front {
		c := sweepCosts(points[i].Summary)
		for k := range c {
			maxc[k] = max(maxc[k], c[k])
		}
	}
	balanced := func(i int) float64 {
		c := sweepCosts(points[i].Summary)
		var s float64
		for k := range c {
			if maxc[k] > 0 {
				s += c[k] / maxc[k]
			}
		}
		return s
	}
	less := func(a, b int) bool {
		if objective == ObjectiveBalanced {
			return balanced(a) < balanced(b)
		}
		ca, cb := sweepCosts(points[a].Summary), sweepCosts(points[b].Summary)
		for _, k := range order {
			if ca[k] != cb[k] {
				return ca[k] < cb[k]
			}
		}
		return false
	}
	sort.SliceStable(front, func(a, b int) bool { return less(front[a], front[b]) })
	return front[0], nil
}

// setPaths returns the policy document with each dotted path set to its value, creating
// mappings on the way.
func setPaths(doc *yaml.Node, params []Param, vals []string) ([]byte, error) {
	cp := cloneNode(doc)
	root := cp
	if root.Kind == yaml.DocumentNode {
		root = root.Content[0]
	}
	for i, p := range params {
		m := root
		keys := strings.Split(p.Path, ".")
		for ki, k := range keys {
			if m.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%w: %s: %s is not a mapping", ErrInvalidSweep, p.Path, strings.Join(keys[:ki], "."))
			}
			var next *yaml.Node
			for j := 0; j+1 < len(m.Content); j += 2 {
				if m.Content[j].Value == k {
					next = m.Content[j+1]
				}
			}
			last := ki == len(keys)-1
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				if last {
					next = &yaml.Node{Kind: yaml.ScalarNode}
				}
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, next)
			}
			if last {
				*next = yaml.Node{Kind: yaml.ScalarNode, Value: vals[i]}
			}
			m = next
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cp); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func cloneNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, ch := range n.Content {
		c.Content[i] = cloneNode(ch)
	}
	return &c
}

// WriteSweepCSV writes one row per grid point.
func WriteSweepCSV(w io.Writer, params []Param, points []SweepPoint) error {
	var b strings.Builder
	for _, p := range params {
		b.WriteString(p.Path + ",")
	}
	b.WriteString("pareto,slo_violation_user_min,slo_violation_rate,migrations,ping_pongs,downtime_s,bytes_moved,mean_imbalance,overloaded_node_min,latency_p95_ms\n")
	for _, p := range points {
		for _, v := range p.Values {
			b.WriteString(v + ",")
		}
		fmt.Fprintf(&b, "%t,%s,%s,%d,%d,%s,%d,%s,%s,%s\n", p.Pareto, ff(p.Summary.SLOViolationUserMinutes, 0), ff(p.Summary.SLOViolationRate, 5),
			p.Summary.Migrations, p.Summary.PingPongs, ff(p.Summary.DowntimeS, 2), p.Summary.BytesMoved, ff(p.Summary.MeanImbalance, 4),
			ff(p.Summary.OverloadedNodeMinutes, 0), ff(p.Summary.LatencyP95, 2))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
