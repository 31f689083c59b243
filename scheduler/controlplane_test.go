package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/google/go-cmp/cmp"
)

// startControlPlanes starts n servers (real raft over mutual TLS on 127.0.91.x) whose leader
// drives migrations on c's nodes.
func startControlPlanes(t testing.TB, c *testCluster, n int) []*ControlPlane {
	t.Helper()
	var cps []*ControlPlane
	var peers []Peer
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("s%d", i)
		sc := DefaultServerConfig()
		sc.Name, sc.DataDir, sc.BindAddr, sc.TLS, sc.BootstrapExpect = name, t.TempDir(), fmt.Sprintf("127.0.91.%d:0", i), c.tls(name, pki.RoleServer), n
		sc.HeartbeatTimeout, sc.ElectionTimeout, sc.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
		sc.CommitTimeout, sc.ApplyTimeout, sc.BootstrapRetryInterval = 10*time.Millisecond, 5*time.Second, 100*time.Millisecond
		sc.HandshakeTimeout, sc.TransportTimeout = 2*time.Second, 2*time.Second
		cp, err := NewControlPlane(sc, LeaderConfig{Gossip: c.gossip, Directory: c,
			Nodes: &migrate.Client{TLS: c.tls(name, pki.RoleServer)}, Interval: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cp.Shutdown() })
		cps = append(cps, cp)
		peers = append(peers, Peer{Name: name, Addr: cp.Server().Addr()})
	}
	for _, cp := range cps {
		if err := cp.Server().SetPeers(peers); err != nil {
			t.Fatal(err)
		}
	}
	return cps
}

func leaderOf(t testing.TB, cps []*ControlPlane) *ControlPlane {
	t.Helper()
	var found *ControlPlane
	waitFor(t, "a leader", func() bool {
		for _, cp := range cps {
			if cp.Server().IsLeader() {
				found = cp
				return true
			}
		}
		return false
	})
	return found
}

// TestControlPlane: three servers elect a leader; migrations requested through it are
// driven to an end; the ledger, ownership and cost model are identical on every server;
// the leader dies in the middle of a migration and the new one settles it, with exactly one
// running copy that kept its memory.
func TestControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("real raft elections; not in -short")
	}
	c := newTestCluster(t, "n1", "n2")
	mems := map[string][]byte{}
	var wids []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("w%d", i)
		mems[name] = []byte("memory of " + name)
		wids = append(wids, c.rts["n1"].Add(name, mems[name], managed()))
	}
	cps := startControlPlanes(t, c, 3)
	ctx := context.Background()
	// A series of migrations: each workload to n2, then back.
	for round, target := range []string{"n2", "n1"} {
		for _, w := range wids {
			l := leaderOf(t, cps)
			id, err := l.Request(ctx, w, target, "op")
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, w, err)
			}
			waitFor(t, "migration "+id+" completed", func() bool {
				m, _ := l.FSM().State().Migration(id)
				return m != nil && m.Phase == PhaseCompleted
			})
		}
	}
	// A request on a follower names the leader.
	for _, cp := range cps {
		if !cp.Server().IsLeader() {
			if _, err := cp.Request(ctx, wids[0], "n2", "op"); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("request on a follower: %v", err)
			}
			break
		}
	}
	// Identical replicated state everywhere once every server has applied the log.
	leader := leaderOf(t, cps)
	if err := leader.Server().Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	want := leader.FSM().State()
	for _, cp := range cps {
		waitFor(t, "follower caught up", func() bool { return cp.FSM().Index() >= leader.FSM().Index() })
		if d := cmp.Diff(want, cp.FSM().State()); d != "" {
			t.Fatalf("%s differs from the leader (-leader +it):\n%s", cp.Server().Name(), d)
		}
	}
	if len(want.Migrations) != 6 || want.Cost.Version == 0 {
		t.Fatalf("ledger has %d migrations, cost model version %d", len(want.Migrations), want.Cost.Version)
	}

	// The leader dies mid-migration (the source is paused after its checkpoint).
	paused, release := c.pauseAfterCheckpoint()
	id, err := leader.Request(ctx, wids[0], "n2", "op")
	if err != nil {
		t.Fatal(err)
	}
	<-paused
	start := time.Now()
	leader.Shutdown()
	close(release)
	var rest []*ControlPlane
	for _, cp := range cps {
		if cp != leader {
			rest = append(rest, cp)
		}
	}
	next := leaderOf(t, rest)
	waitFor(t, "the new leader settles the migration", func() bool {
		m, _ := next.FSM().State().Migration(id)
		return m != nil && m.Phase == PhaseCompleted
	})
	t.Logf("new leader %s settled %s %v after the old leader's death", next.Server().Name(), id, time.Since(start))
	if w := c.where(wids[0]); len(w) != 1 || w[0] != "n2" {
		t.Fatalf("runs on %v", w)
	}
	for _, w := range c.rts["n2"].Running() {
		if w.Labels[migrate.LabelWorkload] == wids[0] && string(w.Memory) != string(mems["w0"]) {
			t.Fatal("memory state lost")
		}
	}
	if owner, _ := next.FSM().State().Owner(wids[0]); owner != "n2" {
		t.Fatalf("owner %s", owner)
	}
}

// TestControlPlanePartition cuts the leader off from the other servers (iptables on
// loopback): the majority elects a new leader that goes on driving migrations, and the old
// leader's loop stops: it orders nothing while cut off.
func TestControlPlanePartition(t *testing.T) {
	if testing.Short() {
		t.Skip("real raft elections and iptables; not in -short")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables is not installed: cannot partition the leader")
	}
	if os.Geteuid() != 0 {
		t.Skip("partitioning with iptables needs root")
	}
	c := newTestCluster(t, "n1", "n2")
	wid := c.rts["n1"].Add("p", []byte("memory of p"), managed())
	cps := startControlPlanes(t, c, 3)
	old := leaderOf(t, cps)
	var rest []*ControlPlane
	var others []string
	for i, cp := range cps {
		if cp != old {
			rest = append(rest, cp)
			others = append(others, fmt.Sprintf("127.0.91.%d", i+1))
		}
	}
	oldIP := ""
	for i, cp := range cps {
		if cp == old {
			oldIP = fmt.Sprintf("127.0.91.%d", i+1)
		}
	}
	heal := raftPartition(t, oldIP, others)
	next := leaderOf(t, rest)
	waitFor(t, "the cut-off leader's loop to stop", func() bool { return !old.Server().IsLeader() && !old.Leader().Leading() })
	if _, err := old.Request(context.Background(), wid, "n2", "op"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the cut-off leader took a request: %v", err)
	}
	id, err := next.Request(context.Background(), wid, "n2", "op")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new leader's migration", func() bool {
		m, _ := next.FSM().State().Migration(id)
		return m != nil && m.Phase == PhaseCompleted
	})
	heal()
	waitFor(t, "the old leader catches up after healing", func() bool {
		m, _ := old.FSM().State().Migration(id)
		return m != nil && m.Phase == PhaseCompleted
	})
}
