package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/godwit-io/godwit/internal/pki"
)

// listFSM is the smallest useful state machine: the commands applied, in order. Each
// command is its own ID: one already in the list is not added again, so a command retried
// after a lost leadership is applied once (as the control plane's commands carry IDs).
// Commands starting with "noop:" change nothing. Apply returns the command's position. It is
// the raft tests' own, so they do not depend on the control plane's FSM.
type listFSM struct {
	mu    sync.Mutex
	items []string
}

var _ raft.FSM = (*listFSM)(nil)

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := string(l.Data)
	if strings.HasPrefix(cmd, "noop:") {
		return 0
	}
	if i := slices.Index(f.items, cmd); i >= 0 {
		return i + 1
	}
	f.items = append(f.items, cmd)
	return len(f.items)
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.items)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	return listSnapshot(f.list()), nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var items []string
	if err := json.NewDecoder(rc).Decode(&items); err != nil {
		return err
	}
	f.mu.Lock()
	f.items = items
	f.mu.Unlock()
	return nil
}

type listSnapshot []string

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

// raftTestLog collects log records at Info and above (Debug with GODWIT_RAFT_DEBUG=1) and
// prints them when the test fails.
type raftTestLog struct {
	mu    sync.Mutex
	lines []string
}

func newRaftTestLog(t testing.TB) *raftTestLog {
	tl := &raftTestLog{}
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			start := max(0, len(tl.lines)-400)
			t.Logf("last %d log lines:\n%s", len(tl.lines)-start, strings.Join(tl.lines[start:], ""))
		}
	})
	return tl
}

func (tl *raftTestLog) Write(p []byte) (int, error) {
	tl.mu.Lock()
	tl.lines = append(tl.lines, time.Now().Format("15:04:05.000 ")+string(p))
	tl.mu.Unlock()
	return len(p), nil
}

func (tl *raftTestLog) logger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("GODWIT_RAFT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: level}))
}

// has reports whether a line contains every one of parts.
func (tl *raftTestLog) has(parts ...string) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, l := range tl.lines {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// raftCluster is a set of servers on their own loopback addresses, with one CA.
type raftCluster struct {
	t       testing.TB
	dir     string
	log     *raftTestLog
	servers map[string]*Server
	fsms    map[string]*listFSM
	cfgs    map[string]ServerConfig
	ips     map[string]string
	tune    func(*ServerConfig)
}

// raftTestIPs are the loopback addresses the raft tests use: 127.0.89.0/24 is used by no
// other package's tests, so the partition test's firewall rules touch nothing else.
func raftTestIP(i int) string { return fmt.Sprintf("127.0.89.%d", i) }

func newRaftCluster(t testing.TB) *raftCluster {
	return &raftCluster{
		t: t, dir: t.TempDir(), log: newRaftTestLog(t),
		servers: map[string]*Server{}, fsms: map[string]*listFSM{}, cfgs: map[string]ServerConfig{}, ips: map[string]string{},
	}
}

// fastServerConfig is DefaultServerConfig with the timing shrunk for tests on one machine.
func fastServerConfig() ServerConfig {
	c := DefaultServerConfig()
	// Short enough for quick elections, long enough that a loaded 2-core machine running
	// other packages' tests does not keep calling them.
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.ApplyTimeout = 5 * time.Second
	c.TransportTimeout = 2 * time.Second
	c.HandshakeTimeout = 2 * time.Second
	c.BootstrapRetryInterval = 100 * time.Millisecond
	c.AutopilotUpdateInterval = 100 * time.Millisecond
	c.AutopilotReconcileInterval = 200 * time.Millisecond
	c.LastContactThreshold = 500 * time.Millisecond
	c.ServerStabilizationTime = time.Second
	c.DeadServerGrace = 2 * time.Second
	return c
}

// start makes (once) and starts server name on 127.0.89.i, port chosen by the system the
// first time and kept for restarts.
func (c *raftCluster) start(name string, i int, expect int) *Server {
	c.t.Helper()
	cfg, ok := c.cfgs[name]
	if !ok {
		files, err := pki.Quick(filepath.Join(c.dir, "pki"), name, pki.RoleServer)
		if err != nil {
			c.t.Fatal(err)
		}
		id, err := pki.Load(files)
		if err != nil {
			c.t.Fatal(err)
		}
		cfg = fastServerConfig()
		cfg.Name = name
		cfg.DataDir = filepath.Join(c.dir, name)
		cfg.BindAddr = net.JoinHostPort(raftTestIP(i), "0")
		cfg.TLS = id
		cfg.BootstrapExpect = expect
		cfg.Log = c.log.logger()
		if c.tune != nil {
			c.tune(&cfg)
		}
		c.ips[name] = raftTestIP(i)
	}
	fsm := &listFSM{}
	cfg.FSM = fsm
	s, err := NewServer(cfg)
	if err != nil {
		c.t.Fatalf("NewServer(%s): %v", name, err)
	}
	if !ok {
		cfg.BindAddr = s.Addr() // the same port after a restart
	}
	c.cfgs[name] = cfg
	c.servers[name] = s
	c.fsms[name] = fsm
	c.t.Cleanup(func() { _ = s.Shutdown() })
	return s
}

// stop shuts a server down and forgets it (its DataDir and config stay for a restart).
func (c *raftCluster) stop(name string) {
	c.t.Helper()
	if err := c.servers[name].Shutdown(); err != nil {
		c.t.Logf("shutdown %s: %v", name, err)
	}
	delete(c.servers, name)
}

// peers is every running server as a Peer.
func (c *raftCluster) peers() []Peer {
	var ps []Peer
	for name, s := range c.servers {
		ps = append(ps, Peer{Name: name, Addr: s.Addr()})
	}
	return ps
}

// setPeers tells every running server about every running server, as gossip would.
func (c *raftCluster) setPeers() {
	c.t.Helper()
	ps := c.peers()
	for _, s := range c.servers {
		if err := s.SetPeers(ps); err != nil {
			c.t.Fatal(err)
		}
	}
}

// raftEventually polls cond every 20 ms until it holds or the liveness bound passes.
func raftEventually(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits until one running server leads and every running server names it.
func (c *raftCluster) leader() *Server {
	c.t.Helper()
	var l *Server
	raftEventually(c.t, 30*time.Second, "a leader that every server knows", func() bool {
		l = nil
		for _, s := range c.servers {
			if s.IsLeader() {
				if l != nil {
					return false // two believe they lead (one is stale): wait
				}
				l = s
			}
		}
		if l == nil {
			return false
		}
		for _, s := range c.servers {
			if name, _ := s.Leader(); name != l.Name() {
				return false
			}
		}
		return true
	})
	return l
}

// apply applies n commands "prefix-0".. on the current leader.
func (c *raftCluster) apply(prefix string, n int) {
	c.t.Helper()
	for i := 0; i < n; i++ {
		c.applyOne(fmt.Sprintf("%s-%d", prefix, i), nil)
	}
}

// applyOne applies cmd on whichever of servers (all running ones when nil) leads, retrying
// across elections (safe: listFSM applies a command once) for up to 30 s. It returns the
// server that applied it.
func (c *raftCluster) applyOne(cmd string, servers []*Server) *Server {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error = errors.New("no leader")
	for time.Now().Before(deadline) {
		list := servers
		if list == nil {
			for _, s := range c.servers {
				list = append(list, s)
			}
		}
		for _, s := range list {
			if !s.IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = s.Apply(ctx, []byte(cmd))
			cancel()
			if err == nil {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("apply %s: not applied within 30s: %v", cmd, err)
	return nil
}

// converged waits until every running server's FSM holds the same list of want entries.
func (c *raftCluster) converged(want int) []string {
	c.t.Helper()
	var ref []string
	raftEventually(c.t, 30*time.Second, fmt.Sprintf("all FSMs hold the same %d entries", want), func() bool {
		ref = nil
		for name := range c.servers {
			l := c.fsms[name].list()
			if len(l) != want {
				return false
			}
			if ref == nil {
				ref = l
			} else if !slices.Equal(ref, l) {
				return false
			}
		}
		return true
	})
	return ref
}

// raftVoters returns the names of the voters and non-voters in s's configuration.
func raftVoters(t testing.TB, s *Server) (vote, nonvote []string) {
	t.Helper()
	conf, err := s.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range conf {
		if srv.Voter {
			vote = append(vote, srv.Name)
		} else {
			nonvote = append(nonvote, srv.Name)
		}
	}
	slices.Sort(vote)
	slices.Sort(nonvote)
	return vote, nonvote
}
