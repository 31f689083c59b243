package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/godwit-io/godwit/policy"
)

var epoch = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

const testPolicy = "apiVersion: godwit.io/v1\nkind: Policy\nmetadata:\n  name: test\nspec:\n  mode: auto\n"

// testCmd is one command of a test: its type, payload, time (after epoch) and requester.
type testCmd struct {
	typ CommandType
	p   any
	at  time.Duration
	by  string
}

func (c testCmd) encode(tb testing.TB) []byte {
	tb.Helper()
	by := c.by
	if by == "" {
		by = "leader"
	}
	data, err := Encode(c.typ, c.p, epoch.Add(c.at), by)
	if err != nil {
		tb.Fatalf("Encode %s: %v", c.typ, err)
	}
	return data
}

// raw builds a log entry by hand, for entries Encode refuses to build.
func rawEntry(tb testing.TB, typ CommandType, version int, at time.Time, by string, p any) []byte {
	tb.Helper()
	payload, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := json.Marshal(Command{Type: typ, Version: version, At: at, By: by, Payload: payload})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// applyData applies one log entry at the next index.
func applyData(f *FSM, data []byte) ApplyResult {
	return f.Apply(&raft.Log{Index: f.Index() + 1, Type: raft.LogCommand, Data: data}).(ApplyResult)
}

// run applies cmds, failing the test on any rejection.
func applyAll(tb testing.TB, f *FSM, cmds ...testCmd) {
	tb.Helper()
	for _, c := range cmds {
		if res := applyData(f, c.encode(tb)); res.Err != nil {
			tb.Fatalf("%s %+v: %v", c.typ, c.p, res.Err)
		}
	}
}

func planCmd(id, workload, from, to string) testCmd {
	return testCmd{typ: TypePlanMigration, p: PlanMigration{ID: id, Workload: workload, Container: workload + "-c",
		Source: from, Target: to, Method: "stop-and-copy", MemoryBytes: 1 << 30,
		Predicted: Costs{Checkpoint: time.Second, Downtime: 2 * time.Second}, Reason: "overload"}, at: time.Second}
}

func phaseCmd(id string, p Phase) testCmd {
	return testCmd{typ: TypeSetPhase, p: SetPhase{ID: id, Phase: p}, at: 2 * time.Second, by: "a"}
}

func finishCmd(id string, p Phase) testCmd {
	return testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: id, Phase: p}, at: 3 * time.Second, by: "a"}
}

// toPhase takes a planned migration forward through the in-flight phases to p.
func toPhase(id string, p Phase) []testCmd {
	var out []testCmd
	for _, q := range []Phase{PhasePreparing, PhaseFrozen, PhaseStreaming, PhaseRestoring} {
		out = append(out, phaseCmd(id, q))
		if q == p {
			return out
		}
	}
	return append(out, finishCmd(id, p))
}

func phaseHistory(h ...PhaseChange) []PhaseChange { return h }

func TestApplyAccepted(t *testing.T) {
	planned := func(id, workload, from, to string) *Migration {
		return &Migration{ID: id, Workload: workload, Container: workload + "-c", Source: from, Target: to,
			Method: "stop-and-copy", Phase: PhasePlanned, Created: epoch.Add(time.Second), Updated: epoch.Add(time.Second),
			History:     phaseHistory(PhaseChange{Phase: PhasePlanned, At: epoch.Add(time.Second), By: "leader"}),
			MemoryBytes: 1 << 30, Predicted: Costs{Checkpoint: time.Second, Downtime: 2 * time.Second},
			Attempt: 1, Reason: "overload", RequestedBy: "leader"}
	}
	tests := []struct {
		desc      string
		setup     []testCmd
		cmd       testCmd
		unchanged bool
		want      func(s *State) // the state before, changed as the command should
	}{
		{
			desc: "apply-policy: the first is version 1",
			cmd:  testCmd{typ: TypeApplyPolicy, p: ApplyPolicy{File: "p.yaml", Source: testPolicy}, by: "alice"},
			want: func(s *State) {
				s.Policy = &PolicyRecord{Version: 1, Name: "test", Source: testPolicy, AppliedBy: "alice", AppliedAt: epoch}
			},
		},
		{
			desc:  "apply-policy: the next one bumps the version",
			setup: []testCmd{{typ: TypeApplyPolicy, p: ApplyPolicy{Source: testPolicy}}},
			cmd:   testCmd{typ: TypeApplyPolicy, p: ApplyPolicy{File: "other.yaml", Source: "apiVersion: godwit.io/v1\nkind: Policy\n"}, at: time.Minute, by: "bob"},
			want: func(s *State) {
				s.Policy = &PolicyRecord{Version: 2, Name: "other.yaml", Source: "apiVersion: godwit.io/v1\nkind: Policy\n", AppliedBy: "bob", AppliedAt: epoch.Add(time.Minute)}
			},
		},
		{
			desc: "plan-migration: a workload with no owner yet is the source's",
			cmd:  planCmd("m-1", "web", "a", "b"),
			want: func(s *State) {
				s.Migrations["m-1"] = planned("m-1", "web", "a", "b")
				s.Owners["web"] = "a"
			},
		},
		{
			desc:  "plan-migration: from the owner, to an undrained node, while another node is drained",
			setup: []testCmd{{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "a"}}, {typ: TypeDrain, p: Drain{Node: "c"}}},
			cmd:   planCmd("m-1", "web", "a", "b"),
			want:  func(s *State) { s.Migrations["m-1"] = planned("m-1", "web", "a", "b") },
		},
		{
			desc: "plan-migration: manual, second attempt, off a drained source",
			setup: []testCmd{{typ: TypeDrain, p: Drain{Node: "a"}}, planCmd("m-1", "web", "a", "b"),
				finishCmd("m-1", PhaseFailed)},
			cmd: testCmd{typ: TypePlanMigration, p: PlanMigration{ID: "m-2", Workload: "web", Source: "a", Target: "b",
				Method: "stop-and-copy", Attempt: 2, Reason: strings.Repeat("é", 1000), Manual: true}, at: time.Hour, by: "alice"},
			want: func(s *State) {
				s.Migrations["m-2"] = &Migration{ID: "m-2", Workload: "web", Source: "a", Target: "b", Method: "stop-and-copy",
					Phase: PhasePlanned, Created: epoch.Add(time.Hour), Updated: epoch.Add(time.Hour),
					History: phaseHistory(PhaseChange{Phase: PhasePlanned, At: epoch.Add(time.Hour), By: "alice"}),
					Attempt: 2, Reason: strings.Repeat("é", maxTextLen/2), Manual: true, RequestedBy: "alice"}
			},
		},
		{
			desc:  "plan-migration: the workload again from its new owner after it completed",
			setup: append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseCompleted)...),
			cmd:   planCmd("m-2", "web", "b", "a"),
			want:  func(s *State) { s.Migrations["m-2"] = planned("m-2", "web", "b", "a") },
		},
		{
			desc:  "set-phase: planned to preparing",
			setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			cmd:   testCmd{typ: TypeSetPhase, p: SetPhase{ID: "m-1", Phase: PhasePreparing, Reason: "order accepted"}, at: 2 * time.Second, by: "a"},
			want: func(s *State) {
				m := s.Migrations["m-1"]
				m.Phase, m.Updated = PhasePreparing, epoch.Add(2*time.Second)
				m.History = append(m.History, PhaseChange{Phase: PhasePreparing, At: epoch.Add(2 * time.Second), By: "a", Note: "order accepted"})
			},
		},
		{
			desc:      "set-phase: the phase it is in changes nothing",
			setup:     append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseFrozen)...),
			cmd:       phaseCmd("m-1", PhaseFrozen),
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc:  "finish-migration: completed moves the owner and records the move",
			setup: append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseRestoring)...),
			cmd: testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseCompleted,
				Measured: Costs{Checkpoint: time.Second, Downtime: 3 * time.Second, CheckpointBytes: 7}, TargetContainer: "c0ffee"},
				at: 9 * time.Second, by: "b"},
			want: func(s *State) {
				m := s.Migrations["m-1"]
				m.Phase, m.Updated, m.TargetContainer = PhaseCompleted, epoch.Add(9*time.Second), "c0ffee"
				m.Measured = Costs{Checkpoint: time.Second, Downtime: 3 * time.Second, CheckpointBytes: 7}
				m.History = append(m.History, PhaseChange{Phase: PhaseCompleted, At: epoch.Add(9 * time.Second), By: "b"})
				s.Owners["web"] = "b"
				s.LastMoves["web"] = Move{At: epoch.Add(9 * time.Second), From: "a", To: "b", MigrationID: "m-1"}
			},
		},
		{
			desc:  "finish-migration: a new leader learns late that a planned migration completed",
			setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			cmd:   finishCmd("m-1", PhaseCompleted),
			want: func(s *State) {
				m := s.Migrations["m-1"]
				m.Phase, m.Updated = PhaseCompleted, epoch.Add(3*time.Second)
				m.History = append(m.History, PhaseChange{Phase: PhaseCompleted, At: epoch.Add(3 * time.Second), By: "a"})
				s.Owners["web"] = "b"
				s.LastMoves["web"] = Move{At: epoch.Add(3 * time.Second), From: "a", To: "b", MigrationID: "m-1"}
			},
		},
		{
			desc:  "finish-migration: rolled back from streaming keeps the owner",
			setup: append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseStreaming)...),
			cmd:   testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseRolledBack, Failure: "checksum mismatch"}, at: 4 * time.Second, by: "a"},
			want: func(s *State) {
				m := s.Migrations["m-1"]
				m.Phase, m.Updated, m.Failure = PhaseRolledBack, epoch.Add(4*time.Second), "checksum mismatch"
				m.History = append(m.History, PhaseChange{Phase: PhaseRolledBack, At: epoch.Add(4 * time.Second), By: "a", Note: "checksum mismatch"})
			},
		},
		{
			desc:  "finish-migration: in doubt, then failed when it had never been frozen",
			setup: []testCmd{planCmd("m-1", "web", "a", "b"), {typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseInDoubt, Failure: "source unreachable"}}},
			cmd:   testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseFailed, Failure: "source never got the order"}, at: 5 * time.Second, by: "leader"},
			want: func(s *State) {
				m := s.Migrations["m-1"]
				m.Phase, m.Updated, m.Failure = PhaseFailed, epoch.Add(5*time.Second), "source never got the order"
				m.History = append(m.History, PhaseChange{Phase: PhaseFailed, At: epoch.Add(5 * time.Second), By: "leader", Note: "source never got the order"})
			},
		},
		{
			desc: "finish-migration: in doubt after restoring, then completed, keeps the measurements it had",
			setup: append(append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseRestoring)...),
				testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseInDoubt, Measured: Costs{Checkpoint: time.Second}, Failure: "lost answer"}, at: 4 * time.Second}),
			cmd: testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseCompleted, TargetContainer: "c0ffee"}, at: 6 * time.Second, by: "leader"},
			want: func(s *State) {
				m := s.Migrations["m-1"]
				m.Phase, m.Updated, m.Failure, m.TargetContainer = PhaseCompleted, epoch.Add(6*time.Second), "", "c0ffee"
				m.History = append(m.History, PhaseChange{Phase: PhaseCompleted, At: epoch.Add(6 * time.Second), By: "leader"})
				s.Owners["web"] = "b"
				s.LastMoves["web"] = Move{At: epoch.Add(6 * time.Second), From: "a", To: "b", MigrationID: "m-1"}
			},
		},
		{
			desc:      "finish-migration: the outcome it already has changes nothing",
			setup:     []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseCompleted)},
			cmd:       testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: "m-1", Phase: PhaseCompleted, Measured: Costs{Downtime: time.Hour}}, at: time.Hour},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc: "set-owner: a workload found on a node",
			cmd:  testCmd{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "a"}},
			want: func(s *State) { s.Owners["web"] = "a" },
		},
		{
			desc:      "set-owner: the owner it has changes nothing",
			setup:     []testCmd{{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "a"}}},
			cmd:       testCmd{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "a"}},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc:  "set-owner: an operator replaces the owner of a workload at rest",
			setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseFailed)},
			cmd:   testCmd{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "c", Replace: true}, by: "alice"},
			want:  func(s *State) { s.Owners["web"] = "c" },
		},
		{
			desc: "drain",
			cmd:  testCmd{typ: TypeDrain, p: Drain{Node: "a", Reason: "maintenance"}, at: time.Minute, by: "alice"},
			want: func(s *State) {
				s.Drained["a"] = DrainRecord{By: "alice", At: epoch.Add(time.Minute), Reason: "maintenance"}
			},
		},
		{
			desc:      "drain: a drained node keeps its first record",
			setup:     []testCmd{{typ: TypeDrain, p: Drain{Node: "a"}}},
			cmd:       testCmd{typ: TypeDrain, p: Drain{Node: "a", Reason: "again"}, at: time.Minute, by: "bob"},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc:  "undrain",
			setup: []testCmd{{typ: TypeDrain, p: Drain{Node: "a"}}},
			cmd:   testCmd{typ: TypeUndrain, p: Undrain{Node: "a"}},
			want:  func(s *State) { delete(s.Drained, "a") },
		},
		{
			desc:      "undrain: a node that is not drained",
			cmd:       testCmd{typ: TypeUndrain, p: Undrain{Node: "a"}},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc: "set-users",
			cmd:  testCmd{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "north", Weight: 0.7}, {Site: "south", Weight: 0.3}}}, at: time.Minute, by: "lb"},
			want: func(s *State) {
				s.Users["web"] = UsersRecord{Sites: []policy.UserSite{{Site: "north", Weight: 0.7}, {Site: "south", Weight: 0.3}}, By: "lb", At: epoch.Add(time.Minute)}
			},
		},
		{
			desc:  "set-users: new sites replace the old",
			setup: []testCmd{{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "north", Weight: 1}}}}},
			cmd:   testCmd{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "south", Weight: 2}}}, at: time.Minute, by: "lb"},
			want: func(s *State) {
				s.Users["web"] = UsersRecord{Sites: []policy.UserSite{{Site: "south", Weight: 2}}, By: "lb", At: epoch.Add(time.Minute)}
			},
		},
		{
			desc:      "set-users: the same sites again keep the first record",
			setup:     []testCmd{{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "north", Weight: 1}}}}},
			cmd:       testCmd{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "north", Weight: 1}}}, at: time.Minute, by: "lb"},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc:  "clear-users",
			setup: []testCmd{{typ: TypeSetUsers, p: SetUsers{Workload: "web", Sites: []policy.UserSite{{Site: "north", Weight: 1}}}}},
			cmd:   testCmd{typ: TypeClearUsers, p: ClearUsers{Workload: "web"}},
			want:  func(s *State) { delete(s.Users, "web") },
		},
		{
			desc:      "clear-users: none recorded",
			cmd:       testCmd{typ: TypeClearUsers, p: ClearUsers{Workload: "web"}},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc: "set-cost-model",
			cmd: testCmd{typ: TypeSetCostModel, p: SetCostModel{Model: refittedModel(), Errors: CostErrors{Downtime: ErrorStat{N: 5, MeanAbs: 0.3, Bias: 0.1, MeanRelative: 0.15}}},
				at: time.Minute},
			want: func(s *State) {
				s.Cost = CostRecord{Model: refittedModel(), Errors: CostErrors{Downtime: ErrorStat{N: 5, MeanAbs: 0.3, Bias: 0.1, MeanRelative: 0.15}},
					Version: 1, UpdatedBy: "leader", UpdatedAt: epoch.Add(time.Minute)}
			},
		},
		{
			desc: "set-conditions",
			cmd:  testCmd{typ: TypeSetConditions, p: testConditions()},
			want: func(s *State) { c := testConditions(); s.Conditions, s.ConditionStats = c.Conditions, c.Stats },
		},
		{
			desc:      "set-conditions: the same again changes nothing",
			setup:     []testCmd{{typ: TypeSetConditions, p: testConditions()}},
			cmd:       testCmd{typ: TypeSetConditions, p: testConditions(), at: time.Minute},
			unchanged: true,
			want:      func(*State) {},
		},
		{
			desc:  "set-conditions: empty clears them",
			setup: []testCmd{{typ: TypeSetConditions, p: testConditions()}},
			cmd:   testCmd{typ: TypeSetConditions, p: SetConditions{Conditions: []policy.ConditionState{}}},
			want:  func(s *State) { s.Conditions, s.ConditionStats = nil, nil },
		},
		{
			desc: "prune-migrations: drops finished migrations and moves older than before, keeps the rest",
			setup: []testCmd{
				planCmd("m-old", "web", "a", "b"), finishCmd("m-old", PhaseCompleted), // ended epoch+3s
				planCmd("m-stuck", "db", "a", "b"), finishCmd("m-stuck", PhaseInDoubt), // in doubt: kept
				planCmd("m-new", "api", "a", "b"),
				{typ: TypeFinishMigration, p: FinishMigration{ID: "m-new", Phase: PhaseCompleted}, at: time.Hour}, // ended epoch+1h
			},
			cmd: testCmd{typ: TypePruneMigrations, p: PruneMigrations{Before: epoch.Add(time.Minute)}, at: 2 * time.Hour},
			want: func(s *State) {
				delete(s.Migrations, "m-old")
				delete(s.LastMoves, "web")
			},
		},
		{
			desc:      "prune-migrations: nothing old enough",
			setup:     []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseRolledBack)},
			cmd:       testCmd{typ: TypePruneMigrations, p: PruneMigrations{Before: epoch}},
			unchanged: true,
			want:      func(*State) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := NewFSM(FSMConfig{})
			applyAll(t, f, tt.setup...)
			want := f.State()
			tt.want(want)
			changed := f.Changed()
			res := applyData(f, tt.cmd.encode(t))
			if res.Err != nil {
				t.Fatalf("rejected: %v", res.Err)
			}
			if res.Unchanged != tt.unchanged || res.Type != tt.cmd.typ || res.Index != f.Index() {
				t.Errorf("result %+v: want Unchanged %v, type %s, index %d", res, tt.unchanged, tt.cmd.typ, f.Index())
			}
			if d := cmp.Diff(want, f.State()); d != "" {
				t.Errorf("state (-want +got):\n%s", d)
			}
			if err := f.State().Check(); err != nil {
				t.Error(err)
			}
			select {
			case <-changed:
				if tt.unchanged {
					t.Error("Changed fired for a command that changed nothing")
				}
			default:
				if !tt.unchanged {
					t.Error("Changed did not fire")
				}
			}
			if p, ok := tt.cmd.p.(PlanMigration); ok || tt.cmd.typ == TypeSetPhase || tt.cmd.typ == TypeFinishMigration {
				id := p.ID
				switch q := tt.cmd.p.(type) {
				case SetPhase:
					id = q.ID
				case FinishMigration:
					id = q.ID
				}
				if d := cmp.Diff(f.State().Migrations[id], res.Migration); d != "" {
					t.Errorf("result's migration (-state +result):\n%s", d)
				}
			}
		})
	}
}

func refittedModel() policy.CostModel {
	m := policy.DefaultCostModel()
	m.Checkpoint = policy.Linear{Intercept: 0.31, Slope: 0.87, RMSE: 0.05, N: 12, Outliers: 1}
	return m
}

func testConditions() SetConditions {
	return SetConditions{
		Conditions: []policy.ConditionState{
			{Trigger: "hot", Subject: "a", Since: epoch, Active: true, ActiveSince: epoch.Add(time.Minute)},
			{Trigger: "hot", Subject: "b", Since: epoch},
		},
		Stats: []policy.ConditionStat{{Trigger: "hot", Ended: 3, Mean: 10 * time.Minute}},
	}
}

func TestApplyRejected(t *testing.T) {
	enc := func(c testCmd) func(testing.TB) []byte { return c.encode }
	bytesOf := func(s string) func(testing.TB) []byte { return func(testing.TB) []byte { return []byte(s) } }
	rawOf := func(typ CommandType, version int, at time.Time, by string, p any) func(testing.TB) []byte {
		return func(tb testing.TB) []byte { return rawEntry(tb, typ, version, at, by, p) }
	}
	inFlight := append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseFrozen)...)
	tests := []struct {
		desc      string
		setup     []testCmd
		data      func(testing.TB) []byte
		wantErr   error
		wantMigr  string // Rejection.Migration, when it should name one
		wantCause error
	}{
		// Entries that are not commands.
		{desc: "empty", data: bytesOf(""), wantErr: ErrInvalidCommand},
		{desc: "not JSON", data: bytesOf("\x00\xffgarbage"), wantErr: ErrInvalidCommand},
		{desc: "JSON null", data: bytesOf("null"), wantErr: ErrInvalidCommand},
		{desc: "a JSON array", data: bytesOf("[1,2]"), wantErr: ErrInvalidCommand},
		{desc: "trailing data", data: func(tb testing.TB) []byte {
			return append(testCmd{typ: TypeDrain, p: Drain{Node: "a"}}.encode(tb), " {}"...)
		}, wantErr: ErrInvalidCommand},
		{desc: "unknown envelope field", data: bytesOf(`{"type":"drain","version":1,"at":"2026-11-29T03:00:00Z","by":"x","payload":{"node":"a"},"extra":1}`), wantErr: ErrInvalidCommand},
		{desc: "unknown type", data: rawOf("reboot-everything", 1, epoch, "x", Drain{Node: "a"}), wantErr: ErrUnknownCommand},
		{desc: "empty type", data: rawOf("", 1, epoch, "x", Drain{Node: "a"}), wantErr: ErrUnknownCommand},
		{desc: "a newer version", data: rawOf(TypeDrain, 2, epoch, "x", Drain{Node: "a"}), wantErr: ErrUnknownCommand},
		{desc: "version 0", data: rawOf(TypeDrain, 0, epoch, "x", Drain{Node: "a"}), wantErr: ErrUnknownCommand},
		{desc: "no time", data: rawOf(TypeDrain, 1, time.Time{}, "x", Drain{Node: "a"}), wantErr: ErrInvalidCommand},
		{desc: "no requester", data: rawOf(TypeDrain, 1, epoch, "", Drain{Node: "a"}), wantErr: ErrInvalidCommand},
		{desc: "a requester with a newline", data: rawOf(TypeDrain, 1, epoch, "x\ny", Drain{Node: "a"}), wantErr: ErrInvalidCommand},
		{desc: "no payload", data: rawOf(TypeDrain, 1, epoch, "x", nil), wantErr: ErrInvalidCommand},
		{desc: "payload of the wrong shape", data: rawOf(TypeDrain, 1, epoch, "x", "a"), wantErr: ErrInvalidCommand},
		{desc: "another type's payload", data: rawOf(TypeDrain, 1, epoch, "x", SetOwner{Workload: "w", Node: "a"}), wantErr: ErrInvalidCommand},
		{desc: "unknown payload field", data: rawOf(TypeDrain, 1, epoch, "x", map[string]any{"node": "a", "force": true}), wantErr: ErrInvalidCommand},

		// apply-policy
		{desc: "apply-policy: empty", data: rawOf(TypeApplyPolicy, 1, epoch, "x", ApplyPolicy{}), wantErr: ErrInvalidCommand},
		{desc: "apply-policy: does not parse", data: rawOf(TypeApplyPolicy, 1, epoch, "x", ApplyPolicy{Source: "kind: Nonsense\n"}),
			wantErr: ErrInvalidCommand, wantCause: policy.ErrInvalidPolicy},
		{desc: "apply-policy: too big", data: rawOf(TypeApplyPolicy, 1, epoch, "x", ApplyPolicy{Source: testPolicy + "#" + strings.Repeat("x", maxPolicyLen)}),
			wantErr: ErrInvalidCommand},

		// plan-migration
		{desc: "plan-migration: an ID that is not a file name", data: rawOf(TypePlanMigration, 1, epoch, "x",
			PlanMigration{ID: "../etc", Workload: "w", Source: "a", Target: "b", Method: "stop-and-copy"}), wantErr: ErrInvalidCommand},
		{desc: "plan-migration: no workload", data: rawOf(TypePlanMigration, 1, epoch, "x",
			PlanMigration{ID: "m-1", Source: "a", Target: "b", Method: "stop-and-copy"}), wantErr: ErrInvalidCommand},
		{desc: "plan-migration: no method", data: rawOf(TypePlanMigration, 1, epoch, "x",
			PlanMigration{ID: "m-1", Workload: "w", Source: "a", Target: "b"}), wantErr: ErrInvalidCommand},
		{desc: "plan-migration: source is target", data: rawOf(TypePlanMigration, 1, epoch, "x",
			PlanMigration{ID: "m-1", Workload: "w", Source: "a", Target: "a", Method: "stop-and-copy"}), wantErr: ErrInvalidCommand},
		{desc: "plan-migration: negative memory", data: rawOf(TypePlanMigration, 1, epoch, "x",
			PlanMigration{ID: "m-1", Workload: "w", Source: "a", Target: "b", Method: "stop-and-copy", MemoryBytes: -1}), wantErr: ErrInvalidCommand},
		{desc: "plan-migration: negative predicted downtime", data: rawOf(TypePlanMigration, 1, epoch, "x",
			PlanMigration{ID: "m-1", Workload: "w", Source: "a", Target: "b", Method: "stop-and-copy", Predicted: Costs{Downtime: -1}}), wantErr: ErrInvalidCommand},
		{desc: "plan-migration: the ID exists", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseFailed)},
			data: enc(planCmd("m-1", "db", "a", "b")), wantErr: ErrExists, wantMigr: "m-1"},
		{desc: "plan-migration: the workload is in flight", setup: inFlight,
			data: enc(planCmd("m-2", "web", "a", "c")), wantErr: ErrInFlight, wantMigr: "m-1"},
		{desc: "plan-migration: the workload is in doubt", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseInDoubt)},
			data: enc(planCmd("m-2", "web", "a", "c")), wantErr: ErrInFlight, wantMigr: "m-1"},
		{desc: "plan-migration: the source is not the owner", setup: []testCmd{{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "b"}}},
			data: enc(planCmd("m-1", "web", "a", "c")), wantErr: ErrNotOwner},
		{desc: "plan-migration: the source lost the workload when it completed", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseCompleted)},
			data: enc(planCmd("m-2", "web", "a", "c")), wantErr: ErrNotOwner},
		{desc: "plan-migration: the target is drained", setup: []testCmd{{typ: TypeDrain, p: Drain{Node: "b"}}},
			data: enc(planCmd("m-1", "web", "a", "b")), wantErr: ErrDrained},

		// set-phase
		{desc: "set-phase: unknown migration", data: enc(phaseCmd("m-9", PhasePreparing)), wantErr: ErrNotFound, wantMigr: "m-9"},
		{desc: "set-phase: an outcome", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: rawOf(TypeSetPhase, 1, epoch, "x", SetPhase{ID: "m-1", Phase: PhaseCompleted}), wantErr: ErrInvalidCommand},
		{desc: "set-phase: in-doubt", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: rawOf(TypeSetPhase, 1, epoch, "x", SetPhase{ID: "m-1", Phase: PhaseInDoubt}), wantErr: ErrInvalidCommand},
		{desc: "set-phase: back to planned", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: rawOf(TypeSetPhase, 1, epoch, "x", SetPhase{ID: "m-1", Phase: PhasePlanned}), wantErr: ErrInvalidCommand},
		{desc: "set-phase: an unknown phase", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: rawOf(TypeSetPhase, 1, epoch, "x", SetPhase{ID: "m-1", Phase: "teleporting"}), wantErr: ErrInvalidCommand},
		{desc: "set-phase: backwards", setup: inFlight, data: enc(phaseCmd("m-1", PhasePreparing)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},
		{desc: "set-phase: skipping the freeze", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: enc(phaseCmd("m-1", PhaseStreaming)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},
		{desc: "set-phase: after the end", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseFailed)},
			data: enc(phaseCmd("m-1", PhasePreparing)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},
		{desc: "set-phase: an in-doubt migration goes back to work", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseInDoubt)},
			data: enc(phaseCmd("m-1", PhasePreparing)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},

		// finish-migration
		{desc: "finish-migration: unknown migration", data: enc(finishCmd("m-9", PhaseCompleted)), wantErr: ErrNotFound, wantMigr: "m-9"},
		{desc: "finish-migration: not an outcome", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: rawOf(TypeFinishMigration, 1, epoch, "x", FinishMigration{ID: "m-1", Phase: PhaseFrozen}), wantErr: ErrInvalidCommand},
		{desc: "finish-migration: negative measurement", setup: []testCmd{planCmd("m-1", "web", "a", "b")},
			data: rawOf(TypeFinishMigration, 1, epoch, "x", FinishMigration{ID: "m-1", Phase: PhaseCompleted, Measured: Costs{Restore: -time.Second}}), wantErr: ErrInvalidCommand},
		{desc: "finish-migration: completed, then rolled back", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseCompleted)},
			data: enc(finishCmd("m-1", PhaseRolledBack)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},
		{desc: "finish-migration: failed after the freeze", setup: inFlight,
			data: enc(finishCmd("m-1", PhaseFailed)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},
		{desc: "finish-migration: failed from in doubt after the freeze", setup: append(inFlight, finishCmd("m-1", PhaseInDoubt)),
			data: enc(finishCmd("m-1", PhaseFailed)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},
		{desc: "finish-migration: a finished migration put in doubt", setup: []testCmd{planCmd("m-1", "web", "a", "b"), finishCmd("m-1", PhaseRolledBack)},
			data: enc(finishCmd("m-1", PhaseInDoubt)), wantErr: ErrInvalidTransition, wantMigr: "m-1"},

		// set-owner
		{desc: "set-owner: no node", data: rawOf(TypeSetOwner, 1, epoch, "x", SetOwner{Workload: "w"}), wantErr: ErrInvalidCommand},
		{desc: "set-owner: while in flight", setup: inFlight,
			data: enc(testCmd{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "b", Replace: true}}), wantErr: ErrInFlight, wantMigr: "m-1"},
		{desc: "set-owner: owned by another node", setup: []testCmd{{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "a"}}},
			data: enc(testCmd{typ: TypeSetOwner, p: SetOwner{Workload: "web", Node: "b"}}), wantErr: ErrNotOwner},

		// drain, undrain
		{desc: "drain: no node", data: rawOf(TypeDrain, 1, epoch, "x", Drain{}), wantErr: ErrInvalidCommand},
		{desc: "drain: a name too long", data: rawOf(TypeDrain, 1, epoch, "x", Drain{Node: strings.Repeat("n", maxNameLen+1)}), wantErr: ErrInvalidCommand},
		{desc: "undrain: a control character", data: rawOf(TypeUndrain, 1, epoch, "x", Undrain{Node: "a\x7f"}), wantErr: ErrInvalidCommand},

		// set-users, clear-users
		{desc: "set-users: no sites", data: rawOf(TypeSetUsers, 1, epoch, "x", SetUsers{Workload: "w"}), wantErr: ErrInvalidCommand},
		{desc: "set-users: no workload", data: rawOf(TypeSetUsers, 1, epoch, "x", SetUsers{Sites: []policy.UserSite{{Site: "a", Weight: 1}}}), wantErr: ErrInvalidCommand},
		{desc: "set-users: a zero weight", data: rawOf(TypeSetUsers, 1, epoch, "x", SetUsers{Workload: "w", Sites: []policy.UserSite{{Site: "a", Weight: 0}}}), wantErr: ErrInvalidCommand},
		{desc: "set-users: a negative weight", data: rawOf(TypeSetUsers, 1, epoch, "x", SetUsers{Workload: "w", Sites: []policy.UserSite{{Site: "a", Weight: -1}}}), wantErr: ErrInvalidCommand},
		{desc: "set-users: a site twice", data: rawOf(TypeSetUsers, 1, epoch, "x", SetUsers{Workload: "w", Sites: []policy.UserSite{{Site: "a", Weight: 1}, {Site: "a", Weight: 2}}}), wantErr: ErrInvalidCommand},
		{desc: "set-users: an empty site", data: rawOf(TypeSetUsers, 1, epoch, "x", SetUsers{Workload: "w", Sites: []policy.UserSite{{Site: "", Weight: 1}}}), wantErr: ErrInvalidCommand},
		{desc: "clear-users: no workload", data: rawOf(TypeClearUsers, 1, epoch, "x", ClearUsers{}), wantErr: ErrInvalidCommand},

		// set-cost-model, set-conditions, prune-migrations
		{desc: "set-cost-model: no bandwidth", data: rawOf(TypeSetCostModel, 1, epoch, "x", SetCostModel{}), wantErr: ErrInvalidCommand},
		{desc: "set-cost-model: negative error count", data: rawOf(TypeSetCostModel, 1, epoch, "x",
			SetCostModel{Model: policy.DefaultCostModel(), Errors: CostErrors{Restore: ErrorStat{N: -1}}}), wantErr: ErrInvalidCommand},
		{desc: "set-conditions: twice the same subject", data: rawOf(TypeSetConditions, 1, epoch, "x",
			SetConditions{Conditions: []policy.ConditionState{{Trigger: "t", Subject: "a"}, {Trigger: "t", Subject: "a"}}}), wantErr: ErrInvalidCommand},
		{desc: "set-conditions: no trigger", data: rawOf(TypeSetConditions, 1, epoch, "x",
			SetConditions{Stats: []policy.ConditionStat{{Ended: 1}}}), wantErr: ErrInvalidCommand},
		{desc: "prune-migrations: no time", data: rawOf(TypePruneMigrations, 1, epoch, "x", PruneMigrations{}), wantErr: ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := NewFSM(FSMConfig{})
			applyAll(t, f, append([]testCmd{{typ: TypeApplyPolicy, p: ApplyPolicy{Source: testPolicy}}}, tt.setup...)...)
			before := f.State()
			changed := f.Changed()
			res := applyData(f, tt.data(t))
			if !errors.Is(res.Err, tt.wantErr) {
				t.Fatalf("error %v, want %v", res.Err, tt.wantErr)
			}
			var r *Rejection
			if !errors.As(res.Err, &r) {
				t.Fatalf("error %T is not a *Rejection", res.Err)
			}
			if tt.wantMigr != "" && r.Migration != tt.wantMigr {
				t.Errorf("Rejection.Migration = %q, want %q (%v)", r.Migration, tt.wantMigr, res.Err)
			}
			if tt.wantMigr != "" && !strings.Contains(res.Err.Error(), tt.wantMigr) {
				t.Errorf("error %q does not name %s", res.Err, tt.wantMigr)
			}
			if tt.wantCause != nil && !errors.Is(res.Err, tt.wantCause) {
				t.Errorf("error %v does not wrap %v", res.Err, tt.wantCause)
			}
			if !strings.HasPrefix(res.Err.Error(), "scheduler: ") {
				t.Errorf("error %q without the package prefix", res.Err)
			}
			if res.Unchanged || res.Migration != nil || f.Index() != res.Index {
				t.Errorf("result %+v", res)
			}
			if d := cmp.Diff(before, f.State()); d != "" {
				t.Errorf("a refused command changed the state (-before +after):\n%s", d)
			}
			select {
			case <-changed:
				t.Error("Changed fired for a refused command")
			default:
			}
		})
	}
}

func TestApplyNotACommandLog(t *testing.T) {
	f := NewFSM(FSMConfig{})
	data := testCmd{typ: TypeDrain, p: Drain{Node: "a"}}.encode(t)
	res := f.Apply(&raft.Log{Index: 7, Type: raft.LogNoop, Data: data}).(ApplyResult)
	if !errors.Is(res.Err, ErrInvalidCommand) || len(f.State().Drained) != 0 || f.Index() != 7 {
		t.Errorf("a no-op log entry: %+v, index %d, state %+v", res, f.Index(), f.State())
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		desc    string
		typ     CommandType
		p       any
		at      time.Time
		by      string
		wantErr error
	}{
		{"a value payload", TypeDrain, Drain{Node: "a"}, epoch, "op", nil},
		{"a pointer payload", TypeDrain, &Drain{Node: "a"}, epoch, "op", nil},
		{"a payload of another type", TypeDrain, Undrain{Node: "a"}, epoch, "op", ErrInvalidCommand},
		{"not a payload", TypeDrain, map[string]string{"node": "a"}, epoch, "op", ErrInvalidCommand},
		{"a nil payload", TypeDrain, nil, epoch, "op", ErrInvalidCommand},
		{"a nil pointer", TypeDrain, (*Drain)(nil), epoch, "op", ErrInvalidCommand},
		{"an unknown type", "explode", Drain{Node: "a"}, epoch, "op", ErrInvalidCommand},
		{"no time", TypeDrain, Drain{Node: "a"}, time.Time{}, "op", ErrInvalidCommand},
		{"no requester", TypeDrain, Drain{Node: "a"}, epoch, "", ErrInvalidCommand},
		{"a missing field", TypeDrain, Drain{}, epoch, "op", ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			data, err := Encode(tt.typ, tt.p, tt.at, tt.by)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			c, p, err := DecodeCommand(data)
			if err != nil {
				t.Fatal(err)
			}
			want := &Command{Type: tt.typ, Version: CommandVersion(tt.typ), At: tt.at, By: tt.by, Payload: c.Payload}
			if d := cmp.Diff(want, c); d != "" {
				t.Errorf("envelope (-want +got):\n%s", d)
			}
			if d := cmp.Diff(&Drain{Node: "a"}, p); d != "" {
				t.Errorf("payload (-want +got):\n%s", d)
			}
		})
	}
	for typ := range commandVersions {
		if newPayload(typ) == nil || newPayload(typ).commandType() != typ {
			t.Errorf("%s: no payload type", typ)
		}
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "test" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func persist(tb testing.TB, f *FSM) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil || !sink.closed || sink.cancelled {
		tb.Fatalf("Persist: %v, closed %v, cancelled %v", err, sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

// busy returns an FSM that has been through a bit of everything.
func busyFSM(tb testing.TB) *FSM {
	f := NewFSM(FSMConfig{})
	applyAll(tb, f, testCmd{typ: TypeApplyPolicy, p: ApplyPolicy{Source: testPolicy}},
		testCmd{typ: TypeDrain, p: Drain{Node: "d", Reason: "disk"}},
		testCmd{typ: TypeSetOwner, p: SetOwner{Workload: "cache", Node: "c"}},
		testCmd{typ: TypeSetCostModel, p: SetCostModel{Model: refittedModel(), Errors: CostErrors{Checkpoint: ErrorStat{N: 2, MeanAbs: 0.2}}}},
		testCmd{typ: TypeSetConditions, p: testConditions()},
		testCmd{typ: TypeSetUsers, p: SetUsers{Workload: "db", Sites: []policy.UserSite{{Site: "north", Weight: 0.25}, {Site: "south", Weight: 3}}}})
	applyAll(tb, f, append([]testCmd{planCmd("m-1", "web", "a", "b")}, toPhase("m-1", PhaseCompleted)...)...)
	applyAll(tb, f, append([]testCmd{planCmd("m-2", "db", "a", "c")}, toPhase("m-2", PhaseStreaming)...)...)
	applyAll(tb, f, planCmd("m-3", "api", "b", "a"), finishCmd("m-3", PhaseInDoubt))
	applyAll(tb, f, planCmd("m-4", "web", "b", "c"), finishCmd("m-4", PhaseFailed))
	return f
}

func TestSnapshotRestore(t *testing.T) {
	f := busyFSM(t)
	data := persist(t, f)
	// Apply goes on after Snapshot: the snapshot must not see it.
	applyAll(t, f, testCmd{typ: TypeUndrain, p: Undrain{Node: "d"}})
	g := NewFSM(FSMConfig{})
	applyAll(t, g, testCmd{typ: TypeDrain, p: Drain{Node: "zzz"}}) // replaced wholesale
	changed := g.Changed()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed did not fire on Restore")
	}
	want := busyFSM(t)
	if d := cmp.Diff(want.State(), g.State()); d != "" {
		t.Errorf("restored state (-want +got):\n%s", d)
	}
	if g.Index() != want.Index() {
		t.Errorf("restored index %d, want %d", g.Index(), want.Index())
	}
	if again := persist(t, g); !bytes.Equal(again, data) {
		t.Errorf("a snapshot of the restored state differs:\n%s\n%s", data, again)
	}
	// An empty state round-trips too.
	e := NewFSM(FSMConfig{})
	h := busyFSM(t)
	if err := h.Restore(io.NopCloser(bytes.NewReader(persist(t, e)))); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(NewState(), h.State()); d != "" {
		t.Errorf("restored empty state (-want +got):\n%s", d)
	}
}

func TestRestoreRefused(t *testing.T) {
	good := string(persist(t, busyFSM(t)))
	tests := []struct {
		desc string
		data string
	}{
		{"empty", ""},
		{"not JSON", "\x1f\x8b gzip?"},
		{"truncated", good[:len(good)/2]},
		{"trailing data", good + "{}"},
		{"unknown field", strings.Replace(good, `"format":1`, `"format":1,"extra":true`, 1)},
		{"another format", strings.Replace(good, `"format":1`, `"format":2`, 1)},
		{"no state", `{"format":1,"index":3}`},
		{"an inconsistent state", strings.Replace(good, `"owners":{`, `"owners":{"":"z",`, 1)},
		{"a migration with a bad phase", strings.Replace(good, `"phase":"streaming"`, `"phase":"warping"`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := busyFSM(t)
			before, index := f.State(), f.Index()
			err := f.Restore(io.NopCloser(strings.NewReader(tt.data)))
			if !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("error %v, want ErrInvalidSnapshot", err)
			}
			if d := cmp.Diff(before, f.State()); d != "" || f.Index() != index {
				t.Errorf("a refused snapshot changed the state (index %d, was %d) (-before +after):\n%s", f.Index(), index, d)
			}
		})
	}
}

// TestSameLogSameState feeds one log of random commands to two FSMs, and to a third
// restored from a snapshot taken half way: all end byte-identical.
func TestSameLogSameState(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := newCmdGen(r)
	var log [][]byte
	for range 400 {
		log = append(log, g.next(t))
	}
	a, b, c := NewFSM(FSMConfig{}), NewFSM(FSMConfig{}), NewFSM(FSMConfig{})
	var accepted int
	for i, data := range log {
		ra := applyData(a, data)
		rb := applyData(b, data)
		if (ra.Err == nil) != (rb.Err == nil) || ra.Unchanged != rb.Unchanged {
			t.Fatalf("entry %d: results differ: %+v and %+v", i, ra, rb)
		}
		if ra.Err == nil {
			accepted++
		}
		if i == len(log)/2 {
			if err := c.Restore(io.NopCloser(bytes.NewReader(persist(t, a)))); err != nil {
				t.Fatal(err)
			}
		} else if i > len(log)/2 {
			applyData(c, data)
		}
	}
	if accepted < len(log)/4 {
		t.Errorf("only %d of %d commands accepted: the generator explores too little", accepted, len(log))
	}
	sa, sb, sc := persist(t, a), persist(t, b), persist(t, c)
	if !bytes.Equal(sa, sb) || !bytes.Equal(sa, sc) {
		t.Errorf("snapshots differ: %d, %d and %d bytes; diff a-b:\n%s\ndiff a-c:\n%s", len(sa), len(sb), len(sc),
			cmp.Diff(a.State(), b.State()), cmp.Diff(a.State(), c.State()))
	}
}

// TestRandomSequences applies random command sequences and checks, after every command:
// the state's invariants (at most one migration in flight or in doubt per workload, owned
// by its source); a refused command changed nothing; the owner of a workload is the
// target of its last completed migration (or what set-owner last said).
func TestRandomSequences(t *testing.T) {
	seeds, steps := 60, 150
	if testing.Short() {
		seeds = 15
	}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 99))
		g := newCmdGen(r)
		f := NewFSM(FSMConfig{})
		owner := map[string]string{} // the model: who must own each workload
		for step := range steps {
			data := g.next(t)
			before := f.State()
			res := applyData(f, data)
			after := f.State()
			fail := func(format string, args ...any) {
				t.Helper()
				c, p, _ := DecodeCommand(data)
				t.Fatalf("seed %d step %d (%s %+v -> %v): %s", seed, step, c.Type, p, res.Err, fmt.Sprintf(format, args...))
			}
			if err := after.Check(); err != nil {
				fail("%v", err)
			}
			if res.Err != nil || res.Unchanged {
				if d := cmp.Diff(before, after); d != "" {
					fail("state changed (-before +after):\n%s", d)
				}
				continue
			}
			c, p, _ := DecodeCommand(data)
			switch p := p.(type) {
			case *FinishMigration:
				if p.Phase == PhaseCompleted {
					owner[res.Migration.Workload] = res.Migration.Target
				}
			case *SetOwner:
				owner[p.Workload] = p.Node
			case *PlanMigration:
				if _, ok := owner[p.Workload]; !ok {
					owner[p.Workload] = p.Source
				}
			}
			for w, n := range owner {
				if after.Owners[w] != n {
					fail("owner of %s is %q, want %q (after %s)", w, after.Owners[w], n, c.Type)
				}
			}
			if len(after.Owners) != len(owner) {
				fail("owners %v, model %v", after.Owners, owner)
			}
		}
	}
}

// cmdGen makes random log entries over a few workloads, nodes and migration IDs, so that
// they collide: most are well formed, some refused by the state, a few malformed.
type cmdGen struct {
	r   *rand.Rand
	at  time.Duration
	ids []string
	n   int
}

func newCmdGen(r *rand.Rand) *cmdGen { return &cmdGen{r: r} }

func (g *cmdGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *cmdGen) next(tb testing.TB) []byte {
	workloads := []string{"w0", "w1", "w2", "w3"}
	nodes := []string{"n0", "n1", "n2", "n3"}
	g.at += time.Duration(g.r.IntN(10)) * time.Second
	if g.r.IntN(20) == 0 {
		g.at -= 5 * time.Second // another leader's clock, a little behind
	}
	known := func() string {
		if len(g.ids) == 0 || g.r.IntN(10) == 0 {
			return fmt.Sprintf("m-%d", g.r.IntN(3)+1000)
		}
		return g.ids[g.r.IntN(len(g.ids))]
	}
	by := g.pick("leader", "n0", "n1", "alice")
	var c testCmd
	switch k := g.r.IntN(100); {
	case k < 22:
		id := fmt.Sprintf("m-%d", g.n)
		if g.r.IntN(10) == 0 && len(g.ids) > 0 {
			id = known()
		} else {
			g.n++
			g.ids = append(g.ids, id)
		}
		c = testCmd{typ: TypePlanMigration, p: PlanMigration{ID: id, Workload: g.pick(workloads...), Source: g.pick(nodes...),
			Target: g.pick(nodes...), Method: "stop-and-copy", MemoryBytes: int64(g.r.IntN(4)) << 30, Attempt: g.r.IntN(3)}}
	case k < 50:
		c = testCmd{typ: TypeSetPhase, p: SetPhase{ID: known(), Phase: Phase(g.pick("preparing", "frozen", "streaming", "restoring"))}}
	case k < 72:
		c = testCmd{typ: TypeFinishMigration, p: FinishMigration{ID: known(), Phase: Phase(g.pick("completed", "completed", "rolled-back", "failed", "in-doubt")),
			Measured: Costs{Downtime: time.Duration(g.r.IntN(5)) * time.Second}}}
	case k < 78:
		c = testCmd{typ: TypeSetOwner, p: SetOwner{Workload: g.pick(workloads...), Node: g.pick(nodes...), Replace: g.r.IntN(3) == 0}}
	case k < 81:
		c = testCmd{typ: TypeDrain, p: Drain{Node: g.pick(nodes...)}}
	case k < 83:
		c = testCmd{typ: TypeSetUsers, p: SetUsers{Workload: g.pick(workloads...), Sites: []policy.UserSite{{Site: g.pick("north", "south"), Weight: float64(g.r.IntN(3) + 1)}}}}
	case k < 84:
		c = testCmd{typ: TypeClearUsers, p: ClearUsers{Workload: g.pick(workloads...)}}
	case k < 90:
		c = testCmd{typ: TypeUndrain, p: Undrain{Node: g.pick(nodes...)}}
	case k < 92:
		c = testCmd{typ: TypePruneMigrations, p: PruneMigrations{Before: epoch.Add(g.at - time.Minute)}}
	case k < 94:
		c = testCmd{typ: TypeSetConditions, p: SetConditions{Conditions: []policy.ConditionState{{Trigger: "hot", Subject: g.pick(nodes...), Since: epoch.Add(g.at)}}}}
	case k < 95:
		c = testCmd{typ: TypeSetCostModel, p: SetCostModel{Model: refittedModel(), Errors: CostErrors{Downtime: ErrorStat{N: g.r.IntN(9)}}}}
	case k < 96:
		c = testCmd{typ: TypeApplyPolicy, p: ApplyPolicy{Source: testPolicy}}
	default: // malformed: valid JSON the state machine must refuse, or a damaged entry
		switch g.r.IntN(3) {
		case 0:
			return rawEntry(tb, TypePlanMigration, 1, epoch.Add(g.at), by, PlanMigration{ID: "m-x", Workload: "w0", Source: "n0", Target: "n0", Method: "m"})
		case 1:
			return rawEntry(tb, TypeSetPhase, 2, epoch.Add(g.at), by, SetPhase{ID: known(), Phase: PhaseFrozen})
		default:
			data := testCmd{typ: TypeDrain, p: Drain{Node: "n0"}, at: g.at, by: by}.encode(tb)
			return data[:g.r.IntN(len(data))]
		}
	}
	// Encode refuses what the payload's own checks refuse; build those by hand.
	data, err := Encode(c.typ, c.p, epoch.Add(g.at), by)
	if err != nil {
		return rawEntry(tb, c.typ, 1, epoch.Add(g.at), by, c.p)
	}
	return data
}

func TestObserverAndConcurrentReads(t *testing.T) {
	var mu sync.Mutex
	var seen []ApplyResult
	f := NewFSM(FSMConfig{Observer: func(r ApplyResult) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
	}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ch := f.Changed()
				s := f.State()
				if err := s.Check(); err != nil {
					t.Error(err)
					return
				}
				f.Read(func(s *State) { _ = s.Ledger() })
				_ = f.Index()
				_ = ch
			}
		})
	}
	g := newCmdGen(rand.New(rand.NewPCG(7, 7)))
	const n = 300
	for range n {
		applyData(f, g.next(t))
	}
	close(stop)
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("observer saw %d results, want %d", len(seen), n)
	}
	for i, r := range seen {
		if r.Index != uint64(i+1) {
			t.Fatalf("result %d has index %d", i, r.Index)
		}
	}
}

// TestRaftCluster runs the FSM under real raft (in-memory transport): three servers
// apply the same commands, refused ones included, and a fourth that joins late catches
// up from a snapshot.
func TestRaftCluster(t *testing.T) {
	type server struct {
		fsm   *FSM
		raft  *raft.Raft
		trans *raft.InmemTransport
	}
	newServer := func(id string) *server {
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(id)
		conf.HeartbeatTimeout, conf.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
		conf.LeaderLeaseTimeout, conf.CommitTimeout = 50*time.Millisecond, 5*time.Millisecond
		conf.SnapshotThreshold, conf.TrailingLogs = 10, 5
		conf.LogOutput = io.Discard
		_, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		s := &server{fsm: NewFSM(FSMConfig{}), trans: trans}
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(conf, s.fsm, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		s.raft = r
		return s
	}
	servers := []*server{newServer("s0"), newServer("s1"), newServer("s2")}
	connect := func() {
		for _, a := range servers {
			for _, b := range servers {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	connect()
	var cfg raft.Configuration
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(s.trans.LocalAddr()), Address: s.trans.LocalAddr()})
	}
	if err := servers[0].raft.BootstrapCluster(cfg).Error(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range servers {
			_ = s.raft.Shutdown().Error()
		}
	}()
	leader := func() *server {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for _, s := range servers {
				if s.raft.State() == raft.Leader {
					return s
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no leader")
		return nil
	}
	l := leader()
	g := newCmdGen(rand.New(rand.NewPCG(3, 4)))
	var refused int
	for range 60 {
		fut := l.raft.Apply(g.next(t), 5*time.Second)
		if err := fut.Error(); err != nil {
			t.Fatal(err)
		}
		if res := fut.Response().(ApplyResult); res.Err != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no command refused: the test does not show refusals are replicated harmlessly")
	}
	if err := l.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := l.raft.Apply(g.next(t), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	late := newServer("s3")
	servers = append(servers, late)
	connect()
	if err := l.raft.AddVoter("s3", "s3", 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := l.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want := persist(t, l.fsm)
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range servers {
		for s.fsm.Index() < l.fsm.Index() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := persist(t, s.fsm); !bytes.Equal(got, want) {
			t.Errorf("server %s differs from the leader (-leader +server):\n%s", s.trans.LocalAddr(), cmp.Diff(l.fsm.State(), s.fsm.State()))
		}
	}
}

// BenchmarkApplyMigration measures the state machine's share of recording one migration:
// plan, four phase reports and the outcome, on a ledger of a thousand finished migrations.
func BenchmarkApplyMigration(b *testing.B) {
	f := NewFSM(FSMConfig{})
	for i := range 1000 {
		id := fmt.Sprintf("old-%d", i)
		applyAll(b, f, planCmd(id, fmt.Sprintf("w%d", i), "a", "b"), finishCmd(id, PhaseFailed))
	}
	var entries [][]byte
	for i := range b.N {
		id, w := fmt.Sprintf("m-%d", i), fmt.Sprintf("w%d", i%1000)
		entries = append(entries, planCmd(id, w, "a", "b").encode(b))
		for _, c := range toPhase(id, PhaseRestoring) {
			entries = append(entries, c.encode(b))
		}
		entries = append(entries, finishCmd(id, PhaseRolledBack).encode(b))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, data := range entries {
		if res := applyData(f, data); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(entries)), "ns/command")
}
