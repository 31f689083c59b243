package scheduler

import (
	"time"

	"github.com/godwit-io/godwit/policy"
)

// Observer is told about the control plane's events as they happen, so that metrics can
// count them (internal/metrics implements it). Its methods are called from the leader's and
// the API's goroutines, several at once: they must be safe for concurrent use, must not
// block, and must not call back into the scheduler. The values they are given are theirs
// to keep (copies), but they must not change them.
type Observer interface {
	// DecisionRound is one decision round of the leader that evaluated a policy: how long
	// the round took (evaluating, recording the trigger state, committing the decisions),
	// the plan, the decisions Commit refused on re-check, and the round's error (nil when
	// it ran to the end).
	DecisionRound(took time.Duration, plan *policy.Plan, refused []policy.Refusal, err error)
	// MigrationFinished is a migration whose outcome the leader has just recorded: its
	// ledger entry after the record (phase completed, rolled-back or failed, or in-doubt;
	// an in-doubt migration is reported again when it is settled).
	MigrationFinished(m *Migration)
	// Applied is one command applied through this server's raft (Server.Apply, which
	// Propose and every writer use): how long the apply took and its error, raft's or
	// the state machine's refusal.
	Applied(took time.Duration, err error)
}

// noObserver is the Observer of a configuration without one.
type noObserver struct{}

func (noObserver) DecisionRound(time.Duration, *policy.Plan, []policy.Refusal, error) {}
func (noObserver) MigrationFinished(*Migration)                                       {}
func (noObserver) Applied(time.Duration, error)                                       {}
