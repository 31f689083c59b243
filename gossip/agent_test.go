package gossip

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAgentPublishes checks, on three real agents, what an agent publishes besides load:
// an inventory too big for one UDP packet (sent by TCP), bandwidth estimates from
// ObserveTransfer, the drain flag, labels, and load read from a LoadSource. Each within
// 10 s (typically well under 1 s).
func TestAgentPublishes(t *testing.T) {
	src := NewStaticLoadSource(LoadSample{})
	var nodes []*testNode
	var names []string
	for i := 0; i < 3; i++ {
		cfg := testConfig(fmt.Sprintf("pub%d", i), ipFor(6, i))
		if i == 0 {
			cfg.LoadSource = src
		} else {
			cfg.Join = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, startNode(t, cfg, nil))
		names = append(names, cfg.Name)
	}
	waitFor(t, 20*time.Second, "converge", func() (bool, string) { return converged(nodes, names) })
	a := nodes[0]
	everyone := func(what string, ok func(NodeView) (bool, string)) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() (bool, string) {
			for _, n := range nodes {
				nv, _ := n.View().Node(a.Name())
				if good, msg := ok(nv); !good {
					return false, n.Name() + ": " + msg
				}
			}
			return true, ""
		})
	}

	big := make([]Container, 40)
	for i := range big {
		big[i] = Container{ID: fmt.Sprintf("%064d", i), Name: fmt.Sprintf("svc-%d", i), Image: "registry.local/team/service:1.2.3", MemoryBytes: 1 << 28,
			Labels: map[string]string{"godwit.io/managed": "true"}}
	}
	if err := a.SetInventory(big); err != nil {
		t.Fatal(err)
	}
	if n := len(encodeState(a.local.published)); n <= maxBroadcastBytes {
		t.Fatalf("test inventory is only %d bytes; it should exceed one broadcast", n)
	}
	everyone("big inventory by TCP", func(nv NodeView) (bool, string) {
		return len(nv.Containers) == 40 && !nv.InventoryStale, fmt.Sprintf("%d containers, stale %v", len(nv.Containers), nv.InventoryStale)
	})

	if err := a.ObserveTransfer("pub1", 500<<20, 4); err != nil {
		t.Fatal(err)
	}
	everyone("bandwidth estimate", func(NodeView) (bool, string) { return true, "" })
	waitFor(t, 10*time.Second, "bandwidth seen from pub2", func() (bool, string) {
		v := nodes[2].View()
		l, ok := v.Bandwidth("pub1", "pub0") // measured by pub0 toward pub1: either way round
		return ok && l.BytesPerSecond == float64(500<<20)/4 && l.Age(v.Taken) < time.Minute, fmt.Sprintf("%+v %v", l, ok)
	})

	a.SetDrain(true)
	everyone("drain", func(nv NodeView) (bool, string) { return nv.Drain, "not draining" })
	if err := a.SetLabels(map[string]string{LabelSite: "edge-7", "arch": "arm64"}); err != nil {
		t.Fatal(err)
	}
	everyone("labels", func(nv NodeView) (bool, string) {
		return nv.Labels["arch"] == "arm64" && nv.Labels[LabelSite] == "edge-7", fmt.Sprint(nv.Labels)
	})

	src.Set(LoadSample{CPUCores: 2, MemoryBytes: 4 << 30, Containers: map[string]ContainerUsage{big[0].ID: {MemoryBytes: 1 << 20, CPUCores: 0.5}}})
	everyone("load from the LoadSource", func(nv NodeView) (bool, string) {
		return nv.Load.CPUCores == 2 && nv.Load.MemoryBytes == 4<<30 && len(nv.Containers) == 40 && nv.Containers[0].MemoryBytes == 1<<20 && !nv.InventoryStale,
			fmt.Sprintf("%+v", nv.Load)
	})

	if err := a.SetInventory([]Container{{ID: ""}}); err == nil || !strings.Contains(err.Error(), "id must be") {
		t.Errorf("empty container id accepted: %v", err)
	}
	if err := a.ObserveTransfer("pub1", 0, 1); err == nil {
		t.Errorf("zero-byte transfer accepted")
	}
}

// TestLeaveIsNotFailure: a graceful leave is reported as left, with a stale inventory.
func TestLeaveIsNotFailure(t *testing.T) {
	a := startNode(t, testConfig("stay", ipFor(7, 0)), nil)
	cfg := testConfig("go", ipFor(7, 1))
	cfg.Join = []string{a.Addr()}
	b := startNode(t, cfg, nil)
	sub := a.Subscribe(0)
	waitFor(t, 10*time.Second, "join", func() (bool, string) { return converged([]*testNode{a, b}, []string{"stay", "go"}) })
	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = b.Shutdown()
	waitFor(t, 10*time.Second, "left", func() (bool, string) {
		nv, _ := a.View().Node("go")
		return nv.Status == StatusLeft && nv.InventoryStale, nv.Status.String()
	})
	if e := drainEvents(sub, EventLeave, "go"); e == nil {
		t.Errorf("no leave event")
	}
}
