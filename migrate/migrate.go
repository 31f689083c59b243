package migrate

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Phase names, in the order a migration runs them.
const (
	PhasePreflight  = "preflight"
	PhaseImage      = "image"
	PhasePrepare    = "prepare"
	PhaseCheckpoint = "checkpoint"
	PhaseTransfer   = "transfer"
	PhaseRestore    = "restore"
	PhaseVerify     = "verify"
	PhaseCleanup    = "cleanup"
	PhaseRollback   = "rollback"
)

// PhaseTiming is one phase's duration and the bytes it moved.
type PhaseTiming struct {
	Phase    string        `json:"phase"`
	Duration time.Duration `json:"duration"`
	Bytes    int64         `json:"bytes,omitempty"`
}

// Report is what one migration attempt did.
type Report struct {
	ID       string `json:"id"`
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// TargetID is the workload's ID on the target after a successful migration.
	TargetID    string        `json:"targetID,omitempty"`
	MemoryBytes int64         `json:"memoryBytes"`
	Phases      []PhaseTiming `json:"phases"`
	// Downtime is from the freeze until the workload ran on the target (or, after a
	// rollback, on the source again).
	Downtime time.Duration `json:"downtime"`
	// CheckpointBytes is the checkpoint's size; WireBytes what crossed the network for it
	// (smaller when compressed); ImageBytes the image moved, 0 when the target had it.
	CheckpointBytes int64 `json:"checkpointBytes"`
	WireBytes       int64 `json:"wireBytes"`
	ImageBytes      int64 `json:"imageBytes"`
	// Host CPU and memory sampled during checkpoint (source) and restore (target).
	CheckpointUsage HostUsage `json:"checkpointUsage"`
	RestoreUsage    HostUsage `json:"restoreUsage"`
	RolledBack      bool      `json:"rolledBack"`
	Error           string    `json:"error,omitempty"`
}

// Phase returns the duration of the named phase (0 if it did not run).
func (r *Report) Phase(name string) time.Duration {
	for _, p := range r.Phases {
		if p.Phase == name {
			return p.Duration
		}
	}
	return 0
}

func (r *Report) add(phase string, d time.Duration, bytes int64) {
	r.Phases = append(r.Phases, PhaseTiming{Phase: phase, Duration: d, Bytes: bytes})
}

// Options tune one migration.
type Options struct {
	// ID is the migration ID; a new random one when empty. Re-running a migration with the
	// same ID repeats its steps harmlessly.
	ID string
	// Compress streams the checkpoint with zstd (fastest level).
	Compress bool
	// Progress, when set, is called as bytes stream (from the migrating goroutine).
	Progress func(Progress)
	// Hooks inject faults in tests.
	Hooks Hooks
}

// Hooks are called between phases; an error returned by one fails the migration at that
// point, exactly as a real failure there would. For fault-injection tests.
type Hooks struct {
	AfterCheckpoint func() error
	BeforeRestore   func() error
}

// Migrator moves workloads from this node to other nodes' endpoints.
type Migrator struct {
	// Runtime is this (the source) node's runtime.
	Runtime Runtime
	// StateDir holds local checkpoints until the target confirms.
	StateDir string
	// DialTimeout bounds connecting to a target endpoint. Default 10s.
	DialTimeout time.Duration
	Log         *slog.Logger
}

// NewID returns a fresh migration ID.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "m-" + hex.EncodeToString(b[:])
}

// Migrate moves workload id to the node whose endpoint listens at target. On success the
// workload runs on the target and is gone from the source. On failure before the freeze
// nothing changed; after it, the workload runs on the source again and the error wraps
// ErrRolledBack, or ErrRollbackFailed if that too failed, or ErrInDoubt if the target may
// have the workload running and cannot be reached to say (the source copy then stays
// stopped). The report is filled in either way.
func (m *Migrator) Migrate(ctx context.Context, id, target string, opts Options) (*Report, error) {
	if opts.ID == "" {
		opts.ID = NewID()
	}
	if !validID(opts.ID) {
		return nil, fmt.Errorf("migrate: invalid migration ID %q", opts.ID)
	}
	log := m.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("migration", opts.ID, "workload", id, "target", target)
	rep := &Report{ID: opts.ID, Workload: id, Target: target}
	c := &endpointClient{addr: target, timeout: m.DialTimeout, id: opts.ID}
	if c.timeout == 0 {
		c.timeout = 10 * time.Second
	}
	fail := func(err error) (*Report, error) {
		rep.Error = err.Error()
		log.Warn("migration failed", "err", err, "rolledBack", rep.RolledBack)
		return rep, err
	}

	// Pre-flight, both sides. Nothing changes anywhere.
	t := time.Now()
	spec, err := m.Runtime.Inspect(ctx, id)
	if err != nil {
		return fail(err)
	}
	rep.Workload, rep.MemoryBytes = spec.Name, spec.MemoryBytes
	if err := m.Runtime.CheckSource(ctx, spec); err != nil {
		return fail(err)
	}
	if _, err := c.call(ctx, request{Op: "preflight", Spec: spec}, nil); err != nil {
		if !errors.Is(err, ErrPreflight) && !errors.Is(err, ErrNotCheckpointable) {
			// The target could not be asked at all (down, unreachable): still pre-flight.
			err = fmt.Errorf("%w: %w", ErrPreflight, err)
		}
		return fail(err)
	}
	rep.add(PhasePreflight, time.Since(t), 0)

	// Image, before the freeze so it is not downtime.
	t = time.Now()
	if im, ok := m.Runtime.(ImageMover); ok && spec.ImageID != "" {
		resp, err := c.call(ctx, request{Op: "has-image", ImageID: spec.ImageID}, nil)
		if err != nil {
			return fail(err)
		}
		if !resp.Has {
			resp, err := c.call(ctx, request{Op: "image", Compressed: opts.Compress}, func(w io.Writer) (int64, int64, error) {
				return sendStream(w, opts.Compress, 0, PhaseImage, opts.Progress, func(w io.Writer) error {
					return im.SaveImage(ctx, spec, w)
				})
			})
			if err != nil {
				return fail(fmt.Errorf("migrate: moving image %s: %w", spec.Image, err))
			}
			rep.ImageBytes = resp.Bytes
		}
	}
	rep.add(PhaseImage, time.Since(t), rep.ImageBytes)

	// Create the workload on the target, stopped.
	t = time.Now()
	resp, err := c.call(ctx, request{Op: "prepare", MigrationID: opts.ID, Spec: spec}, nil)
	if err != nil {
		return fail(err)
	}
	prepared := *resp.Prepared
	c.prepared = &prepared
	rep.add(PhasePrepare, time.Since(t), 0)

	// From here on the workload is frozen or stopped: any failure rolls back.
	localDir := filepath.Join(m.StateDir, "checkpoints", opts.ID)
	frozen := time.Now()
	sampler := StartHostSampler(50 * time.Millisecond)
	err = m.Runtime.Checkpoint(ctx, spec.ID, localDir)
	rep.CheckpointUsage = sampler.Stop()
	checkpointTime := time.Since(frozen)
	rep.CheckpointBytes = DirSize(localDir)
	rep.add(PhaseCheckpoint, checkpointTime, rep.CheckpointBytes)
	if err == nil && opts.Hooks.AfterCheckpoint != nil {
		err = opts.Hooks.AfterCheckpoint()
	}
	if err != nil {
		return fail(m.rollback(ctx, c, spec, localDir, frozen, rep, err, log))
	}

	t = time.Now()
	resp, err = c.call(ctx, request{Op: "checkpoint", MigrationID: opts.ID, Compressed: opts.Compress}, func(w io.Writer) (int64, int64, error) {
		return sendStream(w, opts.Compress, rep.CheckpointBytes, PhaseTransfer, opts.Progress, func(w io.Writer) error {
			return m.writeCheckpointStream(ctx, w, spec, localDir)
		})
	})
	rep.add(PhaseTransfer, time.Since(t), c.wire)
	rep.WireBytes = c.wire
	if err == nil && opts.Hooks.BeforeRestore != nil {
		err = opts.Hooks.BeforeRestore()
	}
	if err != nil {
		return fail(m.rollback(ctx, c, spec, localDir, frozen, rep, err, log))
	}

	resp, err = c.call(ctx, request{Op: "restore", MigrationID: opts.ID}, nil)
	if err != nil {
		// A RemoteError is the target's definite answer that nothing runs there. Any other
		// failure (connection lost) leaves it open whether the target restored it.
		var remote *RemoteError
		c.inDoubt = !errors.As(err, &remote)
		return fail(m.rollback(ctx, c, spec, localDir, frozen, rep, fmt.Errorf("restore on target: %w", err), log))
	}
	verify := time.Duration(resp.VerifySeconds * float64(time.Second))
	rep.Downtime = time.Since(frozen) - verify
	rep.add(PhaseRestore, time.Duration(resp.RestoreSeconds*float64(time.Second)), 0)
	rep.add(PhaseVerify, verify, 0)
	if resp.Usage != nil {
		rep.RestoreUsage = *resp.Usage
	}
	rep.TargetID = prepared.ID

	// The target runs and answers: only now does the source copy go.
	t = time.Now()
	var cleanupErr error
	if err := m.Runtime.Remove(ctx, spec.ID); err != nil {
		cleanupErr = fmt.Errorf("migrate: migrated, but removing the source copy failed (it is stopped, not running): %w", err)
	}
	if err := os.RemoveAll(localDir); err != nil && cleanupErr == nil {
		cleanupErr = err
	}
	if _, err := c.call(ctx, request{Op: "done", MigrationID: opts.ID}, nil); err != nil && cleanupErr == nil {
		cleanupErr = fmt.Errorf("migrate: migrated, but the target could not drop its staged checkpoint: %w", err)
	}
	rep.add(PhaseCleanup, time.Since(t), 0)
	log.Info("migrated", "downtime", rep.Downtime, "bytes", rep.CheckpointBytes)
	if cleanupErr != nil {
		rep.Error = cleanupErr.Error()
		return rep, cleanupErr
	}
	return rep, nil
}

// writeCheckpointStream writes the checkpoint (under checkpoint/) and the contents of the
// workload's local volumes (under volumes/<name>/) as one tar.
func (m *Migrator) writeCheckpointStream(ctx context.Context, w io.Writer, spec *Spec, dir string) error {
	tw := tar.NewWriter(w)
	if err := addTree(tw, dir, "checkpoint"); err != nil {
		return err
	}
	if vm, ok := m.Runtime.(VolumeMover); ok {
		for _, v := range spec.Volumes {
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

// rollback undoes a migration that failed after the freeze: the target's copy goes, the
// source's comes back from its local checkpoint.
func (m *Migrator) rollback(ctx context.Context, c *endpointClient, spec *Spec, dir string, frozen time.Time, rep *Report, cause error, log *slog.Logger) error {
	ctx = context.WithoutCancel(ctx)
	t := time.Now()
	aborted := false
	for attempt := 0; attempt < m.abortAttempts(c); attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		_, err := c.call(ctx, request{Op: "abort", MigrationID: c.id}, nil)
		if err == nil {
			aborted = true
			break
		}
		log.Warn("rollback: target abort failed", "attempt", attempt+1, "err", err)
	}
	if !aborted && c.inDoubt {
		// The target may be running the workload and cannot confirm it stopped: resuming
		// here could make two running copies. Stay stopped, keep the checkpoint.
		rep.add(PhaseRollback, time.Since(t), 0)
		return fmt.Errorf("%w (checkpoint kept in %s): %w", ErrInDoubt, dir, cause)
	}
	// Otherwise the target never started it: what it created (stopped, labelled with the
	// migration ID) is removed by a later abort or by an operator; it never runs.
	err := m.Runtime.Resume(ctx, spec, dir)
	if err == nil {
		err = m.Runtime.Verify(ctx, spec.ID)
	}
	rep.add(PhaseRollback, time.Since(t), 0)
	rep.Downtime = time.Since(frozen)
	if err != nil {
		return fmt.Errorf("%w (checkpoint in %s): %v; the migration failed because: %w", ErrRollbackFailed, dir, err, cause)
	}
	rep.RolledBack = true
	_ = os.RemoveAll(dir)
	return fmt.Errorf("%w: %w", ErrRolledBack, cause)
}

// endpointClient talks to one target endpoint for one migration.
type endpointClient struct {
	addr     string
	timeout  time.Duration
	id       string
	prepared *Prepared
	wire     int64
	// inDoubt is set when a restore request got no answer: the target may run the workload.
	inDoubt bool
}

// abortAttempts is how often rollback asks the target to drop its copy: once when the
// target certainly never started it, for about half a minute when it may have.
func (m *Migrator) abortAttempts(c *endpointClient) int {
	if c.inDoubt {
		return 30
	}
	return 1
}

// call sends one request, with an optional stream body, and reads the response.
func (c *endpointClient) call(ctx context.Context, req request, body func(io.Writer) (raw, wire int64, err error)) (response, error) {
	req.MigrationID = c.id
	if c.prepared != nil {
		req.Prepared = c.prepared
	}
	d := net.Dialer{Timeout: c.timeout}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return response{}, fmt.Errorf("migrate: target endpoint %s unreachable: %w", c.addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	bw := bufio.NewWriterSize(conn, chunkSize+8)
	if _, err := bw.WriteString(protoMagic); err != nil {
		return response{}, err
	}
	if err := writeJSONFrame(bw, req); err != nil {
		return response{}, err
	}
	var sendErr error
	if body != nil {
		var wire int64
		_, wire, sendErr = body(bw)
		c.wire = wire
	}
	if sendErr == nil {
		sendErr = bw.Flush()
	}
	var resp response
	if err := readJSONFrame(bufio.NewReader(conn), &resp); err != nil {
		if sendErr != nil {
			return response{}, fmt.Errorf("migrate: %s to %s: %w", req.Op, c.addr, sendErr)
		}
		return response{}, fmt.Errorf("migrate: %s to %s: no answer: %w", req.Op, c.addr, err)
	}
	if err := resp.err(); err != nil {
		return resp, err
	}
	if sendErr != nil {
		return resp, fmt.Errorf("migrate: %s to %s: %w", req.Op, c.addr, sendErr)
	}
	return resp, nil
}

// RequestMigration asks the endpoint of the node that runs the workload (source) to migrate
// it to the node whose endpoint is at req.Target, and waits for the outcome. The report is
// returned whenever the source produced one, also with an error.
func RequestMigration(ctx context.Context, source string, req MigrateRequest) (*Report, error) {
	c := &endpointClient{addr: source, timeout: 10 * time.Second, id: req.ID}
	resp, err := c.call(ctx, request{Op: "migrate", Migrate: &req}, nil)
	return resp.Report, err
}
