package scheduler

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// TestValidTransition checks every pair of phases against the table, written out here a
// second time on purpose.
func TestValidTransition(t *testing.T) {
	allowed := map[Phase][]Phase{
		PhasePlanned:   {PhasePreparing, PhaseCompleted, PhaseRolledBack, PhaseFailed, PhaseInDoubt},
		PhasePreparing: {PhaseFrozen, PhaseCompleted, PhaseRolledBack, PhaseFailed, PhaseInDoubt},
		PhaseFrozen:    {PhaseStreaming, PhaseCompleted, PhaseRolledBack, PhaseInDoubt},
		PhaseStreaming: {PhaseRestoring, PhaseCompleted, PhaseRolledBack, PhaseInDoubt},
		PhaseRestoring: {PhaseCompleted, PhaseRolledBack, PhaseInDoubt},
		PhaseInDoubt:   {PhaseCompleted, PhaseRolledBack, PhaseFailed},
	}
	for _, from := range append(Phases, "bogus") {
		for _, to := range append(Phases, "bogus") {
			want := false
			for _, p := range allowed[from] {
				want = want || p == to
			}
			if got := ValidTransition(from, to); got != want {
				t.Errorf("ValidTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

// TestPhaseProperties checks what the rest of the control plane relies on.
func TestPhaseProperties(t *testing.T) {
	for _, p := range Phases {
		t.Run(string(p), func(t *testing.T) {
			if !p.Valid() {
				t.Fatal("not valid")
			}
			if p.Terminal() == p.InFlight() {
				t.Errorf("Terminal %v and InFlight %v", p.Terminal(), p.InFlight())
			}
			if ValidTransition(p, p) {
				t.Error("a phase to itself is a transition")
			}
			// Nothing leaves a terminal phase; every other phase can still end both ways.
			for _, to := range Phases {
				if p.Terminal() && ValidTransition(p, to) {
					t.Errorf("leaves terminal %s for %s", p, to)
				}
			}
			if !p.Terminal() && (!ValidTransition(p, PhaseCompleted) || !ValidTransition(p, PhaseRolledBack)) {
				t.Error("an in-flight phase cannot end completed and rolled-back (a late outcome could not be recorded)")
			}
			if p.InFlight() && p != PhaseInDoubt && !ValidTransition(p, PhaseInDoubt) {
				t.Error("an in-flight phase cannot become in-doubt")
			}
			// The engine must count exactly the same migrations in flight.
			if got := p.LedgerState().Terminal(); got != p.Terminal() {
				t.Errorf("LedgerState %q: Terminal %v, phase's %v", p.LedgerState(), got, p.Terminal())
			}
			if (p.LedgerState() == policy.StateCompleted) != (p == PhaseCompleted) {
				t.Errorf("LedgerState %q for %s", p.LedgerState(), p)
			}
		})
	}
	if Phase("bogus").Valid() || Phase("bogus").InFlight() || Phase("").InFlight() {
		t.Error("unknown phases count as valid or in flight")
	}
}

// sampleState is a state with something in every field.
func sampleState() *State {
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	s := NewState()
	s.Policy = &PolicyRecord{Version: 2, Name: "p", Source: "apiVersion: godwit.io/v1\nkind: Policy\n", AppliedBy: "op", AppliedAt: at}
	s.Migrations["m-1"] = &Migration{ID: "m-1", Workload: "web", Container: "web-1", Source: "a", Target: "b",
		Method: migrate.MethodStopAndCopy, Phase: PhaseCompleted, Created: at, Updated: at.Add(5 * time.Second),
		History:     []PhaseChange{{Phase: PhasePlanned, At: at, By: "leader"}, {Phase: PhaseCompleted, At: at.Add(5 * time.Second), By: "a"}},
		MemoryBytes: 1 << 30, Predicted: Costs{Checkpoint: time.Second, Downtime: 2 * time.Second}, Measured: Costs{Downtime: 3 * time.Second},
		Attempt: 1, Reason: "overload", RequestedBy: "leader", TargetContainer: "c0ffee"}
	s.Migrations["m-2"] = &Migration{ID: "m-2", Workload: "db", Source: "a", Target: "c", Method: "stop-and-copy",
		Phase: PhaseInDoubt, Created: at.Add(time.Second), Updated: at.Add(9 * time.Second),
		History: []PhaseChange{{Phase: PhasePlanned, At: at.Add(time.Second)}, {Phase: PhaseFrozen, At: at.Add(2 * time.Second)}, {Phase: PhaseInDoubt, At: at.Add(9 * time.Second), Note: "target unreachable"}},
		Attempt: 2, Failure: "target unreachable", Manual: true, RequestedBy: "alice"}
	s.Owners["web"], s.Owners["db"] = "b", "a"
	s.LastMoves["web"] = Move{At: at.Add(5 * time.Second), From: "a", To: "b", MigrationID: "m-1"}
	s.Drained["c"] = DrainRecord{By: "alice", At: at, Reason: "kernel upgrade"}
	s.Cost.Version, s.Cost.Errors.Checkpoint = 1, ErrorStat{N: 3, MeanAbs: 0.1, Bias: -0.05, MeanRelative: 0.2}
	s.Conditions = []policy.ConditionState{{Trigger: "hot", Subject: "a", Since: at, Active: true, ActiveSince: at}}
	s.ConditionStats = []policy.ConditionStat{{Trigger: "hot", Ended: 4, Mean: time.Minute}}
	return s
}

func TestClone(t *testing.T) {
	s := sampleState()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	c := s.Clone()
	if d := cmp.Diff(s, c); d != "" {
		t.Fatalf("clone differs (-orig +clone):\n%s", d)
	}
	// Change everything reachable in the clone; the original must not see it.
	c.Policy.Version = 9
	c.Migrations["m-1"].Phase = PhaseFailed
	c.Migrations["m-1"].History[0].Note = "changed"
	c.Migrations["m-3"] = &Migration{ID: "m-3"}
	c.Owners["web"] = "z"
	c.LastMoves["db"] = Move{}
	c.Drained["z"] = DrainRecord{}
	c.Conditions[0].Active = false
	c.ConditionStats[0].Ended = 0
	if d := cmp.Diff(sampleState(), s); d != "" {
		t.Fatalf("changing the clone changed the original (-want +got):\n%s", d)
	}
}

func TestLedger(t *testing.T) {
	s := sampleState()
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	want := policy.Ledger{
		Migrations: []policy.MigrationRecord{
			{ID: "m-1", Container: "web", From: "a", To: "b", Start: at, End: at.Add(5 * time.Second),
				State: policy.StateCompleted, Downtime: 3 * time.Second, MemoryBytes: 1 << 30},
			{ID: "m-2", Container: "db", From: "a", To: "c", Start: at.Add(time.Second), State: "in-doubt"},
		},
		Conditions:     s.Conditions,
		ConditionStats: s.ConditionStats,
	}
	if d := cmp.Diff(want, s.Ledger()); d != "" {
		t.Errorf("Ledger (-want +got):\n%s", d)
	}
	if m, ok := s.InFlight("db"); !ok || m.ID != "m-2" {
		t.Errorf("InFlight(db) = %v, %v; want m-2 (in doubt holds the workload)", m, ok)
	}
	if m, ok := s.InFlight("web"); ok {
		t.Errorf("InFlight(web) = %s; want none (completed)", m.ID)
	}
	if o, ok := s.Owner("web"); !ok || o != "b" {
		t.Errorf("Owner(web) = %q, %v", o, ok)
	}
	if _, ok := s.Owner("nope"); ok {
		t.Error("Owner of an unknown workload")
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		desc   string
		mutate func(s *State)
	}{
		{"a migration filed under another ID", func(s *State) { s.Migrations["m-9"] = s.Migrations["m-1"] }},
		{"a null migration", func(s *State) { s.Migrations["m-9"] = nil }},
		{"an unknown phase", func(s *State) { s.Migrations["m-1"].Phase = "bogus" }},
		{"a history that does not end in the phase", func(s *State) { s.Migrations["m-1"].Phase = PhaseRolledBack }},
		{"no history", func(s *State) { s.Migrations["m-1"].History = nil }},
		{"source is target", func(s *State) { s.Migrations["m-1"].Target = "a" }},
		{"no workload", func(s *State) { s.Migrations["m-1"].Workload = "" }},
		{"an ID nodes cannot use as a file name", func(s *State) {
			m := s.Migrations["m-1"]
			m.ID = "../m"
			delete(s.Migrations, "m-1")
			s.Migrations[m.ID] = m
		}},
		{"attempt zero", func(s *State) { s.Migrations["m-1"].Attempt = 0 }},
		{"negative measured downtime", func(s *State) { s.Migrations["m-1"].Measured.Downtime = -1 }},
		{"two migrations of one workload in flight", func(s *State) {
			m := s.Migrations["m-2"].Clone()
			m.ID = "m-3"
			s.Migrations["m-3"] = m
		}},
		{"a workload in flight owned by another node than its source", func(s *State) { s.Owners["db"] = "b" }},
		{"a workload in flight with no owner", func(s *State) { delete(s.Owners, "db") }},
		{"an empty owner", func(s *State) { s.Owners["x"] = "" }},
		{"an empty drained node", func(s *State) { s.Drained[""] = DrainRecord{} }},
		{"a policy of version 0", func(s *State) { s.Policy.Version = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := sampleState()
			tt.mutate(s)
			if err := s.Check(); err == nil {
				t.Error("Check accepted it")
			}
		})
	}
}

func TestCostsHelpers(t *testing.T) {
	p := policy.DefaultCostModel().Predict(1<<30, 0, -1)
	got := PredictedCosts(p)
	want := Costs{Checkpoint: p.Checkpoint, Transfer: p.Transfer, Restore: p.Restore, Downtime: p.Downtime, CheckpointBytes: p.ImageBytes}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("PredictedCosts (-want +got):\n%s", d)
	}
	r := &migrate.Report{
		Phases: []migrate.PhaseTiming{
			{Phase: migrate.PhasePreflight, Duration: time.Millisecond},
			{Phase: migrate.PhaseCheckpoint, Duration: time.Second},
			{Phase: migrate.PhaseTransfer, Duration: 2 * time.Second},
			{Phase: migrate.PhaseRestore, Duration: 3 * time.Second},
		},
		Downtime: 6 * time.Second, CheckpointBytes: 42,
	}
	want = Costs{Checkpoint: time.Second, Transfer: 2 * time.Second, Restore: 3 * time.Second, Downtime: 6 * time.Second, CheckpointBytes: 42}
	if d := cmp.Diff(want, MeasuredCosts(r)); d != "" {
		t.Errorf("MeasuredCosts (-want +got):\n%s", d)
	}
}

func TestRejectionErrors(t *testing.T) {
	cause := errors.New("parser says no")
	r := &Rejection{Type: TypeApplyPolicy, Err: ErrInFlight, Detail: "workload w", Migration: "m-1", Cause: cause}
	var err error = fmt.Errorf("proposing: %w", r)
	for _, target := range []error{ErrInFlight, ErrConflict, cause} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	for _, target := range []error{ErrInvalidCommand, ErrNotFound, ErrNotOwner} {
		if errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = true", err, target)
		}
	}
	if !errors.Is(ErrUnknownCommand, ErrInvalidCommand) {
		t.Error("ErrUnknownCommand is not an ErrInvalidCommand")
	}
	var got *Rejection
	if !errors.As(err, &got) || got.Migration != "m-1" {
		t.Errorf("errors.As: %v", got)
	}
	want := "scheduler: workload has a migration in flight or in doubt (apply-policy): workload w: parser says no"
	if r.Error() != want {
		t.Errorf("Error() = %q, want %q", r.Error(), want)
	}
}
