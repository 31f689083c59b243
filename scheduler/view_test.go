package scheduler

import (
	"testing"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/serf/coordinate"
)

// coordAt is a Vivaldi coordinate ms milliseconds along one axis.
func coordAt(ms float64) *coordinate.Coordinate {
	c := coordinate.NewCoordinate(coordinate.DefaultConfig())
	c.Vec[0] = ms / 1000
	return c
}

func TestBuildView(t *testing.T) {
	node := func(name, site string, at float64, status gossip.Status, cs ...gossip.Container) gossip.NodeView {
		return gossip.NodeView{Name: name, Status: status, Labels: map[string]string{gossip.LabelSite: site},
			Load:       gossip.Load{CPUCores: 1, CPUCapacity: 4, MemoryBytes: 1 << 30, MemoryCapacity: 8 << 30},
			Coordinate: coordAt(at), Containers: cs}
	}
	web := gossip.Container{ID: "c-new", Name: "web", MemoryBytes: 256 << 20, CPUCores: 0.5,
		Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelWorkload: "w-web"}, UserSites: []string{"south"}}
	webStale := web
	webStale.ID = "c-old"
	plain := gossip.Container{ID: "c-plain", Name: "db", MemoryBytes: 64 << 20}
	g := gossip.ClusterView{Nodes: []gossip.NodeView{
		node("n3", "south", 40, gossip.StatusAlive, webStale),
		node("n1", "north", 0, gossip.StatusAlive, web, plain),
		node("n2", "north", 2, gossip.StatusAlive),
		node("n4", "south", 42, gossip.StatusFailed),
	}}
	g.Nodes[0].Links = []gossip.LinkEstimate{{Peer: "n1", BytesPerSecond: 50e6}}
	g.Nodes[1].Drain = true
	v := BuildView(g, ViewInputs{
		Drained: map[string]bool{"n2": true},
		Users:   map[string][]policy.UserSite{"c-plain": {{Site: "north", Weight: 3}}},
		Owners:  map[string]string{"w-web": "n1"},
	})
	if len(v.Nodes) != 4 || v.Nodes[0].ID != "n1" || !v.Nodes[0].Drained || !v.Nodes[1].Drained || v.Nodes[2].Drained || !v.Nodes[3].Unavailable {
		t.Fatalf("nodes: %+v", v.Nodes)
	}
	if v.Nodes[0].CPUCores != 4 || v.Nodes[0].UsedMemoryBytes != 1<<30 || v.Nodes[0].Site != "north" || v.Nodes[0].ContainerCount != 2 {
		t.Fatalf("node fields: %+v", v.Nodes[0])
	}
	want := []policy.Container{
		{ID: "w-web", Name: "web", Node: "n1", MemoryBytes: 256 << 20, CPU: 0.5, Labels: web.Labels, Users: []policy.UserSite{{Site: "south", Weight: 1}}},
		{ID: "c-plain", Name: "db", Node: "n1", MemoryBytes: 64 << 20, Users: []policy.UserSite{{Site: "north", Weight: 3}}},
	}
	if d := cmp.Diff(want, v.Containers); d != "" {
		t.Fatalf("containers (-want +got):\n%s", d)
	}
	if len(v.SiteLinks) != 1 || v.SiteLinks[0].From != "north" || v.SiteLinks[0].To != "south" {
		t.Fatalf("site links: %+v", v.SiteLinks)
	}
	if rtt := v.SiteLinks[0].RTT; rtt < 35*time.Millisecond || rtt > 45*time.Millisecond {
		t.Fatalf("north-south RTT %v, want about 40 ms", rtt)
	}
	if v.SiteLinks[0].BandwidthBytesPerSec != 50e6 {
		t.Fatalf("bandwidth %v", v.SiteLinks[0].BandwidthBytesPerSec)
	}
	if v.IntraSiteRTT <= 0 || v.IntraSiteRTT > 5*time.Millisecond {
		t.Fatalf("intra-site RTT %v", v.IntraSiteRTT)
	}
	// Same input, same view (order of gossip nodes does not matter).
	g.Nodes[0], g.Nodes[2] = g.Nodes[2], g.Nodes[0]
	if d := cmp.Diff(v, BuildView(g, ViewInputs{Drained: map[string]bool{"n2": true}, Users: map[string][]policy.UserSite{"c-plain": {{Site: "north", Weight: 3}}}, Owners: map[string]string{"w-web": "n1"}})); d != "" {
		t.Fatalf("not deterministic:\n%s", d)
	}
}
