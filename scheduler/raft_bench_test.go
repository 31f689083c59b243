package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the raft group on three servers over mutual TLS on loopback, each with its
// own bbolt store (fsync on every append) in a temporary directory:
//
//	go test -run '^$' -bench '^BenchmarkApply(Parallel)?$' ./scheduler
//	go test -run '^$' -bench '^BenchmarkFailover$' -benchtime 5x ./scheduler
//
// BenchmarkApply is the latency of one command from Apply on the leader until the leader's
// FSM applied it (a quorum has it on disk); BenchmarkApplyParallel is the throughput with 16
// concurrent proposers, which raft batches. BenchmarkFailover is the time from the leader's
// Shutdown until a new leader's first Apply returns (ms/failover), at the test timing
// (500 ms heartbeat and election timeouts) and at the default (2 s).

// benchCluster starts three servers with the timing of cfg and returns the leader.
func benchCluster(b *testing.B, timing func(*ServerConfig)) (*raftCluster, *Server) {
	b.Helper()
	c := newRaftCluster(b)
	c.tune = timing
	for i, name := range []string{"b1", "b2", "b3"} {
		c.start(name, 41+i, 3)
	}
	c.setPeers()
	return c, c.leader()
}

// defaultTiming puts DefaultServerConfig's raft timing back into a test config.
func defaultTiming(cfg *ServerConfig) {
	d := DefaultServerConfig()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout =
		d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout, d.CommitTimeout
	cfg.LastContactThreshold = d.LastContactThreshold
}

func BenchmarkApply(b *testing.B) {
	_, l := benchCluster(b, defaultTiming)
	cmd := make([]byte, 256) // about a ledger entry
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyParallel(b *testing.B) {
	_, l := benchCluster(b, defaultTiming)
	cmd := make([]byte, 256)
	ctx := context.Background()
	var failed atomic.Value
	b.SetParallelism(8) // 8 x GOMAXPROCS proposers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Apply(ctx, cmd); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkFailover(b *testing.B) {
	for _, tc := range []struct {
		name   string
		timing func(*ServerConfig)
	}{
		{"test-timing", nil},
		{"default-timing", defaultTiming},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, _ := benchCluster(b, tc.timing)
			index := map[string]int{"b1": 41, "b2": 42, "b3": 43}
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				old := c.leader()
				c.apply(fmt.Sprintf("warm-%d", i), 1)
				b.StartTimer()
				start := time.Now()
				c.stop(old.Name())
				for {
					var err error = fmt.Errorf("no leader")
					for _, s := range c.servers {
						if s.IsLeader() {
							ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
							_, err = s.Apply(ctx, []byte(fmt.Sprintf("failover-%d", i)))
							cancel()
							break
						}
					}
					if err == nil {
						break
					}
					if time.Since(start) > time.Minute {
						b.Fatalf("no new leader applied within a minute: %v", err)
					}
					time.Sleep(time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				c.start(old.Name(), index[old.Name()], 3)
				c.setPeers()
				c.leader()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/failover")
		})
	}
}
