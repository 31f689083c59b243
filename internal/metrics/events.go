package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

// Events counts what happens on a server as it happens: the leader's decision rounds and
// decisions, the outcomes it records, and every raft apply. It is the server's
// scheduler.Observer. Counters and histograms start at zero with the process; the leader
// that did something counts it, so a cluster's total is the sum over its servers.
type Events struct {
	roundDuration   prometheus.Histogram
	roundErrors     prometheus.Counter
	decisions       *prometheus.CounterVec
	finished        *prometheus.CounterVec
	phaseDuration   *prometheus.HistogramVec
	downtime        prometheus.Histogram
	predictionRatio prometheus.Histogram
	bytes           prometheus.Counter
	applyDuration   prometheus.Histogram
	applyErrors     prometheus.Counter
}

var _ scheduler.Observer = (*Events)(nil)

// migrationSeconds are the buckets of phase and downtime histograms: from a small process
// (tens of milliseconds) to several GiB through Docker's copy (minutes).
var migrationSeconds = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}

// NewEvents returns the counters and histograms of a server, every labelled series that
// has a fixed set of values already present at 0.
func NewEvents() *Events {
	e := &Events{
		roundDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "godwit_decision_round_duration_seconds",
			Help:    "How long the leader's decision rounds took: evaluating the policy, recording the trigger state and the decisions.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		roundErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "godwit_decision_round_errors_total",
			Help: "Decision rounds that ended with an error (a raft apply that failed), counted by the leader.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_decisions_total",
			Help: "Per-container outcomes of the leader's decision rounds, by action (move, recommend, stay, refused) and reason (moved, or why it stays or was refused).",
		}, []string{"action", "reason"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_migrations_total",
			Help: "Migration outcomes this server recorded as leader, by result (completed, rolled-back, failed, in-doubt) and reason (manual, or the policy trigger that started it; policy when it had none).",
		}, []string{"result", "reason"}),
		phaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_migration_phase_duration_seconds",
			Help:    "Measured duration of the phases of the migrations this server recorded as leader, by phase (checkpoint, transfer, restore).",
			Buckets: migrationSeconds,
		}, []string{"phase"}),
		downtime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "godwit_migration_measured_downtime_seconds",
			Help:    "Measured downtime (frozen until running again) of the migrations this server recorded as leader.",
			Buckets: migrationSeconds,
		}),
		predictionRatio: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "godwit_migration_downtime_prediction_ratio",
			Help:    "Measured over predicted downtime of the completed migrations this server recorded as leader (above 1: the cost model predicted too little).",
			Buckets: []float64{0.25, 0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 4},
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "godwit_migration_checkpoint_bytes_total",
			Help: "Checkpoint bytes moved by the migrations this server recorded as leader.",
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "godwit_raft_apply_duration_seconds",
			Help:    "How long commands took to go through this server's raft and state machine (Apply), errors included.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "godwit_raft_apply_errors_total",
			Help: "Commands this server's raft or state machine did not apply (not the leader, timeout, refused).",
		}),
	}
	// Series whose label values are known before anything happens are there from the
	// start, at 0, so that a dashboard's queries find them on a new cluster.
	for _, p := range []string{"checkpoint", "transfer", "restore"} {
		e.phaseDuration.WithLabelValues(p)
	}
	for _, r := range []scheduler.Phase{scheduler.PhaseCompleted, scheduler.PhaseRolledBack, scheduler.PhaseFailed, scheduler.PhaseInDoubt} {
		e.finished.WithLabelValues(string(r), "manual")
		e.finished.WithLabelValues(string(r), "policy")
	}
	e.decisions.WithLabelValues(ActionMove, string(policy.ReasonMoved))
	e.decisions.WithLabelValues(ActionRecommend, string(policy.ReasonMoved))
	return e
}

// Describe implements prometheus.Collector.
func (e *Events) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range e.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (e *Events) Collect(ch chan<- prometheus.Metric) {
	for _, c := range e.collectors() {
		c.Collect(ch)
	}
}

func (e *Events) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.roundDuration, e.roundErrors, e.decisions, e.finished, e.phaseDuration,
		e.downtime, e.predictionRatio, e.bytes, e.applyDuration, e.applyErrors}
}

// Decision actions, the values of godwit_decisions_total's action label.
const (
	ActionMove      = "move"      // moved in mode auto
	ActionRecommend = "recommend" // would move; the policy's mode is recommend
	ActionStay      = "stay"      // stays, for the reason given
	ActionRefused   = "refused"   // decided, then refused on re-check against the ledger
)

// DecisionRound implements scheduler.Observer.
func (e *Events) DecisionRound(took time.Duration, plan *policy.Plan, refused []policy.Refusal, err error) {
	e.roundDuration.Observe(took.Seconds())
	if err != nil {
		e.roundErrors.Inc()
	}
	if plan != nil {
		for _, x := range plan.Explanations {
			action := ActionStay
			if x.Moved {
				action = ActionMove
				if plan.Mode != policy.ModeAuto {
					action = ActionRecommend
				}
			}
			e.decisions.WithLabelValues(action, string(x.Reason)).Inc()
		}
	}
	for _, r := range refused {
		e.decisions.WithLabelValues(ActionRefused, string(r.Reason)).Inc()
	}
}

// MigrationFinished implements scheduler.Observer.
func (e *Events) MigrationFinished(m *scheduler.Migration) {
	e.finished.WithLabelValues(string(m.Phase), migrationReason(m)).Inc()
	ms := m.Measured
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"checkpoint", ms.Checkpoint}, {"transfer", ms.Transfer}, {"restore", ms.Restore}} {
		if p.d > 0 {
			e.phaseDuration.WithLabelValues(p.name).Observe(p.d.Seconds())
		}
	}
	if ms.Downtime > 0 {
		e.downtime.Observe(ms.Downtime.Seconds())
		if m.Phase == scheduler.PhaseCompleted && m.Predicted.Downtime > 0 {
			e.predictionRatio.Observe(ms.Downtime.Seconds() / m.Predicted.Downtime.Seconds())
		}
	}
	if ms.CheckpointBytes > 0 {
		e.bytes.Add(float64(ms.CheckpointBytes))
	}
}

// Applied implements scheduler.Observer.
func (e *Events) Applied(took time.Duration, err error) {
	e.applyDuration.Observe(took.Seconds())
	if err != nil {
		e.applyErrors.Inc()
	}
}

// migrationReason is the reason label of a finished migration: manual for one an operator
// asked for, else the first trigger its decision named (trigger names come from the policy
// file, a small set), else policy.
func migrationReason(m *scheduler.Migration) string {
	if m.Manual {
		return "manual"
	}
	if t := scheduler.DecisionTriggers(m.Reason); len(t) > 0 {
		return t[0]
	}
	return "policy"
}
