package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

// TestEvents feeds Events what the leader and raft report and reads the counters back.
func TestEvents(t *testing.T) {
	e := NewEvents()
	plan := &policy.Plan{Mode: policy.ModeAuto, Explanations: []policy.Explanation{
		{Container: "a", Moved: true, Reason: policy.ReasonMoved},
		{Container: "b", Reason: policy.ReasonCooldown},
		{Container: "c", Reason: policy.ReasonCooldown},
	}}
	e.DecisionRound(30*time.Millisecond, plan, []policy.Refusal{{Reason: policy.ReasonStale}}, nil)
	e.DecisionRound(time.Second, &policy.Plan{Mode: policy.ModeRecommend, Explanations: []policy.Explanation{
		{Container: "a", Moved: true, Reason: policy.ReasonMoved}}}, nil, errors.New("raft down"))
	e.MigrationFinished(&scheduler.Migration{ID: "m1", Phase: scheduler.PhaseCompleted,
		Reason:    "score 0.9; triggers node-hot,drained; predicted downtime 2.0s",
		Predicted: scheduler.Costs{Downtime: 2 * time.Second},
		Measured: scheduler.Costs{Checkpoint: 500 * time.Millisecond, Transfer: time.Second, Restore: 1500 * time.Millisecond,
			Downtime: 3 * time.Second, CheckpointBytes: 1000}})
	e.MigrationFinished(&scheduler.Migration{ID: "m2", Phase: scheduler.PhaseFailed, Manual: true, Reason: "operator"})
	e.MigrationFinished(&scheduler.Migration{ID: "m3", Phase: scheduler.PhaseRolledBack, Reason: "score 1",
		Measured: scheduler.Costs{Checkpoint: time.Second, Downtime: 4 * time.Second, CheckpointBytes: 500}})
	e.Applied(2*time.Millisecond, nil)
	e.Applied(time.Second, errors.New("not the leader"))

	want := `
# HELP godwit_decisions_total Per-container outcomes of the leader's decision rounds, by action (move, recommend, stay, refused) and reason (moved, or why it stays or was refused).
# TYPE godwit_decisions_total counter
godwit_decisions_total{action="move",reason="moved"} 1
godwit_decisions_total{action="recommend",reason="moved"} 1
godwit_decisions_total{action="refused",reason="stale"} 1
godwit_decisions_total{action="stay",reason="cooldown"} 2
# HELP godwit_decision_round_errors_total Decision rounds that ended with an error (a raft apply that failed), counted by the leader.
# TYPE godwit_decision_round_errors_total counter
godwit_decision_round_errors_total 1
# HELP godwit_migrations_total Migration outcomes this server recorded as leader, by result (completed, rolled-back, failed, in-doubt) and reason (manual, or the policy trigger that started it; policy when it had none).
# TYPE godwit_migrations_total counter
godwit_migrations_total{reason="manual",result="completed"} 0
godwit_migrations_total{reason="manual",result="failed"} 1
godwit_migrations_total{reason="manual",result="in-doubt"} 0
godwit_migrations_total{reason="manual",result="rolled-back"} 0
godwit_migrations_total{reason="node-hot",result="completed"} 1
godwit_migrations_total{reason="policy",result="completed"} 0
godwit_migrations_total{reason="policy",result="failed"} 0
godwit_migrations_total{reason="policy",result="in-doubt"} 0
godwit_migrations_total{reason="policy",result="rolled-back"} 1
# HELP godwit_migration_checkpoint_bytes_total Checkpoint bytes moved by the migrations this server recorded as leader.
# TYPE godwit_migration_checkpoint_bytes_total counter
godwit_migration_checkpoint_bytes_total 1500
# HELP godwit_raft_apply_errors_total Commands this server's raft or state machine did not apply (not the leader, timeout, refused).
# TYPE godwit_raft_apply_errors_total counter
godwit_raft_apply_errors_total 1
`
	names := []string{"godwit_decisions_total", "godwit_decision_round_errors_total", "godwit_migrations_total",
		"godwit_migration_checkpoint_bytes_total", "godwit_raft_apply_errors_total"}
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		name  string
		count int
	}{
		{"godwit_decision_round_duration_seconds", 2},
		{"godwit_migration_measured_downtime_seconds", 2},
		{"godwit_migration_downtime_prediction_ratio", 1}, // completed ones only
		{"godwit_raft_apply_duration_seconds", 2},
	} {
		if got := histogramCount(t, e, h.name, ""); got != h.count {
			t.Errorf("%s: %d observations, want %d", h.name, got, h.count)
		}
	}
	for phase, n := range map[string]int{"checkpoint": 2, "transfer": 1, "restore": 1} {
		if got := histogramCount(t, e, "godwit_migration_phase_duration_seconds", phase); got != n {
			t.Errorf("phase %s: %d observations, want %d", phase, got, n)
		}
	}
	lintClean(t, e)
}

// histogramCount is the observation count of the histogram name (of the series whose
// phase label is phase, when given).
func histogramCount(t *testing.T, e *Events, name, phase string) int {
	t.Helper()
	reg := NewRegistry(Config{Events: e})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if phase == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == phase) {
				return int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no %s{phase=%q}", name, phase)
	return 0
}

func TestDecisionTriggers(t *testing.T) {
	for _, tc := range []struct {
		reason string
		want   string
	}{
		{"score 0.997; triggers drained; predicted downtime 3.1s", "drained"},
		{"score 0.9; triggers node-hot,drained; predicted downtime 2.0s", "node-hot"},
		{"score 0.9; predicted downtime 2.0s", "policy"},
		{"", "policy"},
	} {
		if got := migrationReason(&scheduler.Migration{Reason: tc.reason}); got != tc.want {
			t.Errorf("%q: reason %q, want %q", tc.reason, got, tc.want)
		}
	}
}
