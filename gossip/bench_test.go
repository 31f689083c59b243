package gossip

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkLoadPropagation100 starts 100 agents on 127.0.5.2-101 with memberlist's LAN
// timing (DefaultLANConfig: gossip every 200 ms to 3 nodes, probe every 1 s, push-pull
// every 30 s), each on a counting DelayTransport without delay, and measures:
//
//   - time for a load change on one node to reach all 100 (an EventLoadChange at every
//     agent): median and p99 over the rounds, and per-agent arrival p50/p99;
//   - CPU per node (process CPU time over an idle 10 s window / 100, in % of a core),
//     heap per node (live heap after GC / 100), bytes per second per node sent and
//     sent+received (memberlist payloads counted in the transport), idle and while
//     changing.
//
// Run: go test ./gossip -run '^$' -bench BenchmarkLoadPropagation100 -benchtime 1x -v
// All 100 agents share one process and 2 cores, so CPU and timing include that
// contention.
func BenchmarkLoadPropagation100(b *testing.B) {
	const (
		n      = 100
		rounds = 40
		gap    = 700 * time.Millisecond // between changes: each spreads on its own
	)
	for range b.N {
		runtime.GC()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)

		logs := &logBuffer{}
		logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
		nodes := make([]*testNode, n)
		names := make([]string, n)
		start := time.Now()
		for i := range nodes {
			names[i] = fmt.Sprintf("bench%03d", i)
			cfg := DefaultLANConfig()
			cfg.Name = names[i]
			cfg.BindAddr = ipFor(5, i)
			cfg.BindPort = 0
			cfg.Capacity = Capacity{CPUCores: 4, MemoryBytes: 8 << 30}
			cfg.Labels = map[string]string{LabelSite: fmt.Sprintf("s%d", i%5)}
			cfg.Logger = logger
			cfg.JoinRetryInterval = 200 * time.Millisecond
			if i > 0 {
				cfg.Join = []string{nodes[(i-1)/2].Addr()} // a tree of seeds, not one hot spot
			}
			nodes[i] = startNode(b, cfg, nil)
			if err := nodes[i].SetInventory([]Container{{ID: fmt.Sprintf("c%03d", i), Name: "app", Image: "app:1", MemoryBytes: 256 << 20}}); err != nil {
				b.Fatal(err)
			}
		}
		b.Cleanup(func() {
			b.Logf("warnings (last 15 of %d lines):\n%s", len(splitLines(logs.String())), tail(logs.String(), 15))
		})
		// Checking takes 100 views of 100 nodes: poll gently so as not to load the agents.
		took := waitEvery(b, 3*time.Minute, 500*time.Millisecond, "100 agents converge", func() (bool, string) {
			missing, first := 0, ""
			for _, a := range nodes {
				v := a.View()
				for _, name := range names {
					nv, ok := v.Node(name)
					if !ok || nv.Status != StatusAlive || nv.Version.IsZero() {
						missing++
						if first == "" {
							first = fmt.Sprintf("%s lacks %s (known %v, %v, version %v; stats %+v)", a.Name(), name, ok, nv.Status, nv.Version, a.Stats())
						}
					}
				}
			}
			return missing == 0, fmt.Sprintf("%d of %d (agent, node) pairs missing; first: %s", missing, n*n, first)
		})
		b.Logf("100 agents converged %v after the last start (%v from the first)", took, time.Since(start))
		time.Sleep(3 * time.Second) // let join traffic settle

		runtime.GC()
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		heapPerNode := float64(ms1.HeapAlloc-ms0.HeapAlloc) / n
		goroutinesPerNode := float64(runtime.NumGoroutine()) / n

		// Idle window: no changes.
		const idle = 10 * time.Second
		cpu0, bytes0, sent0 := cpuTime(), totalBytes(nodes), sentBytes(nodes)
		time.Sleep(idle)
		cpuIdle := (cpuTime() - cpu0).Seconds() / idle.Seconds() / n
		bpsIdle := float64(totalBytes(nodes)-bytes0) / idle.Seconds() / n
		sentIdle := float64(sentBytes(nodes)-sent0) / idle.Seconds() / n

		// Propagation rounds.
		var mu sync.Mutex
		arrivals := make([][]time.Time, rounds) // per round, per agent
		for r := range arrivals {
			arrivals[r] = make([]time.Time, n)
		}
		round := -1
		origin := ""
		var wg sync.WaitGroup
		subs := make([]*Subscription, n)
		for i, a := range nodes {
			subs[i] = a.Subscribe(1024)
			wg.Add(1)
			go func(i int, s *Subscription) {
				defer wg.Done()
				for e := range s.C {
					if e.Type != EventLoadChange {
						continue
					}
					mu.Lock()
					if round >= 0 && e.Node == origin && arrivals[round][i].IsZero() {
						arrivals[round][i] = time.Now()
					}
					mu.Unlock()
				}
			}(i, subs[i])
		}
		cpu0, bytes0, sent0 = cpuTime(), totalBytes(nodes), sentBytes(nodes)
		busyStart := time.Now()
		starts := make([]time.Time, rounds)
		for r := 0; r < rounds; r++ {
			src := nodes[(r*37+11)%n]
			cpu := 3.6 // flip between 10% and 90%: far past the 10-point event threshold
			if nv, _ := src.View().Node(src.Name()); nv.Load.CPUCores > 2 {
				cpu = 0.4
			}
			mu.Lock()
			round, origin = r, src.Name()
			starts[r] = time.Now()
			mu.Unlock()
			if err := src.SetLoad(cpu, 1<<30, 0); err != nil {
				b.Fatal(err)
			}
			time.Sleep(gap)
			// Wait (bounded) for stragglers before the next round.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				done := true
				for _, t := range arrivals[r] {
					done = done && !t.IsZero()
				}
				mu.Unlock()
				if done {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		busy := time.Since(busyStart)
		cpuBusy := (cpuTime() - cpu0).Seconds() / busy.Seconds() / n
		bpsBusy := float64(totalBytes(nodes)-bytes0) / busy.Seconds() / n
		sentBusy := float64(sentBytes(nodes)-sent0) / busy.Seconds() / n
		for _, s := range subs {
			s.Cancel()
		}
		wg.Wait()

		var toAll, perAgent []float64
		missing := 0
		mu.Lock()
		for r := range arrivals {
			worst := 0.0
			for _, t := range arrivals[r] {
				if t.IsZero() {
					missing++
					continue
				}
				d := t.Sub(starts[r]).Seconds() * 1000
				perAgent = append(perAgent, d)
				worst = max(worst, d)
			}
			toAll = append(toAll, worst)
		}
		mu.Unlock()
		if missing > 0 {
			b.Errorf("%d (round, agent) arrivals missing within 10 s", missing)
		}
		b.ReportMetric(pct(toAll, 50), "ms-to-all-p50")
		b.ReportMetric(pct(toAll, 99), "ms-to-all-p99")
		b.ReportMetric(pct(perAgent, 50), "ms-per-agent-p50")
		b.ReportMetric(pct(perAgent, 99), "ms-per-agent-p99")
		b.ReportMetric(100*cpuIdle, "%core/node-idle")
		b.ReportMetric(100*cpuBusy, "%core/node-busy")
		b.ReportMetric(heapPerNode/1024, "KiB-heap/node")
		b.ReportMetric(goroutinesPerNode, "goroutines/node")
		b.ReportMetric(sentIdle, "B/s/node-sent-idle")
		b.ReportMetric(bpsIdle, "B/s/node-inout-idle")
		b.ReportMetric(sentBusy, "B/s/node-sent-busy")
		b.ReportMetric(bpsBusy, "B/s/node-inout-busy")
		b.Logf("%d rounds, one change every ~%v; warnings logged: %d lines", rounds, gap, len(splitLines(logs.String())))
		for _, a := range nodes {
			_ = a.Shutdown()
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func totalBytes(nodes []*testNode) uint64 {
	var s uint64
	for _, a := range nodes {
		s += a.tr.Stats().BytesTotal()
	}
	return s
}

func sentBytes(nodes []*testNode) uint64 {
	var s uint64
	for _, a := range nodes {
		st := a.tr.Stats()
		s += st.PacketBytesSent + st.StreamBytesSent
	}
	return s
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
