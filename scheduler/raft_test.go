package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServerLifecycle runs one group through its life: bootstrap of three servers, replication,
// a fourth server joining and being promoted, a restart from the data directory, the
// leader's death and the removal of a server gone for longer than the grace period.
func TestServerLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("real raft over TLS sockets; skipped with -short")
	}
	c := newRaftCluster(t)
	for i, name := range []string{"s1", "s2", "s3"} {
		c.start(name, i+1, 3)
	}
	c.setPeers()
	l := c.leader()
	vote, nonvote := raftVoters(t, l)
	if !slices.Equal(vote, []string{"s1", "s2", "s3"}) || len(nonvote) != 0 {
		t.Fatalf("bootstrapped configuration: voters %v, non-voters %v; want voters [s1 s2 s3]", vote, nonvote)
	}

	t.Run("replicates", func(t *testing.T) {
		c.apply("a", 20)
		got := c.converged(20)
		if got[0] != "a-0" || got[19] != "a-19" {
			t.Fatalf("applied list %v, want a-0..a-19 in order", got)
		}
		// On a follower, Apply and Barrier refuse and name the leader. (Under load an
		// election may intervene: then the check runs again against the new leader.)
		var problem string
		raftEventually(t, 30*time.Second, "followers refuse and name the leader", func() bool {
			l := c.leader()
			problem = ""
			for name, s := range c.servers {
				if s == l {
					continue
				}
				_, err := s.Apply(context.Background(), []byte("noop:on-follower"))
				var nl *NotLeaderError
				if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) {
					problem = fmt.Sprintf("Apply on follower %s: %v, want a *NotLeaderError", name, err)
					return false
				}
				if nl.Leader != l.Name() || nl.Addr != l.Addr() {
					problem = fmt.Sprintf("Apply on follower %s names leader %s at %s, want %s at %s", name, nl.Leader, nl.Addr, l.Name(), l.Addr())
					return false
				}
				if err := s.Barrier(context.Background()); !errors.As(err, &nl) {
					problem = fmt.Sprintf("Barrier on follower %s: %v, want a *NotLeaderError", name, err)
					return false
				}
			}
			if err := l.Barrier(context.Background()); err != nil {
				problem = fmt.Sprintf("Barrier on the leader: %v", err)
				return false
			}
			return true
		})
		if problem != "" {
			t.Fatal(problem)
		}
	})

	t.Run("fourth server joins as non-voter and is promoted", func(t *testing.T) {
		c.start("s4", 4, 3)
		c.setPeers()
		var sawNonVoter bool
		raftEventually(t, 30*time.Second, "s4 a voter", func() bool {
			vote, nonvote := raftVoters(t, c.leader())
			if slices.Contains(nonvote, "s4") {
				sawNonVoter = true
			}
			return slices.Contains(vote, "s4")
		})
		if !sawNonVoter {
			t.Errorf("s4 became a voter without being seen as a non-voter first")
		}
		if c.log.has("server=s4", "bootstrapped the cluster") {
			t.Errorf("s4 bootstrapped a cluster of its own")
		}
		c.apply("b", 5)
		c.converged(25)

		var h GroupHealth
		raftEventually(t, 30*time.Second, "autopilot sees four healthy voters", func() bool {
			var ok bool
			h, ok = c.leader().Health()
			return ok && h.Healthy && len(h.Servers) == 4 && h.FailureTolerance == 1 &&
				!slices.ContainsFunc(h.Servers, func(srv ServerHealth) bool { return !srv.Voter || !srv.Alive || srv.LastIndex == 0 })
		})
		var problem string
		raftEventually(t, 30*time.Second, "VerifyLeader and Health answer on the leader only", func() bool {
			l := c.leader()
			if err := l.VerifyLeader(context.Background()); err != nil {
				problem = fmt.Sprintf("VerifyLeader on the leader: %v", err)
				return false
			}
			for _, s := range c.servers {
				if s == l {
					continue
				}
				if _, ok := s.Health(); ok {
					problem = fmt.Sprintf("Health on follower %s answered", s.Name())
					return false
				}
				if err := s.VerifyLeader(context.Background()); !errors.Is(err, ErrNotLeader) {
					problem = fmt.Sprintf("VerifyLeader on follower %s: %v, want ErrNotLeader", s.Name(), err)
					return false
				}
			}
			problem = ""
			return true
		})
		if problem != "" {
			t.Fatal(problem)
		}
	})

	t.Run("restarted server catches up", func(t *testing.T) {
		var f string
		for name, s := range c.servers {
			if !s.IsLeader() {
				f = name
				break
			}
		}
		c.stop(f)
		c.apply("c", 10)
		c.converged(35)
		c.start(f, slices.Index([]string{"s1", "s2", "s3", "s4"}, f)+1, 3)
		c.setPeers()
		c.converged(35)
		if !c.log.has("server="+f, "raft server started", "existing_state=true") {
			t.Errorf("%s did not start from its existing raft state", f)
		}
	})

	t.Run("leader death", func(t *testing.T) {
		old := c.leader()
		start := time.Now()
		c.stop(old.Name())
		var first time.Duration
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var err error
			for _, s := range c.servers {
				if s.IsLeader() {
					_, err = s.Apply(ctx, []byte("after-failover"))
					break
				}
			}
			cancel()
			if err == nil && slices.ContainsFunc(c.fsmsRunning(), func(f *listFSM) bool { return slices.Contains(f.list(), "after-failover") }) {
				first = time.Since(start)
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("no new leader applied within 30s of the leader's shutdown (last error %v)", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("failover (test timing: heartbeat %v, election %v): %v from the leader's shutdown to the new leader's first applied command",
			c.cfgs[old.Name()].HeartbeatTimeout, c.cfgs[old.Name()].ElectionTimeout, first.Round(time.Millisecond))
		if c.leader().Name() == old.Name() {
			t.Fatalf("the dead leader still leads")
		}
		c.converged(36)
	})

	t.Run("server gone past the grace period is removed", func(t *testing.T) {
		// Four are voters; one died in the previous step. Once discovery no longer reports
		// it, autopilot removes it after DeadServerGrace (3 voters stay: BootstrapExpect).
		var dead string
		for _, n := range []string{"s1", "s2", "s3", "s4"} {
			if c.servers[n] == nil {
				dead = n
			}
		}
		if vote, _ := raftVoters(t, c.leader()); len(vote) != 4 || !slices.Contains(vote, dead) {
			t.Fatalf("voters %v, want all four, the dead %s included", vote, dead)
		}
		c.setPeers()
		removeStart := time.Now()
		raftEventually(t, 30*time.Second, dead+" removed from the configuration", func() bool {
			conf, err := c.leader().Configuration()
			return err == nil && !slices.ContainsFunc(conf, func(s ServerInfo) bool { return s.Name == dead })
		})
		if gone := time.Since(removeStart); gone < c.cfgs[dead].DeadServerGrace {
			t.Errorf("%s removed %v after it was missed, before the grace period of %v", dead, gone, c.cfgs[dead].DeadServerGrace)
		}
		if vote, _ := raftVoters(t, c.leader()); len(vote) != 3 {
			t.Errorf("voters after the removal: %v, want 3", vote)
		}
		// It comes back: the leader adds it again, and it catches up.
		c.start(dead, slices.Index([]string{"s1", "s2", "s3", "s4"}, dead)+1, 3)
		c.setPeers()
		raftEventually(t, 30*time.Second, dead+" a voter again", func() bool {
			vote, _ := raftVoters(t, c.leader())
			return slices.Contains(vote, dead)
		})
		c.apply("d", 3)
		c.converged(39)
	})
}

func (c *raftCluster) fsmsRunning() []*listFSM {
	var out []*listFSM
	for name := range c.servers {
		out = append(out, c.fsms[name])
	}
	return out
}

// TestServerPartitionedLeaderStepsDown cuts the leader off from the other two with
// iptables: they elect a new leader, and the old one stops believing it leads.
func TestServerPartitionedLeaderStepsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("real raft over TLS sockets; skipped with -short")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables is not installed: cannot partition the leader")
	}
	if os.Geteuid() != 0 {
		t.Skip("partitioning with iptables needs root")
	}
	if out, err := exec.Command("iptables", "-w", "-L", "INPUT", "-n").CombinedOutput(); err != nil {
		t.Skipf("iptables does not work here: %v: %s", err, out)
	}
	c := newRaftCluster(t)
	for i, name := range []string{"p1", "p2", "p3"} {
		c.start(name, 31+i, 3)
	}
	c.setPeers()
	old := c.leader()
	c.apply("before", 5)
	c.converged(5)

	var others []string
	for name := range c.servers {
		if name != old.Name() {
			others = append(others, c.ips[name])
		}
	}
	heal := raftPartition(t, c.ips[old.Name()], others)

	raftEventually(t, 30*time.Second, "the cut-off leader steps down", func() bool { return !old.IsLeader() })
	var majority []*Server
	for _, s := range c.servers {
		if s != old {
			majority = append(majority, s)
		}
	}
	nl := c.applyOne("during-partition", majority)
	t.Logf("%s led, was cut off and stepped down; %s leads the majority and applied", old.Name(), nl.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := old.Apply(ctx, []byte("on-old-leader")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply on the cut-off old leader: %v, want ErrNotLeader", err)
	}
	if err := old.VerifyLeader(ctx); err == nil {
		t.Fatalf("VerifyLeader on the cut-off old leader succeeded")
	}
	if old.IsLeader() {
		t.Fatalf("the cut-off old leader believes it leads again")
	}

	heal()
	l := c.leader()
	if l == old {
		t.Logf("the old leader %s won a later election after the partition healed", old.Name())
	}
	got := c.converged(6)
	if got[5] != "during-partition" {
		t.Fatalf("entries after healing: %v", got)
	}
	if slices.Contains(got, "on-old-leader") {
		t.Fatalf("the cut-off leader's command was applied: %v", got)
	}
}

// raftPartition drops every packet between ip and others (both ways) until the returned heal
// runs; the rules are removed at cleanup too, even when the test fails.
func raftPartition(t *testing.T, ip string, others []string) (heal func()) {
	t.Helper()
	tag := fmt.Sprintf("godwit-raft-test-%d", os.Getpid())
	var rules [][]string
	for _, o := range others {
		for _, dir := range [][2]string{{ip, o}, {o, ip}} {
			rule := []string{"INPUT", "-s", dir[0], "-d", dir[1], "-m", "comment", "--comment", tag, "-j", "DROP"}
			if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, rule...)...).CombinedOutput(); err != nil {
				t.Fatalf("iptables -I %s: %v: %s", strings.Join(rule, " "), err, out)
			}
			rules = append(rules, rule)
		}
	}
	done := false
	heal = func() {
		if done {
			return
		}
		done = true
		for _, rule := range rules {
			if out, err := exec.Command("iptables", append([]string{"-w", "-D"}, rule...)...).CombinedOutput(); err != nil {
				t.Errorf("iptables -D %s: %v: %s", strings.Join(rule, " "), err, out)
			}
		}
	}
	t.Cleanup(heal)
	return heal
}

// TestServerSnapshotCatchUp compacts the log with snapshots while a server is down: it
// comes back too far behind for the log and catches up from a snapshot sent over the TLS
// transport, and a server restarted later restores its own snapshot from disk.
func TestServerSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("real raft over TLS sockets; skipped with -short")
	}
	c := newRaftCluster(t)
	c.tune = func(cfg *ServerConfig) {
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.SnapshotThreshold = 16
		cfg.TrailingLogs = 8
	}
	for i, name := range []string{"n1", "n2", "n3"} {
		c.start(name, 51+i, 3)
	}
	c.setPeers()
	c.apply("a", 5)
	c.converged(5)
	var down string
	for name, s := range c.servers {
		if !s.IsLeader() {
			down = name
			break
		}
	}
	c.stop(down)
	c.apply("b", 100)
	c.converged(105)
	raftEventually(t, 30*time.Second, "the leader snapshots past the absent server's log", func() bool {
		st := c.leader().Stats()
		idx, _ := strconv.ParseUint(st["last_snapshot_index"], 10, 64)
		return idx > 50
	})
	s := c.start(down, map[string]int{"n1": 51, "n2": 52, "n3": 53}[down], 3)
	c.setPeers()
	c.converged(105)
	if !c.log.has("server="+down, "Installed remote snapshot") {
		t.Errorf("%s caught up without a snapshot from the leader", down)
	}
	raftEventually(t, 30*time.Second, down+" takes a snapshot of its own", func() bool {
		idx, _ := strconv.ParseUint(s.Stats()["last_snapshot_index"], 10, 64)
		return idx > 0
	})

	// Restarted, every server restores its latest snapshot and replays the rest.
	for _, name := range []string{"n1", "n2", "n3"} {
		c.stop(name)
	}
	for i, name := range []string{"n1", "n2", "n3"} {
		c.start(name, 51+i, 3)
	}
	c.setPeers()
	c.apply("c", 1)
	c.converged(106)
	for _, name := range []string{"n1", "n2", "n3"} {
		if !c.log.has("server="+name, "restored from snapshot") {
			t.Errorf("%s did not restore its snapshot at the restart", name)
		}
	}
}

// TestServerMovesAddress restarts a server from its data directory on another address, as
// after a DHCP change at an edge site: discovery reports the new address, the leader
// updates the configuration, and the server keeps its vote and catches up.
func TestServerMovesAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("real raft over TLS sockets; skipped with -short")
	}
	c := newRaftCluster(t)
	for i, name := range []string{"m1", "m2", "m3"} {
		c.start(name, 61+i, 3)
	}
	c.setPeers()
	c.apply("a", 3)
	c.converged(3)
	var moved string
	for name, s := range c.servers {
		if !s.IsLeader() {
			moved = name
			break
		}
	}
	c.stop(moved)
	cfg := c.cfgs[moved]
	cfg.BindAddr = raftTestIP(69) + ":0"
	c.cfgs[moved] = cfg
	c.ips[moved] = raftTestIP(69)
	s := c.start(moved, 69, 3)
	c.setPeers()
	raftEventually(t, 30*time.Second, moved+" a voter at its new address", func() bool {
		conf, err := c.leader().Configuration()
		return err == nil && slices.Contains(conf, ServerInfo{Name: moved, Addr: s.Addr(), Voter: true})
	})
	c.apply("b", 3)
	c.converged(6)
}
