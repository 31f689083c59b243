package scheduler

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/hashicorp/raft"
)

// directReplica applies commands to an FSM in order, as a one-server raft would: the leader
// loop's unit tests run against the real state machine and real migration nodes.
type directReplica struct {
	mu  sync.Mutex
	fsm *FSM
	idx uint64
}

func (r *directReplica) Apply(ctx context.Context, cmd []byte) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idx++
	return r.fsm.Apply(&raft.Log{Index: r.idx, Type: raft.LogCommand, Data: cmd}), nil
}

// testCluster is real migration nodes (TLS, journals) over in-memory runtimes, and a gossip
// view made from their inventories.
type testCluster struct {
	t       testing.TB
	dir     string
	nodes   map[string]*migrate.Node
	rts     map[string]*migrate.FakeRuntime
	addrs   map[string]string
	drained map[string]bool
	fault   func(node, point string) error
	mu      sync.Mutex
}

func (c *testCluster) MigrationAddr(node string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[node]
	return a, ok
}

func (c *testCluster) tls(name string, role pki.Role) *pki.TLS {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := pki.Quick(c.dir, name, role, net.ParseIP("127.0.0.1"))
	if err != nil {
		c.t.Fatal(err)
	}
	l, err := pki.Load(f)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

func newTestCluster(t testing.TB, names ...string) *testCluster {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*migrate.Node{}, rts: map[string]*migrate.FakeRuntime{}, addrs: map[string]string{}}
	for _, name := range names {
		name := name
		state := t.TempDir()
		rt := migrate.NewFakeRuntime(filepath.Join(state, "engine"))
		n, err := migrate.NewNode(migrate.NodeConfig{Name: name, Runtime: rt, StateDir: state, TLS: c.tls(name, pki.RoleClient),
			SettleTimeout: 5 * time.Second,
			Fault: func(point string) error {
				c.mu.Lock()
				f := c.fault
				c.mu.Unlock()
				if f != nil {
					return f(name, point)
				}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		addr, err := n.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n.Start(context.Background())
		t.Cleanup(func() { n.Close() })
		c.nodes[name], c.rts[name], c.addrs[name] = n, rt, addr
	}
	return c
}

// pauseAfterCheckpoint makes the next source stop after its checkpoint until release is
// closed; paused is closed when it gets there.
func (c *testCluster) pauseAfterCheckpoint() (paused, release chan struct{}) {
	paused, release = make(chan struct{}), make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault = func(node, point string) error {
		if point == "source-after-checkpoint" {
			close(paused)
			<-release
		}
		return nil
	}
	return paused, release
}

// gossip is what the agents would gossip: every node alive with its running workloads.
func (c *testCluster) gossip() gossip.ClusterView {
	var g gossip.ClusterView
	for name, rt := range c.rts {
		n := gossip.NodeView{Name: name, Status: gossip.StatusAlive, Labels: map[string]string{gossip.LabelSite: "s1"},
			Load: gossip.Load{CPUCapacity: 4, MemoryCapacity: 8 << 30}}
		for _, w := range rt.Running() {
			n.Containers = append(n.Containers, gossip.Container{ID: w.ID, Name: w.Name, MemoryBytes: uint64(len(w.Memory)), Labels: w.Labels})
			n.Load.MemoryBytes += uint64(len(w.Memory))
		}
		g.Nodes = append(g.Nodes, n)
	}
	return g
}

// where returns the nodes running workload.
func (c *testCluster) where(workload string) []string {
	var out []string
	for name, rt := range c.rts {
		for _, w := range rt.Running() {
			if w.ID == workload || w.Labels[migrate.LabelWorkload] == workload {
				out = append(out, name)
			}
		}
	}
	return out
}

const evacuatePolicy = `apiVersion: godwit.io/v1
kind: Policy
metadata:
  name: evacuate
spec:
  mode: auto
  triggers:
    - name: drained
      when: node.drained
  objectives:
    evacuateDrained: 1.0
  constraints:
    maxDowntime: 30s
    maxConcurrent: 1
    maxMovesPerEvaluation: 1
    cooldown: 5m
    minImprovement: 0.01
    downtimeCost: 0.001
`

func newTestLeader(t *testing.T, c *testCluster, fsm *FSM, rep Replica) *Leader {
	return NewLeader(LeaderConfig{Name: "leader", Replica: rep, FSM: fsm, Gossip: c.gossip, Directory: c,
		Nodes: &migrate.Client{TLS: c.tls("leader", pki.RoleServer)}, Interval: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func managed() map[string]string { return map[string]string{migrate.LabelManaged: "true"} }

// TestLeaderEvacuatesDrainedNode: a drain recorded through the log makes the leader decide,
// record, order and finish a migration on its own, and the ledger says where the workload is.
func TestLeaderEvacuatesDrainedNode(t *testing.T) {
	c := newTestCluster(t, "n1", "n2")
	wid := c.rts["n1"].Add("web", []byte("state of web"), managed())
	fsm := NewFSM(FSMConfig{})
	rep := &directReplica{fsm: fsm}
	l := newTestLeader(t, c, fsm, rep)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, cmd := range []struct {
		t    CommandType
		body any
	}{{TypeApplyPolicy, ApplyPolicy{Source: evacuatePolicy}}, {TypeDrain, Drain{Node: "n1", Reason: "maintenance"}}} {
		if _, err := l.propose(ctx, cmd.t, cmd.body); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	waitFor(t, "the workload on n2 and the ledger completed", func() bool {
		st := fsm.State()
		owner, _ := st.Owner(wid)
		w := c.where(wid)
		return owner == "n2" && len(w) == 1 && w[0] == "n2"
	})
	var m *Migration
	for _, x := range fsm.State().SortedMigrations() {
		m = x
	}
	if m == nil || m.Phase != PhaseCompleted || m.Source != "n1" || m.Target != "n2" || m.Measured.Downtime <= 0 {
		t.Fatalf("ledger: %+v", m)
	}
	cancel()
	<-done
}

// TestLeaderManualRequests: two requests for one workload at once: one runs, the other is
// refused with the reason; unknown node and workload are clear errors.
func TestLeaderManualRequests(t *testing.T) {
	c := newTestCluster(t, "n1", "n2", "n3")
	wid := c.rts["n1"].Add("db", []byte("db memory"), managed())
	fsm := NewFSM(FSMConfig{})
	l := newTestLeader(t, c, fsm, &directReplica{fsm: fsm})
	ctx := context.Background()
	release := make(chan struct{})
	c.fault = func(node, point string) error {
		if point == "source-after-checkpoint" {
			<-release
		}
		return nil
	}
	id, err := l.Request(ctx, "db", "n2", "op")
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Request(ctx, wid, "n3", "op")
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second request: %v, want ErrConflict", err)
	}
	t.Logf("refused: %v", err)
	close(release)
	waitFor(t, "completed", func() bool {
		m, _ := fsm.State().Migration(id)
		return m != nil && m.Phase == PhaseCompleted
	})
	if w := c.where(wid); len(w) != 1 || w[0] != "n2" {
		t.Fatalf("runs on %v", w)
	}
	if _, err := l.Request(ctx, wid, "nowhere", "op"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
	if _, err := l.Request(ctx, "nothing", "n1", "op"); !errors.Is(err, ErrUnknownWorkload) {
		t.Fatalf("unknown workload: %v", err)
	}
}

// TestLeaderFailoverSettles: the leader that ordered a migration loses leadership while the
// source is mid-migration; the next leader (same replicated state) asks the source and
// records how it ended.
func TestLeaderFailoverSettles(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		fail   bool
		want   Phase
		runsOn string
	}{
		{"completes after the failover", false, PhaseCompleted, "n2"},
		{"rolls back after the failover", true, PhaseRolledBack, "n1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := newTestCluster(t, "n1", "n2")
			wid := c.rts["n1"].Add("app", []byte("app memory"), managed())
			fsm := NewFSM(FSMConfig{})
			rep := &directReplica{fsm: fsm}
			paused := make(chan struct{})
			release := make(chan struct{})
			c.fault = func(node, point string) error {
				if point == "source-after-checkpoint" {
					close(paused)
					<-release
					if tc.fail {
						return errors.New("injected")
					}
				}
				return nil
			}
			old := newTestLeader(t, c, fsm, rep)
			ctx1, lose := context.WithCancel(context.Background())
			id, err := old.Request(ctx1, "app", "n2", "op")
			if err != nil {
				t.Fatal(err)
			}
			<-paused
			lose() // leadership lost mid-migration; the nodes go on
			close(release)
			next := newTestLeader(t, c, fsm, rep)
			ctx2, cancel := context.WithCancel(context.Background())
			defer cancel()
			go next.Run(ctx2)
			waitFor(t, "settled", func() bool {
				m, _ := fsm.State().Migration(id)
				return m != nil && m.Phase == tc.want
			})
			if w := c.where(wid); len(w) != 1 || w[0] != tc.runsOn {
				t.Fatalf("runs on %v", w)
			}
		})
	}
}

// TestLeaderNoProgress: a source stuck in one phase longer than NoProgress is not waited on
// any more; the leader settles the migration by asking, and records it once it ends.
func TestLeaderNoProgress(t *testing.T) {
	c := newTestCluster(t, "n1", "n2")
	wid := c.rts["n1"].Add("slow", []byte("memory of slow"), managed())
	fsm := NewFSM(FSMConfig{})
	l := NewLeader(LeaderConfig{Name: "leader", Replica: &directReplica{fsm: fsm}, FSM: fsm, Gossip: c.gossip, Directory: c,
		Nodes: &migrate.Client{TLS: c.tls("leader", pki.RoleServer)}, Interval: time.Hour, PollInterval: 20 * time.Millisecond,
		NoProgress: 300 * time.Millisecond})
	release := make(chan struct{})
	stuck := make(chan struct{})
	c.fault = func(node, point string) error {
		if point == "source-after-checkpoint" {
			close(stuck)
			<-release
		}
		return nil
	}
	id, err := l.Request(context.Background(), wid, "n2", "op")
	if err != nil {
		t.Fatal(err)
	}
	<-stuck
	time.Sleep(time.Second) // well past NoProgress: the leader now settles by asking
	if m, _ := fsm.State().Migration(id); m == nil || m.Phase.Terminal() {
		t.Fatalf("recorded an outcome while the source was still busy: %+v", m)
	}
	close(release)
	waitFor(t, "completed", func() bool {
		m, _ := fsm.State().Migration(id)
		return m != nil && m.Phase == PhaseCompleted
	})
}

// TestLeaderFencesALostOrder: a planned migration whose order never reached the source is
// recorded failed only after the source has fenced off its ID, so a late order is refused.
func TestLeaderFencesALostOrder(t *testing.T) {
	c := newTestCluster(t, "n1", "n2")
	wid := c.rts["n1"].Add("w", []byte("memory of w"), managed())
	fsm := NewFSM(FSMConfig{})
	l := newTestLeader(t, c, fsm, &directReplica{fsm: fsm})
	ctx := context.Background()
	// Recorded, never ordered: the leader that planned it died before the order left.
	id, err := l.plan(ctx, PlanMigration{Workload: wid, Source: "n1", Target: "n2", Method: migrate.MethodStopAndCopy}, "")
	if err != nil {
		t.Fatal(err)
	}
	l.settle(ctx, id)
	if m, _ := fsm.State().Migration(id); m == nil || m.Phase != PhaseFailed {
		t.Fatalf("ledger: %+v", m)
	}
	addr, _ := c.MigrationAddr("n1")
	_, err = (&migrate.Client{TLS: c.tls("old-leader", pki.RoleServer)}).Migrate(ctx, addr, "n1",
		migrate.Order{ID: id, Workload: wid, TargetNode: "n2", TargetAddr: c.addrs["n2"]}, 0)
	if !errors.Is(err, migrate.ErrRefused) {
		t.Fatalf("the late order: %v, want ErrRefused", err)
	}
	if w := c.where(wid); len(w) != 1 || w[0] != "n1" {
		t.Fatalf("runs on %v", w)
	}
}
