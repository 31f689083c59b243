package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestStoreGaps: what repairLoop counts as a gap worth a push-pull.
func TestStoreGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStore("me", 0.1)
	s.setStatus("me", "127.0.0.1:1", StatusAlive, t0)
	s.merge(&nodeState{Name: "me", Version: Version{Epoch: 1, Seq: 1}}, t0)
	const grace, recent = time.Second, time.Minute
	if g := s.gaps(t0.Add(time.Hour), grace, recent); g != 0 {
		t.Fatalf("self alone: %d gaps", g)
	}
	// A member without a state: a gap once older than grace.
	s.setStatus("a", "127.0.0.2:1", StatusAlive, t0)
	if g := s.gaps(t0.Add(grace/2), grace, recent); g != 0 {
		t.Fatalf("young gap counted: %d", g)
	}
	if g := s.gaps(t0.Add(grace), grace, recent); g != 1 {
		t.Fatalf("member without state: %d gaps, want 1", g)
	}
	s.merge(&nodeState{Name: "a", Version: Version{Epoch: 1, Seq: 1}}, t0)
	// A state of a node memberlist never reported: a gap while recently heard of.
	s.merge(&nodeState{Name: "b", Version: Version{Epoch: 1, Seq: 1}}, t0)
	if g := s.gaps(t0.Add(grace), grace, recent); g != 1 {
		t.Fatalf("state of an unreported node: %d gaps, want 1", g)
	}
	if g := s.gaps(t0.Add(recent), grace, recent); g != 0 {
		t.Fatalf("long-silent unreported node still a gap: %d", g)
	}
	s.setStatus("b", "127.0.0.3:1", StatusAlive, t0)
	// A failed node without a state is not a gap.
	s.setStatus("c", "127.0.0.4:1", StatusAlive, t0)
	s.setStatus("c", "", StatusFailed, t0)
	if g := s.gaps(t0.Add(grace), grace, recent); g != 0 {
		t.Fatalf("healed: %d gaps", g)
	}
}

// TestConvergeTogether30: 30 agents started at once with memberlist's LAN timing
// (push-pull every 30 s, refresh every 30 s), each joining an earlier one, converge (every
// agent sees every agent alive with a state) by gossip and on-demand push-pull well
// before the periodic push-pull or refresh could help. Measured here: about 5.5-6 s on a
// shared 2-core machine (100 agents: about 6 s); the bound is 20 s.
func TestConvergeTogether30(t *testing.T) {
	if testing.Short() {
		t.Skip("30 agents")
	}
	const n = 30
	logger := hclog.New(&hclog.LoggerOptions{Output: &logBuffer{}, Level: hclog.Warn})
	nodes := make([]*testNode, n)
	names := make([]string, n)
	for i := range nodes {
		names[i] = fmt.Sprintf("conv%02d", i)
		cfg := DefaultLANConfig()
		cfg.Name = names[i]
		cfg.BindAddr = ipFor(8, i)
		cfg.BindPort = 0
		cfg.Capacity = Capacity{CPUCores: 4, MemoryBytes: 8 << 30}
		cfg.Logger = logger
		cfg.JoinRetryInterval = 100 * time.Millisecond
		if i > 0 {
			cfg.Join = []string{nodes[(i-1)/2].Addr()}
		}
		nodes[i] = startNode(t, cfg, nil)
	}
	took := waitEvery(t, 20*time.Second, 100*time.Millisecond, "30 agents converge", func() (bool, string) {
		return converged(nodes, names)
	})
	t.Logf("30 agents converged in %v", took)
}
