package migrate

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Migrate moves one of this node's workloads to the target named in o. On success the
// workload runs on the target and is gone from here. On failure before the freeze nothing
// changed (ErrPreflight, ErrNotCheckpointable, ErrRefused...); after it, the workload runs
// here again and the error wraps ErrRolledBack, or ErrRollbackFailed if that failed too, or
// ErrInDoubt when the target may run it and cannot say: the copy here then stays stopped
// with its checkpoint, and the node keeps asking the target in the background. The report is
// filled in either way.
func (n *Node) Migrate(ctx context.Context, o Order) (*Report, error) {
	if o.ID == "" {
		o.ID = NewID()
	}
	rep := &Report{ID: o.ID, Workload: o.Workload, Source: n.cfg.Name, Target: o.TargetNode, TargetAddr: o.TargetAddr, Method: MethodStopAndCopy, Result: ResultFailed}
	fail := func(err error) (*Report, error) {
		rep.Error = err.Error()
		n.log.Warn("migration failed", "migration", o.ID, "workload", rep.Workload, "result", rep.Result, "err", err)
		return rep, err
	}
	switch {
	case !validID(o.ID):
		return fail(fmt.Errorf("%w: invalid migration ID %q", ErrRefused, o.ID))
	case o.Method != "" && o.Method != MethodStopAndCopy && o.Method != MethodPostCopy:
		return fail(fmt.Errorf("%w: method %q is not available on this node (stop-and-copy and post-copy are)", ErrRefused, o.Method))
	case o.TargetAddr == "":
		return fail(fmt.Errorf("%w: order without a target address", ErrRefused))
	case o.TargetNode == n.cfg.Name:
		return fail(fmt.Errorf("%w: the target is this node", ErrRefused))
	case o.Workload == "":
		return fail(fmt.Errorf("%w: order without a workload", ErrRefused))
	}
	if _, ok := n.journal.Get(o.ID); ok {
		return fail(fmt.Errorf("%w: migration ID %s is already used on this node (ask its status)", ErrRefused, o.ID))
	}
	spec, err := n.rt.Inspect(ctx, o.Workload)
	if err != nil {
		return fail(err)
	}
	rep.Workload, rep.Container, rep.MemoryBytes = spec.Workload, spec.Name, spec.MemoryBytes
	if !spec.Managed() {
		return fail(fmt.Errorf("%w: %s is not managed by godwit (label %s=true)", ErrRefused, spec.Name, LabelManaged))
	}
	if o.Method, err = methodFor(o.Method, spec); err != nil {
		return fail(err)
	}
	n.mu.Lock()
	holder, busy := n.moving[spec.Workload]
	draining := n.drain
	if !busy && !draining {
		n.moving[spec.Workload] = o.ID
	}
	n.mu.Unlock()
	if draining {
		return fail(fmt.Errorf("%w: not taking the order for %s", ErrShuttingDown, spec.Workload))
	}
	if busy {
		return fail(fmt.Errorf("%w: workload %s is being migrated by migration %s", ErrRefused, spec.Workload, holder))
	}
	defer func() {
		n.mu.Lock()
		delete(n.moving, spec.Workload)
		n.mu.Unlock()
	}()
	if u := n.journal.Unfinished(SideSource, spec.Workload); len(u) > 0 {
		return fail(fmt.Errorf("%w: workload %s is held by migration %s (%s); settle it first", ErrRefused, spec.Workload, u[0].ID, u[0].Phase))
	}
	unlock := n.ids.lock(o.ID)
	defer unlock()
	if _, ok := n.journal.Get(o.ID); ok {
		return fail(fmt.Errorf("%w: migration ID %s is already used on this node", ErrRefused, o.ID))
	}
	m := &sourceRun{n: n, o: o, rep: rep, spec: spec, log: n.log.With("migration", o.ID, "workload", spec.Workload),
		tc: &targetConn{c: &Client{TLS: n.cfg.TLS, DialTimeout: n.cfg.DialTimeout, IOTimeout: n.cfg.IOTimeout}, addr: o.TargetAddr, node: o.TargetNode, id: o.ID}}
	m.e = Entry{ID: o.ID, Side: SideSource, Workload: spec.Workload, Source: n.cfg.Name, Target: o.TargetNode,
		TargetAddr: o.TargetAddr, Spec: spec, LocalID: spec.ID, CheckpointDir: n.localCheckpoint(o.ID), Compress: o.Compress}
	if err := n.put(&m.e, PhaseOrdered, nil); err != nil {
		return fail(err)
	}
	if o.Method == MethodPostCopy {
		rep.Method = MethodPostCopy
		err = m.runPostCopy(ctx)
	} else {
		err = m.run(ctx)
	}
	conns, hs := m.tc.c.HandshakeStats()
	rep.Connections, rep.HandshakeSeconds = conns, hs.Seconds()
	rep.Target = m.e.Target
	if err != nil {
		return fail(err)
	}
	return rep, nil
}

// sourceRun is one migration in progress on its source.
type sourceRun struct {
	n    *Node
	o    Order
	e    Entry
	rep  *Report
	spec *Spec
	tc   *targetConn
	log  *slog.Logger
}

// failBeforeFreeze ends a migration that failed before anything was frozen: the journal
// says failed, and the background loop tells the target to drop what it prepared.
func (m *sourceRun) failBeforeFreeze(err error) error {
	m.rep.Result = ResultFailed
	m.e.Target = m.tc.node
	_ = m.n.put(&m.e, PhaseFailed, err)
	return err
}

// prepareTarget runs the steps before the freeze that every method shares: pre-flight on
// both sides (check, when set, is the method's own check on this node; method goes to the
// target's pre-flight), the image when the target lacks it, and the stopped copy on the
// target, journaled as prepared. Nothing is frozen; the caller fails the migration with
// failBeforeFreeze on an error.
func (m *sourceRun) prepareTarget(ctx context.Context, method string, check func() error) error {
	n, rep, spec, tc := m.n, m.rep, m.spec, m.tc

	// Pre-flight, both sides. Nothing changes anywhere.
	t := time.Now()
	if err := n.rt.CheckSource(ctx, spec); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if _, err := tc.call(ctx, request{Op: opPreflight, Spec: spec, Method: method}, nil, 0); err != nil {
		var remote *RemoteError
		if !errors.As(err, &remote) {
			// The target could not be asked at all (down, unreachable): still pre-flight.
			err = fmt.Errorf("%w: %w", ErrPreflight, err)
		}
		return err
	}
	m.e.Target = tc.node
	rep.add(PhasePreflight, time.Since(t), 0)

	// Image, before the freeze so it is not downtime.
	t = time.Now()
	if im, ok := n.rt.(ImageMover); ok && spec.ImageID != "" {
		resp, err := tc.call(ctx, request{Op: opHasImage}, nil, 0)
		if err != nil {
			return err
		}
		if !resp.Has {
			resp, err := tc.call(ctx, request{Op: opImage, Compressed: m.o.Compress}, func(w io.Writer) error {
				_, _, err := sendStream(w, m.o.Compress, 0, PhaseImage, nil, func(w io.Writer) error {
					return im.SaveImage(ctx, spec, w)
				})
				return err
			}, 10*time.Minute)
			if err != nil {
				return fmt.Errorf("migrate: moving image %s: %w", spec.Image, err)
			}
			rep.ImageBytes = resp.Bytes
		}
	}
	rep.add(PhaseImage, time.Since(t), rep.ImageBytes)

	// Create the workload on the target, stopped.
	t = time.Now()
	resp, err := tc.call(ctx, request{Op: opPrepare}, nil, 2*time.Minute)
	if err != nil {
		return err
	}
	rep.TargetID = resp.ContainerID
	if err := n.put(&m.e, PhasePrepared, nil); err != nil {
		return err
	}
	rep.add(PhasePrepare, time.Since(t), 0)
	return nil
}

func (m *sourceRun) run(ctx context.Context) error {
	n, rep, spec, tc := m.n, m.rep, m.spec, m.tc
	beforeFreeze := m.failBeforeFreeze
	if err := m.prepareTarget(ctx, "", nil); err != nil {
		return beforeFreeze(err)
	}

	// The freeze. The journal says "freezing" before it starts: after a crash from here on
	// the workload may be stopped, and recovery brings it back.
	if err := n.put(&m.e, PhaseFreezing, nil); err != nil {
		return beforeFreeze(err)
	}
	frozen := time.Now()
	sampler := StartHostSampler(50 * time.Millisecond)
	dumping := make(chan struct{})
	if n.cfg.Fault != nil {
		// A crash in the middle of the dump (process tests pause here and are killed).
		go func() {
			select {
			case <-dumping:
			case <-time.After(100 * time.Millisecond):
				_ = n.fault("source-during-checkpoint")
			}
		}()
	}
	err := n.rt.Checkpoint(ctx, spec.ID, m.e.CheckpointDir)
	close(dumping)
	rep.CheckpointUsage = sampler.Stop()
	rep.CheckpointBytes = DirSize(m.e.CheckpointDir)
	rep.add(PhaseCheckpoint, time.Since(frozen), rep.CheckpointBytes)
	if err == nil {
		err = n.put(&m.e, PhaseFrozen, nil)
	}
	if err == nil {
		err = n.fault("source-after-checkpoint")
	}
	if err != nil {
		return m.rollback(ctx, frozen, err)
	}

	// Stream the checkpoint (and local volumes) to the target.
	t := time.Now()
	size, err := m.streamSize(ctx)
	if err != nil {
		return m.rollback(ctx, frozen, err)
	}
	var wire int64
	faulted := false
	progress := func(p Progress) {
		if !faulted && p.Bytes*2 >= size {
			faulted = true
			if ferr := n.fault("source-streaming"); ferr != nil {
				tc.cancelStream(ferr)
			}
		}
	}
	_, err = tc.call(ctx, request{Op: opStream, Compressed: m.o.Compress, Size: size}, func(w io.Writer) error {
		w = tc.streamWriter(w)
		_, wn, err := sendStream(w, m.o.Compress, size, PhaseTransfer, progress, func(w io.Writer) error {
			return m.writeCheckpointStream(ctx, w)
		})
		wire = wn
		return err
	}, 5*time.Minute)
	rep.WireBytes = wire
	rep.add(PhaseTransfer, time.Since(t), wire)
	if err == nil && n.cfg.OnTransfer != nil && wire > 0 {
		n.cfg.OnTransfer(Transfer{Peer: m.e.Target, Bytes: wire, Duration: time.Since(t)})
	}
	if err == nil {
		err = n.put(&m.e, PhaseStreamed, nil)
	}
	if err != nil {
		return m.rollback(ctx, frozen, err)
	}

	// Restore on the target. Journaled first: from here the target may run the workload,
	// and only its answer (or, after a lost answer, its status) may decide what happens.
	if err := n.put(&m.e, PhaseRestoring, nil); err != nil {
		return m.rollback(ctx, frozen, err)
	}
	resp, err := tc.call(ctx, request{Op: opRestore}, nil, n.cfg.RestoreTimeout)
	if err == nil {
		err = n.fault("source-after-restore")
		if err != nil {
			// Simulates losing the answer: the target does run the workload.
			return m.settleAfterLostAnswer(ctx, frozen, err)
		}
	}
	if err != nil {
		var remote *RemoteError
		if errors.As(err, &remote) {
			if errors.Is(err, ErrInDoubt) {
				// The target's restore failed and it could not remove what it started.
				rep.Result = ResultInDoubt
				_ = n.put(&m.e, PhaseInDoubt, err)
				return fmt.Errorf("%w: %w", ErrInDoubt, err)
			}
			// A definite answer: nothing runs on the target.
			return m.rollbackLocal(ctx, frozen, fmt.Errorf("restore on target: %w", err))
		}
		return m.settleAfterLostAnswer(ctx, frozen, fmt.Errorf("restore on target: %w", err))
	}
	verify := time.Duration(resp.VerifySeconds * float64(time.Second))
	rep.setDowntime(time.Since(frozen) - verify)
	rep.add(PhaseRestore, time.Duration(resp.RestoreSeconds*float64(time.Second)), 0)
	rep.add(PhaseVerify, verify, 0)
	if resp.Usage != nil {
		rep.RestoreUsage = *resp.Usage
	}
	if resp.ContainerID != "" {
		rep.TargetID = resp.ContainerID
	}
	return m.commit(ctx)
}

// commit removes the source copy once the target runs the workload, then tells the target.
func (m *sourceRun) commit(ctx context.Context) error {
	t := time.Now()
	err := m.n.commitSource(context.WithoutCancel(ctx), &m.e)
	m.rep.add(PhaseCleanup, time.Since(t), 0)
	m.rep.Result = ResultCompleted
	if err != nil {
		m.rep.Error = err.Error()
		return err
	}
	m.log.Info("migrated", "downtime", m.rep.Downtime, "bytes", m.rep.CheckpointBytes, "target", m.e.Target)
	return nil
}

// commitSource is the last step on a source: the target confirmed a running, verified copy,
// so the copy here goes. Idempotent; also run by recovery.
func (n *Node) commitSource(ctx context.Context, e *Entry) error {
	if err := n.put(e, PhaseCommitting, nil); err != nil {
		return err
	}
	if err := n.rt.Remove(ctx, e.LocalID); err != nil {
		return fmt.Errorf("migrate: migrated, but removing the source copy failed (it is stopped, not running; retried at the next start): %w", err)
	}
	removeAllQuiet(e.CheckpointDir)
	removeAllQuiet(e.CheckpointDir + ".work") // a post-copy dump's logs
	if err := n.put(e, PhaseCompleted, nil); err != nil {
		return err
	}
	tc := n.targetConn(e)
	if _, err := tc.call(ctx, request{Op: opResolve, MigrationID: e.ID, Outcome: OutcomeCommit}, nil, 0); err == nil {
		e.TargetCommitted = true
		_ = n.journal.Put(*e)
	} else {
		n.log.Warn("target not told of the commit yet; retrying in the background", "migration", e.ID, "err", err)
	}
	return nil
}

// rollback undoes a migration that failed after the freeze but before the restore was
// requested: the target cannot run the workload, so the source brings its copy back.
func (m *sourceRun) rollback(ctx context.Context, frozen time.Time, cause error) error {
	// The background loop then tells the target to drop its copy.
	return m.rollbackLocal(ctx, frozen, cause)
}

func (m *sourceRun) rollbackLocal(ctx context.Context, frozen time.Time, cause error) error {
	t := time.Now()
	err := m.n.resumeSource(context.WithoutCancel(ctx), &m.e, cause)
	m.rep.add(PhaseRollback, time.Since(t), 0)
	m.rep.setDowntime(time.Since(frozen))
	if err != nil {
		m.rep.Result = ResultRollbackFailed
		return err
	}
	m.rep.Result, m.rep.RolledBack = ResultRolledBack, true
	return fmt.Errorf("%w: %w", ErrRolledBack, cause)
}

// resumeSource brings the source copy back from its checkpoint. Only called when the target
// has no copy and never will. Idempotent; also run by recovery.
func (n *Node) resumeSource(ctx context.Context, e *Entry, cause error) error {
	if err := n.put(e, PhaseRollingBack, cause); err != nil {
		return err
	}
	err := n.resumeLocal(ctx, e)
	if err == nil {
		err = n.rt.Verify(ctx, e.LocalID)
	}
	if err != nil {
		err = fmt.Errorf("%w (checkpoint kept in %s): %v; the migration failed because: %v", ErrRollbackFailed, e.CheckpointDir, err, cause)
		_ = n.put(e, PhaseRollbackFailed, err)
		return err
	}
	removeAllQuiet(e.CheckpointDir)
	return n.put(e, PhaseRolledBack, cause)
}

// settleAfterLostAnswer asks the target what became of the restore until it can say, for at
// most SettleTimeout; then the migration is in doubt and the background loop goes on asking.
func (m *sourceRun) settleAfterLostAnswer(ctx context.Context, frozen time.Time, cause error) error {
	n := m.n
	deadline := time.Now().Add(n.cfg.SettleTimeout)
	delay := 200 * time.Millisecond
	for {
		outcome, err := n.settleOnce(context.WithoutCancel(ctx), &m.e, cause)
		switch outcome {
		case settledCommitted:
			m.rep.setDowntime(time.Since(frozen))
			m.rep.Result = ResultCompleted
			if err != nil {
				m.rep.Error = err.Error()
			}
			return err
		case settledRolledBack:
			m.rep.setDowntime(time.Since(frozen))
			m.rep.Result, m.rep.RolledBack = ResultRolledBack, true
			return fmt.Errorf("%w: %w", ErrRolledBack, cause)
		case settledRollbackFailed:
			m.rep.Result = ResultRollbackFailed
			return err
		}
		if time.Now().After(deadline) || n.ctx.Err() != nil {
			m.rep.Result = ResultInDoubt
			e := fmt.Errorf("%w (checkpoint kept in %s; asking %s again in the background): %w", ErrInDoubt, m.e.CheckpointDir, m.e.Target, cause)
			_ = n.put(&m.e, PhaseInDoubt, e)
			return e
		}
		m.log.Warn("restore outcome unknown; asking the target again", "err", err)
		time.Sleep(delay)
		delay = min(delay*2, 5*time.Second)
	}
}

type settleOutcome int

const (
	unsettled settleOutcome = iota
	settledCommitted
	settledRolledBack
	settledRollbackFailed
)

// settleOnce asks the target once about a migration whose restore was requested and acts on
// a definite answer: a running copy there → commit here; no copy there → roll back here. A
// target that is unreachable, still restoring, or itself in doubt leaves it unsettled.
func (n *Node) settleOnce(ctx context.Context, e *Entry, cause error) (settleOutcome, error) {
	tc := n.targetConn(e)
	resp, err := tc.call(ctx, request{Op: opStatus}, nil, 0)
	if err != nil {
		return unsettled, err
	}
	st := resp.Status
	if st == nil {
		return unsettled, errors.New("migrate: target answered status without one")
	}
	switch {
	case st.Known && st.Side == SideTarget && (st.Phase == PhaseRunning || st.Phase == PhaseCompleted):
		return settledCommitted, n.commitSource(ctx, e)
	case st.Known && st.Side == SideTarget && (st.Phase == PhaseRestoring || st.Phase == PhaseInDoubt || st.Phase == PhasePulling):
		return unsettled, fmt.Errorf("target reports %s", st.Phase)
	case st.Known && st.Side == SideTarget && !st.Finished:
		// Prepared or staged, never restored: make sure it never will be.
		if _, err := tc.call(ctx, request{Op: opResolve, Outcome: OutcomeAbort}, nil, 2*time.Minute); err != nil {
			return unsettled, err
		}
		e.TargetAborted = true
	case st.Known && st.Side != SideTarget:
		return unsettled, fmt.Errorf("%w: %s reports migration %s as its %s side", ErrRefused, st.Node, e.ID, st.Side)
	}
	// Unknown there, aborted or expired: nothing runs on the target.
	e.TargetAborted = true
	if err := n.resumeSource(ctx, e, cause); err != nil {
		return settledRollbackFailed, err
	}
	return settledRolledBack, nil
}

// streamSize is an upper bound on the checkpoint stream's bytes; the target refuses streams
// that exceed what was declared.
func (m *sourceRun) streamSize(ctx context.Context) (int64, error) {
	var size int64 = 2 * 512 * 10 // end-of-archive blocks, rounded up generously
	walk := func(dir string) error {
		return filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			size += 3 * 512 // header, and a PAX header for long names or large values
			if fi.Mode().IsRegular() {
				size += (fi.Size() + 511) / 512 * 512
			}
			return nil
		})
	}
	if err := walk(m.e.CheckpointDir); err != nil {
		return 0, err
	}
	if vm, ok := m.n.rt.(VolumeMover); ok {
		for _, v := range m.spec.Volumes {
			p, err := vm.VolumePath(ctx, v.Name)
			if err != nil {
				return 0, err
			}
			if err := walk(p); err != nil {
				return 0, err
			}
		}
	}
	return size, nil
}

// writeCheckpointStream writes the checkpoint (under checkpoint/) and the contents of the
// workload's local volumes (under volumes/<name>/) as one tar.
func (m *sourceRun) writeCheckpointStream(ctx context.Context, w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := addTree(tw, m.e.CheckpointDir, "checkpoint"); err != nil {
		return err
	}
	if vm, ok := m.n.rt.(VolumeMover); ok {
		for _, v := range m.spec.Volumes {
			p, err := vm.VolumePath(ctx, v.Name)
			if err != nil {
				return err
			}
			if err := addTree(tw, p, "volumes/"+v.Name); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// targetConn is a source's connection to one migration's target: every call names the
// migration and expects the target's certificate to carry the target's node name (learned
// from the first answer when the order did not name it).
type targetConn struct {
	c    *Client
	addr string
	node string
	id   string

	streamErr error
}

func (n *Node) targetConn(e *Entry) *targetConn {
	return &targetConn{c: &Client{TLS: n.cfg.TLS, DialTimeout: n.cfg.DialTimeout, IOTimeout: n.cfg.IOTimeout}, addr: e.TargetAddr, node: e.Target, id: e.ID}
}

func (t *targetConn) call(ctx context.Context, req request, body func(io.Writer) error, wait time.Duration) (response, error) {
	req.MigrationID = t.id
	resp, node, err := t.c.call(ctx, t.addr, t.node, req, body, wait)
	if t.node == "" && node != "" {
		t.node = node
	}
	return resp, err
}

// cancelStream makes the stream in progress fail with err at its next write (fault
// injection).
func (t *targetConn) cancelStream(err error) { t.streamErr = err }

func (t *targetConn) streamWriter(w io.Writer) io.Writer { return &cancellableWriter{w: w, t: t} }

type cancellableWriter struct {
	w io.Writer
	t *targetConn
}

func (c *cancellableWriter) Write(p []byte) (int, error) {
	if c.t.streamErr != nil {
		return 0, c.t.streamErr
	}
	return c.w.Write(p)
}
