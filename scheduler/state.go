package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// Phase is where a migration stands in the ledger.
type Phase string

// Migration phases. A migration is planned by the leader, then reported by the nodes as
// they take it through preparing, frozen, streaming and restoring, and ends completed
// (the workload runs on the target only), rolled-back (it was frozen and runs on the
// source again) or failed (it ended before the freeze: nothing changed, it runs on the
// source). In-doubt means nobody can say yet where it runs: it is not terminal, and
// nothing else may move the workload until it is settled.
const (
	PhasePlanned    Phase = "planned"     // recorded; the source may not have the order yet
	PhasePreparing  Phase = "preparing"   // the source accepted the order: pre-flight, target copy
	PhaseFrozen     Phase = "frozen"      // the workload is stopped and dumped on the source
	PhaseStreaming  Phase = "streaming"   // the checkpoint is on its way to the target
	PhaseRestoring  Phase = "restoring"   // the target may be starting its copy
	PhaseCompleted  Phase = "completed"   // terminal: runs on the target only
	PhaseRolledBack Phase = "rolled-back" // terminal: frozen, then brought back on the source
	PhaseFailed     Phase = "failed"      // terminal: ended before the freeze; runs on the source
	PhaseInDoubt    Phase = "in-doubt"    // not settled; the source copy stays stopped
)

// Phases lists every phase in the order a migration goes through them, terminal phases
// and in-doubt last.
var Phases = []Phase{PhasePlanned, PhasePreparing, PhaseFrozen, PhaseStreaming, PhaseRestoring,
	PhaseCompleted, PhaseRolledBack, PhaseFailed, PhaseInDoubt}

// Valid reports whether p is one of the phases above.
func (p Phase) Valid() bool { return slices.Contains(Phases, p) }

// Terminal reports whether p ends a migration: completed, rolled-back or failed.
func (p Phase) Terminal() bool {
	return p == PhaseCompleted || p == PhaseRolledBack || p == PhaseFailed
}

// InFlight reports whether a migration in phase p holds its workload: every valid phase
// that is not terminal, in-doubt included.
func (p Phase) InFlight() bool { return p.Valid() && !p.Terminal() }

// transitions is the phase table. Phases only go forward: a node reports the next step, and
// a leader that learns an outcome late (a new leader asking the nodes after a failover)
// may jump from any in-flight phase straight to completed or rolled-back, or to in-doubt
// when it cannot find out. Failed is only reachable before the freeze (planned,
// preparing) and from in-doubt: once the workload was frozen, the outcome is completed or
// rolled-back. In-doubt only settles. Nothing leaves a terminal phase.
//
//	from \ to   preparing frozen streaming restoring completed rolled-back failed in-doubt
//	planned         x                                   x          x        x       x
//	preparing              x                            x          x        x       x
//	frozen                       x                      x          x                x
//	streaming                              x            x          x                x
//	restoring                                           x          x                x
//	in-doubt                                            x          x        x
//
// In-doubt to failed is for a migration whose order was lost before the freeze; FSM
// refuses it for one whose history shows it was frozen.
// The table is policy's (policy.MigrationState.CanBecome), the one the simulator uses too:
// the ledger's phases are policy's migration states by name.

// ValidTransition reports whether a migration may go from phase from to phase to, by the
// table above (policy.MigrationState.CanBecome). A phase to itself is not a transition (FSM
// treats a repeated report as a no-op).
func ValidTransition(from, to Phase) bool {
	return from.Valid() && to.Valid() && policy.MigrationState(from).CanBecome(policy.MigrationState(to))
}

// frozenOrLater reports whether the workload was stopped at p: the phases after the freeze.
func frozenOrLater(p Phase) bool {
	return p == PhaseFrozen || p == PhaseStreaming || p == PhaseRestoring || p == PhaseCompleted || p == PhaseRolledBack
}

// State is the replicated state of the control plane. FSM owns one and changes it only by
// applying commands; readers get a Clone (FSM.State) or read under FSM.Read. Its JSON is
// the body of a snapshot: maps are encoded with sorted keys, so two servers with equal
// states write identical snapshots.
type State struct {
	// Policy is the policy in force; nil until one is applied.
	Policy *PolicyRecord `json:"policy,omitempty"`
	// Migrations is the ledger, by migration ID: in flight, in doubt and finished (until
	// PruneMigrations drops them).
	Migrations map[string]*Migration `json:"migrations"`
	// Owners is the node that owns each managed workload, by workload identity
	// (godwit.io/workload). A workload with a migration in flight is owned by the
	// migration's source until it completes.
	Owners map[string]string `json:"owners"`
	// LastMoves is each workload's last completed migration, for cooldowns and ping-pong.
	LastMoves map[string]Move `json:"lastMoves"`
	// Drained are the drained nodes, by node name: nothing moves onto them.
	Drained map[string]DrainRecord `json:"drained"`
	// Cost is the cost model in force and how well it has predicted.
	Cost CostRecord `json:"cost"`
	// Conditions and ConditionStats are the engine's trigger state from the last
	// evaluation (policy.Plan), handed back to it as policy.Ledger's.
	Conditions     []policy.ConditionState `json:"conditions,omitempty"`
	ConditionStats []policy.ConditionStat  `json:"conditionStats,omitempty"`
	// Users are where workloads' users are, by workload identity, as recorded through the
	// API (`godwit users set`); they take precedence over the containers' labels.
	Users map[string]UsersRecord `json:"users,omitempty"`
	// Tokens are the API's bearer tokens, by ID (hashes only; acl.go).
	Tokens map[string]Token `json:"tokens,omitempty"`
}

// UsersRecord is a workload's user sites, who reported them and when.
type UsersRecord struct {
	Sites []policy.UserSite `json:"sites"`
	By    string            `json:"by"`
	At    time.Time         `json:"at"`
}

// PolicyRecord is the policy in force and where it came from.
type PolicyRecord struct {
	// Version counts applied policies: 1 for the first, one more for each apply.
	Version uint64 `json:"version"`
	// Name is the policy's metadata.name (the file name it was applied from when it has
	// none).
	Name string `json:"name,omitempty"`
	// Source is the policy file's text, as applied.
	Source string `json:"source"`
	// AppliedBy is who applied it (Command.By); AppliedAt when (Command.At).
	AppliedBy string    `json:"appliedBy"`
	AppliedAt time.Time `json:"appliedAt"`
}

// Parse returns the policy the record holds. FSM only records a policy that parses, so
// this fails only when a newer parser refuses what an older one accepted.
func (r *PolicyRecord) Parse() (*policy.Policy, error) {
	name := r.Name
	if name == "" {
		name = "policy"
	}
	return policy.Parse(name, []byte(r.Source))
}

// Migration is one migration in the ledger.
type Migration struct {
	// ID identifies the migration on every node; phases are idempotent per ID.
	ID string `json:"id"`
	// Workload is the workload's identity (godwit.io/workload), which survives moves.
	Workload string `json:"workload"`
	// Container is the workload's container name (or ID) on the source.
	Container string `json:"container,omitempty"`
	// TargetContainer is its container ID on the target, once the target reported it.
	TargetContainer string `json:"targetContainer,omitempty"`
	// Source and Target are node names.
	Source string `json:"source"`
	Target string `json:"target"`
	// Method is the migration method, e.g. "stop-and-copy".
	Method string `json:"method"`
	// Phase is where the migration stands.
	Phase Phase `json:"phase"`
	// Created is when it was planned; Updated when its phase last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// History is every phase it went through, planned first; the last entry is Phase.
	History []PhaseChange `json:"history"`
	// MemoryBytes is the workload's memory in use when it was planned.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// Predicted is what the cost model predicted at planning; Measured what the nodes
	// reported when it finished (zero while unknown).
	Predicted Costs `json:"predicted"`
	Measured  Costs `json:"measured"`
	// Attempt counts the tries at this move of this workload, from 1.
	Attempt int `json:"attempt"`
	// Reason is why it was planned: the summary of the decision's explanation, or the
	// operator's request.
	Reason string `json:"reason,omitempty"`
	// Failure is why it did not complete (or why it is in doubt).
	Failure string `json:"failure,omitempty"`
	// Manual is true for a migration an operator asked for (godwit migrate, a drain).
	Manual bool `json:"manual,omitempty"`
	// RequestedBy is who proposed the plan (its Command.By): an operator for a manual
	// migration, the leader's node name for one the engine decided.
	RequestedBy string `json:"requestedBy"`
}

// End is when the migration reached a terminal phase, zero while it is in flight or in
// doubt.
func (m *Migration) End() time.Time {
	if m.Phase.Terminal() {
		return m.Updated
	}
	return time.Time{}
}

// frozen reports whether the history says the workload was ever stopped.
func (m *Migration) frozen() bool {
	return slices.ContainsFunc(m.History, func(c PhaseChange) bool { return frozenOrLater(c.Phase) })
}

// PhaseChange is one step of a migration's history.
type PhaseChange struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
	// By is who reported it (Command.By); Note why, when there was something to say.
	By   string `json:"by,omitempty"`
	Note string `json:"note,omitempty"`
}

// Costs are the phase times and size of one migration, predicted or measured.
type Costs struct {
	Checkpoint time.Duration `json:"checkpoint,omitempty"`
	Transfer   time.Duration `json:"transfer,omitempty"`
	Restore    time.Duration `json:"restore,omitempty"`
	// Downtime is from the freeze until the workload ran again.
	Downtime time.Duration `json:"downtime,omitempty"`
	// CheckpointBytes is the size of the checkpoint image.
	CheckpointBytes int64 `json:"checkpointBytes,omitempty"`
}

// PredictedCosts returns the cost model's prediction as Costs.
func PredictedCosts(p policy.Prediction) Costs {
	return Costs{Checkpoint: p.Checkpoint, Transfer: p.Transfer, Restore: p.Restore,
		Downtime: p.Downtime, CheckpointBytes: p.ImageBytes}
}

// MeasuredCosts returns what a node's report of a migration measured.
func MeasuredCosts(r *migrate.Report) Costs {
	return Costs{
		Checkpoint:      r.Phase(migrate.PhaseCheckpoint),
		Transfer:        r.Phase(migrate.PhaseTransfer),
		Restore:         r.Phase(migrate.PhaseRestore),
		Downtime:        r.Downtime,
		CheckpointBytes: r.CheckpointBytes,
	}
}

func (c Costs) valid() bool {
	return c.Checkpoint >= 0 && c.Transfer >= 0 && c.Restore >= 0 && c.Downtime >= 0 && c.CheckpointBytes >= 0
}

// Move is a workload's last completed migration.
type Move struct {
	At          time.Time `json:"at"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	MigrationID string    `json:"migrationID"`
}

// DrainRecord says who drained a node, when, and why.
type DrainRecord struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// CostRecord is the cost model in force with how well it has predicted.
type CostRecord struct {
	// Model is the model the leader predicts with: policy.DefaultCostModel until the
	// first SetCostModel.
	Model policy.CostModel `json:"model"`
	// Errors is the predicted-versus-measured error per phase.
	Errors CostErrors `json:"errors"`
	// Version counts SetCostModel commands (0: the defaults); UpdatedBy and UpdatedAt are
	// the last one's.
	Version   uint64    `json:"version"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// CostErrors is the cost model's prediction error, per phase.
type CostErrors struct {
	Checkpoint ErrorStat `json:"checkpoint"`
	Transfer   ErrorStat `json:"transfer"`
	Restore    ErrorStat `json:"restore"`
	Downtime   ErrorStat `json:"downtime"`
	// CheckpointBytes is the error of the predicted checkpoint size, in bytes.
	CheckpointBytes ErrorStat `json:"checkpointBytes"`
}

// ErrorStat summarises predicted-versus-measured errors of one phase over N migrations, in
// the phase's unit (seconds, or bytes for CheckpointBytes). The leader computes it; the
// state machine only stores it.
type ErrorStat struct {
	N int `json:"n"`
	// MeanAbs is the mean absolute error; Bias the mean of measured minus predicted
	// (positive: the model is optimistic).
	MeanAbs float64 `json:"meanAbs"`
	Bias    float64 `json:"bias"`
	// MeanRelative is the mean of |measured - predicted| / measured.
	MeanRelative float64 `json:"meanRelative"`
}

// NewState returns the state of a new cluster: no policy, an empty ledger, the default
// cost model.
func NewState() *State {
	s := &State{Cost: CostRecord{Model: policy.DefaultCostModel()}}
	s.normalize()
	return s
}

// normalize gives a state one representation whatever its history: maps never nil, empty
// slices nil. A snapshot round trip then gives back an identical state.
func (s *State) normalize() {
	if s.Migrations == nil {
		s.Migrations = map[string]*Migration{}
	}
	if s.Owners == nil {
		s.Owners = map[string]string{}
	}
	if s.LastMoves == nil {
		s.LastMoves = map[string]Move{}
	}
	if s.Drained == nil {
		s.Drained = map[string]DrainRecord{}
	}
	if s.Users == nil {
		s.Users = map[string]UsersRecord{}
	}
	if s.Tokens == nil {
		s.Tokens = map[string]Token{}
	}
	if len(s.Conditions) == 0 {
		s.Conditions = nil
	}
	if len(s.ConditionStats) == 0 {
		s.ConditionStats = nil
	}
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := &State{
		Owners:         maps.Clone(s.Owners),
		LastMoves:      maps.Clone(s.LastMoves),
		Drained:        maps.Clone(s.Drained),
		Tokens:         maps.Clone(s.Tokens),
		Cost:           s.Cost,
		Conditions:     slices.Clone(s.Conditions),
		ConditionStats: slices.Clone(s.ConditionStats),
	}
	if s.Users != nil {
		c.Users = make(map[string]UsersRecord, len(s.Users))
		for w, u := range s.Users {
			u.Sites = slices.Clone(u.Sites)
			c.Users[w] = u
		}
	}
	if s.Policy != nil {
		p := *s.Policy
		c.Policy = &p
	}
	if s.Migrations != nil {
		c.Migrations = make(map[string]*Migration, len(s.Migrations))
		for id, m := range s.Migrations {
			c.Migrations[id] = m.Clone()
		}
	}
	c.normalize()
	return c
}

// Clone returns a deep copy of m.
func (m *Migration) Clone() *Migration {
	c := *m
	c.History = slices.Clone(m.History)
	return &c
}

// Owner returns the node that owns the workload, and whether one is known.
func (s *State) Owner(workload string) (string, bool) {
	n, ok := s.Owners[workload]
	return n, ok
}

// InFlight returns the workload's migration that is in flight or in doubt, if any. There is
// at most one.
func (s *State) InFlight(workload string) (*Migration, bool) {
	for _, m := range s.Migrations {
		if m.Workload == workload && m.Phase.InFlight() {
			return m, true
		}
	}
	return nil, false
}

// Migration returns the migration with the given ID.
func (s *State) Migration(id string) (*Migration, bool) {
	m, ok := s.Migrations[id]
	return m, ok
}

// SortedMigrations returns the ledger oldest first (by Created, then ID).
func (s *State) SortedMigrations() []*Migration {
	out := slices.Collect(maps.Values(s.Migrations))
	slices.SortFunc(out, func(a, b *Migration) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Ledger returns the ledger as the decision engine reads it: one record per migration,
// oldest first, with the workload's identity as the container ID (so cooldowns and
// ping-pong follow the workload across moves), and the trigger state.
func (s *State) Ledger() policy.Ledger {
	l := policy.Ledger{
		Conditions:     slices.Clone(s.Conditions),
		ConditionStats: slices.Clone(s.ConditionStats),
	}
	for _, m := range s.SortedMigrations() {
		l.Migrations = append(l.Migrations, policy.MigrationRecord{
			ID:          m.ID,
			Container:   m.Workload,
			From:        m.Source,
			To:          m.Target,
			Start:       m.Created,
			End:         m.End(),
			State:       m.Phase.LedgerState(),
			Downtime:    m.Measured.Downtime,
			MemoryBytes: m.MemoryBytes,
			Method:      ledgerMethod(m.Method),
		})
	}
	return l
}

// ledgerMethod is a migration's method as the engine's record names it (empty:
// stop-and-copy).
func ledgerMethod(m string) string {
	if m == migrate.MethodPostCopy {
		return policy.MethodPostCopy
	}
	return ""
}

// LedgerState is the phase as the engine's migration state: the same names, one table of
// transitions (policy.MigrationState.CanBecome).
func (p Phase) LedgerState() policy.MigrationState { return policy.MigrationState(p) }

// Check verifies the state's invariants: each migration well formed and filed under its
// ID, with a history ending in its phase; at most one migration in flight or in doubt per
// workload, whose owner is that migration's source; no empty names. FSM checks a restored
// snapshot with it, and the tests check every state they reach.
func (s *State) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	inflight := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(s.Migrations)) {
		m := s.Migrations[id]
		switch {
		case m == nil:
			bad("migration %q: null", id)
			continue
		case m.ID != id:
			bad("migration %q filed under %q", m.ID, id)
		case !validID(m.ID):
			bad("migration %q: invalid ID", m.ID)
		case !validName(m.Workload) || !validName(m.Source) || !validName(m.Target) || m.Method == "":
			bad("migration %q: missing workload, source, target or method", id)
		case m.Source == m.Target:
			bad("migration %q: source and target are both %q", id, m.Source)
		case !m.Phase.Valid():
			bad("migration %q: unknown phase %q", id, m.Phase)
		case len(m.History) == 0 || m.History[len(m.History)-1].Phase != m.Phase || m.History[0].Phase != PhasePlanned:
			bad("migration %q: history does not go from planned to its phase %q", id, m.Phase)
		case slices.ContainsFunc(m.History, func(c PhaseChange) bool { return !c.Phase.Valid() }):
			bad("migration %q: unknown phase in its history", id)
		case !m.Predicted.valid() || !m.Measured.valid() || m.MemoryBytes < 0 || m.Attempt < 1:
			bad("migration %q: negative cost, memory or attempt", id)
		}
		if m.Phase.InFlight() {
			if other, ok := inflight[m.Workload]; ok {
				bad("workload %q: migrations %q and %q both in flight", m.Workload, other, id)
			}
			inflight[m.Workload] = id
			if o := s.Owners[m.Workload]; o != m.Source {
				bad("workload %q: owner %q is not the source %q of its migration %q in flight", m.Workload, o, m.Source, id)
			}
		}
	}
	for w, n := range s.Owners {
		if !validName(w) || !validName(n) {
			bad("owner %q of workload %q: empty or invalid name", n, w)
		}
	}
	for n := range s.Drained {
		if !validName(n) {
			bad("drained node %q: invalid name", n)
		}
	}
	for w, u := range s.Users {
		if !validName(w) || !validName(u.By) {
			bad("users of workload %q: invalid workload or requester name", w)
		} else if err := policy.CheckUserSites(u.Sites); err != nil {
			bad("users of workload %q: %v", w, err)
		}
	}
	if s.Policy != nil && s.Policy.Version == 0 {
		bad("policy without a version")
	}
	s.checkTokens(bad)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scheduler: inconsistent state: %w", err)
	}
	return nil
}
