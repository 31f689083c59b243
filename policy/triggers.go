package policy

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
)

// The hysteresis of a trigger, for one subject, from the previous state and whether `when`
// and `until` hold now:
//
//	inactive, when false          -> inactive, Since cleared
//	inactive, when true           -> Since kept (or set to now); active once now-Since >= For
//	active,   until false         -> active (even if when is false: the gap between the two
//	                                 thresholds is where hysteresis lives)
//	active,   until true          -> inactive
//
// Without an until expression, "until" is "not when".
func step(prev ConditionState, t *Trigger, holds bool, normal func() bool, now time.Time) ConditionState {
	st := prev
	if st.Active {
		if normal() {
			st.Active = false
			st.ActiveSince = time.Time{}
			st.Since = time.Time{}
		}
		return st
	}
	if !holds {
		st.Since = time.Time{}
		return st
	}
	if st.Since.IsZero() || st.Since.After(now) {
		st.Since = now
	}
	if now.Sub(st.Since) >= t.For {
		st.Active = true
		st.ActiveSince = now
	}
	return st
}

type condKey struct{ trigger, subject string }

// evalTriggers steps every trigger for every subject, fills Plan.Conditions and returns the
// active triggers per managed container (by position in e.items).
func (e *evaluation) evalTriggers(ledger *Ledger) {
	ended := map[string][]time.Duration{}
	e.stats = make(map[string]ConditionStat, len(ledger.ConditionStats))
	for _, s := range ledger.ConditionStats {
		e.stats[s.Trigger] = s
	}
	prev := make(map[condKey]ConditionState, len(ledger.Conditions))
	for _, c := range ledger.Conditions {
		prev[condKey{c.Trigger, c.Subject}] = c
	}
	nodeMetrics := make([]NodeMetrics, len(e.nodes))
	for i := range e.nodes {
		n := &e.nodes[i]
		nodeMetrics[i] = NodeMetrics{
			ID: n.node.ID, Site: n.node.Site, Labels: n.node.Labels,
			CPU: n.cpuUtil(), Memory: n.memUtil(), Pressure: n.node.MemoryPressure,
			Containers: n.count, Drained: n.node.Drained,
			CPUCores: n.cpuCap, MemoryGiB: n.memCap / GiB,
		}
	}
	var blocks []condBlock
	for ti := range e.p.Triggers {
		blocks = append(blocks, condBlock{name: e.p.Triggers[ti].Name, start: len(e.plan.Conditions)})
		t := &e.p.Triggers[ti]
		when, until := t.when, t.until
		if when == nil {
			// A hand-built policy that was never compiled: compile here, on the side.
			var err error
			if when, err = compileExpr(t.When, t.Scope); err != nil {
				e.problemf("trigger %q: %v", t.Name, err)
				continue
			}
			if t.Until != "" {
				if until, err = compileExpr(t.Until, t.Scope); err != nil {
					e.problemf("trigger %q: %v", t.Name, err)
					continue
				}
			}
		}
		r := triggerRun{e: e, t: t, prev: prev, when: when, until: until}
		switch t.Scope {
		case ScopeContainer:
			// Every container is a subject: split them over goroutines, each with its own
			// VM, and gather the conditions and the first error in container order.
			workers := max(1, min(runtime.GOMAXPROCS(0), len(e.items)/triggersPerWorker))
			runs := make([]triggerRun, workers)
			chunk := (len(e.items) + workers - 1) / workers
			var wg sync.WaitGroup
			part := func(w int) []*item {
				return e.items[min(w*chunk, len(e.items)):min((w+1)*chunk, len(e.items))]
			}
			// Start the other workers first, then step the first chunk here.
			for w := 1; w < workers; w++ {
				runs[w] = r
				rw := &runs[w]
				rw.e = e.worker()
				p := part(w)
				wg.Go(func() { rw.containers(p, nodeMetrics) })
			}
			runs[0] = r
			runs[0].containers(part(0), nodeMetrics)
			wg.Wait()
			reported := false
			for w := range runs {
				e.plan.Conditions = append(e.plan.Conditions, runs[w].conds...)
				ended[t.Name] = append(ended[t.Name], runs[w].ended...)
				if runs[w].err != nil && !reported {
					reported = true
					e.problemf("trigger %q: %v", t.Name, runs[w].err)
				}
			}
		default:
			env := &nodeEnv{}
			r.env = env
			if !r.envByPointer() {
				r.env = nil
			}
			for i := range e.nodes {
				n := &e.nodes[i]
				env.Node = nodeMetrics[i]
				var boxed any
				if r.env == nil {
					boxed = *env
				}
				if active, age := r.record(n.node.ID, boxed); active {
					n.activeTriggers = append(n.activeTriggers, t.Name)
					if e.cbOn {
						n.horizon = max(n.horizon, e.conditionRemaining(t.Name, age))
					}
				}
			}
			e.plan.Conditions = append(e.plan.Conditions, r.conds...)
			ended[t.Name] = append(ended[t.Name], r.ended...)
			if r.err != nil {
				e.problemf("trigger %q: %v", t.Name, r.err)
			}
		}
	}
	e.sortConditions(blocks)
	if e.cbOn {
		e.learnConditions(ended)
	} else {
		e.plan.ConditionStats = slices.Clone(ledger.ConditionStats)
	}
}

// condBlock is the conditions one trigger added, from start on.
type condBlock struct {
	name  string
	start int
}

// sortConditions sorts Plan.Conditions by trigger and subject. Each trigger adds its
// subjects in ID order, so putting the triggers' blocks in name order is usually enough;
// when the result is then strictly increasing it is the only sorted order, and otherwise
// (triggers sharing a name) the conditions are sorted in full.
func (e *evaluation) sortConditions(blocks []condBlock) {
	conds := e.plan.Conditions
	compare := func(a, b ConditionState) int {
		return cmp.Or(cmp.Compare(a.Trigger, b.Trigger), cmp.Compare(a.Subject, b.Subject))
	}
	if len(blocks) > 1 {
		type span struct {
			name       string
			start, end int
		}
		spans := make([]span, len(blocks))
		for i, b := range blocks {
			end := len(conds)
			if i+1 < len(blocks) {
				end = blocks[i+1].start
			}
			spans[i] = span{b.name, b.start, end}
		}
		slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.name, b.name) })
		out := make([]ConditionState, 0, len(conds))
		for _, sp := range spans {
			out = append(out, conds[sp.start:sp.end]...)
		}
		increasing := true
		for i := 1; i < len(out) && increasing; i++ {
			increasing = compare(out[i-1], out[i]) < 0
		}
		if increasing {
			e.plan.Conditions = out
			return
		}
	}
	slices.SortFunc(conds, compare)
}

// triggerRun steps one trigger for its subjects.
type triggerRun struct {
	e           *evaluation
	t           *Trigger
	prev        map[condKey]ConditionState
	when, until *vm.Program
	err         error            // the first
	conds       []ConditionState // the subjects' conditions worth keeping, in order
	ended       []time.Duration  // how long the conditions that ended now lasted
	// env, when not nil, is a pointer to the subject's environment, reused from subject
	// to subject: the programs then run on it rather than on a copy boxed per subject.
	env any
}

// envByPointer reports whether the programs may run on a pointer to their environment:
// they read it only field by field ($env itself would show the pointer).
func (r *triggerRun) envByPointer() bool {
	for _, p := range []*vm.Program{r.when, r.until} {
		if p != nil && slices.Contains(p.Bytecode, vm.OpLoadEnv) {
			return false
		}
	}
	return true
}

func (r *triggerRun) run(prog *vm.Program, env any) bool {
	if r.env != nil {
		env = r.env
	}
	ok, err := r.e.runBool(prog, env)
	if err != nil && r.err == nil {
		r.err = err
	}
	return ok
}

// record steps the trigger for one subject, records its condition and reports whether
// the trigger is active for it, and for how long its `when` has held. A condition that
// ends is added to r.ended. env is used only when r.env is nil.
func (r *triggerRun) record(subject string, env any) (bool, time.Duration) {
	t, e := r.t, r.e
	k := condKey{t.Name, subject}
	p, ok := r.prev[k]
	if !ok {
		p = ConditionState{Trigger: t.Name, Subject: subject}
	}
	holds := r.run(r.when, env)
	st := p
	if st.Active {
		normal := !holds
		if r.until != nil {
			normal = r.run(r.until, env)
		}
		if normal {
			start := cmp.Or(st.Since, st.ActiveSince)
			if !start.IsZero() {
				r.ended = append(r.ended, e.now.Sub(start))
			}
			st.Active = false
			st.ActiveSince = time.Time{}
			st.Since = time.Time{}
		}
	} else {
		st = step(p, t, holds, nil, e.now)
	}
	if st.Active || !st.Since.IsZero() {
		r.conds = append(r.conds, st)
	}
	if !st.Active {
		return false, 0
	}
	return true, e.now.Sub(cmp.Or(st.Since, st.ActiveSince))
}

// triggersPerWorker is the fewest containers per extra goroutine stepping a container
// trigger.
const triggersPerWorker = 2048

// containers steps a container trigger for the containers of items.
func (r *triggerRun) containers(items []*item, nodeMetrics []NodeMetrics) {
	env := &containerEnv{}
	r.env = env
	if !r.envByPointer() {
		r.env = nil
	}
	for _, it := range items {
		if it.src < 0 {
			continue
		}
		*env = containerEnv{Node: nodeMetrics[it.src], Container: r.e.containerMetrics(it)}
		var boxed any
		if r.env == nil {
			boxed = *env
		}
		if active, age := r.record(it.c.ID, boxed); active {
			it.triggers = append(it.triggers, r.t.Name)
			if r.e.cbOn {
				it.horizon = max(it.horizon, r.e.conditionRemaining(r.t.Name, age))
			}
		}
	}
}

// runBool runs a boolean program on the evaluation's reused VM.
func (e *evaluation) runBool(prog *vm.Program, env any) (bool, error) {
	if prog == nil {
		return runBool(prog, env)
	}
	out, err := e.vm.Run(prog, env)
	if err != nil {
		e.vm = vm.VM{} // start afresh after a failure
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func (e *evaluation) containerMetrics(it *item) ContainerMetrics {
	c := it.c
	return ContainerMetrics{
		ID: c.ID, Name: c.Name, Image: c.Image, Labels: c.Labels,
		CPU: c.CPU, MemoryGiB: float64(c.MemoryBytes) / GiB,
		Downtime: e.model.Predict(c.MemoryBytes, 0, -1).Downtime.Seconds(),
		UserRTT:  float64(e.userRTT(c, e.nodes[it.src].site)) / float64(time.Millisecond),
	}
}
