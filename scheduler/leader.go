package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// Replica is the replicated log as the leader uses it: a raft Server proposes commands.
type Replica interface {
	Apply(ctx context.Context, cmd []byte) (any, error)
}

// Directory says where each node's migration service listens (the agent publishes it
// through gossip).
type Directory interface {
	MigrationAddr(node string) (string, bool)
}

// NodeService is how the leader talks to nodes' migration services: migrate.Client with a
// server certificate satisfies it; tests may use another implementation.
type NodeService interface {
	Migrate(ctx context.Context, addr, expectNode string, o migrate.Order, wait time.Duration) (*migrate.Report, error)
	Status(ctx context.Context, addr, expectNode, id string) (*migrate.Status, error)
	Resolve(ctx context.Context, addr, expectNode, id, outcome string) (*migrate.Status, error)
}

var _ NodeService = (*migrate.Client)(nil)

// LeaderConfig configures the leader loop.
type LeaderConfig struct {
	// Name is this server's name; it signs the commands it proposes.
	Name    string
	Replica Replica
	FSM     *FSM
	// Gossip returns the current gossiped view of the cluster.
	Gossip    func() gossip.ClusterView
	Directory Directory
	Nodes     NodeService
	Log       *slog.Logger
	// Now is the clock (tests pass a fake). Default time.Now.
	Now func() time.Time
	// Observer is told of decision rounds and recorded outcomes (metrics); nil means
	// nobody.
	Observer Observer

	// Interval, when set, replaces the policy's interval between decision rounds (tests
	// shrink it). Zero: the interval of the policy in force (policy.Policy.Interval), at
	// least MinInterval, taken up as soon as a new policy is in force.
	Interval time.Duration
	// MinInterval is the shortest decision period a policy gets. Default 1s, the shortest
	// a policy file may ask for: a round reads the whole view and proposes to raft, and a
	// migration takes seconds, so deciding more often only chases noise.
	MinInterval time.Duration
	// BaseTimeout plus PerGiB times the workload's memory bounds how long the leader waits
	// for a migration's outcome before asking the nodes. Defaults 2m and 60s/GiB: the
	// slowest path measured here (plain Docker restore) is about 30 s/GiB.
	BaseTimeout time.Duration
	PerGiB      time.Duration
	// PollInterval is how often the leader asks a busy source for its phase, and retries
	// nodes it could not reach while settling. Default 1s.
	PollInterval time.Duration
	// NoProgress is how long the source's journal may stay in one phase (or the source stay
	// unreachable) before the leader stops waiting for the order's answer and settles the
	// migration by asking. Default 5m: a stream or restore of several GiB stays in one phase
	// for minutes.
	NoProgress time.Duration
}

func (c *LeaderConfig) setDefaults() {
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.MinInterval == 0 {
		c.MinInterval = time.Second
	}
	if c.BaseTimeout == 0 {
		c.BaseTimeout = 2 * time.Minute
	}
	if c.PerGiB == 0 {
		c.PerGiB = time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.NoProgress == 0 {
		c.NoProgress = 5 * time.Minute
	}
}

// Leader turns decisions into migrations and drives them to an end. Run it for the length of
// one leadership term: the context ends when leadership is lost, and a new leader's Run
// picks up every migration in flight from the replicated ledger.
type Leader struct {
	cfg LeaderConfig

	// lastUsers are the user sites the last plan was evaluated with (under mu).
	lastUsers []WorkloadUsers

	mu       sync.Mutex
	tracking map[string]bool // migrations a goroutine of this term drives or settles
	lastPlan *policy.Plan
	term     context.Context // Run's context while it runs: migrations live no longer
	decide   sync.Mutex      // rounds and manual requests re-check and record one at a time
	wg       sync.WaitGroup
	stopping atomic.Bool // StopStarting was called: no new migrations
}

// NewLeader returns a leader loop; Run starts it.
func NewLeader(cfg LeaderConfig) *Leader {
	cfg.setDefaults()
	return &Leader{cfg: cfg, tracking: map[string]bool{}}
}

// ErrShuttingDown is returned by Request (Leader's and ControlPlane's) once the server is
// shutting down (StopStarting): it starts no migration any more; ask another server.
var ErrShuttingDown = errors.New("scheduler: this server is shutting down")

// StopStarting makes the leader start no migration any more, of its own (rounds decide
// nothing) or on request (ErrShuttingDown), for as long as this process lives; the
// migrations it drives go on. A stopping server calls it first.
func (l *Leader) StopStarting() { l.stopping.Store(true) }

// Driving is how many migrations this term's goroutines drive or settle.
func (l *Leader) Driving() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tracking)
}

// ErrUnknownNode is returned by Request when a node is not in the cluster.
var ErrUnknownNode = errors.New("scheduler: unknown node")

// ErrUnknownWorkload is returned by Request when no node runs the workload.
var ErrUnknownWorkload = errors.New("scheduler: unknown workload")

// Run settles the migrations the ledger holds in flight, then decides every interval (the
// policy's, see LeaderConfig.Interval) until ctx ends, and waits for the migrations it
// drives to reach a point where a next leader can take them over (they go on on the nodes
// regardless). A new policy in force is decided on at once, and its interval holds from
// then on.
func (l *Leader) Run(ctx context.Context) {
	l.mu.Lock()
	l.term = ctx
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.term = nil
		l.mu.Unlock()
	}()
	l.reconcile(ctx)
	// The policy in force is checked every PollInterval (at most MinInterval; a read of the
	// applied state); rounds run when their interval has passed or the policy changed.
	check := time.NewTicker(min(l.cfg.PollInterval, l.cfg.MinInterval))
	defer check.Stop()
	for {
		st := l.cfg.FSM.State()
		version, interval := l.roundInterval(st.Policy)
		if err := l.Round(ctx); err != nil && ctx.Err() == nil {
			l.cfg.Log.Warn("decision round failed", "err", err)
		}
		next := time.Now().Add(interval)
	wait:
		for {
			select {
			case <-ctx.Done():
				l.wg.Wait()
				return
			case <-check.C:
			}
			if v := policyVersion(l.cfg.FSM.State().Policy); v != version {
				if v != 0 {
					l.cfg.Log.Info("new policy in force: deciding now", "policy_version", v)
				}
				break wait
			}
			if !time.Now().Before(next) {
				break wait
			}
		}
	}
}

// policyVersion is p's version, 0 for none.
func policyVersion(p *PolicyRecord) uint64 {
	if p == nil {
		return 0
	}
	return p.Version
}

// roundInterval is the decision period under the policy in force p (nil: none) and that
// policy's version (0: none). Without a policy nothing is decided, so the period only
// bounds how late a new policy is noticed (it is noticed at the next check anyway).
func (l *Leader) roundInterval(p *PolicyRecord) (version uint64, interval time.Duration) {
	version = policyVersion(p)
	if l.cfg.Interval > 0 {
		return version, l.cfg.Interval
	}
	interval = policy.DefaultPolicy().Interval
	if p != nil {
		if pol, err := p.Parse(); err == nil && pol.Interval > 0 {
			interval = pol.Interval
		}
	}
	return version, max(interval, l.cfg.MinInterval)
}

// Leading reports whether Run is running (this server leads and decides).
func (l *Leader) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term != nil
}

// LastPlan is the latest decision round's plan (nil before the first).
func (l *Leader) LastPlan() *policy.Plan {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastPlan
}

// LastPlanUsers are the user sites the latest decision round's plan used, per workload
// (only workloads with sites, a label or a record).
func (l *Leader) LastPlanUsers() []WorkloadUsers {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastUsers
}

// reconcile takes over every migration the ledger has in flight or in doubt: a previous
// leader ordered it, or this one did before it lost and regained leadership.
func (l *Leader) reconcile(ctx context.Context) {
	for _, m := range l.cfg.FSM.State().SortedMigrations() {
		if m.Phase.InFlight() {
			l.cfg.Log.Info("taking over a migration in flight", "migration", m.ID, "workload", m.Workload, "phase", m.Phase)
			l.track(ctx, m.ID, false)
		}
	}
}

// Round is one decision: view, evaluate, record, order.
func (l *Leader) Round(ctx context.Context) (err error) {
	if l.stopping.Load() {
		return nil
	}
	st := l.cfg.FSM.State()
	if st.Policy == nil {
		return nil // no policy in force: nothing moves
	}
	pol, err := st.Policy.Parse()
	if err != nil {
		return fmt.Errorf("scheduler: the policy in force does not parse: %w", err)
	}
	// Timed on the wall clock, not cfg.Now (a test's fake clock does not move by itself).
	start := time.Now()
	var refused []policy.Refusal
	now := l.cfg.Now()
	view := BuildView(l.cfg.Gossip(), l.viewInputs(st))
	plan := policy.Evaluate(view, pol, liveModel(st.Cost.Model, pol, view), st.Ledger(), now)
	defer func() { l.cfg.Observer.DecisionRound(time.Since(start), &plan, refused, err) }()
	users := UsersOf(view, st)
	l.mu.Lock()
	l.lastPlan, l.lastUsers = &plan, users
	l.mu.Unlock()
	if _, err := l.propose(ctx, TypeSetConditions, SetConditions{Conditions: plan.Conditions, Stats: plan.ConditionStats}); err != nil {
		return err
	}
	if pol.Mode != policy.ModeAuto {
		return nil // recommend: recorded and explained, nothing moves
	}
	byID := map[string]policy.Container{}
	for _, c := range view.Containers {
		byID[c.ID] = c
	}
	// The one step from a plan to ledger entries, shared with the simulator: each decision
	// re-checked against the ledger as it is now (a manual request may have landed since the
	// evaluation) and as it grows with the decisions accepted before it. Rounds and manual
	// requests take turns, so two of them cannot both pass a limit only one may use.
	l.decide.Lock()
	defer l.decide.Unlock()
	if l.stopping.Load() {
		return nil
	}
	fresh := l.cfg.FSM.State()
	var committed []policy.Commitment
	committed, refused = policy.Commit(view, pol, fresh.Ledger(), plan.Decisions, l.cfg.Now())
	for _, r := range refused {
		l.cfg.Log.Info("decision refused on re-check", "workload", r.Decision.Container, "from", r.Decision.From,
			"to", r.Decision.To, "reason", r.Reason, "detail", r.Detail)
	}
	for _, cm := range committed {
		d, rec := cm.Decision, cm.Record
		id, err := l.plan(ctx, PlanMigration{
			Workload: rec.Container, Container: byID[rec.Container].Name, Source: rec.From, Target: rec.To,
			Method: orderMethod(d.Cost.Method), MemoryBytes: rec.MemoryBytes, Predicted: PredictedCosts(d.Cost),
			Reason: decisionSummary(d),
		}, "")
		if err != nil {
			// Refused by the state machine against the ledger it would join (another
			// migration of the workload, a drained target...): the next round decides again.
			l.cfg.Log.Info("decision not recorded", "workload", d.Container, "from", d.From, "to", d.To, "reason", err)
			continue
		}
		l.track(ctx, id, true)
	}
	return nil
}

// liveModel is the cost model the leader evaluates with: the replicated one, offering
// post-copy only under a policy that asks for it (constraints.method auto or post-copy:
// post-copy is opt-in, since a target lost while pages still arrive sends the workload back
// to its state at the freeze) and when at least one node gossiped that it can
// (LabelPostCopy). The engine then takes post-copy only for moves whose source and target
// both can (policy.Node.NoPostCopy, set by BuildView), so one node without it never gets a
// post-copy migration.
func liveModel(m policy.CostModel, pol *policy.Policy, view policy.ClusterView) policy.CostModel {
	m.PostCopy.Enabled = false
	if pol.Constraints.Method != policy.MethodAuto && pol.Constraints.Method != policy.MethodPostCopy {
		return m
	}
	for _, n := range view.Nodes {
		if !n.NoPostCopy {
			m.PostCopy.Enabled = true
			break
		}
	}
	return m
}

// orderMethod is the migrate.Order method of a prediction's method (empty: stop-and-copy).
func orderMethod(m string) string {
	if m == policy.MethodPostCopy {
		return migrate.MethodPostCopy
	}
	return migrate.MethodStopAndCopy
}

// byName is the name part of a requester such as "alice (operator)": what the ledger
// records as who asked.
func byName(by string) string {
	name, _, _ := strings.Cut(by, " ")
	return name
}

// decisionSummary is the Reason the ledger records for a migration the engine decided;
// DecisionTriggers reads its triggers back.
func decisionSummary(d policy.Decision) string {
	parts := []string{fmt.Sprintf("score %.3g", d.Score)}
	if len(d.Triggers) > 0 {
		parts = append(parts, "triggers "+strings.Join(d.Triggers, ","))
	}
	parts = append(parts, fmt.Sprintf("predicted downtime %.1fs", d.Cost.Downtime.Seconds()))
	if d.Cost.Method == policy.MethodPostCopy {
		parts = append(parts, "by post-copy")
	}
	return strings.Join(parts, "; ")
}

// DecisionTriggers returns the triggers a migration's Reason names, when the leader wrote
// it from a decision (decisionSummary); nil otherwise.
func DecisionTriggers(reason string) []string {
	for _, part := range strings.Split(reason, "; ") {
		if list, ok := strings.CutPrefix(part, "triggers "); ok && list != "" {
			return strings.Split(list, ",")
		}
	}
	return nil
}

func (l *Leader) viewInputs(st *State) ViewInputs { return st.ViewInputs() }

// plan records a migration through raft, in the name of by (the leader itself, or the
// operator who asked); the state machine refuses it if it conflicts with the ledger it
// joins.
func (l *Leader) plan(ctx context.Context, p PlanMigration, by string) (string, error) {
	if p.ID == "" {
		p.ID = migrate.NewID()
	}
	if _, err := l.proposeAs(ctx, TypePlanMigration, p, by); err != nil {
		return "", err
	}
	return p.ID, nil
}

// Request is a manual migration (the CLI's `migrate --to`): the same path and checks as
// the leader's own decisions. It records the migration and returns its ID; the leader
// drives it.
func (l *Leader) Request(ctx context.Context, workload, target, by string) (string, error) {
	if l.stopping.Load() {
		return "", ErrShuttingDown
	}
	if _, ok := l.cfg.Directory.MigrationAddr(target); !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownNode, target)
	}
	view := BuildView(l.cfg.Gossip(), l.viewInputs(l.cfg.FSM.State()))
	var c *policy.Container
	for i := range view.Containers {
		if view.Containers[i].ID == workload || view.Containers[i].Name == workload {
			c = &view.Containers[i]
			break
		}
	}
	if c == nil {
		return "", fmt.Errorf("%w: %s", ErrUnknownWorkload, workload)
	}
	l.decide.Lock()
	defer l.decide.Unlock()
	if l.stopping.Load() {
		return "", ErrShuttingDown
	}
	st := l.cfg.FSM.State()
	// The workload's godwit.io/migration-method=post-copy is honoured when both nodes can
	// do post-copy; otherwise the move is by stop-and-copy, and the ledger says which.
	pred := st.Cost.Model.Predict(c.MemoryBytes, 0, 0)
	if c.Labels[policy.LabelMigrationMethod] == policy.MethodPostCopy && canPostCopy(view, c.Node) && canPostCopy(view, target) {
		pred = st.Cost.Model.PredictPostCopy(c.MemoryBytes, 0, 0)
	}
	// The same re-check as the leader's own decisions, under the policy in force (the
	// defaults when there is none), except the policy's cooldown and ping-pong window: an
	// operator asking for a move now means it (a container's own cooldown label still holds).
	var pol *policy.Policy
	if st.Policy != nil {
		if p, err := st.Policy.Parse(); err == nil {
			pol = p
		}
	}
	if pol == nil {
		d := policy.DefaultPolicy()
		pol = &d
	}
	manual := *pol
	manual.Constraints.Cooldown, manual.Constraints.PingPongWindow = 0, 0
	_, refused := policy.Commit(view, &manual, st.Ledger(), []policy.Decision{{Container: c.ID, From: c.Node, To: target, Cost: pred}}, l.cfg.Now())
	if len(refused) > 0 {
		r := refused[0]
		if r.Reason == policy.ReasonUnknownNode {
			return "", fmt.Errorf("%w: %s", ErrUnknownNode, r.Detail)
		}
		return "", fmt.Errorf("%w: %s: %s", ErrConflict, r.Reason, r.Detail)
	}
	id, err := l.plan(ctx, PlanMigration{Workload: c.ID, Container: c.Name, Source: c.Node, Target: target,
		Method: orderMethod(pred.Method), MemoryBytes: c.MemoryBytes, Predicted: PredictedCosts(pred),
		Reason: "requested by " + by, Manual: true}, byName(by))
	if err != nil {
		return "", err
	}
	// Driven for the length of the leadership term, not of the request.
	l.mu.Lock()
	if l.term != nil {
		ctx = l.term
	}
	l.mu.Unlock()
	l.track(ctx, id, true)
	return id, nil
}

// canPostCopy says whether node is in view and can take part in a post-copy migration.
func canPostCopy(view policy.ClusterView, node string) bool {
	for _, n := range view.Nodes {
		if n.ID == node {
			return !n.NoPostCopy
		}
	}
	return false
}

// propose encodes and applies one command in the leader's name; a refusal by the state
// machine is an error.
func (l *Leader) propose(ctx context.Context, t CommandType, body any) (*ApplyResult, error) {
	return l.proposeAs(ctx, t, body, l.cfg.Name)
}

func (l *Leader) proposeAs(ctx context.Context, t CommandType, body any, by string) (*ApplyResult, error) {
	if by == "" {
		by = l.cfg.Name
	}
	return Propose(ctx, l.cfg.Replica, t, body, l.cfg.Now(), by)
}

// Propose encodes one command (stamped at, in the name of by) and applies it through r. A
// refusal by the state machine is the error, with the result beside it.
func Propose(ctx context.Context, r Replica, t CommandType, body any, at time.Time, by string) (*ApplyResult, error) {
	cmd, err := Encode(t, body, at, by)
	if err != nil {
		return nil, err
	}
	resp, err := r.Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var res ApplyResult
	switch v := resp.(type) {
	case ApplyResult:
		res = v
	case *ApplyResult:
		if v == nil {
			return nil, errors.New("scheduler: nil apply response")
		}
		res = *v
	default:
		return nil, fmt.Errorf("scheduler: unexpected apply response %T", resp)
	}
	return &res, res.Err
}

// track starts the goroutine that drives (order) or settles (!order) migration id, once per
// term.
func (l *Leader) track(ctx context.Context, id string, order bool) {
	l.mu.Lock()
	if l.tracking[id] {
		l.mu.Unlock()
		return
	}
	l.tracking[id] = true
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() {
			l.mu.Lock()
			delete(l.tracking, id)
			l.mu.Unlock()
		}()
		if order {
			l.drive(ctx, id)
		} else {
			l.settle(ctx, id)
		}
	}()
}

// drive orders the source to run migration id, records its phases as the source reports
// them, and records the outcome.
func (l *Leader) drive(ctx context.Context, id string) {
	m, ok := l.cfg.FSM.State().Migration(id)
	if !ok {
		return
	}
	log := l.cfg.Log.With("migration", id, "workload", m.Workload, "source", m.Source, "target", m.Target)
	srcAddr, ok1 := l.cfg.Directory.MigrationAddr(m.Source)
	tgtAddr, ok2 := l.cfg.Directory.MigrationAddr(m.Target)
	if !ok1 || !ok2 {
		l.finish(ctx, id, FinishMigration{Phase: PhaseFailed, Failure: "a node's migration service is not known to gossip"}, log)
		return
	}
	if _, err := l.propose(ctx, TypeSetPhase, SetPhase{ID: id, Phase: PhasePreparing, Reason: "ordered"}); err != nil {
		log.Warn("recording the order failed; leaving it to the next leader", "err", err)
		return
	}
	orderCtx, giveUp := context.WithCancel(ctx)
	pollCtx, stopPoll := context.WithCancel(ctx)
	go l.followPhases(pollCtx, id, m.Source, srcAddr, giveUp)
	wait := l.cfg.BaseTimeout + time.Duration(float64(m.MemoryBytes)/float64(1<<30)*float64(l.cfg.PerGiB))
	rep, err := l.cfg.Nodes.Migrate(orderCtx, srcAddr, m.Source, migrate.Order{ID: id, Workload: m.Workload, TargetNode: m.Target, TargetAddr: tgtAddr, Method: m.Method}, wait)
	stopPoll()
	giveUp()
	if ctx.Err() != nil {
		return // leadership lost: the next leader settles it
	}
	if rep != nil && rep.Result != "" && rep.ID == id {
		l.finish(ctx, id, outcomeOf(rep), log)
		return
	}
	log.Warn("no report from the source; asking the nodes", "err", err)
	l.settle(ctx, id)
}

// outcomeOf maps a source's report onto the ledger's outcome.
func outcomeOf(rep *migrate.Report) FinishMigration {
	f := FinishMigration{Measured: MeasuredCosts(rep), TargetContainer: rep.TargetID, Failure: rep.Error}
	switch rep.Result {
	case migrate.ResultCompleted:
		f.Phase = PhaseCompleted
	case migrate.ResultRolledBack:
		f.Phase = PhaseRolledBack
	case migrate.ResultFailed:
		f.Phase = PhaseFailed
	default: // in doubt, rollback failed: not settled, nothing else may move it
		f.Phase = PhaseInDoubt
	}
	return f
}

// followPhases records the source's journal phase in the ledger as it changes, and calls
// giveUp when the source has made no progress (or not answered) for NoProgress: the order's
// answer is then not awaited any more, and the migration is settled by asking.
func (l *Leader) followPhases(ctx context.Context, id, source, addr string, giveUp func()) {
	t := time.NewTicker(l.cfg.PollInterval)
	defer t.Stop()
	last := PhasePreparing
	lastJournal, since := "", time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := l.cfg.Nodes.Status(ctx, addr, source, id)
		if err == nil && st.Known && st.Phase != lastJournal {
			lastJournal, since = st.Phase, time.Now()
		}
		if time.Since(since) > l.cfg.NoProgress {
			l.cfg.Log.Warn("no progress from the source; settling by asking", "migration", id, "phase", lastJournal, "for", l.cfg.NoProgress)
			giveUp()
			return
		}
		if err != nil || !st.Known {
			continue
		}
		ph, ok := ledgerPhase(st.Phase)
		if !ok || ph == last || ph.Terminal() || ph == PhaseInDoubt {
			continue
		}
		if _, err := l.propose(ctx, TypeSetPhase, SetPhase{ID: id, Phase: ph, Reason: "source reports " + st.Phase}); err == nil {
			last = ph
		}
	}
}

// ledgerPhase maps a node journal's source phase onto the ledger's.
func ledgerPhase(journal string) (Phase, bool) {
	switch journal {
	case migrate.PhaseOrdered, migrate.PhasePrepared:
		return PhasePreparing, true
	case migrate.PhaseFreezing, migrate.PhaseFrozen, migrate.PhaseRollingBack:
		return PhaseFrozen, true
	case migrate.PhaseStreamed:
		return PhaseStreaming, true
	case migrate.PhaseRestoring, migrate.PhaseCommitting:
		return PhaseRestoring, true
	case migrate.PhaseCompleted:
		return PhaseCompleted, true
	case migrate.PhaseRolledBack:
		return PhaseRolledBack, true
	case migrate.PhaseFailed:
		return PhaseFailed, true
	case migrate.PhaseInDoubt, migrate.PhaseRollbackFailed:
		return PhaseInDoubt, true
	}
	return "", false
}

// settle finds out how migration id ended by asking its source, never by guessing: the
// source's journal is the authority (it removes its copy only after the target confirmed
// one, and settles with the target itself). While the source cannot be reached or is still
// busy, it keeps asking; a source in doubt is told to settle again.
func (l *Leader) settle(ctx context.Context, id string) {
	m, ok := l.cfg.FSM.State().Migration(id)
	if !ok || !m.Phase.InFlight() {
		return
	}
	log := l.cfg.Log.With("migration", id, "workload", m.Workload, "source", m.Source, "target", m.Target)
	delay := l.cfg.PollInterval
	for ctx.Err() == nil {
		if l.settleOnce(ctx, m, log) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func (l *Leader) settleOnce(ctx context.Context, m *Migration, log *slog.Logger) bool {
	addr, ok := l.cfg.Directory.MigrationAddr(m.Source)
	if !ok {
		return false
	}
	st, err := l.cfg.Nodes.Status(ctx, addr, m.Source, m.ID)
	if err != nil {
		log.Debug("source not reachable while settling", "err", err)
		return false
	}
	if !st.Known {
		if m.Phase == PhasePlanned || m.Phase == PhasePreparing {
			// No order has reached the source. One may still be on its way (a deposed
			// leader's): the abort fences it off (the source journals the ID as failed and
			// refuses it), so nothing was frozen and nothing will be.
			fenced, err := l.cfg.Nodes.Resolve(ctx, addr, m.Source, m.ID, migrate.OutcomeAbort)
			if err != nil || fenced == nil || !fenced.Known {
				log.Debug("could not fence off the order yet", "err", err)
				return false
			}
			if fenced.Phase != migrate.PhaseFailed {
				return false // the order arrived meanwhile: follow it
			}
			l.finish(ctx, m.ID, FinishMigration{Phase: PhaseFailed, Failure: "the source never received the order"}, log)
			return true
		}
		// Frozen or later and the source has no record: only an operator can say.
		l.finish(ctx, m.ID, FinishMigration{Phase: PhaseInDoubt, Failure: "the source has no journal entry for a migration past its freeze"}, log)
		return false
	}
	ph, ok := ledgerPhase(st.Phase)
	switch {
	case !ok:
		return false
	case ph.Terminal():
		f := FinishMigration{Phase: ph, Failure: st.Error}
		l.finish(ctx, m.ID, f, log)
		return true
	case ph == PhaseInDoubt:
		if cur, _ := l.cfg.FSM.State().Migration(m.ID); cur != nil && cur.Phase != PhaseInDoubt {
			l.finish(ctx, m.ID, FinishMigration{Phase: PhaseInDoubt, Failure: st.Error}, log)
		}
		// Ask the source to try again now (it also retries on its own).
		_, _ = l.cfg.Nodes.Resolve(ctx, addr, m.Source, m.ID, migrate.OutcomeAbort)
		return false
	default:
		if cur, _ := l.cfg.FSM.State().Migration(m.ID); cur != nil && cur.Phase != ph && ValidTransition(cur.Phase, ph) {
			_, _ = l.propose(ctx, TypeSetPhase, SetPhase{ID: m.ID, Phase: ph, Reason: "source reports " + st.Phase})
		}
		return false
	}
}

// finish records an outcome; a completed migration refits the cost model.
func (l *Leader) finish(ctx context.Context, id string, f FinishMigration, log *slog.Logger) {
	f.ID = id
	if _, err := l.propose(ctx, TypeFinishMigration, f); err != nil {
		log.Warn("recording the outcome failed; the next leader settles it", "phase", f.Phase, "err", err)
		return
	}
	log.Info("migration recorded", "phase", f.Phase, "failure", f.Failure, "downtime", f.Measured.Downtime)
	var m *Migration
	l.cfg.FSM.Read(func(s *State) {
		if x, ok := s.Migrations[id]; ok {
			m = x.Clone()
		}
	})
	if m != nil {
		l.cfg.Observer.MigrationFinished(m)
	}
	if f.Phase == PhaseCompleted {
		if err := l.refit(ctx); err != nil {
			log.Warn("cost model refit failed", "err", err)
		}
	}
}

// refit fits the cost model to the completed migrations the ledger holds and records it
// with its prediction errors. The two methods' samples are kept apart: a stop-and-copy
// migration refits the checkpoint, restore and image lines; a post-copy one only the
// post-copy freeze (its checkpoint and restore leave the memory out, and would pull the
// stop-and-copy lines down).
func (l *Leader) refit(ctx context.Context) error {
	st := l.cfg.FSM.State()
	var obs []policy.Observation
	var done []*Migration
	for _, m := range st.SortedMigrations() {
		if m.Phase != PhaseCompleted || m.MemoryBytes <= 0 {
			continue
		}
		if o, ok := observation(m); ok {
			done = append(done, m)
			obs = append(obs, o)
		}
	}
	if len(obs) < 3 {
		return nil // too few to fit a line
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].Updated.Before(done[j].Updated) })
	model := policy.Fit(st.Cost.Model, obs, policy.DefaultFitWindow)
	_, err := l.propose(ctx, TypeSetCostModel, SetCostModel{Model: model, Errors: predictionErrors(done)})
	return err
}

// observation is what completed migration m measured for the cost model, by its method;
// false when it measured nothing usable.
func observation(m *Migration) (policy.Observation, bool) {
	if m.Method == migrate.MethodPostCopy {
		// The freeze as measured (the RTT, which policy.Observation.Freeze leaves out, is
		// not known apart here; on the links post-copy is used over it is milliseconds).
		return policy.Observation{MemoryBytes: m.MemoryBytes, Freeze: m.Measured.Downtime}, m.Measured.Downtime > 0
	}
	return policy.Observation{MemoryBytes: m.MemoryBytes, Checkpoint: m.Measured.Checkpoint,
		Restore: m.Measured.Restore, ImageBytes: m.Measured.CheckpointBytes}, m.Measured.Checkpoint > 0
}

// predictionErrors compares what was predicted for each migration with what was measured:
// downtime for every method, the parts of stop-and-copy only (a post-copy prediction has
// no checkpoint or restore apart from its freeze).
func predictionErrors(ms []*Migration) CostErrors {
	var e CostErrors
	add := func(s *ErrorStat, pred, meas float64) {
		if meas <= 0 {
			return
		}
		d := meas - pred
		s.N++
		s.MeanAbs += (abs(d) - s.MeanAbs) / float64(s.N)
		s.Bias += (d - s.Bias) / float64(s.N)
		s.MeanRelative += (abs(d)/meas - s.MeanRelative) / float64(s.N)
	}
	for _, m := range ms {
		add(&e.Downtime, m.Predicted.Downtime.Seconds(), m.Measured.Downtime.Seconds())
		if m.Method == migrate.MethodPostCopy {
			continue
		}
		add(&e.Checkpoint, m.Predicted.Checkpoint.Seconds(), m.Measured.Checkpoint.Seconds())
		add(&e.Transfer, m.Predicted.Transfer.Seconds(), m.Measured.Transfer.Seconds())
		add(&e.Restore, m.Predicted.Restore.Seconds(), m.Measured.Restore.Seconds())
		add(&e.CheckpointBytes, float64(m.Predicted.CheckpointBytes), float64(m.Measured.CheckpointBytes))
	}
	return e
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
