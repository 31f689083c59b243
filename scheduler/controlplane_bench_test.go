package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit-io/godwit/migrate"
)

// BenchmarkRecordDecisions records planned migrations through a 3-server raft group on
// loopback (mutual TLS, disk log): each op is one decision committed to a majority and
// applied by the real state machine. Sequential ops measure the commit latency; parallel
// ones how many decisions per second the group records.
//
//	go test -run '^$' -bench RecordDecisions -benchtime 2s ./scheduler/
func BenchmarkRecordDecisions(b *testing.B) {
	c := newTestCluster(b, "n1", "n2")
	cps := startControlPlanes(b, c, 3)
	var leader *ControlPlane
	deadline := time.Now().Add(30 * time.Second)
	for leader == nil && time.Now().Before(deadline) {
		for _, cp := range cps {
			if cp.Server().IsLeader() {
				leader = cp
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if leader == nil {
		b.Fatal("no leader")
	}
	l := leader.Leader()
	var seq atomic.Int64
	record := func() error {
		n := seq.Add(1)
		_, err := l.plan(context.Background(), PlanMigration{ID: fmt.Sprintf("m-b%d", n), Workload: fmt.Sprintf("w%d", n),
			Source: "n1", Target: "n2", Method: migrate.MethodStopAndCopy, MemoryBytes: 1 << 28}, "")
		return err
	}
	b.Run("sequential", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := record(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := record(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkLeaderFailoverSettle kills (shuts down) the leader of a 3-server group while the migration it
// ordered is past its source's checkpoint, and measures the time until a new leader
// accepts a command (failover) and until it has recorded how the migration ended (settle).
// Each iteration builds a fresh cluster; use a small fixed count:
//
//	go test -run '^$' -bench LeaderFailoverSettle -benchtime 5x ./scheduler/
func BenchmarkLeaderFailoverSettle(b *testing.B) {
	var failover, settle time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := newTestCluster(b, "n1", "n2")
		wid := c.rts["n1"].Add("w", []byte("memory"), managed())
		cps := startControlPlanes(b, c, 3)
		leader := leaderOf(b, cps)
		paused, release := c.pauseAfterCheckpoint()
		id, err := leader.Request(context.Background(), wid, "n2", "op")
		if err != nil {
			b.Fatal(err)
		}
		<-paused
		b.StartTimer()
		start := time.Now()
		leader.Shutdown()
		close(release)
		var rest []*ControlPlane
		for _, cp := range cps {
			if cp != leader {
				rest = append(rest, cp)
			}
		}
		next := leaderOf(b, rest)
		for wait := time.Now(); ; {
			_, err := next.Leader().propose(context.Background(), TypeUndrain, Undrain{Node: "n1"})
			if err == nil {
				break
			}
			if time.Since(wait) > 30*time.Second {
				b.Fatalf("the new leader applies nothing: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		failover += time.Since(start)
		for wait := time.Now(); ; {
			m, _ := next.FSM().State().Migration(id)
			if m != nil && m.Phase == PhaseCompleted {
				break
			}
			if time.Since(wait) > 30*time.Second {
				b.Fatalf("not settled after 30 s: %+v", m)
			}
			time.Sleep(5 * time.Millisecond)
		}
		settle += time.Since(start)
		b.StopTimer()
		for _, cp := range cps {
			cp.Shutdown()
		}
	}
	b.ReportMetric(failover.Seconds()/float64(b.N), "s/failover")
	b.ReportMetric(settle.Seconds()/float64(b.N), "s/settled")
}
