package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCluster10 runs ten real agents on 127.0.1.2-11 and checks, in order: convergence,
// propagation of one load change, failure detection with stale inventory, and a clean
// rejoin. Bounds (generous for a loaded 2-core machine; typical figures are far lower,
// see the benchmark): converge 20 s, load change 5 s, failure 30 s, rejoin 20 s.
func TestCluster10(t *testing.T) {
	const n = 10
	nodes := make([]*testNode, n)
	names := make([]string, n)
	for i := range nodes {
		names[i] = fmt.Sprintf("node%02d", i)
		cfg := testConfig(names[i], ipFor(1, i))
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		nodes[i] = startNode(t, cfg, nil)
		if err := nodes[i].SetInventory([]Container{{
			ID: fmt.Sprintf("c%02d", i), Name: "web-" + names[i], Image: "registry.local/web:1",
			MemoryBytes: 256 << 20, CPUCores: 0.25,
			Labels:    map[string]string{"godwit.io/managed": "true"},
			UserSites: []string{"s1"},
		}}); err != nil {
			t.Fatal(err)
		}
	}

	took := waitFor(t, 20*time.Second, "10 nodes converge", func() (bool, string) { return converged(nodes, names) })
	t.Logf("converged in %v", took)
	waitFor(t, 10*time.Second, "inventories everywhere", func() (bool, string) {
		for _, a := range nodes {
			v := a.View()
			for i, name := range names {
				nv, _ := v.Node(name)
				if len(nv.Containers) != 1 || nv.Containers[0].ID != fmt.Sprintf("c%02d", i) || nv.InventoryStale {
					return false, fmt.Sprintf("%s sees %s inventory %v stale=%v", a.Name(), name, nv.Containers, nv.InventoryStale)
				}
			}
		}
		return true, ""
	})

	t.Run("load change reaches all within 5s", func(t *testing.T) {
		src := nodes[3]
		subs := make([]*Subscription, n)
		for i, a := range nodes {
			subs[i] = a.Subscribe(64)
		}
		if err := src.SetLoad(3.0, 6<<30, 0.1); err != nil { // 75% CPU, 75% memory
			t.Fatal(err)
		}
		want := src.View().Nodes[3].Version
		took := waitFor(t, 5*time.Second, "load change everywhere", func() (bool, string) {
			for _, a := range nodes {
				nv, _ := a.View().Node(src.Name())
				if nv.Version.Less(want) || nv.Load.CPUCores != 3.0 {
					return false, fmt.Sprintf("%s sees %s at %v load %v", a.Name(), src.Name(), nv.Version, nv.Load)
				}
			}
			return true, ""
		})
		t.Logf("load change seen by all %d nodes after %v", n, took)
		for i, s := range subs {
			got := drainEvents(s, EventLoadChange, src.Name())
			if got == nil {
				t.Errorf("%s: no load-change event for %s", names[i], src.Name())
				continue
			}
			if diff := cmp.Diff(Load{CPUCores: 3, CPUCapacity: 4, MemoryBytes: 6 << 30, MemoryCapacity: 8 << 30, MemoryPressure: 0.1}, got.Load); diff != "" {
				t.Errorf("%s: event load (-want +got):\n%s", names[i], diff)
			}
			s.Cancel()
		}
	})

	victim := 5
	victimAddr := nodes[victim].Addr()
	t.Run("killed node failed and inventory stale", func(t *testing.T) {
		if err := nodes[victim].Shutdown(); err != nil { // no Leave: a crash
			t.Fatal(err)
		}
		took := waitFor(t, 30*time.Second, "failure seen by all", func() (bool, string) {
			for i, a := range nodes {
				if i == victim {
					continue
				}
				nv, _ := a.View().Node(names[victim])
				if nv.Status != StatusFailed || !nv.InventoryStale || len(nv.Containers) != 1 {
					return false, fmt.Sprintf("%s sees %s %v stale=%v containers=%d", a.Name(), names[victim], nv.Status, nv.InventoryStale, len(nv.Containers))
				}
			}
			return true, ""
		})
		t.Logf("failure of %s seen by all after %v", names[victim], took)
	})

	t.Run("rejoins cleanly", func(t *testing.T) {
		cfg := testConfig(names[victim], ipFor(1, victim))
		_, port := splitPort(t, victimAddr)
		cfg.BindPort = port // same address: memberlist accepts the name back at once
		cfg.Join = []string{nodes[0].Addr()}
		var back *testNode
		waitFor(t, 10*time.Second, "rebind the same port", func() (bool, string) {
			tr, err := NewDelayTransport(cfg.BindAddr, cfg.BindPort, nil, nil)
			if err != nil {
				return false, err.Error()
			}
			_ = tr.Shutdown()
			return true, ""
		})
		back = startNode(t, cfg, nil)
		nodes[victim] = back
		if err := back.SetInventory([]Container{{ID: "c05b", Name: "web-again", Image: "registry.local/web:2", MemoryBytes: 128 << 20}}); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 20*time.Second, "rejoin seen by all", func() (bool, string) {
			if ok, msg := converged(nodes, names); !ok {
				return false, msg
			}
			for _, a := range nodes {
				nv, _ := a.View().Node(names[victim])
				if nv.InventoryStale || len(nv.Containers) != 1 || nv.Containers[0].ID != "c05b" {
					return false, fmt.Sprintf("%s sees %s stale=%v containers=%v", a.Name(), names[victim], nv.InventoryStale, nv.Containers)
				}
			}
			return true, ""
		})
		t.Logf("rejoin seen by all after %v", took)
	})
}

// drainEvents returns the last event of typ for node waiting in s (nil if none).
func drainEvents(s *Subscription, typ EventType, node string) *Event {
	var last *Event
	for {
		select {
		case e := <-s.C:
			if e.Type == typ && e.Node == node {
				last = &e
			}
		default:
			return last
		}
	}
}

func splitPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	var host string
	var port int
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	host = addr[:i]
	if _, err := fmt.Sscanf(addr[i+1:], "%d", &port); err != nil {
		t.Fatalf("bad addr %q: %v", addr, err)
	}
	return host, port
}
