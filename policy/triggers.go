package policy

import (
	"cmp"
	"slices"
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
	for ti := range e.p.Triggers {
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
		failed := false
		run := func(prog *vm.Program, env any) bool {
			ok, err := runBool(prog, env)
			if err != nil && !failed {
				failed = true
				e.problemf("trigger %q: %v", t.Name, err)
			}
			return ok
		}
		record := func(subject string, env any, activate func()) {
			k := condKey{t.Name, subject}
			p, ok := prev[k]
			if !ok {
				p = ConditionState{Trigger: t.Name, Subject: subject}
			}
			holds := run(when, env)
			st := step(p, t, holds, func() bool {
				if until == nil {
					return !holds
				}
				return run(until, env)
			}, e.now)
			if st.Active || !st.Since.IsZero() {
				e.plan.Conditions = append(e.plan.Conditions, st)
			}
			if st.Active {
				activate()
			}
		}
		switch t.Scope {
		case ScopeContainer:
			for _, it := range e.items {
				if it.src < 0 {
					continue
				}
				env := containerEnv{Node: nodeMetrics[it.src], Container: e.containerMetrics(it)}
				record(it.c.ID, env, func() { it.triggers = append(it.triggers, t.Name) })
			}
		default:
			for i := range e.nodes {
				n := &e.nodes[i]
				record(n.node.ID, nodeEnv{Node: nodeMetrics[i]}, func() {
					n.activeTriggers = append(n.activeTriggers, t.Name)
				})
			}
		}
	}
	slices.SortFunc(e.plan.Conditions, func(a, b ConditionState) int {
		return cmp.Or(cmp.Compare(a.Trigger, b.Trigger), cmp.Compare(a.Subject, b.Subject))
	})
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
