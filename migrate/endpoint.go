package migrate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Endpoint is a node's side of migrations that target it: it answers pre-flight questions,
// receives images and checkpoint streams, and restores workloads on its local runtime. Each
// node's godwit process runs one. Every operation is keyed by migration ID and can be
// repeated.
type Endpoint struct {
	Runtime Runtime
	Log     *slog.Logger
	// Migrator, when set, lets callers (the leader, `godwit demo`) ask this node to migrate
	// one of its workloads to another node: the "migrate" operation.
	Migrator *Migrator

	mu       sync.Mutex
	prepared map[string]Prepared    // by migration ID
	locks    map[string]*sync.Mutex // by migration ID: one step of a migration at a time
	ln       net.Listener
	wg       sync.WaitGroup
}

// NewEndpoint returns an endpoint for rt.
func NewEndpoint(rt Runtime, log *slog.Logger) *Endpoint {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Endpoint{Runtime: rt, Log: log, prepared: map[string]Prepared{}, locks: map[string]*sync.Mutex{}}
}

// Listen starts serving on addr ("127.0.0.2:7946") and returns the bound address.
func (e *Endpoint) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("migrate: endpoint listen %s: %w", addr, err)
	}
	e.mu.Lock()
	e.ln = ln
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.serve(c)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// Close stops accepting and waits for requests in progress.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	ln := e.ln
	e.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	e.wg.Wait()
	return err
}

func (e *Endpoint) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, chunkSize+8)
	magic := make([]byte, len(protoMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != protoMagic {
		return
	}
	var req request
	if err := readJSONFrame(br, &req); err != nil {
		e.Log.Warn("endpoint: bad request", "remote", c.RemoteAddr(), "err", err)
		return
	}
	ctx := context.Background()
	resp, err := e.handle(ctx, &req, br)
	if err != nil {
		e.Log.Warn("endpoint: request failed", "op", req.Op, "migration", req.MigrationID, "err", err)
		resp = errorResponse(err)
	} else {
		resp.OK = true
	}
	bw := bufio.NewWriter(c)
	_ = writeJSONFrame(bw, resp)
	_ = bw.Flush()
}

func (e *Endpoint) handle(ctx context.Context, req *request, body io.Reader) (response, error) {
	if req.Op != "ping" && req.Op != "has-image" && req.Op != "image" && req.Op != "migrate" && !validID(req.MigrationID) {
		return response{}, fmt.Errorf("migrate: invalid migration ID %q", req.MigrationID)
	}
	if req.MigrationID != "" && req.Op != "migrate" {
		// Steps of one migration never overlap here: an abort that arrives while a restore
		// whose answer was lost is still running waits for it, then removes its result.
		unlock := e.lock(req.MigrationID)
		defer unlock()
	}
	switch req.Op {
	case "ping":
		return response{}, nil
	case "preflight":
		if req.Spec == nil {
			return response{}, errors.New("migrate: preflight without a spec")
		}
		return response{}, e.Runtime.CheckTarget(ctx, req.Spec)
	case "has-image":
		im, ok := e.Runtime.(ImageMover)
		if !ok {
			return response{Has: true}, nil
		}
		has, err := im.HasImage(ctx, req.ImageID)
		return response{Has: has}, err
	case "image":
		im, ok := e.Runtime.(ImageMover)
		if !ok {
			return response{}, errors.New("migrate: this node's runtime has no images")
		}
		n, err := receiveStream(body, req.Compressed, func(r io.Reader) error { return im.LoadImage(ctx, r) })
		return response{Bytes: n}, err
	case "prepare":
		if req.Spec == nil {
			return response{}, errors.New("migrate: prepare without a spec")
		}
		p, err := e.Runtime.Prepare(ctx, req.MigrationID, req.Spec)
		if err != nil {
			return response{}, err
		}
		e.mu.Lock()
		e.prepared[req.MigrationID] = p
		e.mu.Unlock()
		return response{Prepared: &p}, nil
	case "checkpoint":
		p, err := e.lookup(req)
		if err != nil {
			return response{}, err
		}
		n, err := e.receiveCheckpoint(ctx, p, body, req.Compressed)
		return response{Bytes: n}, err
	case "restore":
		p, err := e.lookup(req)
		if err != nil {
			return response{}, err
		}
		return e.restore(ctx, p)
	case "abort":
		p, err := e.lookup(req)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return response{}, err
		}
		if err == nil {
			if rerr := e.Runtime.Remove(ctx, p.ID); rerr != nil {
				return response{}, rerr
			}
			_ = os.RemoveAll(p.CheckpointDir)
		}
		e.forget(req.MigrationID)
		return response{}, nil
	case "migrate":
		if e.Migrator == nil {
			return response{}, errors.New("migrate: this endpoint does not start migrations")
		}
		if req.Migrate == nil {
			return response{}, errors.New("migrate: migrate request without arguments")
		}
		opts := Options{ID: req.Migrate.ID, Compress: req.Migrate.Compress}
		if opts.ID == "" {
			opts.ID = NewID()
		}
		last := -1
		opts.Progress = func(p Progress) {
			if p.Total <= 0 {
				return
			}
			if q := int(p.Bytes * 4 / p.Total); q != last {
				last = q
				e.Log.Info("progress", "migration", opts.ID, "phase", p.Phase, "percent", q*25, "bytes", p.Bytes)
			}
		}
		rep, err := e.Migrator.Migrate(ctx, req.Migrate.Workload, req.Migrate.Target, opts)
		return response{Report: rep}, err
	case "done":
		// The source has removed its copy: drop the staged checkpoint.
		if p, err := e.lookup(req); err == nil {
			_ = os.RemoveAll(p.CheckpointDir)
		}
		e.forget(req.MigrationID)
		return response{}, nil
	}
	return response{}, fmt.Errorf("migrate: unknown operation %q", req.Op)
}

func (e *Endpoint) forget(id string) {
	e.mu.Lock()
	delete(e.prepared, id)
	delete(e.locks, id)
	e.mu.Unlock()
}

func (e *Endpoint) lock(id string) (unlock func()) {
	e.mu.Lock()
	l, ok := e.locks[id]
	if !ok {
		l = &sync.Mutex{}
		e.locks[id] = l
	}
	e.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// lookup finds the prepared workload of a migration: from memory, or, after a restart of
// this process, from what the client remembers (the runtime re-finds it by label).
func (e *Endpoint) lookup(req *request) (Prepared, error) {
	e.mu.Lock()
	p, ok := e.prepared[req.MigrationID]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	if req.Prepared != nil && req.Prepared.ID != "" {
		return *req.Prepared, nil
	}
	return Prepared{}, fmt.Errorf("%w: no prepared workload for migration %s", ErrNotFound, req.MigrationID)
}

// receiveCheckpoint unpacks a checkpoint stream: entries under checkpoint/ go to the
// prepared checkpoint directory, entries under volumes/<name>/ into that volume.
func (e *Endpoint) receiveCheckpoint(ctx context.Context, p Prepared, body io.Reader, compressed bool) (int64, error) {
	if err := os.RemoveAll(p.CheckpointDir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(p.CheckpointDir, 0o700); err != nil {
		return 0, err
	}
	vm, _ := e.Runtime.(VolumeMover)
	volPaths := map[string]string{}
	var volErr error
	dest := func(name string) (string, bool) {
		name = filepath.ToSlash(name)
		if rest, ok := strings.CutPrefix(name, "checkpoint"); ok {
			return filepath.Join(p.CheckpointDir, rest), true
		}
		if rest, ok := strings.CutPrefix(name, "volumes/"); ok && vm != nil {
			vol, sub, _ := strings.Cut(rest, "/")
			dir, ok := volPaths[vol]
			if !ok {
				var err error
				dir, err = vm.VolumePath(ctx, vol)
				if err != nil {
					volErr = err
					return "", false
				}
				volPaths[vol] = dir
			}
			return filepath.Join(dir, path.Clean("/"+sub)), true
		}
		return "", false
	}
	n, err := receiveStream(body, compressed, func(r io.Reader) error { return extractTar(r, dest) })
	if err == nil && volErr != nil {
		err = volErr
	}
	if err != nil {
		_ = os.RemoveAll(p.CheckpointDir)
	}
	return n, err
}

func (e *Endpoint) restore(ctx context.Context, p Prepared) (response, error) {
	sampler := StartHostSampler(50 * time.Millisecond)
	start := time.Now()
	err := e.Runtime.Restore(ctx, p)
	restore := time.Since(start)
	usage := sampler.Stop()
	vstart := time.Now()
	if err == nil {
		err = e.Runtime.Verify(ctx, p.ID)
	}
	if err != nil {
		// A failed restore answer must mean "nothing runs here": the source resumes its
		// copy on that answer. So whatever half-started goes before we say so.
		if rerr := e.Runtime.Remove(ctx, p.ID); rerr != nil {
			return response{}, fmt.Errorf("%w (and removing the failed copy failed too: %v)", err, rerr)
		}
		return response{}, err
	}
	return response{
		Prepared:       &p,
		RestoreSeconds: restore.Seconds(),
		VerifySeconds:  time.Since(vstart).Seconds(),
		Usage:          &usage,
	}, nil
}

// validID accepts migration IDs that are safe as file names.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return id != "." && id != ".."
}
