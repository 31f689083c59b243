package policy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/internal/yamlstrict"
)

// Parse reads a policy file (YAML, apiVersion godwit.io/v1, kind Policy), strictly: unknown
// fields, wrong types and invalid values are errors. It returns the validated, defaulted
// and compiled Policy, or an Errors listing every problem as file:line:col (name is used
// only in messages). It reads nothing but data.
func Parse(name string, data []byte) (*Policy, error) {
	d := newDecoder(name)
	doc := d.Load(data, "a policy with apiVersion "+APIVersion+" and kind "+KindPolicy)
	if doc == nil {
		return nil, policyErrors(d)
	}
	var f FileV1
	d.Decode(doc, &f, "")
	if d.Len() > 0 && doc.Kind != yaml.MappingNode {
		return nil, policyErrors(d)
	}
	c := &converter{d: d, src: data}
	p := c.convert(&f)
	if err := policyErrors(d); err != nil {
		return nil, err
	}
	return p, nil
}

// converter validates the decoded wire types and converts them into a Policy, starting
// from DefaultPolicy for everything the file leaves out.
type converter struct {
	d   *yamlstrict.Decoder
	src []byte
}

// errorf reports a problem at path, placed at the path's node or, when the file does not
// have it, at its nearest ancestor's; nothing when the decoder already said what is wrong
// there.
func (c *converter) errorf(path, format string, args ...any) {
	if c.d.Failed(path) {
		return
	}
	c.d.Errorf(yamlstrict.Nearest(c.d.Values, path), path, format, args...)
}

// missing reports a required field absent at path.
func (c *converter) missing(path, what string) {
	c.errorf(path, "missing %s", what)
}

var triggerNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func (c *converter) convert(f *FileV1) *Policy {
	p := DefaultPolicy()
	switch f.APIVersion {
	case APIVersion:
	case "":
		c.missing(".apiVersion", "apiVersion: want "+APIVersion)
	default:
		c.errorf(".apiVersion", "unsupported apiVersion %q: want %s", f.APIVersion, APIVersion)
	}
	switch f.Kind {
	case KindPolicy:
	case "":
		c.missing(".kind", "kind: want "+KindPolicy)
	default:
		c.errorf(".kind", "kind %q: want %s", f.Kind, KindPolicy)
	}
	p.Name = f.Metadata.Name
	s := &f.Spec
	const sp = ".spec"
	if s.Mode != nil {
		switch m := Mode(*s.Mode); m {
		case ModeOff, ModeRecommend, ModeAuto:
			p.Mode = m
		default:
			c.errorf(sp+".mode", "mode %q: want off, recommend or auto", *s.Mode)
		}
	}
	if s.Interval != nil {
		if s.Interval.Duration < time.Second {
			c.errorf(sp+".interval", "interval %s: want at least 1s", s.Interval.Duration)
		} else {
			p.Interval = s.Interval.Duration
		}
	}
	if s.Selector != nil {
		p.Selector = c.selector(*s.Selector, sp+".selector")
	}
	names := map[string]bool{}
	for i, t := range s.Triggers {
		path := fmt.Sprintf("%s.triggers[%d]", sp, i)
		p.Triggers = append(p.Triggers, c.trigger(t, path, names))
	}
	if s.Objectives != nil {
		p.Objectives = c.objectives(*s.Objectives, sp+".objectives")
	}
	if s.Constraints != nil {
		c.constraints(*s.Constraints, sp+".constraints", &p.Constraints)
	}
	for i, r := range s.Placement {
		p.Placement = append(p.Placement, c.placement(r, fmt.Sprintf("%s.placement[%d]", sp, i)))
	}
	if s.Windows != nil {
		p.Windows = c.windows(*s.Windows, sp+".windows")
	}
	if s.CostBenefit != nil {
		p.CostBenefit = c.costBenefit(*s.CostBenefit, sp+".costBenefit").withDefaults()
	}
	if s.ExplainCandidates != nil {
		if n := *s.ExplainCandidates; n < 1 || n > 100 {
			c.errorf(sp+".explainCandidates", "explainCandidates %d: want 1 to 100", n)
		} else {
			p.ExplainCandidates = n
		}
	}
	return &p
}

func (c *converter) trigger(t TriggerV1, path string, names map[string]bool) Trigger {
	out := Trigger{Name: t.Name, Scope: ScopeNode, When: t.When, Until: t.Until}
	switch {
	case t.Name == "":
		c.missing(path+".name", "trigger name")
	case !triggerNameRE.MatchString(t.Name):
		c.errorf(path+".name", "trigger name %q: want lower-case letters, digits and dashes", t.Name)
	case names[t.Name]:
		c.errorf(path+".name", "trigger name %q used twice", t.Name)
	}
	names[t.Name] = true
	if t.Scope != nil {
		switch sc := Scope(*t.Scope); sc {
		case ScopeNode, ScopeContainer:
			out.Scope = sc
		default:
			c.errorf(path+".scope", "scope %q: want node or container", *t.Scope)
		}
	}
	if t.For != nil {
		out.For = t.For.Duration
	}
	if strings.TrimSpace(t.When) == "" {
		c.missing(path+".when", "when: the trigger's condition")
	} else {
		out.when = c.compile(t.When, out.Scope, path+".when")
	}
	if t.Until != "" {
		out.until = c.compile(t.Until, out.Scope, path+".until")
	}
	return out
}

// compile compiles an expression, placing an error at its position inside the file.
func (c *converter) compile(src string, scope Scope, path string) *vm.Program {
	prog, err := compileExpr(src, scope)
	if err == nil {
		return prog
	}
	var ee *ExprError
	n := c.d.Values[path]
	if !errors.As(err, &ee) || n == nil {
		c.errorf(path, "%v", err)
		return nil
	}
	line, col := c.exprPos(n, ee.Line, ee.Column)
	msg := strings.TrimSpace(strings.SplitN(ee.Msg, "\n", 2)[0])
	c.d.ErrorAt(line, col, path, "in expression: %s", msg)
	return nil
}

// exprPos maps a position inside an expression to the file: plain and quoted scalars start
// at the node's column (plus the quote); block scalars (| and >) start on the next line at
// the block's indentation.
func (c *converter) exprPos(n *yaml.Node, line, col int) (int, int) {
	if line <= 0 {
		return n.Line, n.Column
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The block's content loses the indentation of its first line.
		return n.Line + line, c.indent(n.Line+1) + col
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 1 {
			return n.Line, n.Column + col
		}
	default:
		if line == 1 {
			return n.Line, n.Column + col - 1
		}
	}
	fl := n.Line + line - 1
	return fl, c.indent(fl) + col
}

// indent is the number of leading spaces of a 1-based line of the source.
func (c *converter) indent(line int) int {
	lines := bytes.SplitN(c.src, []byte("\n"), line+1)
	if line-1 >= len(lines) {
		return 0
	}
	l := lines[line-1]
	return len(l) - len(bytes.TrimLeft(l, " "))
}

func (c *converter) weight(v *float64, path string) float64 {
	if v == nil {
		return 0
	}
	if *v < 0 {
		c.errorf(path, "weight %g: want 0 or more", *v)
		return 0
	}
	return *v
}

func (c *converter) objectives(o ObjectivesV1, path string) Objectives {
	out := Objectives{
		RelieveOverload:   c.weight(o.RelieveOverload, path+".relieveOverload"),
		OverloadThreshold: defaultOverloadThreshold,
		BalanceLoad:       c.weight(o.BalanceLoad, path+".balanceLoad"),
		FollowUsers:       c.weight(o.FollowUsers, path+".followUsers"),
		EvacuateDrained:   c.weight(o.EvacuateDrained, path+".evacuateDrained"),
		Consolidate:       c.weight(o.Consolidate, path+".consolidate"),
	}
	if o.OverloadThreshold != nil {
		if t := *o.OverloadThreshold; t <= 0 || t > 1 {
			c.errorf(path+".overloadThreshold", "overloadThreshold %g: want more than 0 and at most 1", t)
		} else {
			out.OverloadThreshold = t
		}
	}
	return out
}

func (c *converter) costBenefit(v CostBenefitV1, path string) CostBenefit {
	out := CostBenefit{Enabled: true}
	dur := func(d *Duration, name string, dst *time.Duration) {
		if d == nil {
			return
		}
		if d.Duration <= 0 {
			c.errorf(path+"."+name, "%s %s: want more than 0", name, d.Duration)
			return
		}
		*dst = d.Duration
	}
	nonNeg := func(f *float64, name string, dst *float64) {
		if f == nil {
			return
		}
		if *f < 0 {
			c.errorf(path+"."+name, "%s %g: want 0 or more", name, *f)
			return
		}
		*dst = *f
	}
	dur(v.LatencyTarget, "latencyTarget", &out.LatencyTarget)
	dur(v.ServiceTime, "serviceTime", &out.ServiceTime)
	dur(v.Horizon, "horizon", &out.Horizon)
	dur(v.MaxHorizon, "maxHorizon", &out.MaxHorizon)
	if v.OutageWeight != nil {
		if *v.OutageWeight < 1 {
			c.errorf(path+".outageWeight", "outageWeight %g: want 1 or more (an outage harms at least as much as slowness)", *v.OutageWeight)
		} else {
			out.OutageWeight = *v.OutageWeight
		}
	}
	nonNeg(v.Dependents, "dependents", &out.Dependents)
	nonNeg(v.MoveCost, "moveCost", &out.MoveCost)
	nonNeg(v.TransferCost, "transferCost", &out.TransferCost)
	nonNeg(v.Margin, "margin", &out.Margin)
	nonNeg(v.MinBenefit, "minBenefit", &out.MinBenefit)
	nonNeg(v.ScoreValue, "scoreValue", &out.ScoreValue)
	if v.ServiceTime != nil && v.LatencyTarget != nil && out.ServiceTime >= out.LatencyTarget {
		c.errorf(path+".serviceTime", "serviceTime %s: want less than latencyTarget %s", out.ServiceTime, out.LatencyTarget)
	}
	if v.Horizon != nil && v.MaxHorizon != nil && out.Horizon > out.MaxHorizon {
		c.errorf(path+".horizon", "horizon %s: want at most maxHorizon %s", out.Horizon, out.MaxHorizon)
	}
	return out
}

func (c *converter) constraints(k ConstraintsV1, path string, out *Constraints) {
	dur := func(v *Duration, dst *time.Duration) {
		if v != nil {
			*dst = v.Duration
		}
	}
	count := func(v *int, name string, dst *int) {
		if v == nil {
			return
		}
		if *v < 0 {
			c.errorf(path+"."+name, "%s %d: want 0 (no limit) or more", name, *v)
			return
		}
		*dst = *v
	}
	nonNeg := func(v *float64, name string, dst *float64) {
		if v == nil {
			return
		}
		if *v < 0 {
			c.errorf(path+"."+name, "%s %g: want 0 or more", name, *v)
			return
		}
		*dst = *v
	}
	share := func(v *float64, name string, dst *float64) {
		if v == nil {
			return
		}
		if *v < 0 || *v >= 1 {
			c.errorf(path+".headroom."+name, "headroom %s %g: want at least 0 and less than 1", name, *v)
			return
		}
		*dst = *v
	}
	dur(k.MaxDowntime, &out.MaxDowntime)
	if k.MaxMemory != nil {
		out.MaxMemoryBytes = int64(*k.MaxMemory)
	}
	count(k.MaxConcurrent, "maxConcurrent", &out.MaxConcurrent)
	count(k.MaxConcurrentPerNode, "maxConcurrentPerNode", &out.MaxConcurrentPerNode)
	count(k.MaxMovesPerEvaluation, "maxMovesPerEvaluation", &out.MaxMovesPerEvaluation)
	dur(k.Cooldown, &out.Cooldown)
	dur(k.PingPongWindow, &out.PingPongWindow)
	nonNeg(k.MinImprovement, "minImprovement", &out.MinImprovement)
	nonNeg(k.DowntimeCost, "downtimeCost", &out.DowntimeCost)
	if k.Headroom != nil {
		share(k.Headroom.CPU, "cpu", &out.HeadroomCPU)
		share(k.Headroom.Memory, "memory", &out.HeadroomMemory)
	}
	if k.Method != nil {
		c.method(*k.Method, path+".method", &out.Method)
	}
}

// methodNames are the values of constraints.method, in the order messages list them.
var methodNames = []string{MethodAuto, MethodStopAndCopy, MethodPostCopy}

// method checks a migration method name, suggesting the nearest on a near miss.
func (c *converter) method(m, path string, dst *string) {
	if slices.Contains(methodNames, m) {
		*dst = m
		return
	}
	if s := yamlstrict.Closest(m, methodNames); s != "" {
		c.errorf(path, "method %q: want auto, stop-and-copy or post-copy; did you mean %q?", m, s)
		return
	}
	c.errorf(path, "method %q: want auto, stop-and-copy or post-copy", m)
}

func (c *converter) selector(s SelectorV1, path string) Selector {
	out := Selector{MatchLabels: s.MatchLabels}
	for i, r := range s.MatchExpressions {
		rp := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		if r.Key == "" {
			c.missing(rp+".key", "key")
		}
		op := Operator(r.Operator)
		switch op {
		case OpIn, OpNotIn:
			if len(r.Values) == 0 {
				c.missing(rp+".values", "values: "+r.Operator+" needs at least one")
			}
		case OpExists, OpDoesNotExist:
			if len(r.Values) > 0 {
				c.errorf(rp+".values", "values: %s takes none", r.Operator)
			}
		case "":
			c.missing(rp+".operator", "operator: want In, NotIn, Exists or DoesNotExist")
		default:
			c.errorf(rp+".operator", "operator %q: want In, NotIn, Exists or DoesNotExist", r.Operator)
		}
		out.MatchExpressions = append(out.MatchExpressions, Requirement{Key: r.Key, Operator: op, Values: r.Values})
	}
	return out
}

func (c *converter) placement(r PlacementRuleV1, path string) PlacementRule {
	out := PlacementRule{Containers: c.selector(r.Containers, path+".containers")}
	if r.RequireNodes != nil {
		s := c.selector(*r.RequireNodes, path+".requireNodes")
		out.RequireNodes = &s
	}
	for i, pn := range r.PreferNodes {
		pp := fmt.Sprintf("%s.preferNodes[%d]", path, i)
		out.PreferNodes = append(out.PreferNodes, NodePreference{Nodes: c.selector(pn.Nodes, pp+".nodes"), Weight: pn.Weight})
	}
	terms := func(list []AffinityTermV1, name string) []AffinityTerm {
		var ts []AffinityTerm
		for i, a := range list {
			ap := fmt.Sprintf("%s.%s[%d]", path, name, i)
			t := AffinityTerm{Containers: c.selector(a.Containers, ap+".containers"),
				Topology: TopologyNode, Required: a.Required, Weight: a.Weight}
			if a.Topology != nil {
				switch tp := Topology(*a.Topology); tp {
				case TopologyNode, TopologySite:
					t.Topology = tp
				default:
					c.errorf(ap+".topology", "topology %q: want node or site", *a.Topology)
				}
			}
			if a.Weight < 0 {
				c.errorf(ap+".weight", "weight %g: want 0 or more", a.Weight)
			}
			if t.Containers.Empty() {
				c.errorf(ap+".containers", "an affinity term needs a non-empty containers selector")
			}
			ts = append(ts, t)
		}
		return ts
	}
	out.Affinity = terms(r.Affinity, "affinity")
	out.AntiAffinity = terms(r.AntiAffinity, "antiAffinity")
	return out
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (c *converter) windows(w WindowsV1, path string) Windows {
	out := Windows{Location: time.UTC}
	if w.Timezone != "" {
		// Time zones come from the system's or Go's embedded zone database; a name with
		// path separators is refused before any lookup.
		if strings.ContainsAny(w.Timezone, `\`) || strings.Contains(w.Timezone, "..") {
			c.errorf(path+".timezone", "unknown time zone %q", w.Timezone)
		} else if loc, err := time.LoadLocation(w.Timezone); err != nil {
			c.errorf(path+".timezone", "unknown time zone %q", w.Timezone)
		} else {
			out.Location = loc
		}
	}
	conv := func(list []WindowV1, name string) []Window {
		var ws []Window
		for i, x := range list {
			wp := fmt.Sprintf("%s.%s[%d]", path, name, i)
			var win Window
			for j, d := range x.Days {
				wd, ok := weekdays[strings.ToLower(d)]
				if !ok {
					c.errorf(fmt.Sprintf("%s.days[%d]", wp, j), "day %q: want mon, tue, wed, thu, fri, sat or sun", d)
					continue
				}
				win.Days = append(win.Days, wd)
			}
			win.Start = c.clock(x.Start, wp+".start", false)
			win.End = c.clock(x.End, wp+".end", true)
			ws = append(ws, win)
		}
		return ws
	}
	out.Allow = conv(w.Allow, "allow")
	out.Forbid = conv(w.Forbid, "forbid")
	return out
}

// clock parses HH:MM (24:00 allowed for an end).
func (c *converter) clock(s, path string, end bool) time.Duration {
	if s == "" {
		c.missing(path, "time: want HH:MM")
		return 0
	}
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	maxH := 23
	if end {
		maxH = 24
	}
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > maxH || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		c.errorf(path, "time %q: want HH:MM, 00:00 to 23:59", s)
		return 0
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute
}
