package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/scheduler"
)

var t0 = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

// handMadeState is a ledger with one migration in most phases, three of them with a
// measured downtime, a cost model's errors and a policy.
func handMadeState() *scheduler.State {
	s := scheduler.NewState()
	add := func(id string, p scheduler.Phase, end time.Duration, downtime time.Duration) {
		s.Migrations[id] = &scheduler.Migration{ID: id, Workload: "w-" + id, Source: "a", Target: "b", Phase: p,
			Created: t0, Updated: t0.Add(end), Measured: scheduler.Costs{Downtime: downtime}}
	}
	add("m1", scheduler.PhaseCompleted, 1*time.Second, 125*time.Millisecond)
	add("m2", scheduler.PhaseCompleted, 2*time.Second, 500*time.Millisecond)
	add("m3", scheduler.PhaseRolledBack, 3*time.Second, 250*time.Millisecond)
	add("m4", scheduler.PhaseFailed, 4*time.Second, 0)
	add("m5", scheduler.PhaseStreaming, 5*time.Second, 0)
	add("m6", scheduler.PhaseInDoubt, 6*time.Second, 0)
	add("m7", scheduler.PhaseStreaming, 7*time.Second, 0)
	s.Cost.Errors = scheduler.CostErrors{
		Checkpoint:      scheduler.ErrorStat{N: 3, MeanAbs: 0.25},
		Transfer:        scheduler.ErrorStat{N: 3, MeanAbs: 1.5},
		Restore:         scheduler.ErrorStat{N: 2, MeanAbs: 0.125},
		Downtime:        scheduler.ErrorStat{N: 3, MeanAbs: 0.5},
		CheckpointBytes: scheduler.ErrorStat{N: 3, MeanAbs: 4096},
	}
	s.Policy = &scheduler.PolicyRecord{Version: 7, Source: "version: 1\n"}
	return s
}

func readOf(s *scheduler.State) func(func(*scheduler.State)) {
	return func(fn func(*scheduler.State)) { fn(s) }
}

func TestLedgerCollector(t *testing.T) {
	c := NewLedgerCollector(readOf(handMadeState()))
	want := `
# HELP godwit_migrations Migrations in the replicated ledger, by phase (terminal phases count those the ledger still holds: it is pruned).
# TYPE godwit_migrations gauge
godwit_migrations{phase="completed"} 2
godwit_migrations{phase="failed"} 1
godwit_migrations{phase="frozen"} 0
godwit_migrations{phase="in-doubt"} 1
godwit_migrations{phase="planned"} 0
godwit_migrations{phase="preparing"} 0
godwit_migrations{phase="restoring"} 0
godwit_migrations{phase="rolled-back"} 1
godwit_migrations{phase="streaming"} 2
# HELP godwit_migrations_finished Finished migrations the replicated ledger holds, by result. A gauge, not a counter: pruning the ledger lowers it.
# TYPE godwit_migrations_finished gauge
godwit_migrations_finished{result="completed"} 2
godwit_migrations_finished{result="failed"} 1
godwit_migrations_finished{result="rolled-back"} 1
# HELP godwit_migration_downtime_seconds Measured downtime of the ledger's most recent migrations that froze their workload (at most 100). Count and sum cover that window, so they may go down.
# TYPE godwit_migration_downtime_seconds summary
godwit_migration_downtime_seconds{quantile="0.5"} 0.25
godwit_migration_downtime_seconds{quantile="0.9"} 0.5
godwit_migration_downtime_seconds{quantile="0.99"} 0.5
godwit_migration_downtime_seconds_sum 0.875
godwit_migration_downtime_seconds_count 3
# HELP godwit_cost_model_error_seconds Mean absolute error of the cost model's prediction, by phase, as the leader last computed it.
# TYPE godwit_cost_model_error_seconds gauge
godwit_cost_model_error_seconds{phase="checkpoint"} 0.25
godwit_cost_model_error_seconds{phase="downtime"} 0.5
godwit_cost_model_error_seconds{phase="restore"} 0.125
godwit_cost_model_error_seconds{phase="transfer"} 1.5
# HELP godwit_cost_model_error_samples Migrations the cost model's error per phase was computed over.
# TYPE godwit_cost_model_error_samples gauge
godwit_cost_model_error_samples{phase="checkpoint"} 3
godwit_cost_model_error_samples{phase="downtime"} 3
godwit_cost_model_error_samples{phase="restore"} 2
godwit_cost_model_error_samples{phase="transfer"} 3
# HELP godwit_cost_model_checkpoint_error_bytes Mean absolute error of the cost model's predicted checkpoint size.
# TYPE godwit_cost_model_checkpoint_error_bytes gauge
godwit_cost_model_checkpoint_error_bytes 4096
# HELP godwit_policy_version Version of the policy in force in the replicated state (0 before any policy is applied).
# TYPE godwit_policy_version gauge
godwit_policy_version 7
# HELP godwit_workloads_in_doubt Workloads with a migration in doubt in the replicated ledger: nothing moves them until an operator or the nodes settle it.
# TYPE godwit_workloads_in_doubt gauge
godwit_workloads_in_doubt 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	lintClean(t, c)
}

// TestLedgerCollectorEmptyFSM reads a new state machine through FSM.Read, as the agent
// does: every phase at 0, an empty downtime summary, no policy.
func TestLedgerCollectorEmptyFSM(t *testing.T) {
	fsm := scheduler.NewFSM(scheduler.FSMConfig{})
	c := NewLedgerCollector(fsm.Read)
	want := `
# HELP godwit_migration_downtime_seconds Measured downtime of the ledger's most recent migrations that froze their workload (at most 100). Count and sum cover that window, so they may go down.
# TYPE godwit_migration_downtime_seconds summary
godwit_migration_downtime_seconds_sum 0
godwit_migration_downtime_seconds_count 0
# HELP godwit_policy_version Version of the policy in force in the replicated state (0 before any policy is applied).
# TYPE godwit_policy_version gauge
godwit_policy_version 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "godwit_migration_downtime_seconds", "godwit_policy_version"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "godwit_migrations"); n != len(scheduler.Phases) {
		t.Errorf("godwit_migrations has %d series, want one per phase (%d)", n, len(scheduler.Phases))
	}
}

// TestDowntimeWindow: only the DowntimeWindow most recent downtimes are summarised.
func TestDowntimeWindow(t *testing.T) {
	s := scheduler.NewState()
	// Migration i ended at t0+i seconds with a downtime of i milliseconds: the window holds
	// the last 100, 51..150 ms.
	for i := 1; i <= 150; i++ {
		id := fmt.Sprintf("m%03d", i)
		s.Migrations[id] = &scheduler.Migration{ID: id, Phase: scheduler.PhaseCompleted, Created: t0,
			Updated: t0.Add(time.Duration(i) * time.Second), Measured: scheduler.Costs{Downtime: time.Duration(i) * time.Millisecond}}
	}
	want := `
# HELP godwit_migration_downtime_seconds Measured downtime of the ledger's most recent migrations that froze their workload (at most 100). Count and sum cover that window, so they may go down.
# TYPE godwit_migration_downtime_seconds summary
godwit_migration_downtime_seconds{quantile="0.5"} 0.1
godwit_migration_downtime_seconds{quantile="0.9"} 0.14
godwit_migration_downtime_seconds{quantile="0.99"} 0.149
godwit_migration_downtime_seconds_sum 10.05
godwit_migration_downtime_seconds_count 100
`
	if err := testutil.CollectAndCompare(NewLedgerCollector(readOf(s)), strings.NewReader(want), "godwit_migration_downtime_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		values []float64
		q      float64
		want   float64
	}{
		{"one value is every quantile", []float64{3}, 0.99, 3},
		{"median of four is the second", []float64{1, 2, 3, 4}, 0.5, 2},
		{"0.9 of ten is the ninth, not the tenth (0.9*10 rounds up in floating point)", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"0.99 of ten is the largest", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.99, 10},
	} {
		if got := quantile(tc.values, tc.q); got != tc.want {
			t.Errorf("%s: quantile(%v, %v) = %v, want %v", tc.desc, tc.values, tc.q, got, tc.want)
		}
	}
}

func TestGossipCollector(t *testing.T) {
	// The oldest news from another alive member is n2's, 2.5 s old; n1's own and the failed
	// n3's do not count.
	view := gossip.ClusterView{Self: "n1", Taken: t0.Add(time.Minute), Nodes: []gossip.NodeView{
		{Name: "n1", Status: gossip.StatusAlive, UpdatedAt: t0, Load: gossip.Load{CPUCores: 1, CPUCapacity: 4, MemoryBytes: 3 << 30, MemoryCapacity: 4 << 30}},
		{Name: "n2", Status: gossip.StatusAlive, UpdatedAt: t0.Add(time.Minute - 2500*time.Millisecond)},
		{Name: "n3", Status: gossip.StatusFailed, UpdatedAt: t0},
		{Name: "n4", Status: gossip.StatusUnknown},
	}}
	c := NewGossipCollector("n1", func() gossip.ClusterView { return view })
	want := `
# HELP godwit_cluster_members Cluster members in this agent's gossip view, by status.
# TYPE godwit_cluster_members gauge
godwit_cluster_members{status="alive"} 2
godwit_cluster_members{status="failed"} 1
godwit_cluster_members{status="left"} 0
godwit_cluster_members{status="unknown"} 1
# HELP godwit_gossip_state_age_seconds Age of the oldest state this agent holds from another alive member (its view's convergence: a member whose updates stop reaching this agent makes it grow).
# TYPE godwit_gossip_state_age_seconds gauge
godwit_gossip_state_age_seconds 2.5
# HELP godwit_node_cpu_load_ratio This node's CPU in use by its containers as a fraction of the capacity it offers (0 when unknown).
# TYPE godwit_node_cpu_load_ratio gauge
godwit_node_cpu_load_ratio 0.25
# HELP godwit_node_memory_load_ratio This node's memory in use by its containers as a fraction of the capacity it offers (0 when unknown).
# TYPE godwit_node_memory_load_ratio gauge
godwit_node_memory_load_ratio 0.75
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	lintClean(t, c)

	// With gossip's counters: the broadcast queue and the payloads dropped.
	c = NewGossipCollector("n1", func() gossip.ClusterView { return view })
	c.stats = func() gossip.Stats { return gossip.Stats{Members: 2, Queued: 3, Malformed: 1} }
	want = `
# HELP godwit_gossip_queued_broadcasts Gossip broadcasts this agent has queued and not yet sent: above 0 for long, its news is not reaching the others.
# TYPE godwit_gossip_queued_broadcasts gauge
godwit_gossip_queued_broadcasts 3
# HELP godwit_gossip_malformed_total Gossip payloads this agent dropped because they did not decode.
# TYPE godwit_gossip_malformed_total counter
godwit_gossip_malformed_total 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "godwit_gossip_queued_broadcasts", "godwit_gossip_malformed_total"); err != nil {
		t.Fatal(err)
	}
	lintClean(t, c)

	// A node not (yet) in its own view reports no load rather than a made-up 0.
	c = NewGossipCollector("n9", func() gossip.ClusterView { return view })
	if n := testutil.CollectAndCount(c, "godwit_node_cpu_load_ratio", "godwit_node_memory_load_ratio"); n != 0 {
		t.Errorf("load of a node absent from the view: %d series, want 0", n)
	}
}

type fakeRaft struct {
	leader bool
	stats  map[string]string
}

func (f fakeRaft) IsLeader() bool           { return f.leader }
func (f fakeRaft) Stats() map[string]string { return f.stats }

func TestRaftCollector(t *testing.T) {
	c := NewRaftCollector(fakeRaft{leader: true, stats: map[string]string{
		"term": "4", "last_log_index": "120", "commit_index": "119", "applied_index": "118", "state": "Leader",
	}})
	want := `
# HELP godwit_raft_leader 1 when this server is the raft leader, else 0.
# TYPE godwit_raft_leader gauge
godwit_raft_leader 1
# HELP godwit_raft_term This server's current raft term: it grows by one or more at every election.
# TYPE godwit_raft_term gauge
godwit_raft_term 4
# HELP godwit_raft_last_log_index Index of the last entry in this server's raft log.
# TYPE godwit_raft_last_log_index gauge
godwit_raft_last_log_index 120
# HELP godwit_raft_commit_index Index of the last raft entry this server knows to be committed.
# TYPE godwit_raft_commit_index gauge
godwit_raft_commit_index 119
# HELP godwit_raft_applied_index Index of the last raft entry applied to this server's state machine.
# TYPE godwit_raft_applied_index gauge
godwit_raft_applied_index 118
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	lintClean(t, c)

	// A statistic missing or not a number is left out.
	c = NewRaftCollector(fakeRaft{stats: map[string]string{"term": "x"}})
	if n := testutil.CollectAndCount(c); n != 1 {
		t.Errorf("%d series from a raft with no usable statistics, want 1 (godwit_raft_leader)", n)
	}
}

// TestRegistry: a client agent's registry (no ledger, no raft) and a server's both gather
// without error, and only the server's has the ledger and raft metrics.
func TestRegistry(t *testing.T) {
	view := func() gossip.ClusterView { return gossip.ClusterView{Self: "n1"} }
	client := NewRegistry(Config{Node: "n1", View: view})
	server := NewRegistry(Config{Node: "n1", View: view, Ledger: readOf(handMadeState()), Raft: fakeRaft{stats: map[string]string{}},
		Events: NewEvents()})
	for _, tc := range []struct {
		desc       string
		reg        *prometheus.Registry
		wantServer bool
	}{{"client", client, false}, {"server", server, true}} {
		families, err := tc.reg.Gather()
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		names := map[string]bool{}
		for _, f := range families {
			names[f.GetName()] = true
		}
		for _, n := range []string{"godwit_cluster_members", "go_goroutines"} {
			if !names[n] {
				t.Errorf("%s: no %s", tc.desc, n)
			}
		}
		for _, n := range []string{"godwit_migrations", "godwit_raft_leader", "godwit_raft_apply_duration_seconds"} {
			if names[n] != tc.wantServer {
				t.Errorf("%s: has %s = %v, want %v", tc.desc, n, names[n], tc.wantServer)
			}
		}
	}
}

// lintClean fails when promlint (the linter promtool check metrics runs) finds a problem.
func lintClean(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
