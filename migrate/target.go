package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// The target side of a migration. Every step runs under the migration's lock, only for the
// node that announced it at pre-flight (handle checks), and on the spec accepted then.

// maxWorkloadName bounds a workload identity: it is a key, not a document.
const maxWorkloadName = 256

func (n *Node) preflight(ctx context.Context, peer pki.Identity, req *request) (response, error) {
	spec := req.Spec
	if spec == nil {
		return response{}, fmt.Errorf("%w: pre-flight without a spec", ErrRefused)
	}
	if spec.Workload == "" || len(spec.Workload) > maxWorkloadName {
		return response{}, fmt.Errorf("%w: spec.workload must be 1-%d characters", ErrRefused, maxWorkloadName)
	}
	if e, ok := n.journal.Get(req.MigrationID); ok {
		if e.Side != SideTarget || e.Source != peer.Node {
			return response{}, fmt.Errorf("%w: migration %s belongs to another node", ErrUnauthorized, req.MigrationID)
		}
		if e.Finished() {
			return response{}, fmt.Errorf("%w: migration %s is over here (%s)", ErrRefused, e.ID, e.Phase)
		}
		return response{}, nil // a repeated pre-flight: the first spec stands
	}
	for _, u := range n.journal.Unfinished(SideTarget, spec.Workload) {
		return response{}, fmt.Errorf("%w: workload %s is held by migration %s (%s) on this node", ErrRefused, spec.Workload, u.ID, u.Phase)
	}
	if err := n.rt.CheckTarget(ctx, spec); err != nil {
		return response{}, err
	}
	if req.Method == MethodPostCopy {
		if err := n.checkPostCopy(ctx); err != nil {
			return response{}, fmt.Errorf("target: %w", err)
		}
	}
	e := Entry{ID: req.MigrationID, Side: SideTarget, Workload: spec.Workload, Source: peer.Node, Target: n.cfg.Name, Spec: spec}
	return response{}, n.put(&e, PhaseAnnounced, nil)
}

func (n *Node) hasImage(ctx context.Context, e Entry) (response, error) {
	im, ok := n.rt.(ImageMover)
	if !ok || e.Spec.ImageID == "" {
		return response{Has: true}, nil
	}
	has, err := im.HasImage(ctx, e.Spec.ImageID)
	return response{Has: has}, err
}

// receiveImage takes the migration's image, and only it: the archive is spooled, its image
// ID computed from its config and compared with the spec's, and it is loaded without tags
// (Prepare tags it when the tag is free here), so no tag on this node can be repointed.
func (n *Node) receiveImage(ctx context.Context, e Entry, req *request, body io.Reader) (response, error) {
	im, ok := n.rt.(ImageMover)
	if !ok || e.Spec.ImageID == "" {
		return response{}, fmt.Errorf("%w: migration %s needs no image", ErrRefused, e.ID)
	}
	if e.Phase != PhaseAnnounced && e.Phase != PhasePrepared {
		return response{}, fmt.Errorf("%w: image for migration %s in phase %s", ErrRefused, e.ID, e.Phase)
	}
	dir := n.staging(e.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return response{}, err
	}
	spool := filepath.Join(dir, "image.tar")
	defer os.Remove(spool)
	size, err := receiveStream(body, req.Compressed, func(r io.Reader) error {
		f, err := os.OpenFile(spool, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, &limitedReader{r: r, left: n.cfg.MaxImageBytes, what: "image"})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return response{}, err
	}
	var tags []string
	if e.Spec.Image != "" && e.Spec.Image != e.Spec.ImageID {
		tags = []string{e.Spec.Image}
	}
	if err := checkImageArchive(spool, e.Spec.ImageID, tags); err != nil {
		return response{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeUntaggedArchive(spool, pw)) }()
	err = im.LoadImage(ctx, pr)
	pr.CloseWithError(err)
	if err != nil {
		return response{}, err
	}
	if has, err := im.HasImage(ctx, e.Spec.ImageID); err != nil || !has {
		return response{}, fmt.Errorf("%w: image %s not present after loading the archive", ErrRefused, e.Spec.ImageID)
	}
	return response{Bytes: size}, nil
}

func (n *Node) prepare(ctx context.Context, e Entry) (response, error) {
	switch e.Phase {
	case PhasePrepared, PhaseReceiving, PhaseStaged:
		return response{ContainerID: e.LocalID}, nil // repeated
	case PhaseAnnounced:
	default:
		return response{}, fmt.Errorf("%w: prepare of migration %s in phase %s", ErrRefused, e.ID, e.Phase)
	}
	p, err := n.rt.Prepare(ctx, e.ID, e.Spec)
	if err != nil {
		return response{}, err
	}
	e.LocalID, e.CheckpointDir = p.ID, p.CheckpointDir
	if err := n.put(&e, PhasePrepared, nil); err != nil {
		_ = n.rt.Remove(context.WithoutCancel(ctx), p.ID)
		return response{}, err
	}
	return response{ContainerID: p.ID}, nil
}

// receiveCheckpoint unpacks the checkpoint stream into the prepared checkpoint directory and
// the spec's volumes, within the declared size.
func (n *Node) receiveCheckpoint(ctx context.Context, e Entry, req *request, body io.Reader) (response, error) {
	switch e.Phase {
	case PhasePrepared, PhaseReceiving, PhaseStaged:
	default:
		return response{}, fmt.Errorf("%w: checkpoint for migration %s in phase %s", ErrRefused, e.ID, e.Phase)
	}
	if req.Size <= 0 || req.Size > n.cfg.MaxStreamBytes {
		return response{}, fmt.Errorf("%w: declared stream size %d is outside 1..%d bytes", ErrUnsafeStream, req.Size, n.cfg.MaxStreamBytes)
	}
	if err := n.put(&e, PhaseReceiving, nil); err != nil {
		return response{}, err
	}
	fail := func(err error) (response, error) {
		removeAllQuiet(e.CheckpointDir)
		_ = os.MkdirAll(e.CheckpointDir, 0o700)
		_ = n.put(&e, PhasePrepared, err)
		return response{}, err
	}
	if err := os.RemoveAll(e.CheckpointDir); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(e.CheckpointDir, 0o700); err != nil {
		return fail(err)
	}
	vm, _ := n.rt.(VolumeMover)
	var volumes []string
	for _, v := range e.Spec.Volumes {
		volumes = append(volumes, v.Name)
	}
	volumeDir := func(name string) (string, error) {
		if vm == nil {
			return "", fmt.Errorf("%w: this node's runtime has no volumes", ErrUnsafeStream)
		}
		return vm.VolumePath(ctx, name)
	}
	faulted := false
	var faultErr error
	watch := func(read int64) {
		if !faulted && read*2 >= req.Size {
			faulted = true
			faultErr = n.fault("target-streaming")
		}
	}
	size, err := receiveStream(&limitedReader{r: body, left: req.Size + req.Size/8 + 1<<20, what: "checkpoint stream (on the wire)", watch: watch, failWith: func() error { return faultErr }},
		req.Compressed, func(r io.Reader) error {
			_, err := unpackCheckpoint(r, e.CheckpointDir, volumes, volumeDir, UnpackLimits{MaxBytes: req.Size, MaxEntries: n.cfg.MaxStreamEntries})
			return err
		})
	if err == nil && size > req.Size {
		err = fmt.Errorf("%w: stream of %d bytes is larger than the %d declared", ErrUnsafeStream, size, req.Size)
	}
	if err != nil {
		return fail(err)
	}
	if err := n.put(&e, PhaseStaged, nil); err != nil {
		return fail(err)
	}
	return response{Bytes: size}, nil
}

// restore starts the staged copy and verifies it. Its answer must be exact: success means
// a verified copy runs here; an ordinary error means nothing runs here (whatever started was
// removed); ErrInDoubt means a failed copy could not be removed.
func (n *Node) restore(ctx context.Context, e Entry) (response, error) {
	switch e.Phase {
	case PhaseRunning:
		return response{ContainerID: e.LocalID}, nil // repeated after a lost answer
	case PhaseStaged:
	default:
		return response{}, fmt.Errorf("%w: restore of migration %s in phase %s", ErrRefused, e.ID, e.Phase)
	}
	if err := n.put(&e, PhaseRestoring, nil); err != nil {
		return response{}, err
	}
	ctx = context.WithoutCancel(ctx) // a restore, once started, is finished or undone here
	sampler := StartHostSampler(50 * time.Millisecond)
	start := time.Now()
	err := n.fault("target-before-restore")
	if err == nil {
		err = n.rt.Restore(ctx, Prepared{ID: e.LocalID, CheckpointDir: e.CheckpointDir})
	}
	restore := time.Since(start)
	usage := sampler.Stop()
	if err == nil {
		err = n.fault("target-after-restore")
	}
	vstart := time.Now()
	if err == nil {
		err = n.rt.Verify(ctx, e.LocalID)
	}
	if err != nil {
		return response{}, n.undoRestore(ctx, &e, err)
	}
	if err := n.put(&e, PhaseRunning, nil); err != nil {
		// Running but not journaled: say so as a failure only after removing it.
		return response{}, n.undoRestore(ctx, &e, err)
	}
	return response{ContainerID: e.LocalID, RestoreSeconds: restore.Seconds(), VerifySeconds: time.Since(vstart).Seconds(), Usage: &usage}, nil
}

// undoRestore removes a copy whose restore failed; only then may the answer say "nothing
// runs here".
func (n *Node) undoRestore(ctx context.Context, e *Entry, cause error) error {
	if rerr := n.rt.Remove(ctx, e.LocalID); rerr != nil {
		err := fmt.Errorf("%w: restore failed (%v) and removing the failed copy failed too: %v", ErrInDoubt, cause, rerr)
		_ = n.put(e, PhaseInDoubt, err)
		return err
	}
	removeAllQuiet(e.CheckpointDir)
	_ = n.put(e, PhaseAborted, cause)
	return cause
}

// Resolve commits or aborts this node's part of migration id: on a target, commit marks a
// running copy final and drops the staged checkpoint, abort removes a copy that has not run;
// on a source, either asks the target and settles (the source never takes an outcome on
// faith: the target's state decides). Idempotent.
func (n *Node) Resolve(ctx context.Context, id, outcome string) (Status, error) {
	return n.resolve(ctx, id, outcome, false)
}

// resolve is Resolve; with fence, an abort of a migration this node has never heard of is
// journaled (finished, failed), so that an order with that ID still on its way is refused
// when it arrives: a leader that concludes "the order never arrived" makes it true.
func (n *Node) resolve(ctx context.Context, id, outcome string, fence bool) (Status, error) {
	if outcome != OutcomeCommit && outcome != OutcomeAbort {
		return Status{}, fmt.Errorf("%w: outcome must be %q or %q, not %q", ErrRefused, OutcomeCommit, OutcomeAbort, outcome)
	}
	unlock := n.ids.lock(id)
	e, ok := n.journal.Get(id)
	var err error
	switch {
	case !ok:
		// Nothing here: nothing to undo; nothing to commit either.
		if outcome == OutcomeCommit {
			err = fmt.Errorf("%w: migration %s is unknown here", ErrNotFound, id)
		} else if fence {
			e := Entry{ID: id, Side: SideSource, Source: n.cfg.Name}
			err = n.put(&e, PhaseFailed, errors.New("aborted before any order for it arrived; an order with this ID is refused"))
		}
	case e.Side == SideTarget:
		err = n.resolveTarget(ctx, &e, outcome)
	default:
		err = n.resolveSource(ctx, &e)
	}
	unlock()
	return n.Status(ctx, id), err
}

func (n *Node) resolveTarget(ctx context.Context, e *Entry, outcome string) error {
	if outcome == OutcomeCommit {
		switch e.Phase {
		case PhaseCompleted:
			return nil
		case PhaseRunning:
			removeAllQuiet(e.CheckpointDir)
			removeAllQuiet(n.staging(e.ID))
			return n.put(e, PhaseCompleted, nil)
		}
		return fmt.Errorf("%w: commit of migration %s in phase %s (only a running copy can be committed)", ErrRefused, e.ID, e.Phase)
	}
	return n.abortTarget(ctx, e, PhaseAborted, nil)
}

// abortTarget removes a target copy that has not run, ending in phase end.
func (n *Node) abortTarget(ctx context.Context, e *Entry, end string, why error) error {
	switch {
	case e.Phase == PhaseRunning || e.Phase == PhaseCompleted:
		return fmt.Errorf("%w: the workload of migration %s runs here; its state is newer than the checkpoint, so it is not removed (commit it)", ErrRefused, e.ID)
	case e.Finished():
		return nil
	case e.Phase == PhasePulling:
		return fmt.Errorf("%w: migration %s runs here while its pages arrive; it settles when the transfer ends", ErrRefused, e.ID)
	case e.Phase == PhaseRestoring:
		// Only recovery sees this (restore holds the lock otherwise): settle it first.
		return fmt.Errorf("%w: migration %s is restoring", ErrRefused, e.ID)
	}
	if e.LocalID != "" {
		if err := n.rt.Remove(context.WithoutCancel(ctx), e.LocalID); err != nil {
			return fmt.Errorf("migrate: removing the prepared copy of %s: %w", e.ID, err)
		}
	}
	removeAllQuiet(e.CheckpointDir)
	removeAllQuiet(n.staging(e.ID))
	return n.put(e, end, why)
}

func (n *Node) resolveSource(ctx context.Context, e *Entry) error {
	switch e.Phase {
	case PhaseRestoring, PhaseInDoubt, PhaseCommitting:
		if e.Phase == PhaseCommitting {
			return n.commitSource(ctx, e)
		}
		out, err := n.settleOnce(ctx, e, errors.New("settled on request"))
		if out == unsettled {
			return fmt.Errorf("%w: still unsettled: %v", ErrInDoubt, err)
		}
		return err
	case PhaseRollbackFailed:
		return n.resumeSource(ctx, e, errors.New(e.Error))
	}
	if !e.Finished() {
		return fmt.Errorf("%w: migration %s is in progress here (%s)", ErrRefused, e.ID, e.Phase)
	}
	return nil
}

// limitedReader fails with ErrUnsafeStream once more than left bytes have been read. watch,
// when set, sees the running total; failWith, when it returns an error, fails the read.
type limitedReader struct {
	r        io.Reader
	left     int64
	read     int64
	what     string
	watch    func(read int64)
	failWith func() error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.failWith != nil {
		if err := l.failWith(); err != nil {
			return 0, err
		}
	}
	if l.left <= 0 {
		return 0, fmt.Errorf("%w: %s exceeds its size limit", ErrUnsafeStream, l.what)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	k, err := l.r.Read(p)
	l.left -= int64(k)
	l.read += int64(k)
	if l.watch != nil {
		l.watch(l.read)
	}
	return k, err
}
