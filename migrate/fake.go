package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
)

// FakeRuntime is an in-memory Runtime for tests of the layers above (the protocol, the
// journal, recovery, the scheduler): workloads are byte slices standing for their memory,
// a checkpoint is that memory written to a file, a restore reads it back. It keeps its state
// across Node restarts, as an engine outlives its godwit process. Failures are injected per
// method with Fail. Safe for concurrent use.
type FakeRuntime struct {
	// Dir holds prepared checkpoint directories.
	Dir string

	mu    sync.Mutex
	seq   int
	ws    map[string]*FakeWorkload
	fails map[string]error
}

var _ Runtime = (*FakeRuntime)(nil)

// FakeWorkload is one workload of a FakeRuntime.
type FakeWorkload struct {
	ID      string
	Name    string
	Labels  map[string]string
	Memory  []byte
	Running bool
}

// fakeImage is the file a FakeRuntime checkpoint holds.
const fakeImage = "memory.img"

// NewFakeRuntime returns an empty runtime that stages checkpoints under dir.
func NewFakeRuntime(dir string) *FakeRuntime {
	return &FakeRuntime{Dir: dir, ws: map[string]*FakeWorkload{}, fails: map[string]error{}}
}

// Add starts a workload and returns its ID.
func (f *FakeRuntime) Add(name string, memory []byte, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("fake-%d-%s", f.seq, name)
	l := map[string]string{}
	for k, v := range labels {
		l[k] = v
	}
	f.ws[id] = &FakeWorkload{ID: id, Name: name, Labels: l, Memory: append([]byte(nil), memory...), Running: true}
	return id
}

// Fail makes method ("Checkpoint", "Restore", "Resume", "Verify", "Remove", "Prepare",
// "CheckTarget", "CheckSource") return err from now on; nil clears it.
func (f *FakeRuntime) Fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fails, method)
	} else {
		f.fails[method] = err
	}
}

func (f *FakeRuntime) failure(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fails[method]
}

// Workloads returns copies of all workloads, sorted by ID.
func (f *FakeRuntime) Workloads() []FakeWorkload {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeWorkload, 0, len(f.ws))
	for _, w := range f.ws {
		c := *w
		c.Memory = append([]byte(nil), w.Memory...)
		out = append(out, c)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Running returns copies of the running workloads.
func (f *FakeRuntime) Running() []FakeWorkload {
	var out []FakeWorkload
	for _, w := range f.Workloads() {
		if w.Running {
			out = append(out, w)
		}
	}
	return out
}

// Name implements Runtime.
func (f *FakeRuntime) Name() string { return "fake" }

func (f *FakeRuntime) find(id string) *FakeWorkload {
	if w, ok := f.ws[id]; ok {
		return w
	}
	for _, w := range f.ws {
		if w.Name == id {
			return w
		}
	}
	for _, w := range f.ws {
		if w.Labels[LabelWorkload] == id && w.Running {
			return w
		}
	}
	return nil
}

// Inspect implements Runtime.
func (f *FakeRuntime) Inspect(ctx context.Context, id string) (*Spec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.find(id)
	if w == nil {
		return nil, fmt.Errorf("%w: workload %s", ErrNotFound, id)
	}
	s := &Spec{Runtime: f.Name(), ID: w.ID, Name: w.Name, Workload: w.Labels[LabelWorkload], MemoryBytes: int64(len(w.Memory)), Arch: runtime.GOARCH, Labels: map[string]string{}}
	for k, v := range w.Labels {
		s.Labels[k] = v
	}
	if s.Workload == "" {
		s.Workload = w.ID
	}
	return s, nil
}

// CheckSource implements Runtime.
func (f *FakeRuntime) CheckSource(ctx context.Context, spec *Spec) error {
	if err := f.failure("CheckSource"); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCheckpointable, err)
	}
	st, _ := f.State(ctx, spec.ID)
	if !st.Running {
		return fmt.Errorf("%w: %s is not running", ErrNotCheckpointable, spec.Name)
	}
	return nil
}

// CheckTarget implements Runtime.
func (f *FakeRuntime) CheckTarget(ctx context.Context, spec *Spec) error {
	if spec.Runtime != f.Name() {
		return fmt.Errorf("%w: a %q workload cannot run on a %q node", ErrPreflight, spec.Runtime, f.Name())
	}
	if err := f.failure("CheckTarget"); err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	return nil
}

// Prepare implements Runtime.
func (f *FakeRuntime) Prepare(ctx context.Context, migrationID string, spec *Spec) (Prepared, error) {
	if err := f.failure("Prepare"); err != nil {
		return Prepared{}, err
	}
	dir := filepath.Join(f.Dir, "staged", migrationID)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.ws {
		if w.Labels[LabelMigrationID] == migrationID {
			return Prepared{ID: w.ID, CheckpointDir: dir}, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Prepared{}, err
	}
	f.seq++
	id := "fake-" + strconv.Itoa(f.seq) + "-" + spec.Name
	l := map[string]string{}
	for k, v := range spec.Labels {
		l[k] = v
	}
	l[LabelMigrationID], l[LabelWorkload] = migrationID, spec.Workload
	f.ws[id] = &FakeWorkload{ID: id, Name: spec.Name, Labels: l}
	return Prepared{ID: id, CheckpointDir: dir}, nil
}

// Checkpoint implements Runtime: the memory goes to dir, the workload stops.
func (f *FakeRuntime) Checkpoint(ctx context.Context, id, dir string) error {
	if err := f.failure("Checkpoint"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.ws[id]
	if !ok || !w.Running {
		return fmt.Errorf("migrate: %s is not running", id)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, fakeImage), w.Memory, 0o600); err != nil {
		return err
	}
	w.Running, w.Memory = false, nil
	return nil
}

func (f *FakeRuntime) start(id, dir string) error {
	mem, err := os.ReadFile(filepath.Join(dir, fakeImage))
	if err != nil {
		return fmt.Errorf("migrate: no checkpoint for %s: %w", id, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.ws[id]
	if !ok {
		return fmt.Errorf("%w: workload %s", ErrNotFound, id)
	}
	if !w.Running {
		w.Memory, w.Running = mem, true
	}
	return nil
}

// Restore implements Runtime.
func (f *FakeRuntime) Restore(ctx context.Context, p Prepared) error {
	if err := f.failure("Restore"); err != nil {
		return err
	}
	return f.start(p.ID, p.CheckpointDir)
}

// Resume implements Runtime.
func (f *FakeRuntime) Resume(ctx context.Context, spec *Spec, dir string) error {
	if err := f.failure("Resume"); err != nil {
		return err
	}
	if st, _ := f.State(ctx, spec.ID); st.Running {
		return nil
	}
	return f.start(spec.ID, dir)
}

// Verify implements Runtime.
func (f *FakeRuntime) Verify(ctx context.Context, id string) error {
	if err := f.failure("Verify"); err != nil {
		return err
	}
	if st, _ := f.State(ctx, id); !st.Running {
		return fmt.Errorf("migrate: %s is not running", id)
	}
	return nil
}

// State implements Runtime.
func (f *FakeRuntime) State(ctx context.Context, id string) (WorkloadState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.ws[id]
	if !ok {
		return WorkloadState{}, nil
	}
	return WorkloadState{Exists: true, Running: w.Running}, nil
}

// Remove implements Runtime.
func (f *FakeRuntime) Remove(ctx context.Context, id string) error {
	if err := f.failure("Remove"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ws, id)
	return nil
}

// ErrFakeInjected is a convenient error for Fail.
var ErrFakeInjected = errors.New("migrate: injected failure")
