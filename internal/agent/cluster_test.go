package agent

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// testIP is the loopback address of test node i: 127.0.93.0/24 is used by no other
// package's tests.
func testIP(i int) string { return fmt.Sprintf("127.0.93.%d", i) }

// fastTuning shrinks the production timing for agents on one loaded machine.
func fastTuning(t *Tuning) {
	g := &t.Gossip
	g.LoadInterval = 100 * time.Millisecond
	g.RefreshInterval = 2 * time.Second
	g.ProbeInterval = 400 * time.Millisecond
	g.ProbeTimeout = 200 * time.Millisecond
	g.GossipInterval = 100 * time.Millisecond
	g.PushPullInterval = 3 * time.Second
	g.JoinRetryInterval = 100 * time.Millisecond
	g.JoinRetryMaxInterval = time.Second
	r := &t.Raft
	r.HeartbeatTimeout, r.ElectionTimeout, r.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	r.CommitTimeout, r.ApplyTimeout = 10*time.Millisecond, 5*time.Second
	r.TransportTimeout, r.HandshakeTimeout = 2*time.Second, 2*time.Second
	r.BootstrapRetryInterval = 100 * time.Millisecond
	r.AutopilotUpdateInterval, r.AutopilotReconcileInterval = 100*time.Millisecond, 200*time.Millisecond
	r.LastContactThreshold, r.ServerStabilizationTime = 500*time.Millisecond, time.Second
	t.LeaderInterval, t.LeaderPoll = 200*time.Millisecond, 50*time.Millisecond
	t.ServerInterval = 200 * time.Millisecond
	t.ShutdownLeave = time.Second
	t.MigrateSettle = 5 * time.Second
}

// testLog collects the agents' logs and prints them when the test fails.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func newTestLog(t *testing.T) *testLog {
	tl := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			start := max(0, len(tl.lines)-300)
			t.Logf("last log lines:\n%s", strings.Join(tl.lines[start:], ""))
		}
	})
	return tl
}

func (tl *testLog) Write(p []byte) (int, error) {
	tl.mu.Lock()
	tl.lines = append(tl.lines, string(p))
	tl.mu.Unlock()
	return len(p), nil
}

func (tl *testLog) has(s string) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, l := range tl.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// testCluster writes configs and certificates for agents on 127.0.93.x and starts them.
type testCluster struct {
	t   *testing.T
	dir string
	log *testLog
	key string
}

func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, dir: t.TempDir(), log: newTestLog(t)}
	c.key = filepath.Join(c.dir, "gossip.key")
	if err := os.WriteFile(c.key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// config writes node name's config file (i is its address) and parses it.
func (c *testCluster) config(name, role string, i int, extra string) *Config {
	c.t.Helper()
	pr := pki.RoleClient
	if role == RoleServer {
		pr = pki.RoleServer
	}
	files, err := pki.Quick(filepath.Join(c.dir, "pki"), name, pr, net.ParseIP(testIP(i)))
	if err != nil {
		c.t.Fatal(err)
	}
	text := fmt.Sprintf(`node: %s
role: %s
site: site-%d
gossip:
  bind: %s:0
  key_file: %s
migration:
  bind: %s:0
capacity:
  cpu: 4
  memory: 8GiB
data_dir: %s
tls:
  ca: %s
  cert: %s
  key: %s
log:
  level: debug
inventory:
  interval: 200ms
%s`, name, role, i, testIP(i), c.key, testIP(i), filepath.Join(c.dir, name), files.CA, files.Cert, files.Key, extra)
	file := filepath.Join(c.dir, name+".yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		c.t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		c.t.Fatalf("config of %s: %v", name, err)
	}
	return cfg
}

func (c *testCluster) start(cfg *Config, join string, rt *migrate.FakeRuntime, opts ...Option) *Agent {
	c.t.Helper()
	if join != "" {
		cfg.Gossip.Join = []string{join}
	}
	log := slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, append([]Option{WithRuntime(rt, nil), WithLogger(log), WithTuning(fastTuning)}, opts...)...)
	if err != nil {
		c.t.Fatalf("starting %s: %v", cfg.Node, err)
	}
	c.t.Cleanup(func() { a.Shutdown() })
	return a
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterEvacuatesDrainedNode: three server agents and one client agent, each with its
// migration service over an in-memory runtime, find each other through gossip, bootstrap
// raft from it and elect a leader; the leader puts the configured evacuate-on-drain policy
// in force, records the client's drain (announced in gossip from its config), and moves the
// client's managed workload away with nobody asking; every server's ledger says completed.
func TestClusterEvacuatesDrainedNode(t *testing.T) {
	c := newTestCluster(t)
	policyFile, err := filepath.Abs("testdata/evacuate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	serverExtra := fmt.Sprintf("server:\n  raft:\n    bind: %%s:0\n  bootstrap_expect: 3\n  policy_file: %s\n", policyFile)
	rts := map[string]*migrate.FakeRuntime{}
	var servers []*Agent
	var seed string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		rts[name] = migrate.NewFakeRuntime(filepath.Join(c.dir, name, "engine"))
		a := c.start(c.config(name, RoleServer, i, fmt.Sprintf(serverExtra, testIP(i))), seed, rts[name])
		if seed == "" {
			seed = a.GossipAddr()
		}
		servers = append(servers, a)
	}
	rts["c1"] = migrate.NewFakeRuntime(filepath.Join(c.dir, "c1", "engine"))
	memory := []byte("the memory of w, which must survive the move")
	wid := rts["c1"].Add("w", memory, map[string]string{migrate.LabelManaged: "true"})
	client := c.start(c.config("c1", RoleClient, 4, "drain: true\n"), seed, rts["c1"])

	// Membership: every agent sees all four alive, with their roles and addresses.
	for _, a := range append(servers, client) {
		waitFor(t, a.Config().Node+" to see 4 members", 20*time.Second, func() bool { return len(a.Gossip().View().Alive()) == 4 })
	}
	v := client.Gossip().View()
	for _, s := range servers {
		n, _ := v.Node(s.Config().Node)
		if n.Labels[LabelRole] != RoleServer || n.Labels[LabelRaftAddr] != s.RaftAddr() || n.Labels[LabelMigrationAddr] != s.MigrationAddr() {
			t.Fatalf("%s labels %v", n.Name, n.Labels)
		}
	}
	if n, _ := v.Node("c1"); n.Labels[LabelRole] != RoleClient || !n.Drain || n.Labels["site"] != "site-4" {
		t.Fatalf("c1 in gossip: drain %v labels %v", n.Drain, n.Labels)
	}

	// Raft: bootstrapped from gossip, one leader.
	var leader *Agent
	waitFor(t, "a raft leader", 30*time.Second, func() bool {
		for _, s := range servers {
			if s.ControlPlane().Server().IsLeader() {
				leader = s
				return true
			}
		}
		return false
	})
	t.Logf("leader %s", leader.Config().Node)

	// The workload moves off the drained client by itself.
	var done *scheduler.Migration
	waitFor(t, "the workload moved off the drained node", 60*time.Second, func() bool {
		for _, s := range servers {
			if !s.ControlPlane().Server().IsLeader() {
				continue
			}
			for _, m := range s.ControlPlane().FSM().State().SortedMigrations() {
				if m.Workload == wid && m.Phase == scheduler.PhaseCompleted {
					done = m
					return true
				}
			}
		}
		return false
	})
	if done.Source != "c1" || done.Manual {
		t.Fatalf("migration %+v", done)
	}
	t.Logf("migration %s: %s -> %s (%s)", done.ID, done.Source, done.Target, done.Reason)
	for _, s := range servers {
		waitFor(t, s.Config().Node+"'s ledger to say completed", 10*time.Second, func() bool {
			st := s.ControlPlane().FSM().State()
			m, ok := st.Migration(done.ID)
			_, drained := st.Drained["c1"]
			owner, _ := st.Owner(wid)
			return ok && m.Phase == scheduler.PhaseCompleted && drained && owner == done.Target && st.Policy != nil && st.Policy.Name == "evacuate" && st.Policy.Version == 1
		})
	}
	// Exactly one running copy, on the target, with its memory.
	var where []string
	for name, rt := range rts {
		for _, w := range rt.Running() {
			if w.ID == wid || w.Labels[migrate.LabelWorkload] == wid {
				where = append(where, name)
				if string(w.Memory) != string(memory) {
					t.Fatalf("memory on %s: %q", name, w.Memory)
				}
			}
		}
	}
	if len(where) != 1 || where[0] != done.Target {
		t.Fatalf("workload runs on %v, ledger says %s", where, done.Target)
	}
	// The target's inventory shows it, through gossip, on the client too.
	waitFor(t, "the moved workload in the target's gossiped inventory", 10*time.Second, func() bool {
		n, _ := client.Gossip().View().Node(done.Target)
		for _, ct := range n.Containers {
			if ct.Labels[migrate.LabelWorkload] == wid {
				return true
			}
		}
		return false
	})
	// The checkpoint stream measured the link: the source gossips its bandwidth estimate,
	// which the leader's view of the site pair uses.
	waitFor(t, "the source's bandwidth estimate to the target in gossip", 10*time.Second, func() bool {
		_, ok := leader.Gossip().View().Bandwidth("c1", done.Target)
		return ok
	})
	if !c.log.has("configured policy put in force") || !c.log.has("node recorded drained") {
		t.Fatal("the leader's duties were not logged")
	}

	// Graceful stop of the client: peers see it as left, not failed.
	if err := client.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c1 seen as left", 10*time.Second, func() bool {
		n, _ := leader.Gossip().View().Node("c1")
		return n.Status.String() == "left"
	})
}

// TestClusterLeaderStopsMidMigration: the leader's agent is stopped (SIGTERM's path) while
// the migration it ordered is paused on the source after its checkpoint; the two other
// servers elect a new leader, which settles the migration from the nodes' journals; every
// remaining server's ledger says completed and one copy runs, with its memory.
func TestClusterLeaderStopsMidMigration(t *testing.T) {
	c := newTestCluster(t)
	policyFile, err := filepath.Abs("testdata/evacuate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rts := map[string]*migrate.FakeRuntime{}
	var servers []*Agent
	var seed string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		rts[name] = migrate.NewFakeRuntime(filepath.Join(c.dir, name, "engine"))
		extra := fmt.Sprintf("server:\n  raft:\n    bind: %s:0\n  bootstrap_expect: 3\n  policy_file: %s\n", testIP(10+i), policyFile)
		a := c.start(c.config(name, RoleServer, 10+i, extra), seed, rts[name])
		if seed == "" {
			seed = a.GossipAddr()
		}
		servers = append(servers, a)
	}
	paused, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fault := func(point string) error {
		if point == "source-after-checkpoint" {
			once.Do(func() { close(paused) })
			<-release
		}
		return nil
	}
	rts["c1"] = migrate.NewFakeRuntime(filepath.Join(c.dir, "c1", "engine"))
	memory := []byte("memory that must survive a leader's death")
	wid := rts["c1"].Add("w", memory, map[string]string{migrate.LabelManaged: "true"})
	c.start(c.config("c1", RoleClient, 14, "drain: true\n"), seed, rts["c1"], WithMigrateFault(fault))

	select {
	case <-paused:
	case <-time.After(60 * time.Second):
		t.Fatal("no migration reached the source's checkpoint")
	}
	var leader *Agent
	var rest []*Agent
	for _, s := range servers {
		if s.ControlPlane().Server().IsLeader() && leader == nil {
			leader = s
		} else {
			rest = append(rest, s)
		}
	}
	if leader == nil {
		t.Fatal("no leader while the migration runs")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- leader.Shutdown() }()
	waitFor(t, "a new leader", 30*time.Second, func() bool {
		for _, s := range rest {
			if s.ControlPlane().Server().IsLeader() {
				return true
			}
		}
		return false
	})
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("stopping the leader: %v", err)
	}
	t.Logf("stopped leader %s mid-migration", leader.Config().Node)
	// The migration ends completed, or rolled back when its target was the stopped leader's
	// own node (the policy may pick any server as target); either way every remaining ledger
	// says so and exactly one copy runs, with its memory, where that outcome puts it.
	var final *scheduler.Migration
	for _, s := range rest {
		waitFor(t, s.Config().Node+"'s ledger to settle the migration", 60*time.Second, func() bool {
			for _, m := range s.ControlPlane().FSM().State().SortedMigrations() {
				if m.Workload == wid && m.Phase.Terminal() {
					final = m
					return true
				}
			}
			return false
		})
	}
	t.Logf("migration %s to %s: %s", final.ID, final.Target, final.Phase)
	var where []string
	for name, rt := range rts {
		for _, w := range rt.Running() {
			if w.ID == wid || w.Labels[migrate.LabelWorkload] == wid {
				where = append(where, name)
				if string(w.Memory) != string(memory) {
					t.Fatalf("memory on %s: %q", name, w.Memory)
				}
			}
		}
	}
	want := "c1"
	switch final.Phase {
	case scheduler.PhaseCompleted:
		want = final.Target
	case scheduler.PhaseRolledBack:
		if final.Target != leader.Config().Node {
			t.Fatalf("rolled back although its target %s was up", final.Target)
		}
	default:
		t.Fatalf("migration ended %s", final.Phase)
	}
	if len(where) != 1 || where[0] != want {
		t.Fatalf("workload runs on %v, want exactly on %s", where, want)
	}
}

// TestNewFails: an agent that cannot start says why and leaves nothing running (its
// listeners are closed: a second try on the same addresses starts).
func TestNewFails(t *testing.T) {
	c := newTestCluster(t)
	cfg := c.config("lone", RoleClient, 30, "")
	good := *cfg
	occupied, err := net.Listen("tcp", testIP(30)+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()
	cfg.Migration.Bind = occupied.Addr().String()
	rt := migrate.NewFakeRuntime(filepath.Join(c.dir, "lone", "engine"))
	if _, err := New(cfg, WithRuntime(rt, nil), WithLogOutput(c.log), WithTuning(fastTuning)); err == nil {
		t.Fatal("started on a taken port")
	}
	bad := good
	bad.TLS.Cert = filepath.Join(c.dir, "missing.pem")
	if _, err := New(&bad, WithRuntime(rt, nil), WithLogOutput(c.log), WithTuning(fastTuning)); err == nil || !strings.Contains(err.Error(), "tls.cert") {
		t.Fatalf("missing certificate: %v", err)
	}
	a := c.start(&good, "", rt)
	if a.MigrationAddr() == "" || a.RaftAddr() != "" || a.ControlPlane() != nil {
		t.Fatalf("client agent: migration %q raft %q", a.MigrationAddr(), a.RaftAddr())
	}
}
