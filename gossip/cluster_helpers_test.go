package gossip

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Test clusters run real memberlist over real UDP/TCP sockets, each node on its own
// loopback address 127.0.0.x and a kernel-chosen port (so parallel tests and other
// packages' tests never collide). Every node is shut down by t.Cleanup, pass or fail.

// logBuffer collects one node's log lines; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig is DefaultLANConfig with timing scaled down for tests; generous enough
// for a loaded 2-core machine (probe timeout 200 ms on loopback).
func testConfig(name, ip string) Config {
	c := DefaultLANConfig()
	c.Name = name
	c.BindAddr = ip
	c.BindPort = 0
	c.Capacity = Capacity{CPUCores: 4, MemoryBytes: 8 << 30}
	c.Labels = map[string]string{LabelSite: "s0"}
	c.JoinRetryInterval = 100 * time.Millisecond
	c.JoinRetryMaxInterval = time.Second
	c.LoadInterval = 100 * time.Millisecond
	c.RefreshInterval = 2 * time.Second
	c.ProbeInterval = 400 * time.Millisecond
	c.ProbeTimeout = 200 * time.Millisecond
	c.GossipInterval = 100 * time.Millisecond
	c.PushPullInterval = 3 * time.Second
	c.TCPTimeout = 2 * time.Second
	c.GossipToTheDeadTime = 5 * time.Second
	return c
}

type testNode struct {
	*Agent
	tr  *DelayTransport
	log *logBuffer
	cfg Config
}

// startNode starts an agent for cfg on a DelayTransport (delay may be nil) and
// registers its shutdown.
func startNode(t testing.TB, cfg Config, delay DelayFunc) *testNode {
	t.Helper()
	lb := &logBuffer{}
	tr, err := NewDelayTransport(cfg.BindAddr, cfg.BindPort, delay, nil)
	if err != nil {
		t.Fatalf("transport for %s: %v", cfg.Name, err)
	}
	cfg.Transport = tr
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: lb, Level: hclog.Debug})
	}
	a, err := Start(cfg)
	if err != nil {
		_ = tr.Shutdown()
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	n := &testNode{Agent: a, tr: tr, log: lb, cfg: cfg}
	t.Cleanup(func() {
		_ = a.Shutdown()
		if t.Failed() && testing.Verbose() {
			t.Logf("log of %s:\n%s", cfg.Name, tail(lb.String(), 40))
		}
	})
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ipFor(base, i int) string { return fmt.Sprintf("127.0.%d.%d", base, i+2) }

// waitFor polls cond every 20 ms until it holds or bound passes; it returns how long it
// took, and fails the test (with what cond last said) on timeout.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return waitEvery(t, bound, 20*time.Millisecond, what, cond)
}

// waitEvery is waitFor polling every poll (for conditions that are costly to check).
func waitEvery(t testing.TB, bound, poll time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var msg string
	for {
		var ok bool
		ok, msg = cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v: %s", what, bound, msg)
		}
		time.Sleep(poll)
	}
}

// converged says whether every agent sees every name alive with a state.
func converged(agents []*testNode, names []string) (bool, string) {
	for _, a := range agents {
		v := a.View()
		for _, n := range names {
			nv, ok := v.Node(n)
			if !ok || nv.Status != StatusAlive || nv.Version.IsZero() {
				return false, fmt.Sprintf("%s does not see %s alive with state (%v, %v)", a.Name(), n, ok, nv.Status)
			}
		}
	}
	return true, ""
}
