package api_test

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/godwit-io/godwit/internal/agent"
	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/scheduler"
)

// TestMetrics scrapes GET /metrics from every agent of an in-process cluster, as a client
// node's certificate (any cluster identity may read it): servers report the ledger and raft,
// the client agent only gossip and the process; the leader says it leads; promtool, when
// installed, finds nothing wrong with the exposition; every metric the Grafana dashboard in
// configs/ queries is on every server; s1's separate metrics listener serves the same; and a
// migration is counted, with its phases, downtime and bytes, by the server that recorded it.
func TestMetrics(t *testing.T) {
	c := startCluster(t)
	hc := c.httpClient(t, "c1", pki.RoleClient)
	scrape := func(a *agent.Agent) ([]byte, map[string]*dto.MetricFamily) {
		t.Helper()
		ans := do(t, hc, "GET", a, "/metrics", nil)
		if ans.status != 200 {
			t.Fatalf("GET /metrics on %s: %d %s", a.Config().Node, ans.status, ans.body)
		}
		if ans.servedBy != a.Config().Node {
			t.Errorf("GET /metrics on %s served by %q: an agent's metrics are its own", a.Config().Node, ans.servedBy)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		families, err := p.TextToMetricFamilies(bytes.NewReader(ans.body))
		if err != nil {
			t.Fatalf("%s: %v in\n%s", a.Config().Node, err, ans.body)
		}
		return ans.body, families
	}
	everywhere := []string{"godwit_cluster_members", "godwit_node_cpu_load_ratio", "godwit_node_memory_load_ratio",
		"go_goroutines", "process_cpu_seconds_total"}
	serversOnly := []string{"godwit_migrations", "godwit_migrations_finished", "godwit_migration_downtime_seconds",
		"godwit_cost_model_error_seconds", "godwit_policy_version", "godwit_raft_leader", "godwit_raft_term",
		"godwit_raft_last_log_index"}
	dashboardChecked := false
	for _, a := range c.all() {
		body, families := scrape(a)
		isServer := a.Config().Role == agent.RoleServer
		for _, n := range everywhere {
			if families[n] == nil {
				t.Errorf("%s: no %s", a.Config().Node, n)
			}
		}
		for _, n := range serversOnly {
			if (families[n] != nil) != isServer {
				t.Errorf("%s (%s): has %s = %v", a.Config().Node, a.Config().Role, n, families[n] != nil)
			}
		}
		// The cluster was up with four alive members before the scrape; a label value is
		// one of the fixed statuses.
		for _, m := range families["godwit_cluster_members"].GetMetric() {
			if s := m.GetLabel()[0].GetValue(); s == "alive" && m.GetGauge().GetValue() < 1 {
				t.Errorf("%s: no alive member, not even itself", a.Config().Node)
			}
		}
		promtoolCheck(t, a.Config().Node, body)
		if isServer && !dashboardChecked {
			dashboardChecked = true
			// A server exports every metric (a client only gossip's and the process's):
			// every query of the shipped dashboard must find its metrics there.
			checkDashboard(t, families)
		}
	}

	// s1's config asks for a metrics listener of its own: the same registry, over the same
	// mutual TLS, and nothing else there.
	s1 := c.servers[0]
	if s1.MetricsAddr() == "" {
		t.Fatal("s1 has no metrics listener")
	}
	for _, tc := range []struct {
		path string
		want int
	}{{"/metrics", 200}, {"/v1/status", 404}} {
		resp, err := hc.Get("https://" + s1.MetricsAddr() + tc.path)
		if err != nil {
			t.Fatalf("GET %s on s1's metrics listener: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s on s1's metrics listener: %d, want %d", tc.path, resp.StatusCode, tc.want)
			continue
		}
		if tc.want == 200 {
			p := expfmt.NewTextParser(model.UTF8Validation)
			families, err := p.TextToMetricFamilies(bytes.NewReader(body))
			if err != nil || families["godwit_raft_leader"] == nil || families["godwit_cluster_members"] == nil {
				t.Errorf("s1's metrics listener: %v, raft leader %v, members %v", err, families["godwit_raft_leader"] != nil, families["godwit_cluster_members"] != nil)
			}
		}
	}

	// A migration through the real path (API, leader, nodes) is counted by the server that
	// recorded it, with its phase times, downtime and bytes; its raft applies are timed.
	op := c.httpClient(t, "alice", pki.RoleOperator)
	var acc api.Accepted
	do(t, op, "POST", c.servers[0], "/v1/migrate", []byte(`{"workload":"w","to":"s2"}`)).decode(t, &acc)
	var m scheduler.Migration
	waitFor(t, "the migration completed", 60*time.Second, func() bool {
		do(t, op, "GET", c.client, "/v1/migrations/"+acc.ID, nil).decode(t, &m)
		return m.Phase.Terminal()
	})
	if m.Phase != scheduler.PhaseCompleted {
		t.Fatalf("migration %+v", m)
	}
	var recorder *agent.Agent
	for _, a := range c.servers {
		if a.Config().Node == m.History[len(m.History)-1].By {
			recorder = a
		}
	}
	if recorder == nil {
		t.Fatalf("no server recorded the outcome: %+v", m.History)
	}
	// The observer is told right after the outcome is applied: wait for it, not for a time.
	waitFor(t, recorder.Config().Node+" counting the migration", 30*time.Second, func() bool {
		_, families := scrape(recorder)
		return counterValue(families["godwit_migrations_total"], map[string]string{"result": "completed", "reason": "manual"}) == 1
	})
	_, families := scrape(recorder)
	for _, h := range []struct {
		name   string
		labels map[string]string
	}{
		{"godwit_migration_phase_duration_seconds", map[string]string{"phase": "checkpoint"}},
		{"godwit_migration_measured_downtime_seconds", nil},
		{"godwit_raft_apply_duration_seconds", nil},
	} {
		if n := histogramCount(families[h.name], h.labels); n < 1 {
			t.Errorf("%s: %s%v has %d observations, want at least 1", recorder.Config().Node, h.name, h.labels, n)
		}
	}
	if v := counterValue(families["godwit_migration_checkpoint_bytes_total"], nil); v <= 0 {
		t.Errorf("%s: checkpoint bytes moved %v, want > 0", recorder.Config().Node, v)
	}

	// Leadership may move between two looks; the test waits for the agent that leads to
	// say so in its metrics rather than comparing two instants.
	waitFor(t, "a server whose metrics say it leads", 30*time.Second, func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		_, families := scrape(l)
		return families["godwit_raft_leader"].GetMetric()[0].GetGauge().GetValue() == 1
	})
}

// promtoolCheck runs `promtool check metrics` over an exposition, when promtool is
// installed (Debian package promtool).
func promtoolCheck(t *testing.T, node string, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (Debian package promtool): skipping `promtool check metrics`")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics on %s's /metrics: %v\n%s", node, err, strings.TrimSpace(string(out)))
	}
}

// counterValue is the value of the series of f whose labels include want (-1 when none).
func counterValue(f *dto.MetricFamily, want map[string]string) float64 {
	if m := series(f, want); m != nil {
		return m.GetCounter().GetValue()
	}
	return -1
}

// histogramCount is the observation count of the series of f whose labels include want.
func histogramCount(f *dto.MetricFamily, want map[string]string) uint64 {
	if m := series(f, want); m != nil {
		return m.GetHistogram().GetSampleCount()
	}
	return 0
}

func series(f *dto.MetricFamily, want map[string]string) *dto.Metric {
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range want {
			ok = ok && have[k] == v
		}
		if ok {
			return m
		}
	}
	return nil
}
