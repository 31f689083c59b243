package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/godwit-io/godwit/policy"
)

// FSM is the control plane's raft state machine: it applies committed commands to a State.
//
// Concurrency: raft calls Apply, Snapshot and Restore from one goroutine; any goroutine may
// read at the same time through State, Read, Index and Changed. Apply holds the write lock
// only while it changes the state.
type FSM struct {
	mu       sync.RWMutex
	state    *State
	index    uint64
	changed  chan struct{}
	observer func(ApplyResult)
}

var _ raft.FSM = (*FSM)(nil)

// FSMConfig configures an FSM.
type FSMConfig struct {
	// Observer, if set, is called with the result of every log entry Apply handles,
	// accepted or refused, after the state has changed and with no lock held. It runs on
	// raft's apply goroutine and must not block: every later apply waits for it. It must
	// not modify the result's Migration (a copy, but shared with the proposer's response).
	Observer func(ApplyResult)
}

// NewFSM returns a state machine holding NewState, at index 0.
func NewFSM(cfg FSMConfig) *FSM {
	return &FSM{state: NewState(), changed: make(chan struct{}), observer: cfg.Observer}
}

// ApplyResult is what Apply returns for each log entry: raft hands it to the proposer as
// the ApplyFuture's Response.
type ApplyResult struct {
	// Index is the log entry's index.
	Index uint64
	// Type is the command's type (empty when the entry did not decode).
	Type CommandType
	// Err is nil when the command was applied, else a *Rejection; the state did not
	// change.
	Err error
	// Unchanged is true when the command was accepted but the state already said so: a
	// repeated phase report, a drain of a drained node, a prune with nothing to drop.
	Unchanged bool
	// Migration is a copy of the migration the command created, changed or found
	// unchanged (plan-migration, set-phase, finish-migration).
	Migration *Migration
	// PolicyVersion is the version of the policy put in force (apply-policy).
	PolicyVersion uint64
	// Pruned is how many migrations prune-migrations dropped.
	Pruned int
}

// Apply applies one committed log entry. It never panics on bad input: an entry that does
// not decode, or that the state does not allow, is refused with ApplyResult.Err and
// changes nothing.
func (f *FSM) Apply(l *raft.Log) any {
	res := ApplyResult{Index: l.Index}
	var cmd *Command
	var p any
	if l.Type != raft.LogCommand {
		res.Err = reject(ErrInvalidCommand, "log entry of type %s", l.Type)
	} else {
		cmd, p, res.Err = DecodeCommand(l.Data)
		if cmd != nil && res.Err == nil {
			res.Type = cmd.Type
		} else if r := (*Rejection)(nil); errors.As(res.Err, &r) {
			res.Type = r.Type
		}
	}
	f.mu.Lock()
	if res.Err == nil {
		res.Err = apply(f.state, cmd, p, &res)
		if r := (*Rejection)(nil); errors.As(res.Err, &r) {
			r.Type = cmd.Type
		}
	}
	f.index = l.Index
	if res.Err == nil && !res.Unchanged {
		close(f.changed)
		f.changed = make(chan struct{})
	}
	f.mu.Unlock()
	if f.observer != nil {
		f.observer(res)
	}
	return res
}

// State returns a deep copy of the state, which the caller may keep and change.
func (f *FSM) State() *State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// Read calls fn with the state under the read lock, which is cheaper than State for a
// look-up. fn must not change the state, keep references into it after it returns, or
// call back into the FSM; Apply waits while it runs.
func (f *FSM) Read(fn func(*State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Index returns the index of the last log entry applied (accepted or refused) or restored
// from a snapshot.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// Changed returns a channel that is closed the next time the state changes (a command
// applied, or a snapshot restored). Take the channel before reading the state, then wait
// on it: no change is missed, and a slow reader blocks nobody (several changes close one
// channel once).
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// apply validates cmd against s and applies it. Every check comes before the first change,
// so an error means s is untouched.
func apply(s *State, cmd *Command, p any, res *ApplyResult) error {
	switch p := p.(type) {
	case *ApplyPolicy:
		return applyPolicy(s, cmd, p, res)
	case *PlanMigration:
		return planMigration(s, cmd, p, res)
	case *SetPhase:
		return setPhase(s, cmd, p, res)
	case *FinishMigration:
		return finishMigration(s, cmd, p, res)
	case *SetOwner:
		return setOwner(s, cmd, p, res)
	case *Drain:
		if _, ok := s.Drained[p.Node]; ok {
			res.Unchanged = true
			return nil
		}
		s.Drained[p.Node] = DrainRecord{By: cmd.By, At: cmd.At, Reason: truncate(p.Reason, maxTextLen)}
		return nil
	case *Undrain:
		if _, ok := s.Drained[p.Node]; !ok {
			res.Unchanged = true
			return nil
		}
		delete(s.Drained, p.Node)
		return nil
	case *SetCostModel:
		s.Cost = CostRecord{Model: p.Model, Errors: p.Errors, Version: s.Cost.Version + 1, UpdatedBy: cmd.By, UpdatedAt: cmd.At}
		return nil
	case *SetConditions:
		return setConditions(s, p, res)
	case *PruneMigrations:
		pruneMigrations(s, p, res)
		return nil
	case *SetUsers:
		if u, ok := s.Users[p.Workload]; ok && slices.Equal(u.Sites, p.Sites) {
			res.Unchanged = true
			return nil
		}
		s.Users[p.Workload] = UsersRecord{Sites: slices.Clone(p.Sites), By: cmd.By, At: cmd.At}
		return nil
	case *ClearUsers:
		if _, ok := s.Users[p.Workload]; !ok {
			res.Unchanged = true
			return nil
		}
		delete(s.Users, p.Workload)
		return nil
	case *CreateToken:
		return createToken(s, cmd, p)
	case *DeleteToken:
		return deleteToken(s, p)
	}
	return reject(ErrUnknownCommand, "payload %T", p)
}

func applyPolicy(s *State, cmd *Command, p *ApplyPolicy, res *ApplyResult) error {
	file := p.File
	if file == "" {
		file = "policy"
	}
	pol, err := policy.Parse(file, []byte(p.Source))
	if err != nil {
		return &Rejection{Err: ErrInvalidCommand, Detail: "the policy does not parse", Cause: err}
	}
	name := pol.Name
	if name == "" {
		name = p.File
	}
	var v uint64 = 1
	if s.Policy != nil {
		v = s.Policy.Version + 1
	}
	s.Policy = &PolicyRecord{Version: v, Name: name, Source: p.Source, AppliedBy: cmd.By, AppliedAt: cmd.At}
	res.PolicyVersion = v
	return nil
}

func planMigration(s *State, cmd *Command, p *PlanMigration, res *ApplyResult) error {
	if _, ok := s.Migrations[p.ID]; ok {
		return &Rejection{Err: ErrExists, Detail: fmt.Sprintf("migration %q", p.ID), Migration: p.ID}
	}
	if m, ok := s.InFlight(p.Workload); ok {
		return &Rejection{Err: ErrInFlight, Migration: m.ID,
			Detail: fmt.Sprintf("workload %q: migration %s from %s to %s is %s", p.Workload, m.ID, m.Source, m.Target, m.Phase)}
	}
	if o, ok := s.Owners[p.Workload]; ok && o != p.Source {
		return reject(ErrNotOwner, "workload %q is owned by %q, not by the source %q", p.Workload, o, p.Source)
	}
	if _, ok := s.Drained[p.Target]; ok {
		return reject(ErrDrained, "target %q", p.Target)
	}
	m := &Migration{
		ID:          p.ID,
		Workload:    p.Workload,
		Container:   p.Container,
		Source:      p.Source,
		Target:      p.Target,
		Method:      p.Method,
		Phase:       PhasePlanned,
		Created:     cmd.At,
		Updated:     cmd.At,
		History:     []PhaseChange{{Phase: PhasePlanned, At: cmd.At, By: cmd.By}},
		MemoryBytes: p.MemoryBytes,
		Predicted:   p.Predicted,
		Attempt:     max(1, p.Attempt),
		Reason:      truncate(p.Reason, maxTextLen),
		Manual:      p.Manual,
		RequestedBy: cmd.By,
	}
	s.Migrations[m.ID] = m
	s.Owners[m.Workload] = m.Source // unchanged when known; the source's when not
	res.Migration = m.Clone()
	return nil
}

// transition checks that m may go to phase to. It returns (false, nil) when m is already
// there: a repeated report, accepted without change.
func transition(m *Migration, to Phase) (bool, error) {
	if m.Phase == to {
		return false, nil
	}
	if !ValidTransition(m.Phase, to) {
		return false, &Rejection{Err: ErrInvalidTransition, Migration: m.ID,
			Detail: fmt.Sprintf("migration %s: from %s to %s", m.ID, m.Phase, to)}
	}
	if to == PhaseFailed && m.frozen() {
		return false, &Rejection{Err: ErrInvalidTransition, Migration: m.ID,
			Detail: fmt.Sprintf("migration %s was frozen: it ends completed or rolled-back, not failed", m.ID)}
	}
	return true, nil
}

func setPhase(s *State, cmd *Command, p *SetPhase, res *ApplyResult) error {
	m, ok := s.Migrations[p.ID]
	if !ok {
		return &Rejection{Err: ErrNotFound, Detail: fmt.Sprintf("migration %q", p.ID), Migration: p.ID}
	}
	change, err := transition(m, p.Phase)
	if err != nil {
		return err
	}
	if change {
		m.Phase, m.Updated = p.Phase, cmd.At
		m.History = append(m.History, PhaseChange{Phase: p.Phase, At: cmd.At, By: cmd.By, Note: truncate(p.Reason, maxTextLen)})
	}
	res.Unchanged = !change
	res.Migration = m.Clone()
	return nil
}

func finishMigration(s *State, cmd *Command, p *FinishMigration, res *ApplyResult) error {
	m, ok := s.Migrations[p.ID]
	if !ok {
		return &Rejection{Err: ErrNotFound, Detail: fmt.Sprintf("migration %q", p.ID), Migration: p.ID}
	}
	change, err := transition(m, p.Phase)
	if err != nil {
		return err
	}
	res.Unchanged = !change
	if change {
		failure := truncate(p.Failure, maxTextLen)
		m.Phase, m.Updated, m.Failure = p.Phase, cmd.At, failure
		m.History = append(m.History, PhaseChange{Phase: p.Phase, At: cmd.At, By: cmd.By, Note: failure})
		if p.Measured != (Costs{}) {
			m.Measured = p.Measured
		}
		if p.TargetContainer != "" {
			m.TargetContainer = p.TargetContainer
		}
		if m.Phase == PhaseCompleted {
			s.Owners[m.Workload] = m.Target
			s.LastMoves[m.Workload] = Move{At: cmd.At, From: m.Source, To: m.Target, MigrationID: m.ID}
		}
	}
	res.Migration = m.Clone()
	return nil
}

func setOwner(s *State, cmd *Command, p *SetOwner, res *ApplyResult) error {
	if m, ok := s.InFlight(p.Workload); ok {
		return &Rejection{Err: ErrInFlight, Migration: m.ID,
			Detail: fmt.Sprintf("workload %q: migration %s from %s to %s is %s", p.Workload, m.ID, m.Source, m.Target, m.Phase)}
	}
	o, ok := s.Owners[p.Workload]
	switch {
	case ok && o == p.Node:
		res.Unchanged = true
		return nil
	case ok && !p.Replace:
		return reject(ErrNotOwner, "workload %q is owned by %q; %q claims it", p.Workload, o, p.Node)
	}
	s.Owners[p.Workload] = p.Node
	return nil
}

func setConditions(s *State, p *SetConditions, res *ApplyResult) error {
	conds, stats := p.Conditions, p.Stats
	if len(conds) == 0 {
		conds = nil
	}
	if len(stats) == 0 {
		stats = nil
	}
	sameCond := func(a, b policy.ConditionState) bool {
		return a.Trigger == b.Trigger && a.Subject == b.Subject && a.Since.Equal(b.Since) &&
			a.Active == b.Active && a.ActiveSince.Equal(b.ActiveSince)
	}
	if slices.EqualFunc(conds, s.Conditions, sameCond) && slices.Equal(stats, s.ConditionStats) {
		res.Unchanged = true
		return nil
	}
	s.Conditions, s.ConditionStats = conds, stats
	return nil
}

func pruneMigrations(s *State, p *PruneMigrations, res *ApplyResult) {
	for id, m := range s.Migrations {
		if m.Phase.Terminal() && m.Updated.Before(p.Before) {
			delete(s.Migrations, id)
			res.Pruned++
		}
	}
	moves := len(s.LastMoves)
	maps.DeleteFunc(s.LastMoves, func(_ string, mv Move) bool { return mv.At.Before(p.Before) })
	res.Unchanged = res.Pruned == 0 && moves == len(s.LastMoves)
}

// snapshotFormat is the version of the snapshot file; Restore refuses others.
const snapshotFormat = 1

// snapshotFile is a snapshot as JSON.
type snapshotFile struct {
	Format int    `json:"format"`
	Index  uint64 `json:"index"`
	State  *State `json:"state"`
}

// Snapshot captures a copy of the state; Persist writes it while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{file: snapshotFile{Format: snapshotFormat, Index: f.index, State: f.state.Clone()}}, nil
}

type fsmSnapshot struct{ file snapshotFile }

// Persist writes the snapshot as JSON and closes the sink, or cancels it on error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(&s.file); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("scheduler: writing snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds its own copy.
func (s *fsmSnapshot) Release() {}

// Restore replaces the state with a snapshot's. A snapshot that does not decode, has an
// unknown format or an inconsistent state (State.Check) is refused with
// ErrInvalidSnapshot, and the FSM keeps its state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("scheduler: reading snapshot: %w", err)
	}
	var file snapshotFile
	if err := strictUnmarshal(data, &file); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	if file.Format != snapshotFormat {
		return fmt.Errorf("%w: format %d, want %d", ErrInvalidSnapshot, file.Format, snapshotFormat)
	}
	if file.State == nil {
		return fmt.Errorf("%w: no state", ErrInvalidSnapshot)
	}
	file.State.normalize()
	if err := file.State.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	f.mu.Lock()
	f.state, f.index = file.State, file.Index
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	return nil
}
