package migrate

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// startDrainNode is startTestNode on 127.0.102.x (this test's loopback range).
func startDrainNode(t *testing.T, p *testPKI, name, ip string, fault func(string) error) *testNode {
	t.Helper()
	state := t.TempDir()
	tn := &testNode{t: t, name: name, rt: NewFakeRuntime(filepath.Join(state, "engine")), state: state, addr: ip + ":0"}
	tn.cfg = NodeConfig{Name: name, Runtime: tn.rt, StateDir: filepath.Join(state, "godwit"), TLS: p.tls(t, name, pki.RoleClient),
		SettleTimeout: 20 * time.Second, CloseTimeout: 2 * time.Second, Fault: fault}
	tn.start()
	t.Cleanup(func() { tn.node().Close() })
	return tn
}

// TestDrain: a node told to drain refuses new migrations, as source and as target, with
// ErrShuttingDown and changes nothing, while the migration it is source of goes on to the
// end; Drain returns once that one completed, with one copy running, on the target.
func TestDrain(t *testing.T) {
	p := newTestPKI(t)
	paused, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	src := startDrainNode(t, p, "src", "127.0.102.1", func(point string) error {
		if point == "source-streaming" {
			once.Do(func() { close(paused) })
			<-release
		}
		return nil
	})
	dst := startDrainNode(t, p, "dst", "127.0.102.2", nil)
	other := startDrainNode(t, p, "other", "127.0.102.3", nil)
	op := operator(t, p)
	ctx := context.Background()

	mem := memory(t, 1<<20)
	w1 := src.rt.Add("w1", mem, managed)
	done := make(chan error, 1)
	go func() {
		_, err := op.Migrate(ctx, src.addr, src.name, Order{ID: "m-drain-1", Workload: w1, TargetNode: dst.name, TargetAddr: dst.addr}, 0)
		done <- err
	}()
	<-paused

	drained := make(chan []string, 1)
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	go func() { drained <- src.node().Drain(dctx) }()
	eventually(t, "src draining", src.node().draining)

	// A new order to the draining source: refused, nothing changed.
	w2 := src.rt.Add("w2", memory(t, 4096), managed)
	_, err := op.Migrate(ctx, src.addr, src.name, Order{ID: "m-drain-2", Workload: w2, TargetNode: dst.name, TargetAddr: dst.addr}, 0)
	if !errors.Is(err, ErrShuttingDown) || !errors.Is(err, ErrRefused) {
		t.Fatalf("order to a draining source: %v, want ErrShuttingDown", err)
	}
	if _, ok := src.node().Journal().Get("m-drain-2"); ok {
		t.Fatal("the refused order was journaled")
	}
	// A new migration onto the draining node: its pre-flight is refused.
	mem3 := memory(t, 4096)
	w3 := other.rt.Add("w3", mem3, managed)
	_, err = op.Migrate(ctx, other.addr, other.name, Order{ID: "m-drain-3", Workload: w3, TargetNode: src.name, TargetAddr: src.addr}, 0)
	if !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("migration onto a draining node: %v, want ErrShuttingDown", err)
	}
	if where := copies(t, w3, mem3, src, other); len(where) != 1 || where[0] != other.name {
		t.Fatalf("w3 runs on %v", where)
	}
	select {
	case left := <-drained:
		t.Fatalf("Drain returned %v while its migration was paused", left)
	default:
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the migration in flight: %v", err)
	}
	if left := <-drained; len(left) != 0 {
		t.Fatalf("Drain left %v in progress", left)
	}
	if where := copies(t, w1, mem, src, dst); len(where) != 1 || where[0] != dst.name {
		t.Fatalf("w1 runs on %v, want dst only", where)
	}
	if e := src.entry("m-drain-1"); e.Phase != PhaseCompleted {
		t.Fatalf("source journal: %s", e.Phase)
	}
	// The target's part ends once the source's commit reached it; then nothing is left
	// for its Drain either, even with no time to wait.
	eventually(t, "target journal completed", func() bool { return dst.entry("m-drain-1").Phase == PhaseCompleted })
	expired, cancel2 := context.WithCancel(ctx)
	cancel2()
	if left := dst.node().Drain(expired); len(left) != 0 {
		t.Fatalf("dst: %v", left)
	}
}
