package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMigrationStates(t *testing.T) {
	// The whole table, spelled out: (from, to) pairs that are allowed.
	allowed := map[[2]MigrationState]bool{}
	for from, tos := range map[MigrationState][]MigrationState{
		StatePlanned:   {StatePreparing, StateCompleted, StateRolledBack, StateFailed, StateInDoubt},
		StatePreparing: {StateFrozen, StateCompleted, StateRolledBack, StateFailed, StateInDoubt},
		StateFrozen:    {StateStreaming, StateCompleted, StateRolledBack, StateInDoubt},
		StateStreaming: {StateRestoring, StateCompleted, StateRolledBack, StateInDoubt},
		StateRestoring: {StateCompleted, StateRolledBack, StateInDoubt},
		StateInDoubt:   {StateCompleted, StateRolledBack, StateFailed},
	} {
		for _, to := range tos {
			allowed[[2]MigrationState{from, to}] = true
		}
	}
	for _, s := range MigrationStates {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		if s.InFlight() == s.Terminal() {
			t.Errorf("%s: in flight %v, terminal %v", s, s.InFlight(), s.Terminal())
		}
		for _, to := range MigrationStates {
			if got := s.CanBecome(to); got != allowed[[2]MigrationState{s, to}] {
				t.Errorf("%s -> %s: %v", s, to, got)
			}
		}
		if s.Terminal() {
			continue
		}
		// Every state in flight can still end both ways (an outcome learned late), and
		// every one but in-doubt can become in doubt.
		if !s.CanBecome(StateCompleted) || !s.CanBecome(StateRolledBack) {
			t.Errorf("%s cannot end completed and rolled-back", s)
		}
		if s != StateInDoubt && !s.CanBecome(StateInDoubt) {
			t.Errorf("%s cannot become in doubt", s)
		}
	}
	if !StateInDoubt.InFlight() || StateInDoubt.Terminal() {
		t.Error("in-doubt must hold its container")
	}
	// The older names are the states they stand for.
	for old, now := range map[MigrationState]MigrationState{StateCheckpointing: StateFrozen, StateTransferring: StateStreaming} {
		if old.Canonical() != now || !old.Valid() || !old.InFlight() {
			t.Errorf("%s: canonical %s, valid %v, in flight %v", old, old.Canonical(), old.Valid(), old.InFlight())
		}
		for _, to := range MigrationStates {
			if old.CanBecome(to) != now.CanBecome(to) {
				t.Errorf("%s -> %s differs from %s -> %s", old, to, now, to)
			}
		}
	}
	if !StatePlanned.CanBecome(StatePreparing) || !StatePreparing.CanBecome(StateCheckpointing) ||
		!StateCheckpointing.CanBecome(StateTransferring) || !StateTransferring.CanBecome(StateRestoring) {
		t.Error("the older names do not chain")
	}
	// An unknown state is not valid, is held in flight, and goes nowhere.
	if u := MigrationState("paused"); u.Valid() || !u.InFlight() || u.CanBecome(StateCompleted) {
		t.Error("unknown state")
	}
}

func TestLedgerAdvance(t *testing.T) {
	start := t0.Add(-time.Minute)
	l := Ledger{Migrations: []MigrationRecord{
		{ID: "m1", Container: "x", From: "a", To: "b", Start: start, State: StatePlanned},
		{ID: "m2", Container: "y", From: "a", To: "b", Start: start, State: StateCheckpointing},
	}}
	steps := []struct {
		id      string
		to      MigrationState
		wantErr error
	}{
		{"m1", StatePreparing, nil},
		{"m1", StatePreparing, nil}, // repeated: no change, no error
		{"m1", StateStreaming, ErrInvalidTransition},
		{"m1", StateFrozen, nil},
		{"m1", StateFailed, ErrInvalidTransition}, // frozen: completed or rolled back
		{"m1", StateCompleted, nil},
		{"m1", StateRolledBack, ErrInvalidTransition}, // nothing leaves a terminal state
		{"m2", StateFrozen, nil},                      // the same state under its new name
		{"m2", StateInDoubt, nil},
		{"m2", StateRolledBack, nil},
		{"m3", StatePreparing, ErrUnknownMigration},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Second)
		before := cloneLedger(l)
		err := l.Advance(s.id, s.to, at)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Fatalf("step %d: %s to %s: %v, want %v", i, s.id, s.to, err, s.wantErr)
		}
		if err != nil {
			if d := cmp.Diff(before, l); d != "" {
				t.Fatalf("step %d: a refused step changed the ledger:\n%s", i, d)
			}
			var te *TransitionError
			if errors.As(err, &te) && (te.ID != s.id || te.To != s.to) {
				t.Errorf("step %d: %+v", i, te)
			}
		}
	}
	want := []MigrationRecord{
		{ID: "m1", Container: "x", From: "a", To: "b", Start: start, End: t0.Add(5 * time.Second), State: StateCompleted},
		{ID: "m2", Container: "y", From: "a", To: "b", Start: start, End: t0.Add(9 * time.Second), State: StateRolledBack},
	}
	if d := cmp.Diff(want, l.Migrations); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func cloneLedger(l Ledger) Ledger {
	l.Migrations = append([]MigrationRecord(nil), l.Migrations...)
	return l
}
