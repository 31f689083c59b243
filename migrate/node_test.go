package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// testPKI is a cluster CA in a temp dir with certificates made on demand.
type testPKI struct {
	dir string
	mu  sync.Mutex
}

func newTestPKI(t *testing.T) *testPKI { return &testPKI{dir: t.TempDir()} }

func (p *testPKI) files(t testing.TB, node string, role pki.Role) pki.Files {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := pki.Quick(p.dir, node, role, net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (p *testPKI) tls(t testing.TB, node string, role pki.Role) *pki.TLS {
	t.Helper()
	l, err := pki.Load(p.files(t, node, role))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testNode is one node of a test cluster: a Node over a FakeRuntime. The runtime and the
// state directory outlive restarts, as an engine and a disk outlive a godwit process.
type testNode struct {
	t     *testing.T
	name  string
	rt    *FakeRuntime
	state string
	addr  string
	cfg   NodeConfig
	mu    sync.Mutex
	n     *Node
}

func startTestNode(t *testing.T, p *testPKI, name string, tune func(*NodeConfig)) *testNode {
	t.Helper()
	state := t.TempDir()
	tn := &testNode{t: t, name: name, rt: NewFakeRuntime(filepath.Join(state, "engine")), state: state, addr: "127.0.0.1:0"}
	tn.cfg = NodeConfig{Name: name, Runtime: tn.rt, StateDir: filepath.Join(state, "godwit"), TLS: p.tls(t, name, pki.RoleClient),
		SettleTimeout: 20 * time.Second, CloseTimeout: 2 * time.Second}
	if testing.Verbose() {
		tn.cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if tune != nil {
		tune(&tn.cfg)
	}
	tn.start()
	t.Cleanup(func() { tn.node().Close() })
	return tn
}

func (tn *testNode) node() *Node {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.n
}

func (tn *testNode) start() {
	tn.t.Helper()
	n, err := NewNode(tn.cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	addr, err := n.Listen(tn.addr)
	for i := 0; err != nil && i < 50; i++ {
		// The port may be briefly taken as the local port of an outgoing connection.
		time.Sleep(100 * time.Millisecond)
		addr, err = n.Listen(tn.addr)
	}
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.mu.Lock()
	tn.n, tn.addr = n, addr
	tn.mu.Unlock()
	n.Start(context.Background())
}

// crash stops the node at once, as SIGKILL would: no rollback, no answer, the journal as it
// is. Called from a fault hook, it also ends the calling request's goroutine.
func (tn *testNode) crash() {
	tn.node().stop()
	runtime.Goexit()
}

// restart starts a new process of the node on the same state and address.
func (tn *testNode) restart(tune func(*NodeConfig)) {
	tn.t.Helper()
	tn.node().Close()
	tn.cfg.Fault = nil
	if tune != nil {
		tune(&tn.cfg)
	}
	tn.start()
}

func (tn *testNode) entry(id string) Entry {
	e, _ := tn.node().Journal().Get(id)
	return e
}

func memory(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

var managed = map[string]string{LabelManaged: "true"}

// eventually polls cond for up to 20 s (a liveness bound, not a performance check).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// copies counts running copies of the workload across nodes and checks each has mem.
func copies(t *testing.T, workload string, mem []byte, nodes ...*testNode) (where []string) {
	t.Helper()
	for _, tn := range nodes {
		for _, w := range tn.rt.Running() {
			if w.Labels[LabelWorkload] == workload || w.ID == workload {
				if !bytes.Equal(w.Memory, mem) {
					t.Errorf("%s: copy of %s has other memory", tn.name, workload)
				}
				where = append(where, tn.name)
			}
		}
	}
	return where
}

func operator(t *testing.T, p *testPKI) *Client {
	return &Client{TLS: p.tls(t, "op", pki.RoleOperator)}
}

func TestMigrateCompletes(t *testing.T) {
	p := newTestPKI(t)
	src, dst := startTestNode(t, p, "src", nil), startTestNode(t, p, "dst", nil)
	mem := memory(t, 3<<20)
	id := src.rt.Add("web", mem, managed)
	for _, compress := range []bool{false, true} {
		rep, err := operator(t, p).Migrate(context.Background(), src.addr, src.name, Order{Workload: id, TargetNode: dst.name, TargetAddr: dst.addr, Compress: compress}, 0)
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if rep.Result != ResultCompleted || rep.Workload != id || rep.Source != src.name || rep.Target != dst.name || rep.Connections == 0 {
			t.Fatalf("report: %+v", rep)
		}
		if where := copies(t, id, mem, src, dst); len(where) != 1 || where[0] != dst.name {
			t.Fatalf("copies after migration: %v", where)
		}
		if e := src.entry(rep.ID); e.Phase != PhaseCompleted {
			t.Fatalf("source journal: %s", e.Phase)
		}
		eventually(t, "target journal completed", func() bool { return dst.entry(rep.ID).Phase == PhaseCompleted })
		// And back, by workload identity (the container ID changed).
		src, dst = dst, src
	}
}

// TestCrashRecovery kills one side at each point of a migration (the goroutine ends where it
// is and the node stops, as with SIGKILL), restarts it, and checks that exactly one copy
// runs, with its memory, and that both journals say how it ended.
func TestCrashRecovery(t *testing.T) {
	cases := []struct {
		desc, point string
		crashTarget bool
		runsOn      string
		srcPhase    string
		dstPhases   []string
	}{
		{"source killed after the checkpoint", "source-after-checkpoint", false, "src", PhaseRolledBack, []string{PhaseAborted, PhasePrepared}},
		{"source killed during the transfer", "source-streaming", false, "src", PhaseRolledBack, []string{PhaseAborted, PhasePrepared}},
		{"source killed after the target restored", "source-after-restore", false, "dst", PhaseCompleted, []string{PhaseCompleted}},
		{"target killed during the stream", "target-streaming", true, "src", PhaseRolledBack, []string{PhasePrepared, PhaseAborted}},
		{"target killed before the restore", "target-before-restore", true, "src", PhaseRolledBack, []string{PhaseAborted}},
		{"target killed after the restore", "target-after-restore", true, "dst", PhaseCompleted, []string{PhaseCompleted}},
	}
	for _, tc := range cases {
		t.Run(tc.point, func(t *testing.T) {
			p := newTestPKI(t)
			crashed := make(chan struct{})
			var src, dst *testNode
			hook := func(victim **testNode) func(string) error {
				return func(point string) error {
					if point == tc.point {
						close(crashed)
						(*victim).crash()
					}
					return nil
				}
			}
			src = startTestNode(t, p, "src", func(c *NodeConfig) {
				if !tc.crashTarget {
					c.Fault = hook(&src)
				}
			})
			dst = startTestNode(t, p, "dst", func(c *NodeConfig) {
				if tc.crashTarget {
					c.Fault = hook(&dst)
				}
			})
			mem := memory(t, 2<<20)
			wid := src.rt.Add("db", mem, managed)
			done := make(chan error, 1)
			go func() {
				_, err := operator(t, p).Migrate(context.Background(), src.addr, "src", Order{ID: "m-crash", Workload: "db", TargetNode: "dst", TargetAddr: dst.addr}, 0)
				done <- err
			}()
			<-crashed
			if tc.crashTarget {
				time.Sleep(300 * time.Millisecond) // the source notices and starts settling
				dst.restart(nil)
				if err := <-done; err != nil && tc.srcPhase == PhaseCompleted {
					t.Fatalf("migration: %v", err)
				}
			} else {
				<-done // the order's connection died with the source
				src.restart(nil)
			}
			eventually(t, "source journal "+tc.srcPhase, func() bool { return src.entry("m-crash").Phase == tc.srcPhase })
			eventually(t, "target journal settled", func() bool {
				ph := dst.entry("m-crash").Phase
				for _, want := range tc.dstPhases {
					if ph == want {
						return true
					}
				}
				return false
			})
			if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != tc.runsOn {
				t.Fatalf("running copies: %v, want exactly one on %s", where, tc.runsOn)
			}
		})
	}
}

// TestInDoubt: the target dies after the restore request and stays down. The source keeps
// its copy stopped, says in doubt, refuses another order for the workload, and settles in
// the background once the target is back.
func TestInDoubt(t *testing.T) {
	p := newTestPKI(t)
	crashed := make(chan struct{})
	var dst *testNode
	src := startTestNode(t, p, "src", func(c *NodeConfig) { c.SettleTimeout = time.Second })
	dst = startTestNode(t, p, "dst", func(c *NodeConfig) {
		c.Fault = func(point string) error {
			if point == "target-before-restore" {
				close(crashed)
				dst.crash()
			}
			return nil
		}
	})
	mem := memory(t, 1<<20)
	wid := src.rt.Add("cache", mem, managed)
	op := operator(t, p)
	rep, err := op.Migrate(context.Background(), src.addr, "src", Order{ID: "m-doubt", Workload: "cache", TargetNode: "dst", TargetAddr: dst.addr}, 0)
	if !errors.Is(err, ErrInDoubt) || rep.Result != ResultInDoubt {
		t.Fatalf("want in doubt, got %v (%+v)", err, rep)
	}
	if where := copies(t, wid, mem, src, dst); len(where) != 0 {
		t.Fatalf("running copies while in doubt: %v", where)
	}
	if src.entry("m-doubt").Phase != PhaseInDoubt {
		t.Fatalf("source journal: %s", src.entry("m-doubt").Phase)
	}
	_, err = op.Migrate(context.Background(), src.addr, "src", Order{Workload: wid, TargetNode: "dst", TargetAddr: dst.addr}, 0)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("second order while in doubt: %v", err)
	}
	st, err := op.Status(context.Background(), src.addr, "src", "m-doubt")
	if err != nil || !st.InDoubt || st.Copy == nil || st.Copy.Running {
		t.Fatalf("status: %+v, %v", st, err)
	}
	dst.restart(nil)
	eventually(t, "settled in the background", func() bool { return src.entry("m-doubt").Phase == PhaseRolledBack })
	if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != "src" {
		t.Fatalf("running copies: %v", where)
	}
}

func TestRestoreFailures(t *testing.T) {
	t.Run("definite failure rolls back", func(t *testing.T) {
		p := newTestPKI(t)
		src, dst := startTestNode(t, p, "src", nil), startTestNode(t, p, "dst", nil)
		mem := memory(t, 1<<20)
		wid := src.rt.Add("w", mem, managed)
		dst.rt.Fail("Restore", ErrFakeInjected)
		rep, err := operator(t, p).Migrate(context.Background(), src.addr, "", Order{Workload: "w", TargetAddr: dst.addr}, 0)
		if !errors.Is(err, ErrRolledBack) || !rep.RolledBack || rep.Target != "dst" {
			t.Fatalf("%v %+v", err, rep)
		}
		if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != "src" {
			t.Fatalf("running copies: %v", where)
		}
		if len(dst.rt.Workloads()) != 0 {
			t.Fatalf("target kept %d workloads", len(dst.rt.Workloads()))
		}
		if dst.entry(rep.ID).Phase != PhaseAborted {
			t.Fatalf("target journal: %s", dst.entry(rep.ID).Phase)
		}
	})
	t.Run("failed copy not removable is in doubt, settled later", func(t *testing.T) {
		p := newTestPKI(t)
		src, dst := startTestNode(t, p, "src", nil), startTestNode(t, p, "dst", nil)
		mem := memory(t, 1<<20)
		wid := src.rt.Add("w", mem, managed)
		dst.rt.Fail("Verify", ErrFakeInjected)
		dst.rt.Fail("Remove", ErrFakeInjected)
		_, err := operator(t, p).Migrate(context.Background(), src.addr, "src", Order{ID: "m-x", Workload: "w", TargetNode: "dst", TargetAddr: dst.addr}, 0)
		if !errors.Is(err, ErrInDoubt) {
			t.Fatalf("want in doubt: %v", err)
		}
		if src.entry("m-x").Phase != PhaseInDoubt || dst.entry("m-x").Phase != PhaseInDoubt {
			t.Fatalf("journals: %s / %s", src.entry("m-x").Phase, dst.entry("m-x").Phase)
		}
		// Never two running copies, even now: the source copy stays stopped.
		if where := copies(t, wid, mem, src); len(where) != 0 {
			t.Fatalf("source runs while in doubt")
		}
		dst.rt.Fail("Remove", nil)
		dst.rt.Fail("Verify", nil)
		eventually(t, "both settled", func() bool {
			return src.entry("m-x").Phase == PhaseRolledBack && dst.entry("m-x").Phase == PhaseAborted
		})
		if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != "src" {
			t.Fatalf("running copies: %v", where)
		}
	})
	t.Run("rollback failure is kept for an operator", func(t *testing.T) {
		p := newTestPKI(t)
		src, dst := startTestNode(t, p, "src", nil), startTestNode(t, p, "dst", nil)
		mem := memory(t, 1<<20)
		wid := src.rt.Add("w", mem, managed)
		dst.rt.Fail("Restore", ErrFakeInjected)
		src.rt.Fail("Resume", ErrFakeInjected)
		op := operator(t, p)
		rep, err := op.Migrate(context.Background(), src.addr, "src", Order{ID: "m-rf", Workload: "w", TargetNode: "dst", TargetAddr: dst.addr}, 0)
		if !errors.Is(err, ErrRollbackFailed) || rep.Result != ResultRollbackFailed {
			t.Fatalf("%v %+v", err, rep)
		}
		if src.entry("m-rf").Phase != PhaseRollbackFailed {
			t.Fatalf("journal: %s", src.entry("m-rf").Phase)
		}
		src.rt.Fail("Resume", nil)
		if _, err := op.Resolve(context.Background(), src.addr, "src", "m-rf", OutcomeAbort); err != nil {
			t.Fatal(err)
		}
		if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != "src" {
			t.Fatalf("running copies: %v", where)
		}
	})
}

func TestStagingExpires(t *testing.T) {
	p := newTestPKI(t)
	crashed := make(chan struct{})
	var src *testNode
	src = startTestNode(t, p, "src", func(c *NodeConfig) {
		c.Fault = func(point string) error {
			if point == "source-after-checkpoint" {
				close(crashed)
				src.crash()
			}
			return nil
		}
	})
	dst := startTestNode(t, p, "dst", func(c *NodeConfig) { c.StagingTTL = 500 * time.Millisecond })
	src.rt.Add("w", memory(t, 1024), managed)
	go operator(t, p).Migrate(context.Background(), src.addr, "src", Order{ID: "m-exp", Workload: "w", TargetNode: "dst", TargetAddr: dst.addr}, 0)
	<-crashed
	// The source stays down: the target's prepared copy must not stay forever.
	eventually(t, "staging expired", func() bool { return dst.entry("m-exp").Phase == PhaseExpired })
	if n := len(dst.rt.Workloads()); n != 0 {
		t.Fatalf("target kept %d prepared workloads", n)
	}
}

// TestAbortFencesALateOrder: the control plane aborts a migration the source never heard of
// (its order is lost, or still on its way from a deposed leader); the source journals the
// ID as failed, and the order, when it comes, is refused: nothing freezes.
func TestAbortFencesALateOrder(t *testing.T) {
	p := newTestPKI(t)
	src, dst := startTestNode(t, p, "src", nil), startTestNode(t, p, "dst", nil)
	mem := memory(t, 1024)
	wid := src.rt.Add("w", mem, managed)
	op := operator(t, p)
	ctx := context.Background()
	st, err := op.Resolve(ctx, src.addr, "src", "m-late", OutcomeAbort)
	if err != nil || st == nil || !st.Known || st.Phase != PhaseFailed {
		t.Fatalf("abort of an unknown migration: %+v, %v", st, err)
	}
	if _, err := op.Migrate(ctx, src.addr, "src", Order{ID: "m-late", Workload: wid, TargetNode: "dst", TargetAddr: dst.addr}, 0); !errors.Is(err, ErrRefused) {
		t.Fatalf("the late order: %v, want ErrRefused", err)
	}
	if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != "src" {
		t.Fatalf("copies: %v", where)
	}
	// A node aborting its part on a peer (no entry there) creates nothing.
	peer := &Client{TLS: p.tls(t, "dst", pki.RoleClient)}
	if _, _, err := peer.call(ctx, src.addr, "src", request{Op: opResolve, MigrationID: "m-other", Outcome: OutcomeAbort}, nil, 0); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a node's abort of an unknown migration: %v", err)
	}
	if _, ok := src.node().Journal().Get("m-other"); ok {
		t.Fatal("a node's abort created an entry")
	}
}
