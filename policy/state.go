package policy

import (
	"fmt"
	"slices"
	"time"
)

// MigrationState is the phase a migration is in, as the ledger records it.
type MigrationState string

// Migration states, in the order a migration goes through them. Completed, RolledBack and
// Failed are terminal; every other state is in flight: it holds the container (nothing
// else moves it) and counts toward the concurrency limits. In-doubt is not terminal: a
// migration nobody can settle yet holds its container until it is settled. A state this
// package does not know also counts as in flight, so that a newer ledger read by an older
// engine never frees a container too early.
const (
	StatePlanned   MigrationState = "planned"   // recorded; the source may not have the order yet
	StatePreparing MigrationState = "preparing" // the source accepted the order: pre-flight, target copy
	StateFrozen    MigrationState = "frozen"    // the container is stopped and dumped on the source
	StateStreaming MigrationState = "streaming" // the checkpoint is on its way to the target
	StateRestoring MigrationState = "restoring" // the target may be starting its copy
	StateCompleted MigrationState = "completed" // terminal: runs on the target only
	// StateRolledBack is terminal: it was frozen, and runs on the source again.
	StateRolledBack MigrationState = "rolled-back"
	// StateFailed is terminal: it ended before the freeze; nothing changed on the source.
	StateFailed  MigrationState = "failed"
	StateInDoubt MigrationState = "in-doubt" // not settled: nothing else may move the container

	// StateCheckpointing is the older name of StateFrozen and StateTransferring of
	// StateStreaming. Ledgers written with them read as before: CanBecome, Terminal and
	// InFlight treat each exactly as the state it stands for (Canonical).
	StateCheckpointing MigrationState = "checkpointing"
	StateTransferring  MigrationState = "transferring"
)

// MigrationStates lists every state in the order a migration goes through them, terminal
// states and in-doubt last (without the older names).
var MigrationStates = []MigrationState{StatePlanned, StatePreparing, StateFrozen, StateStreaming,
	StateRestoring, StateCompleted, StateRolledBack, StateFailed, StateInDoubt}

// Canonical returns the state s stands for: StateFrozen for StateCheckpointing,
// StateStreaming for StateTransferring, s itself otherwise.
func (s MigrationState) Canonical() MigrationState {
	switch s {
	case StateCheckpointing:
		return StateFrozen
	case StateTransferring:
		return StateStreaming
	}
	return s
}

// Valid reports whether s is one of the states above (older names included).
func (s MigrationState) Valid() bool { return slices.Contains(MigrationStates, s.Canonical()) }

// Terminal reports whether s is a final state: completed, rolled-back or failed.
func (s MigrationState) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateRolledBack
}

// InFlight reports whether a migration in state s holds its container and counts toward
// the concurrency limits: every state that is not terminal, in-doubt and unknown states
// included.
func (s MigrationState) InFlight() bool { return !s.Terminal() }

// stateTransitions is the transition table. States only go forward: a node reports the
// next step, and a leader that learns an outcome late (after a failover, by asking the
// nodes) may jump from any state in flight straight to completed or rolled-back, or to
// in-doubt when it cannot find out. Failed is only reachable before the freeze (planned,
// preparing) and from in-doubt: once the container was frozen, the outcome is completed or
// rolled-back. In-doubt only settles. Nothing leaves a terminal state. It is the table of
// the scheduler's ledger phases (scheduler.ValidTransition), which the leader applies.
//
//	from \ to   preparing frozen streaming restoring completed rolled-back failed in-doubt
//	planned         x                                   x          x        x       x
//	preparing              x                            x          x        x       x
//	frozen                       x                      x          x                x
//	streaming                              x            x          x                x
//	restoring                                           x          x                x
//	in-doubt                                            x          x        x
//
// In-doubt to failed is for a migration whose order was lost before the freeze; a ledger
// that keeps each migration's history refuses it for one that was frozen (the table
// cannot tell).
var stateTransitions = map[MigrationState][]MigrationState{
	StatePlanned:   {StatePreparing, StateCompleted, StateRolledBack, StateFailed, StateInDoubt},
	StatePreparing: {StateFrozen, StateCompleted, StateRolledBack, StateFailed, StateInDoubt},
	StateFrozen:    {StateStreaming, StateCompleted, StateRolledBack, StateInDoubt},
	StateStreaming: {StateRestoring, StateCompleted, StateRolledBack, StateInDoubt},
	StateRestoring: {StateCompleted, StateRolledBack, StateInDoubt},
	StateInDoubt:   {StateCompleted, StateRolledBack, StateFailed},
}

// CanBecome reports whether a migration may go from state s to state t, by the table on
// stateTransitions (older names as the states they stand for). A state to itself is not a
// transition: a repeated report changes nothing, and the caller treats it so.
func (s MigrationState) CanBecome(t MigrationState) bool {
	return slices.Contains(stateTransitions[s.Canonical()], t.Canonical())
}

// Advance moves the migration with the given ID to state to at time at, if the transition
// table allows it: End is set when to is terminal. A repeated state changes nothing and is
// no error. It returns ErrUnknownMigration when the ledger has no such migration, and a
// *TransitionError (ErrInvalidTransition) when the table forbids the step; the ledger is
// then unchanged. The simulator records its migrations' steps with it, as the leader's
// state machine does its own.
func (l *Ledger) Advance(id string, to MigrationState, at time.Time) error {
	for i := len(l.Migrations) - 1; i >= 0; i-- {
		m := &l.Migrations[i]
		if m.ID != id {
			continue
		}
		if m.State.Canonical() == to.Canonical() {
			return nil
		}
		if !m.State.CanBecome(to) {
			return &TransitionError{ID: id, From: m.State, To: to}
		}
		m.State = to
		if to.Terminal() {
			m.End = at
		}
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownMigration, id)
}
