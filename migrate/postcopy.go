package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Post-copy migration: the source freezes the workload and dumps everything but its
// anonymous private memory, the small image goes to the target, the target restores at
// once with a lazy-pages daemon that fetches the memory from the source's page server, on
// fault and in the background. Downtime no longer grows with memory.
//
// Safety: the source keeps its copy stopped, with all its memory, until the target has
// placed every page. Only a counted, complete transfer commits: the lazy-pages daemon's
// per-task summary (every page it had to fetch placed), the number of pages the dump left
// to the page server, and the page bytes that crossed the relay at both ends. Exit statuses
// are not trusted (a dead daemon leaves the copy reading zeros while both sides may exit 0).
// If the transfer fails, the target removes its copy (its memory is incomplete) and the
// source resumes its stopped copy: the workload ends with its state as of the freeze, on
// the source, in one copy. Target phases: ... → staged → restoring → pulling → running →
// completed; source: ... → streamed → restoring → pulling → committing → completed.

// MethodPostCopy is the post-copy (lazy pages) migration method.
const MethodPostCopy = "post-copy"

// PhasePulling (both sides): the target's copy runs while its memory arrives; the source
// keeps its stopped copy. The target decides the outcome: running (complete) or aborted.
const PhasePulling = "pulling"

// Report phase names of a post-copy migration.
const (
	// PhasePages is the background transfer, from the target's resumption until every
	// page arrived.
	PhasePages = "pages"
)

// lazyTransfer is a target's lazy restore in progress.
type lazyTransfer struct {
	done   chan struct{}
	count  LazyCount
	bytes  int64
	err    error // nil: complete
	copyOK bool
}

func (p *postcopyState) transfer(id string) *lazyTransfer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restores[id]
}

func (p *postcopyState) setTransfer(id string, t *lazyTransfer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.restores == nil {
		p.restores = map[string]*lazyTransfer{}
	}
	p.restores[id] = t
}

func (p *postcopyState) dropTransfer(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.restores, id)
}

// LabelMigrationMethod, on a workload, names the method its migrations use when the order
// names none: "stop-and-copy" or "post-copy".
const LabelMigrationMethod = "godwit.io/migration-method"

// methodFor is the method a migration of spec uses: the order's, else the workload's
// LabelMigrationMethod, else stop-and-copy ("").
func methodFor(ordered string, spec *Spec) (string, error) {
	if ordered != "" {
		return ordered, nil
	}
	switch m := spec.Labels[LabelMigrationMethod]; m {
	case "", MethodStopAndCopy, MethodPostCopy:
		return m, nil
	default:
		return "", fmt.Errorf("%w: %s has label %s=%q; want %s or %s", ErrRefused, spec.Name, LabelMigrationMethod, m, MethodStopAndCopy, MethodPostCopy)
	}
}

// checkPostCopy is pre-flight for post-copy on this node.
func (n *Node) checkPostCopy(ctx context.Context) error {
	pc, ok := n.rt.(PostCopier)
	if !ok {
		return fmt.Errorf("%w: the %s runtime cannot migrate with post-copy", ErrPreflight, n.rt.Name())
	}
	return pc.CheckPostCopy(ctx)
}

// resumeLocal brings the source copy of migration e back: from its checkpoint, or, after a
// post-copy dump, by resuming the stopped tasks.
func (n *Node) resumeLocal(ctx context.Context, e *Entry) error {
	if e.Method != MethodPostCopy {
		return n.rt.Resume(ctx, e.Spec, e.CheckpointDir)
	}
	pc, ok := n.rt.(PostCopier)
	if !ok {
		return fmt.Errorf("migrate: the %s runtime cannot resume a post-copy source", n.rt.Name())
	}
	err := pc.ResumeStopped(ctx, e.Spec, e.CheckpointDir, e.PageServer)
	if err == nil {
		removeAllQuiet(e.CheckpointDir + ".work")
	}
	return err
}

// loopbackPort returns a loopback port free right now (CRIU's page server takes a fixed port).
func loopbackPort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// runPostCopy is run for MethodPostCopy.
func (m *sourceRun) runPostCopy(ctx context.Context) error {
	n, rep, spec, tc := m.n, m.rep, m.spec, m.tc
	pc, ok := n.rt.(PostCopier)
	beforeFreeze := m.failBeforeFreeze
	if !ok {
		return beforeFreeze(fmt.Errorf("%w: the %s runtime cannot migrate with post-copy", ErrRefused, n.rt.Name()))
	}

	if err := m.prepareTarget(ctx, MethodPostCopy, func() error {
		if err := pc.CheckPostCopy(ctx); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		return nil
	}); err != nil {
		return beforeFreeze(err)
	}

	// The freeze. The page server's address is journaled first: recovery must be able to
	// hang up on it.
	var err error
	if m.e.PageServer, err = loopbackPort(n.loopback()); err != nil {
		return beforeFreeze(err)
	}
	m.e.Method = MethodPostCopy
	if err := n.put(&m.e, PhaseFreezing, nil); err != nil {
		return beforeFreeze(err)
	}
	frozen := time.Now()
	dump, err := pc.CheckpointLazy(ctx, spec.ID, m.e.CheckpointDir, m.e.PageServer)
	rep.CheckpointBytes = DirSize(m.e.CheckpointDir)
	rep.add(PhaseCheckpoint, time.Since(frozen), rep.CheckpointBytes)
	if err == nil {
		frozen = dump.Started
		for k, v := range dump.Steps {
			rep.step("source-"+k, v)
		}
		m.e.LazyPages = dump.LazyPages
		rep.LazyBytes = dump.LazyPages * pageSize
		// Not journaled as frozen (nor streamed below): recovery treats freezing, frozen
		// and streamed alike, and each write is an fsync inside the freeze.
	}
	if err == nil {
		err = n.fault("source-after-checkpoint")
	}
	if err != nil {
		return m.rollback(ctx, frozen, err)
	}

	t := time.Now()
	size, err := m.streamSize(ctx)
	if err != nil {
		return m.rollback(ctx, frozen, err)
	}
	var wire int64
	_, err = tc.call(ctx, request{Op: opStream, Compressed: m.o.Compress, Size: size}, func(w io.Writer) error {
		_, wn, err := sendStream(w, m.o.Compress, size, PhaseTransfer, nil, func(w io.Writer) error {
			return m.writeCheckpointStream(ctx, w)
		})
		wire = wn
		return err
	}, 5*time.Minute)
	rep.WireBytes = wire
	rep.add(PhaseTransfer, time.Since(t), wire)
	var pages *sourcePages
	if err == nil {
		pages, err = n.startPages(ctx, tc.c, &m.e, m.e.PageServer)
	}
	if err != nil {
		return m.rollback(ctx, frozen, err)
	}

	// Restore. From here the target may run the workload: only its answer, or its status,
	// decides.
	if err := n.put(&m.e, PhaseRestoring, nil); err != nil {
		return m.rollback(ctx, frozen, err)
	}
	resp, err := tc.call(ctx, request{Op: opRestore, Method: MethodPostCopy, LazyPages: m.e.LazyPages}, nil, n.cfg.RestoreTimeout)
	if err != nil {
		var remote *RemoteError
		if errors.As(err, &remote) && !errors.Is(err, ErrInDoubt) {
			return m.rollbackLocal(ctx, frozen, fmt.Errorf("restore on target: %w", err))
		}
		if errors.Is(err, ErrInDoubt) {
			rep.Result = ResultInDoubt
			_ = n.put(&m.e, PhaseInDoubt, err)
			return fmt.Errorf("%w: %w", ErrInDoubt, err)
		}
		return m.settleAfterLostAnswer(ctx, frozen, fmt.Errorf("restore on target: %w", err))
	}
	resumed := time.Now()
	verify := time.Duration(resp.VerifySeconds * float64(time.Second))
	rep.setDowntime(resumed.Sub(frozen) - verify)
	rep.add(PhaseRestore, time.Duration(resp.RestoreSeconds*float64(time.Second)), 0)
	rep.add(PhaseVerify, verify, 0)
	if resp.ContainerID != "" {
		rep.TargetID = resp.ContainerID
	}
	for k, v := range resp.Steps {
		rep.step("target-"+k, v)
	}
	if err := n.put(&m.e, PhasePulling, nil); err != nil {
		return m.settleAfterLostAnswer(ctx, frozen, err)
	}
	if err := n.fault("source-pulling"); err != nil {
		return m.settleAfterLostAnswer(ctx, frozen, err)
	}

	// The target runs the workload; its memory arrives. Wait for the target's verdict.
	resp, err = tc.call(ctx, request{Op: opPulled}, nil, n.cfg.RestoreTimeout)
	perr := pages.wait(context.WithoutCancel(ctx))
	rep.add(PhasePages, time.Since(resumed), pages.Out.Load())
	rep.PagesSeconds = time.Since(resumed).Seconds()
	if resp.Lazy != nil {
		rep.Lazy = resp.Lazy
	}
	m.log.Info("post-copy transfer ended", "lazyPages", m.e.LazyPages, "sent", pages.Out.Load(), "targetGot", pages.TargetBytes, "target", resp.Lazy, "err", err, "relayErr", perr)
	if err != nil {
		var remote *RemoteError
		if errors.As(err, &remote) && !errors.Is(err, ErrInDoubt) {
			// The target's verdict: incomplete, its copy removed. Resume here.
			return m.rollbackLocal(ctx, frozen, fmt.Errorf("post-copy page transfer: %w", err))
		}
		return m.settleAfterLostAnswer(ctx, frozen, fmt.Errorf("post-copy page transfer: %w", err))
	}
	// The target says complete. Check it against what this side counted before the copy
	// here goes; a disagreement leaves the migration in doubt, never deletes anything.
	if want := m.e.LazyPages * pageSize; pages.Out.Load() < want || (resp.Lazy != nil && resp.Lazy.Found != m.e.LazyPages) {
		err := fmt.Errorf("%w: the target reports a complete transfer, but this side sent %d page bytes of %d (target: %v)", ErrInDoubt, pages.Out.Load(), want, resp.Lazy)
		rep.Result = ResultInDoubt
		_ = n.put(&m.e, PhaseInDoubt, err)
		return err
	}
	// The page server has lost its client; let the dump end before its container goes.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	if err := dump.Wait(wctx); err != nil {
		m.log.Warn("post-copy dump ended with an error after a complete transfer (not a commit signal either way)", "err", err)
	}
	cancel()
	return m.commit(ctx)
}

func (r *Report) step(name string, seconds float64) {
	if r.Steps == nil {
		r.Steps = map[string]float64{}
	}
	r.Steps[name] = seconds
}

// pageSize is the page size CRIU counts in.
var pageSize = int64(os.Getpagesize())

// restoreLazy is the target's post-copy restore: it answers as soon as the copy runs and
// answers, and watches the transfer in the background.
func (n *Node) restoreLazy(ctx context.Context, e Entry, req *request) (response, error) {
	switch e.Phase {
	case PhasePulling, PhaseRunning:
		return response{ContainerID: e.LocalID}, nil
	case PhaseStaged:
	default:
		return response{}, fmt.Errorf("%w: restore of migration %s in phase %s", ErrRefused, e.ID, e.Phase)
	}
	pc, ok := n.rt.(PostCopier)
	if !ok {
		return response{}, fmt.Errorf("%w: the %s runtime cannot restore with post-copy", ErrRefused, n.rt.Name())
	}
	if req.LazyPages < 0 {
		return response{}, fmt.Errorf("%w: negative lazy page count", ErrRefused)
	}
	e.Method, e.LazyPages = MethodPostCopy, req.LazyPages
	if err := n.put(&e, PhaseRestoring, nil); err != nil {
		return response{}, err
	}
	ctx = context.WithoutCancel(ctx)
	relay, err := n.pc.relay(e.ID, n.loopback())
	if err != nil {
		return response{}, n.undoRestore(ctx, &e, err)
	}
	start := time.Now()
	err = n.fault("target-before-restore")
	var lr *LazyRestore
	if err == nil {
		lr, err = pc.RestoreLazy(ctx, Prepared{ID: e.LocalID, CheckpointDir: e.CheckpointDir}, relay.Addr())
	}
	restore := time.Since(start)
	if err != nil {
		n.pc.dropRelay(e.ID)
		return response{}, n.undoRestore(ctx, &e, err)
	}
	t := &lazyTransfer{done: make(chan struct{})}
	n.pc.setTransfer(e.ID, t)
	if ferr := n.fault("target-lazy-restored"); ferr != nil {
		n.log.Warn("fault injected", "err", ferr)
	}
	vstart := time.Now()
	err = n.rt.Verify(ctx, e.LocalID)
	if err == nil {
		err = n.put(&e, PhasePulling, nil)
	}
	if err != nil {
		lr.Kill()
		go n.finishLazy(e.ID, lr, relay, t, err)
		<-t.done
		return response{}, t.err
	}
	verify := time.Since(vstart)
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		n.finishLazy(e.ID, lr, relay, t, nil)
	}()
	return response{ContainerID: e.LocalID, RestoreSeconds: restore.Seconds(), VerifySeconds: verify.Seconds(), Steps: lr.Steps}, nil
}

// finishLazy waits for the lazy-pages daemon and the relay, decides whether every page
// arrived, and settles the target's copy: running when complete, removed otherwise.
func (n *Node) finishLazy(id string, lr *LazyRestore, relay *pageRelay, t *lazyTransfer, cause error) {
	defer close(t.done)
	count, err := lr.Wait(context.Background())
	<-relay.done
	n.pc.dropRelay(id)
	t.count, t.bytes = count, relay.In.Load()
	unlock := n.ids.lock(id)
	defer unlock()
	e, ok := n.journal.Get(id)
	if !ok {
		t.err = fmt.Errorf("migrate: migration %s vanished from the journal", id)
		return
	}
	if cause == nil {
		cause = err
	}
	if cause == nil && relay.err != nil {
		cause = fmt.Errorf("page relay: %w", relay.err)
	}
	nothingLazy := e.LazyPages == 0 && count.Found == 0 && count.Total == 0
	if cause == nil && !count.Complete() && !nothingLazy {
		cause = fmt.Errorf("the lazy-pages daemon did not place every page: %v", count)
	}
	if cause == nil && count.Found != e.LazyPages {
		cause = fmt.Errorf("the daemon fetched %d pages, the source's dump left %d", count.Found, e.LazyPages)
	}
	if cause == nil && t.bytes < e.LazyPages*pageSize {
		cause = fmt.Errorf("only %d page bytes arrived for %d pages", t.bytes, e.LazyPages)
	}
	if cause != nil {
		// The copy here may read zeros where pages are missing: it must not run.
		cause = fmt.Errorf("post-copy transfer incomplete, copy removed: %w", cause)
		t.err = n.undoRestore(context.Background(), &e, cause)
		n.log.Warn("post-copy failed on the target", "migration", id, "err", t.err)
		return
	}
	t.copyOK = true
	if err := n.put(&e, PhaseRunning, nil); err != nil {
		t.err = err
		return
	}
	n.log.Info("post-copy complete", "migration", id, "count", count.String(), "bytes", t.bytes)
}

// pulled answers the source's "did every page arrive": it waits for the transfer's end.
func (n *Node) pulled(ctx context.Context, e Entry) (response, error) {
	t := n.pc.transfer(e.ID)
	if t == nil {
		switch e.Phase {
		case PhaseRunning, PhaseCompleted:
			return response{}, nil
		case PhasePulling, PhaseInDoubt:
			return response{}, fmt.Errorf("%w: the transfer of %s is not settled here (%s)", ErrInDoubt, e.ID, e.Phase)
		}
		return response{}, fmt.Errorf("%w: migration %s: post-copy transfer failed (%s): %s", ErrRefused, e.ID, e.Phase, e.Error)
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return response{}, ctx.Err()
	}
	n.pc.dropTransfer(e.ID)
	c := t.count
	if t.err != nil {
		return response{Lazy: &c, Bytes: t.bytes}, t.err
	}
	return response{Lazy: &c, Bytes: t.bytes}, nil
}

// recoverLazyTarget handles a target restarted during a post-copy restore or transfer:
// this process cannot know whether every page arrived, so the copy goes.
func (n *Node) recoverLazyTarget(ctx context.Context, e *Entry) error {
	if pid := processMentions(e.CheckpointDir); pid > 0 {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	return n.undoRestore(ctx, e, errors.New("node restarted during the post-copy transfer; whether every page arrived is unknown, so the copy was removed"))
}
