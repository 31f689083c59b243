package scheduler

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/godwit-io/godwit/policy"
)

// FuzzApply feeds random bytes to Apply as a raft log entry, against a state holding a
// migration in every kind of phase: Apply must never panic, the state must keep its
// invariants, and a refused entry (or one that changed nothing) must leave the state as
// it was. Accepted entries are then applied a second time, which must be refused or
// change nothing, except for the few commands that are not idempotent.
func FuzzApply(f *testing.F) {
	base := busyFSM(f)
	for _, c := range []testCmd{
		{typ: TypeApplyPolicy, p: ApplyPolicy{Source: testPolicy}},
		planCmd("m-9", "cache", "c", "a"),
		planCmd("m-9", "web", "c", "a"),
		phaseCmd("m-2", PhaseRestoring),
		phaseCmd("m-3", PhasePreparing),
		finishCmd("m-2", PhaseCompleted),
		finishCmd("m-2", PhaseFailed),
		finishCmd("m-3", PhaseFailed),
		finishCmd("m-1", PhaseRolledBack),
		{typ: TypeSetOwner, p: SetOwner{Workload: "cache", Node: "b", Replace: true}},
		{typ: TypeDrain, p: Drain{Node: "a"}},
		{typ: TypeUndrain, p: Undrain{Node: "d"}},
		{typ: TypeSetCostModel, p: SetCostModel{Model: refittedModel()}},
		{typ: TypeSetConditions, p: testConditions()},
		{typ: TypePruneMigrations, p: PruneMigrations{Before: epoch.Add(1 << 40)}},
		{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "north", Weight: 1}}}},
		{typ: TypeSetUsers, p: SetUsers{Workload: "db", Sites: []policy.UserSite{{Site: "north", Weight: 0.25}, {Site: "south", Weight: 3}}}},
		{typ: TypeClearUsers, p: ClearUsers{Workload: "db"}},
	} {
		f.Add(c.encode(f))
	}
	g := newCmdGen(rand.New(rand.NewPCG(5, 5)))
	for range 30 {
		f.Add(g.next(f))
	}
	f.Add([]byte(`{"type":"plan-migration","version":1,"at":"2026-11-29T03:00:00Z","by":"x","payload":{"id":"m-7","workload":"db","source":"a","target":"b","method":"m"}}`))
	f.Add([]byte(`{"type":"set-phase","version":1,"at":"0001-01-01T00:00:00Z","by":"x","payload":{}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM(FSMConfig{})
		fsm.state, fsm.index = base.State(), base.Index()
		for round := range 2 {
			before := fsm.State()
			res := fsm.Apply(&raft.Log{Index: fsm.Index() + 1, Type: raft.LogCommand, Data: data}).(ApplyResult)
			after := fsm.State()
			if err := after.Check(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if res.Err != nil || res.Unchanged {
				if d := cmp.Diff(before, after); d != "" {
					t.Fatalf("round %d: refused (%v) or unchanged, yet the state changed (-before +after):\n%s", round, res.Err, d)
				}
				return
			}
			switch res.Type {
			case TypeApplyPolicy, TypeSetCostModel: // each one bumps a version
				return
			}
			if round == 1 {
				t.Fatalf("%s applied twice, changing the state twice", res.Type)
			}
		}
	})
}
