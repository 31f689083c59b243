package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// usersGossip is two nodes at sites north and south; web runs on n1 with a label saying its
// users are mostly south, db on n2 with an invalid label, cache on n2 with none.
func usersGossip() gossip.ClusterView {
	ct := func(id, name, label string) gossip.Container {
		l := map[string]string{migrate.LabelManaged: "true", migrate.LabelWorkload: "w-" + name}
		if label != "" {
			l[policy.LabelUserSites] = label
		}
		return gossip.Container{ID: id, Name: name, MemoryBytes: 64 << 20, Labels: l}
	}
	node := func(name, site string, cs ...gossip.Container) gossip.NodeView {
		return gossip.NodeView{Name: name, Status: gossip.StatusAlive, Labels: map[string]string{gossip.LabelSite: site},
			Load: gossip.Load{CPUCapacity: 4, MemoryCapacity: 8 << 30}, Containers: cs}
	}
	return gossip.ClusterView{Nodes: []gossip.NodeView{
		node("n1", "north", ct("c1", "web", "north:0.2,south:0.8")),
		node("n2", "south", ct("c2", "db", "south"), ct("c3", "cache", "")),
	}}
}

// TestUsersPrecedence: the label counts until the API records sites; those win until they
// are cleared; an invalid label counts as none and says why.
func TestUsersPrecedence(t *testing.T) {
	g := usersGossip()
	users := func(in ViewInputs) map[string][]policy.UserSite {
		out := map[string][]policy.UserSite{}
		for _, c := range BuildView(g, in).Containers {
			out[c.ID] = c.Users
		}
		return out
	}
	label := []policy.UserSite{{Site: "north", Weight: 0.2}, {Site: "south", Weight: 0.8}}
	if d := cmp.Diff(map[string][]policy.UserSite{"w-web": label, "w-db": nil, "w-cache": nil}, users(ViewInputs{})); d != "" {
		t.Fatalf("from labels (-want +got):\n%s", d)
	}
	api := []policy.UserSite{{Site: "north", Weight: 1}}
	got := users(ViewInputs{Users: map[string][]policy.UserSite{"w-web": api, "w-cache": api}})
	if d := cmp.Diff(map[string][]policy.UserSite{"w-web": api, "w-db": nil, "w-cache": api}, got); d != "" {
		t.Fatalf("recorded over labels (-want +got):\n%s", d)
	}

	st := NewState()
	st.Users["w-web"] = UsersRecord{Sites: api, By: "lb", At: epoch}
	st.Users["w-gone"] = UsersRecord{Sites: api, By: "lb", At: epoch}
	list := UsersOf(BuildView(g, ViewInputs{Users: recordedUsers(st)}), st)
	want := []WorkloadUsers{
		{Workload: "w-web", Name: "web", Node: "n1", Sites: api, Source: UsersFromAPI, By: "lb", At: epoch, Label: "north:0.2,south:0.8"},
		{Workload: "w-db", Name: "db", Node: "n2", Label: "south",
			LabelError: "policy: invalid user sites: entry 1 \"south\": want site:weight (site:weight[,site:weight...], e.g. site-a:0.7,site-b:0.3)"},
		{Workload: "w-gone", Sites: api, Source: UsersFromAPI, By: "lb", At: epoch},
	}
	if d := cmp.Diff(want, list); d != "" {
		t.Fatalf("UsersOf (-want +got):\n%s", d)
	}
}

// TestLeaderSetUsers: valid sites are recorded under the workload's identity (found by
// name too); an unknown site, workload or a bad weight records nothing.
func TestLeaderSetUsers(t *testing.T) {
	fsm := NewFSM(FSMConfig{})
	l := NewLeader(LeaderConfig{Name: "leader", Replica: &directReplica{fsm: fsm}, FSM: fsm, Gossip: usersGossip,
		Now: func() time.Time { return epoch }})
	ctx := context.Background()
	sites := []policy.UserSite{{Site: "south", Weight: 1}}
	id, err := l.SetUsers(ctx, "web", sites, "lb (operator)")
	if err != nil || id != "w-web" {
		t.Fatalf("SetUsers by name: %q, %v", id, err)
	}
	if d := cmp.Diff(UsersRecord{Sites: sites, By: "lb (operator)", At: epoch}, fsm.State().Users["w-web"]); d != "" {
		t.Fatalf("record (-want +got):\n%s", d)
	}
	before := fsm.State()
	for _, tc := range []struct {
		desc     string
		workload string
		sites    []policy.UserSite
		want     error
	}{
		{"an unknown site", "w-web", []policy.UserSite{{Site: "east", Weight: 1}}, ErrUnknownSite},
		{"an unknown workload", "nothing", sites, ErrUnknownWorkload},
		{"no sites", "w-web", nil, policy.ErrInvalidUserSites},
		{"a zero weight", "w-web", []policy.UserSite{{Site: "south", Weight: 0}}, policy.ErrInvalidUserSites},
		{"a site twice", "w-web", []policy.UserSite{{Site: "south", Weight: 1}, {Site: "south", Weight: 1}}, policy.ErrInvalidUserSites},
	} {
		if _, err := l.SetUsers(ctx, tc.workload, tc.sites, "lb"); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.desc, err, tc.want)
		}
	}
	if d := cmp.Diff(before, fsm.State()); d != "" {
		t.Fatalf("a refused request changed the state:\n%s", d)
	}
	if id, cleared, err := l.ClearUsers(ctx, "web", "lb"); err != nil || !cleared || id != "w-web" {
		t.Fatalf("ClearUsers: %q %v %v", id, cleared, err)
	}
	if _, cleared, err := l.ClearUsers(ctx, "w-web", "lb"); err != nil || cleared {
		t.Fatalf("ClearUsers again: %v %v", cleared, err)
	}
	if _, _, err := l.ClearUsers(ctx, "nothing", "lb"); !errors.Is(err, ErrUnknownWorkload) {
		t.Fatalf("ClearUsers of an unknown workload: %v", err)
	}
}
