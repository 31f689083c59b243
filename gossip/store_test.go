package gossip

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func st(name string, epoch, seq, invSeq uint64, cpu float64, containers ...string) *nodeState {
	s := &nodeState{
		Name:             name,
		Version:          Version{epoch, seq},
		InventoryVersion: Version{epoch, invSeq},
		Load:             Load{CPUCores: cpu, CPUCapacity: 4, MemoryCapacity: 1},
	}
	if containers != nil {
		s.HasInventory = true
		for _, id := range containers {
			s.Containers = append(s.Containers, Container{ID: id})
		}
	}
	return s
}

func ids(n NodeView) []string {
	var out []string
	for _, c := range n.Containers {
		out = append(out, c.ID)
	}
	return out
}

// TestStoreVersioning walks the merge rules step by step.
func TestStoreVersioning(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStore("me", 0.1)
	s.setStatus("n1", "127.0.0.2:1", StatusAlive, t0)

	type want struct {
		accepted bool
		cpu      float64
		ids      []string
		stale    bool
		status   Status
	}
	check := func(desc string, accepted bool, w want) {
		t.Helper()
		n, _ := s.snapshot(t0, nil).Node("n1")
		got := want{accepted, n.Load.CPUCores, ids(n), n.InventoryStale, n.Status}
		if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", desc, diff)
		}
	}
	a, _ := s.merge(st("n1", 1, 2, 2, 1.0, "a"), t0)
	check("first state taken", a, want{true, 1.0, []string{"a"}, false, StatusAlive})
	a, _ = s.merge(st("n1", 1, 1, 1, 3.0, "old"), t0)
	check("older state ignored", a, want{false, 1.0, []string{"a"}, false, StatusAlive})
	a, _ = s.merge(st("n1", 1, 2, 2, 3.0, "same"), t0)
	check("same version ignored", a, want{false, 1.0, []string{"a"}, false, StatusAlive})
	a, _ = s.merge(st("n1", 1, 4, 4, 2.0), t0)
	check("newer summary without inventory: inventory behind", a, want{true, 2.0, []string{"a"}, true, StatusAlive})
	a, _ = s.merge(st("n1", 1, 4, 4, 2.0, "b"), t0)
	check("its inventory arrives later", a, want{false, 2.0, []string{"b"}, false, StatusAlive})
	a, _ = s.merge(st("n1", 1, 3, 3, 9.0, "stale"), t0)
	check("stale full state after newer summary ignored", a, want{false, 2.0, []string{"b"}, false, StatusAlive})

	s.setStatus("n1", "", StatusFailed, t0)
	check("failed: inventory stale", false, want{false, 2.0, []string{"b"}, true, StatusFailed})
	s.setStatus("n1", "", StatusAlive, t0)
	check("back alive but silent: still stale", false, want{false, 2.0, []string{"b"}, true, StatusAlive})
	a, _ = s.merge(st("n1", 1, 5, 4, 2.5), t0) // it speaks again, same inventory
	check("a newer state vouches for its inventory", a, want{true, 2.5, []string{"b"}, false, StatusAlive})

	s.setStatus("n1", "", StatusFailed, t0)
	a, _ = s.merge(st("n1", 2, 1, 1, 0.5, "c"), t0) // restarted (new epoch), heard before memberlist says so
	check("state of a restarted node while still failed", a, want{true, 0.5, []string{"c"}, true, StatusFailed})
	s.setStatus("n1", "", StatusAlive, t0)
	check("then alive: fresh", false, want{false, 0.5, []string{"c"}, false, StatusAlive})
}

func TestStoreLoadEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStore("me", 0.1)
	var seq uint64
	step := func(cpu float64) []Event {
		seq++
		_, evs := s.merge(st("n1", 1, seq, 1, cpu), t0)
		return evs
	}
	if evs := step(1.0); len(evs) != 0 {
		t.Errorf("first state raised %v", evs)
	}
	if evs := step(1.3); len(evs) != 0 { // 7.5 points: below threshold
		t.Errorf("small change raised %v", evs)
	}
	if evs := step(1.5); len(evs) != 1 || evs[0].Type != EventLoadChange || evs[0].PrevLoad.CPUCores != 1.0 {
		t.Errorf("12.5 points since the last announced: got %v", evs)
	}
	if evs := step(1.2); len(evs) != 0 { // 7.5 points from 1.5
		t.Errorf("small change back raised %v", evs)
	}
	evs := s.setStatus("n1", "", StatusFailed, t0)
	if len(evs) != 1 || evs[0].Type != EventFailed {
		t.Errorf("failure: %v", evs)
	}
	if evs := s.setStatus("n1", "", StatusLeft, t0); len(evs) != 1 || evs[0].Type != EventLeave {
		t.Errorf("leave: %v", evs)
	}
	if gone := s.reap(t0.Add(2*time.Hour), time.Hour); len(gone) != 1 {
		t.Errorf("reap: %v", gone)
	}
}

// TestViewIsACopy: changing a view changes nothing in the store.
func TestViewIsACopy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStore("me", 0.1)
	in := st("n1", 1, 1, 1, 1, "a")
	in.Labels = map[string]string{"site": "s1"}
	in.Containers[0].Labels = map[string]string{"k": "v"}
	s.merge(in, t0)
	v := s.snapshot(t0, nil)
	n, _ := v.Node("n1")
	n.Labels["site"] = "x"
	n.Containers[0].ID = "x"
	n.Containers[0].Labels["k"] = "x"
	in.Labels["site"] = "y" // nor does changing what was merged
	again, _ := s.snapshot(t0, nil).Node("n1")
	if again.Labels["site"] != "s1" || again.Containers[0].ID != "a" || again.Containers[0].Labels["k"] != "v" {
		t.Errorf("view shares memory with the store: %+v", again)
	}
}

func TestPushPullCarriesOlderInventoryHonestly(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStore("me", 0.1)
	s.setStatus("n1", "", StatusAlive, t0)
	s.merge(st("n1", 1, 2, 2, 1, "a"), t0)
	s.merge(st("n1", 1, 3, 3, 1), t0) // newer summary, inventory not yet here
	r := newStore("other", 0.1)
	r.setStatus("n1", "", StatusAlive, t0)
	for _, x := range s.pushPullStates() {
		r.merge(x, t0)
	}
	n, _ := r.snapshot(t0, nil).Node("n1")
	if n.Version != (Version{1, 3}) || n.InventoryVersion != (Version{1, 2}) || !n.InventoryStale || len(n.Containers) != 1 {
		t.Errorf("got version %v inventory %v stale %v containers %v", n.Version, n.InventoryVersion, n.InventoryStale, n.Containers)
	}
}
