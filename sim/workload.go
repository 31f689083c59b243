package sim

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// WorkloadModel names how a container's CPU demand evolves.
type WorkloadModel string

// Workload models.
const (
	WorkloadConstant   WorkloadModel = "constant"
	WorkloadDiurnal    WorkloadModel = "diurnal"
	WorkloadSpikes     WorkloadModel = "spikes"
	WorkloadRandomWalk WorkloadModel = "randomWalk"
	WorkloadTrace      WorkloadModel = "trace"
)

// Workload is a container's CPU demand in cores over time. Which fields matter depends on
// Model; the rest are zero.
type Workload struct {
	Model WorkloadModel
	// constant
	Value float64
	// diurnal: Base + Amplitude*cos(2π(t-Peak)/Period); spikes: Base between spikes.
	Base      float64
	Amplitude float64
	Peak      time.Duration // time of day of the maximum
	Period    time.Duration // default 24h
	// PhaseJitter shifts each container of a group by a uniform offset in [-j, +j].
	PhaseJitter time.Duration
	// spikes: Poisson arrivals every Every on average, each Length long, Height above Base.
	Height float64
	Every  time.Duration
	Length time.Duration
	// randomWalk: starts at Start, a normal step of stddev Step every StepEvery, within
	// [Min, Max].
	Start     float64
	Step      float64
	StepEvery time.Duration
	Min, Max  float64
	// trace: Trace replayed (as a step function), times Scale, looping if Loop.
	Trace *Trace
	Scale float64
	Loop  bool
	// Noise is a relative, independent normal perturbation per minute, for every model.
	Noise float64
}

// Trace is a replayed time series: Values[i] holds from Times[i] to Times[i+1].
type Trace struct {
	File   string
	Times  []time.Duration
	Values []float64
}

func (tr *Trace) at(t time.Duration, loop bool) float64 {
	n := len(tr.Times)
	if n == 0 {
		return 0
	}
	if loop && n > 1 {
		span := tr.Times[n-1] - tr.Times[0]
		if span > 0 && t >= tr.Times[n-1] {
			t = tr.Times[0] + (t-tr.Times[0])%span
		}
	}
	i := sort.Search(n, func(i int) bool { return tr.Times[i] > t }) - 1
	if i < 0 {
		i = 0
	}
	return tr.Values[i]
}

// demand is one container's workload made concrete: random parts drawn once per container
// from its own stream, so that every arm of a run sees the same load whatever it decides.
type demand struct {
	w     *Workload
	key   uint64 // seed ^ container index, for stateless noise
	phase time.Duration
	// spikes, sorted start times
	spikes []time.Duration
	// random walk state
	rng     *rand.Rand
	walkT   time.Duration
	walkVal float64
}

func newDemand(w *Workload, seed uint64, idx int, horizon time.Duration) *demand {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(idx)))
	d := &demand{w: w, key: mix64(seed ^ uint64(idx)*0x2545f4914f6cdd1d)}
	if w.PhaseJitter > 0 {
		d.phase = time.Duration((rng.Float64()*2 - 1) * float64(w.PhaseJitter))
	}
	switch w.Model {
	case WorkloadSpikes:
		if w.Every > 0 {
			for t := time.Duration(0); ; {
				t += time.Duration(rng.ExpFloat64() * float64(w.Every))
				if t >= horizon {
					break
				}
				d.spikes = append(d.spikes, t)
			}
		}
	case WorkloadRandomWalk:
		d.rng = rng
		d.walkVal = w.Start
	}
	return d
}

// at is the demand at t. Calls must come with non-decreasing t (the random walk advances).
func (d *demand) at(t time.Duration) float64 {
	w := d.w
	var v float64
	switch w.Model {
	case WorkloadConstant:
		v = w.Value
	case WorkloadDiurnal:
		period := w.Period
		if period <= 0 {
			period = 24 * time.Hour
		}
		x := float64(t-w.Peak+d.phase) / float64(period)
		v = w.Base + w.Amplitude*math.Cos(2*math.Pi*x)
	case WorkloadSpikes:
		v = w.Base
		// the latest spike starting at or before t
		i := sort.Search(len(d.spikes), func(i int) bool { return d.spikes[i] > t }) - 1
		if i >= 0 && t < d.spikes[i]+w.Length {
			v += w.Height
		}
	case WorkloadRandomWalk:
		step := w.StepEvery
		if step <= 0 {
			step = 5 * time.Minute
		}
		for d.walkT+step <= t {
			d.walkT += step
			d.walkVal += d.rng.NormFloat64() * w.Step
			d.walkVal = math.Min(math.Max(d.walkVal, w.Min), w.Max)
		}
		v = d.walkVal
	case WorkloadTrace:
		v = w.Trace.at(t+d.phase, w.Loop) * w.Scale
	}
	if w.Noise > 0 {
		v *= 1 + w.Noise*hashNormal(d.key, uint64(t/time.Minute))
	}
	if v < 0 {
		v = 0
	}
	return v
}

// mix64 is splitmix64's finaliser: a good 64-bit hash.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hashNormal is a standard normal value that depends only on (key, i): stateless noise that
// does not care in which order it is asked for.
func hashNormal(key, i uint64) float64 {
	a := mix64(key ^ mix64(i))
	b := mix64(a)
	u1 := (float64(a>>11) + 0.5) / (1 << 53)
	u2 := float64(b>>11) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
