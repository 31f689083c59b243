package sim

import (
	"math"
	"sort"
	"time"

	"github.com/godwit-io/godwit/policy"
)

// Sample is the state of an arm at one sample time, and what happened since the previous
// sample.
type Sample struct {
	T time.Duration `json:"t"`
	// Node CPU utilisation over live nodes: mean, max and standard deviation (the load
	// imbalance).
	MeanUtil  float64 `json:"meanUtil"`
	MaxUtil   float64 `json:"maxUtil"`
	Imbalance float64 `json:"imbalance"`
	// Overloaded is the number of live nodes above the scenario's overloadAbove.
	Overloaded int `json:"overloaded"`
	// Latency percentiles over the users whose container is available, in ms.
	LatencyP50 float64 `json:"latencyP50"`
	LatencyP95 float64 `json:"latencyP95"`
	LatencyP99 float64 `json:"latencyP99"`
	// Users, Violations (latency above the SLO or container unavailable) and Unavailable.
	Users       int `json:"users"`
	Violations  int `json:"violations"`
	Unavailable int `json:"unavailable"`
	// InFlight migrations now; Started and Completed since the previous sample.
	InFlight  int `json:"inFlight"`
	Started   int `json:"started"`
	Completed int `json:"completed"`
	// DowntimeS is the downtime of migrations that ended since the previous sample.
	DowntimeS  float64 `json:"downtimeS"`
	BytesMoved int64   `json:"bytesMoved"`
}

// MigrationLog is one simulated migration.
type MigrationLog struct {
	ID        string        `json:"id"`
	Container string        `json:"container"`
	From      string        `json:"from"`
	To        string        `json:"to"`
	Start     time.Duration `json:"start"`
	End       time.Duration `json:"end"`
	Predicted time.Duration `json:"predictedDowntime"`
	Downtime  time.Duration `json:"downtime"`
	// Method is "post-copy" for a post-copy migration (empty: stop-and-copy); Degraded
	// is how long its container ran while its pages arrived.
	Method    string        `json:"method,omitempty"`
	Degraded  time.Duration `json:"degraded,omitempty"`
	Bytes     int64         `json:"bytes"`
	Completed bool          `json:"completed"`
}

// Summary is an arm's whole run in numbers.
type Summary struct {
	Arm string `json:"arm"`
	// Migrations started, completed and rolled back (failed or aborted).
	Migrations int `json:"migrations"`
	Completed  int `json:"completed"`
	RolledBack int `json:"rolledBack"`
	// PingPongs are completed moves back to a node the container left within the hour:
	// the thrashing measure.
	PingPongs int `json:"pingPongs"`
	// DowntimeS is the total downtime of migrations; MaxDowntimeS the longest.
	DowntimeS    float64 `json:"downtimeS"`
	MaxDowntimeS float64 `json:"maxDowntimeS"`
	// PostCopy counts the post-copy migrations; DegradedS is the time their containers
	// ran while their pages arrived (their users count as over the SLO meanwhile).
	PostCopy   int     `json:"postCopy,omitempty"`
	DegradedS  float64 `json:"degradedS,omitempty"`
	BytesMoved int64   `json:"bytesMoved"`
	// MeanImbalance is the mean over samples of the utilisation standard deviation.
	MeanImbalance float64 `json:"meanImbalance"`
	// OverloadedNodeMinutes is the time nodes spent above overloadAbove.
	OverloadedNodeMinutes float64 `json:"overloadedNodeMinutes"`
	// Latency percentiles over all available user-samples, in ms.
	LatencyP50 float64 `json:"latencyP50"`
	LatencyP95 float64 `json:"latencyP95"`
	LatencyP99 float64 `json:"latencyP99"`
	// SLOViolationUserMinutes counts user-minutes above the latency SLO or unavailable;
	// SLOViolationRate is their share of all user-minutes.
	SLOViolationUserMinutes float64 `json:"sloViolationUserMinutes"`
	SLOViolationRate        float64 `json:"sloViolationRate"`
	UnavailableUserMinutes  float64 `json:"unavailableUserMinutes"`
	// NodeFailures and Restarts (cold restarts after a failure).
	NodeFailures int `json:"nodeFailures"`
	Restarts     int `json:"restarts"`
	// StaleDecisions are the decisions policy.Commit refused on re-check against the
	// simulated state (the view and the ledger they would join); Refused counts them by
	// reason, sorted by reason.
	StaleDecisions int           `json:"staleDecisions"`
	Refused        []ReasonCount `json:"refused,omitempty"`
	// Reasons counts the decision engine's reasons for managed containers over all
	// evaluations (policy arm only), sorted by reason.
	Reasons []ReasonCount `json:"reasons,omitempty"`
}

// ReasonCount is how often a reason was given.
type ReasonCount struct {
	Reason policy.Reason `json:"reason"`
	Count  int           `json:"count"`
}

// Result is one arm's run.
type Result struct {
	Arm        string
	Samples    []Sample
	Migrations []MigrationLog
	Summary    Summary
	// NodeUtil[i][n] is node n's CPU utilisation at sample i (only with KeepNodeSeries).
	NodeUtil [][]float32
	// NodeNames names NodeUtil's columns.
	NodeNames []string
}

// latency histogram: 0.25 ms buckets up to 2 s; beyond, the last bucket.
const (
	histBucket = 0.25
	histSize   = 8000
)

type histogram struct {
	counts []int64
	n      int64
}

func newHistogram() *histogram { return &histogram{counts: make([]int64, histSize)} }

func (h *histogram) add(ms float64) {
	b := int(ms / histBucket)
	if b >= histSize {
		b = histSize - 1
	}
	if b < 0 {
		b = 0
	}
	h.counts[b]++
	h.n++
}

// quantiles returns the bucket upper bounds at each q (ascending).
func (h *histogram) quantiles(qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if h.n == 0 {
		return out
	}
	var cum int64
	k := 0
	for b, c := range h.counts {
		cum += c
		for k < len(qs) && float64(cum) >= qs[k]*float64(h.n) {
			out[k] = float64(b+1) * histBucket
			k++
		}
		if k == len(qs) {
			break
		}
	}
	return out
}

func (h *histogram) reset() {
	clear(h.counts)
	h.n = 0
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// recorder collects an arm's metrics.
type recorder struct {
	w        *world
	samples  []Sample
	cur      Sample // counters since the last sample
	hist     *histogram
	total    *histogram
	migs     []MigrationLog
	lastMig  []int // index in migs of each container's last completed migration, -1: none
	reasons  map[policy.Reason]int
	refusals map[policy.Reason]int
	nodeUtil [][]float32

	stale, failures, restarts                                 int
	userMinutes, violMinutes, unavailMinutes, overloadMinutes float64
	pingPongs                                                 int
}

func newRecorder(w *world) *recorder {
	r := &recorder{w: w, hist: newHistogram(), total: newHistogram(), reasons: map[policy.Reason]int{},
		refusals: map[policy.Reason]int{}}
	r.lastMig = make([]int, len(w.containers))
	for i := range r.lastMig {
		r.lastMig[i] = -1
	}
	return r
}

func (r *recorder) started(f *flight) {
	r.cur.Started++
	r.migs = append(r.migs, MigrationLog{
		ID: f.id, Container: r.w.containers[f.container].spec.Name,
		From: r.w.nodes[f.from].spec.Name, To: r.w.nodes[f.to].spec.Name,
		Start: f.start, Predicted: f.predicted.Downtime, Bytes: f.predicted.ImageBytes,
	})
}

func (r *recorder) finished(f *flight, completed bool) {
	// The log entry is the last one for this ID; search from the end.
	var m *MigrationLog
	idx := -1
	for i := len(r.migs) - 1; i >= 0; i-- {
		if r.migs[i].ID == f.id {
			m, idx = &r.migs[i], i
			break
		}
	}
	m.End = r.w.now
	m.Downtime = f.downtime()
	m.Degraded = f.degraded()
	if f.post {
		m.Method = policy.MethodPostCopy
	}
	m.Completed = completed
	r.cur.DowntimeS += m.Downtime.Seconds()
	r.cur.BytesMoved += m.Bytes
	if completed {
		r.cur.Completed++
		if prev := r.lastMig[f.container]; prev >= 0 {
			p := r.migs[prev]
			if p.From == m.To && m.End-p.End <= time.Hour {
				r.pingPongs++
			}
		}
		r.lastMig[f.container] = idx
	}
}

func (r *recorder) refused(rs []policy.Refusal) {
	for _, x := range rs {
		r.stale++
		r.refusals[x.Reason]++
	}
}

func (r *recorder) explanations(ex []policy.Explanation) {
	for i := range ex {
		r.reasons[ex[i].Reason]++
	}
}

// sample takes the metrics at the current time.
func (r *recorder) sample() {
	w := r.w
	sc := w.sc
	s := r.cur
	r.cur = Sample{}
	s.T = w.now
	var live int
	var sum, sumSq float64
	for i := range w.nodes {
		n := &w.nodes[i]
		if n.down {
			continue
		}
		u := n.cpu / n.spec.CPU
		live++
		sum += u
		sumSq += u * u
		s.MaxUtil = math.Max(s.MaxUtil, u)
		if u > sc.OverloadAbove {
			s.Overloaded++
		}
	}
	if live > 0 {
		s.MeanUtil = sum / float64(live)
		s.Imbalance = math.Sqrt(math.Max(0, sumSq/float64(live)-s.MeanUtil*s.MeanUtil))
	}
	if w.cfg.KeepNodeSeries {
		row := make([]float32, len(w.nodes))
		for i := range w.nodes {
			if !w.nodes[i].down {
				row[i] = float32(w.nodes[i].cpu / w.nodes[i].spec.CPU)
			}
		}
		r.nodeUtil = append(r.nodeUtil, row)
	}
	lat := &sc.Latency
	slo := sc.SLO.LatencyMs
	r.hist.reset()
	for ci := range w.containers {
		c := &w.containers[ci]
		if len(c.users) == 0 {
			continue
		}
		n := &w.nodes[c.node]
		if !w.available(ci) {
			s.Users += len(c.users)
			s.Unavailable += len(c.users)
			s.Violations += len(c.users)
			continue
		}
		if w.degraded(ci) {
			// Pages still arriving by post-copy: every first touch waits for the link.
			s.Users += len(c.users)
			s.Violations += len(c.users)
			continue
		}
		u := math.Min(n.cpu/n.spec.CPU, lat.MaxUtil)
		base := lat.AccessMs + lat.ServiceMs/(1-u)
		row := w.net.rttM[n.site]
		for _, ui := range c.users {
			ms := base + row[w.users[ui].site]
			r.hist.add(ms)
			s.Users++
			if ms > slo {
				s.Violations++
			}
		}
	}
	q := r.hist.quantiles(0.5, 0.95, 0.99)
	s.LatencyP50, s.LatencyP95, s.LatencyP99 = q[0], q[1], q[2]
	r.total.merge(r.hist)
	s.InFlight = len(w.flights)
	mins := sc.SampleInterval.Minutes()
	r.userMinutes += float64(s.Users) * mins
	r.violMinutes += float64(s.Violations) * mins
	r.unavailMinutes += float64(s.Unavailable) * mins
	r.overloadMinutes += float64(s.Overloaded) * mins
	r.samples = append(r.samples, s)
}

// finish computes the summary.
func (r *recorder) finish() {
	w := r.w
	// Migrations still in flight at the end count as started, not finished.
	sum := Summary{
		Arm: w.planner.Name(), Migrations: len(r.migs), PingPongs: r.pingPongs,
		OverloadedNodeMinutes:   r.overloadMinutes,
		SLOViolationUserMinutes: r.violMinutes,
		UnavailableUserMinutes:  r.unavailMinutes,
		NodeFailures:            r.failures, Restarts: r.restarts, StaleDecisions: r.stale,
	}
	for _, m := range r.migs {
		if m.End == 0 {
			continue // still in flight (no migration ends at time zero)
		}
		if m.Completed {
			sum.Completed++
		} else {
			sum.RolledBack++
		}
		sum.DowntimeS += m.Downtime.Seconds()
		sum.DegradedS += m.Degraded.Seconds()
		if m.Method == policy.MethodPostCopy {
			sum.PostCopy++
		}
		sum.MaxDowntimeS = math.Max(sum.MaxDowntimeS, m.Downtime.Seconds())
		sum.BytesMoved += m.Bytes
	}
	if r.userMinutes > 0 {
		sum.SLOViolationRate = r.violMinutes / r.userMinutes
	}
	for _, s := range r.samples {
		sum.MeanImbalance += s.Imbalance
	}
	if len(r.samples) > 0 {
		sum.MeanImbalance /= float64(len(r.samples))
	}
	q := r.total.quantiles(0.5, 0.95, 0.99)
	sum.LatencyP50, sum.LatencyP95, sum.LatencyP99 = q[0], q[1], q[2]
	for reason, n := range r.reasons {
		sum.Reasons = append(sum.Reasons, ReasonCount{Reason: reason, Count: n})
	}
	sort.Slice(sum.Reasons, func(i, j int) bool { return sum.Reasons[i].Reason < sum.Reasons[j].Reason })
	for reason, n := range r.refusals {
		sum.Refused = append(sum.Refused, ReasonCount{Reason: reason, Count: n})
	}
	sort.Slice(sum.Refused, func(i, j int) bool { return sum.Refused[i].Reason < sum.Refused[j].Reason })
	w.result = &Result{Arm: sum.Arm, Samples: r.samples, Migrations: r.migs, Summary: sum, NodeUtil: r.nodeUtil}
	if w.cfg.KeepNodeSeries {
		for i := range w.nodes {
			w.result.NodeNames = append(w.result.NodeNames, w.nodes[i].spec.Name)
		}
	}
}
