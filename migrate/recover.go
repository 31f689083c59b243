package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// retryState is the background loop's backoff for one migration.
type retryState struct {
	next  time.Time
	delay time.Duration
}

// Start recovers every unfinished migration in the journal and starts the background loop
// that settles what needs another node, expires abandoned staging and prunes old entries.
// Call it once, after Listen (so peers can ask this node about their side meanwhile).
//
// The rule, on a source: the copy here is removed only after the target confirmed a running,
// verified copy; if the target never got a restore request, or says it has no copy, the
// workload comes back here from its checkpoint; if the target cannot say, the copy here stays
// stopped with its checkpoint and the migration is in doubt until it can. On a target: a
// restore cut short is finished (the copy runs and answers) or removed.
func (n *Node) Start(ctx context.Context) {
	for _, e := range n.journal.List() {
		if e.Finished() {
			continue
		}
		e := e
		unlock := n.ids.lock(e.ID)
		var err error
		if e.Side == SideSource {
			err = n.recoverSource(ctx, &e)
		} else {
			err = n.recoverTarget(ctx, &e)
		}
		unlock()
		if err != nil {
			n.log.Warn("recovery: migration not settled yet", "migration", e.ID, "workload", e.Workload, "phase", e.Phase, "err", err)
		} else {
			n.log.Info("recovery: settled", "migration", e.ID, "workload", e.Workload, "phase", e.Phase)
		}
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
				n.background(n.ctx)
			}
		}
	}()
}

func (n *Node) recoverSource(ctx context.Context, e *Entry) error {
	cause := fmt.Errorf("the source node restarted during phase %s", e.Phase)
	switch e.Phase {
	case PhaseOrdered, PhasePrepared:
		// Never frozen: the workload runs as before.
		return n.put(e, PhaseFailed, cause)
	case PhaseFreezing, PhaseFrozen, PhaseStreamed, PhaseRollingBack:
		// The target was never asked to restore: it cannot run the workload. Bring it back
		// (the background loop tells the target to drop its copy).
		return n.resumeSource(ctx, e, cause)
	case PhaseCommitting:
		return n.commitSource(ctx, e)
	case PhaseRestoring, PhaseInDoubt, PhasePulling:
		out, err := n.settleOnce(ctx, e, cause)
		if out == unsettled {
			if e.Phase != PhaseInDoubt {
				_ = n.put(e, PhaseInDoubt, fmt.Errorf("%w: %v", ErrInDoubt, err))
			}
			return fmt.Errorf("%w: %v", ErrInDoubt, err)
		}
		return err
	case PhaseRollbackFailed:
		return errors.New(e.Error)
	}
	return fmt.Errorf("migrate: unexpected source phase %q", e.Phase)
}

func (n *Node) recoverTarget(ctx context.Context, e *Entry) error {
	switch e.Phase {
	case PhaseReceiving:
		// A partial stream is worthless: back to prepared, the source streams again or
		// aborts (or the staging deadline removes it).
		removeAllQuiet(e.CheckpointDir)
		return n.put(e, PhasePrepared, errors.New("node restarted while receiving"))
	case PhaseRestoring, PhasePulling:
		if e.Method == MethodPostCopy {
			return n.recoverLazyTarget(ctx, e)
		}
		// The restore was cut short. Keep the copy only if it runs and answers.
		err := n.rt.Verify(ctx, e.LocalID)
		if err == nil {
			return n.put(e, PhaseRunning, nil)
		}
		if uerr := n.undoRestore(ctx, e, fmt.Errorf("node restarted during the restore; the copy did not verify: %w", err)); e.Phase != PhaseAborted {
			return uerr
		}
		return nil
	case PhaseInDoubt:
		return n.retryTargetInDoubt(ctx, e)
	}
	return nil // announced, prepared, staged: kept until the source goes on or they expire
}

// retryTargetInDoubt tries again to remove a copy whose restore failed.
func (n *Node) retryTargetInDoubt(ctx context.Context, e *Entry) error {
	if err := n.rt.Remove(ctx, e.LocalID); err != nil {
		return err
	}
	removeAllQuiet(e.CheckpointDir)
	return n.put(e, PhaseAborted, errors.New("failed copy removed on retry"))
}

// background runs one round of the loop.
func (n *Node) background(ctx context.Context) {
	now := time.Now()
	for _, e := range n.journal.List() {
		if ctx.Err() != nil {
			return
		}
		needs := false
		switch {
		case e.Side == SideSource && (e.Phase == PhaseInDoubt || e.Phase == PhaseCommitting):
			needs = true
		case e.Side == SideSource && e.Phase == PhaseCompleted && !e.TargetCommitted && now.Sub(e.Updated) < n.cfg.Retention:
			needs = true
		case e.Side == SideSource && (e.Phase == PhaseRolledBack || e.Phase == PhaseFailed) && !e.TargetAborted &&
			e.Target != "" && e.TargetAddr != "" && now.Sub(e.Updated) < n.cfg.StagingTTL:
			needs = true
		case e.Side == SideTarget && e.Phase == PhaseInDoubt:
			needs = true
		case e.Side == SideTarget && !e.Finished() && now.Sub(e.Updated) > n.cfg.StagingTTL:
			switch e.Phase {
			case PhaseAnnounced, PhasePrepared, PhaseStaged:
				needs = true
			}
		}
		if !needs || !n.due(e.ID, now) {
			continue
		}
		unlock, ok := n.ids.tryLock(e.ID)
		if !ok {
			continue // a step of it is running
		}
		cur, ok := n.journal.Get(e.ID)
		var err error
		if ok && cur.Phase == e.Phase {
			err = n.backgroundStep(ctx, &cur)
		}
		unlock()
		if err != nil {
			n.backoff(e.ID, now)
			n.log.Debug("background: not settled", "migration", e.ID, "err", err)
		} else {
			n.mu.Lock()
			delete(n.retry, e.ID)
			n.mu.Unlock()
		}
	}
	n.journal.Prune(now.Add(-n.cfg.Retention))
}

func (n *Node) backgroundStep(ctx context.Context, e *Entry) error {
	switch {
	case e.Side == SideSource && e.Phase == PhaseInDoubt:
		out, err := n.settleOnce(ctx, e, errors.New(e.Error))
		if out == unsettled {
			if err == nil {
				err = errors.New("unsettled")
			}
			return err
		}
		n.log.Info("in-doubt migration settled", "migration", e.ID, "workload", e.Workload, "phase", e.Phase)
		return nil
	case e.Side == SideSource && e.Phase == PhaseCommitting:
		return n.commitSource(ctx, e)
	case e.Side == SideSource && (e.Phase == PhaseRolledBack || e.Phase == PhaseFailed):
		if _, err := n.targetConn(e).call(ctx, request{Op: opResolve, Outcome: OutcomeAbort}, nil, 0); err != nil {
			return err
		}
		e.TargetAborted = true
		return n.journal.Put(*e)
	case e.Side == SideSource && e.Phase == PhaseCompleted:
		if _, err := n.targetConn(e).call(ctx, request{Op: opResolve, Outcome: OutcomeCommit}, nil, 0); err != nil {
			return err
		}
		e.TargetCommitted = true
		return n.journal.Put(*e)
	case e.Side == SideTarget && e.Phase == PhaseInDoubt:
		return n.retryTargetInDoubt(ctx, e)
	case e.Side == SideTarget:
		return n.abortTarget(ctx, e, PhaseExpired, fmt.Errorf("no progress for %s", n.cfg.StagingTTL))
	}
	return nil
}

func (n *Node) due(id string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.retry[id]
	return !ok || !now.Before(r.next)
}

func (n *Node) backoff(id string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.retry[id]
	if r.delay == 0 {
		r.delay = time.Second
	} else {
		r.delay = min(2*r.delay, time.Minute)
	}
	r.next = now.Add(r.delay)
	n.retry[id] = r
}
