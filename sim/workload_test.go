package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestWorkloadModels(t *testing.T) {
	h := 24 * time.Hour
	t.Run("diurnal peaks at peak", func(t *testing.T) {
		d := newDemand(&Workload{Model: WorkloadDiurnal, Base: 1, Amplitude: 0.5, Peak: 15 * time.Hour, Period: h}, 1, 0, h)
		if got := d.at(15 * time.Hour); math.Abs(got-1.5) > 1e-9 {
			t.Errorf("at peak %v, want 1.5", got)
		}
		if got := d.at(27 * time.Hour); math.Abs(got-0.5) > 1e-9 {
			t.Errorf("12h after peak %v, want 0.5", got)
		}
	})
	t.Run("spikes are base or base+height", func(t *testing.T) {
		d := newDemand(&Workload{Model: WorkloadSpikes, Base: 0.2, Height: 1, Every: time.Hour, Length: 10 * time.Minute}, 1, 0, h)
		var high int
		for m := time.Duration(0); m < h; m += time.Minute {
			v := d.at(m)
			if v != 0.2 && math.Abs(v-1.2) > 1e-9 {
				t.Fatalf("at %v: %v", m, v)
			}
			if v > 1 {
				high++
			}
		}
		// About 24 spikes of 10 minutes.
		if high < 60 || high > 500 {
			t.Errorf("%d spiking minutes in a day", high)
		}
	})
	t.Run("random walk stays in bounds", func(t *testing.T) {
		d := newDemand(&Workload{Model: WorkloadRandomWalk, Start: 0.5, Step: 0.3, StepEvery: time.Minute, Min: 0.1, Max: 1}, 1, 0, h)
		moved := false
		for m := time.Duration(0); m < h; m += time.Minute {
			v := d.at(m)
			if v < 0.1 || v > 1 {
				t.Fatalf("at %v: %v out of [0.1, 1]", m, v)
			}
			moved = moved || v != 0.5
		}
		if !moved {
			t.Error("the walk never moved")
		}
	})
	t.Run("trace replays as steps and loops", func(t *testing.T) {
		tr := &Trace{Times: []time.Duration{0, time.Hour, 2 * time.Hour}, Values: []float64{1, 2, 3}}
		d := newDemand(&Workload{Model: WorkloadTrace, Trace: tr, Scale: 2, Loop: true}, 1, 0, h)
		for _, c := range []struct {
			at   time.Duration
			want float64
		}{{0, 2}, {59 * time.Minute, 2}, {time.Hour, 4}, {2*time.Hour + time.Minute, 2}, {3 * time.Hour, 4}} {
			if got := d.at(c.at); got != c.want {
				t.Errorf("at %v: %v, want %v", c.at, got, c.want)
			}
		}
	})
	t.Run("noise is a function of container and minute", func(t *testing.T) {
		w := &Workload{Model: WorkloadConstant, Value: 1, Noise: 0.1}
		a, b := newDemand(w, 5, 3, h), newDemand(w, 5, 3, h)
		if a.at(time.Hour) != b.at(time.Hour) || a.at(time.Hour) == 1 {
			t.Error("noise not deterministic or absent")
		}
	})
}

func TestMobility(t *testing.T) {
	idx := map[string]int{"a": 0, "b": 1, "c": 2}
	t.Run("scripted", func(t *testing.T) {
		g := &UserGroup{Count: 1, Mobility: Mobility{Model: MobilityScripted, Moves: []Move{{At: time.Hour, Site: "b"}, {At: 3 * time.Hour, Site: "c"}}}}
		u := user{group: g}
		for _, c := range []struct {
			at   time.Duration
			want int
		}{{0, 0}, {time.Hour, 1}, {2 * time.Hour, 1}, {4 * time.Hour, 2}} {
			u.advance(c.at, idx)
			if u.site != c.want {
				t.Errorf("at %v: site %d, want %d", c.at, u.site, c.want)
			}
		}
	})
	t.Run("trace follows its user only", func(t *testing.T) {
		g := &UserGroup{Count: 2, Mobility: Mobility{Model: MobilityTrace, Trace: []TraceMove{{At: time.Hour, User: 1, Site: "c"}, {At: 2 * time.Hour, User: 0, Site: "b"}}}}
		u0, u1 := user{group: g, index: 0}, user{group: g, index: 1}
		u0.advance(3*time.Hour, idx)
		u1.advance(3*time.Hour, idx)
		if u0.site != 1 || u1.site != 2 {
			t.Errorf("sites %d, %d, want 1, 2", u0.site, u1.site)
		}
	})
	t.Run("random waypoint visits its sites", func(t *testing.T) {
		g := &UserGroup{Count: 1, Mobility: Mobility{Model: MobilityRandomWaypoint, PauseMin: time.Minute, PauseMax: 10 * time.Minute}}
		u := user{group: g, sites: []int{1, 2}, rng: rand.New(rand.NewPCG(1, 2)), next: time.Minute}
		seen := map[int]bool{}
		for m := time.Duration(0); m < 10*time.Hour; m += time.Minute {
			u.advance(m, idx)
			seen[u.site] = true
		}
		if !seen[1] || !seen[2] {
			t.Errorf("visited %v", seen)
		}
	})
}
