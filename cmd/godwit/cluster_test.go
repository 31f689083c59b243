package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/agent"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// apiTestIP is the loopback address of CLI test agent i: 127.0.96.0/24 is used by no other
// package's tests.
func apiTestIP(i int) string { return fmt.Sprintf("127.0.96.%d", i) }

func apiTestTuning(t *agent.Tuning) {
	g := &t.Gossip
	g.LoadInterval, g.RefreshInterval = 100*time.Millisecond, 2*time.Second
	g.ProbeInterval, g.ProbeTimeout = 400*time.Millisecond, 200*time.Millisecond
	g.GossipInterval, g.PushPullInterval = 100*time.Millisecond, 3*time.Second
	g.JoinRetryInterval, g.JoinRetryMaxInterval = 100*time.Millisecond, time.Second
	r := &t.Raft
	r.HeartbeatTimeout, r.ElectionTimeout, r.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	r.CommitTimeout, r.ApplyTimeout = 10*time.Millisecond, 5*time.Second
	r.TransportTimeout, r.HandshakeTimeout = 2*time.Second, 2*time.Second
	r.BootstrapRetryInterval = 100 * time.Millisecond
	r.AutopilotUpdateInterval, r.AutopilotReconcileInterval = 100*time.Millisecond, 200*time.Millisecond
	r.LastContactThreshold, r.ServerStabilizationTime = 500*time.Millisecond, time.Second
	t.LeaderInterval, t.LeaderPoll = 200*time.Millisecond, 50*time.Millisecond
	t.ServerInterval, t.ShutdownLeave, t.MigrateSettle = 200*time.Millisecond, time.Second, 5*time.Second
}

// startAPICluster starts one server agent (s1) and one client agent (c1, running workload
// w) in this process and returns them with the directory of their certificates.
func startAPICluster(t *testing.T) (dir string, s1, c1 *agent.Agent) {
	t.Helper()
	dir = t.TempDir()
	key := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(name, role string, i int, extra, join string) *agent.Agent {
		pr := pki.RoleClient
		if role == agent.RoleServer {
			pr = pki.RoleServer
		}
		files, err := pki.Quick(filepath.Join(dir, "pki"), name, pr, net.ParseIP(apiTestIP(i)))
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("node: %s\nrole: %s\ngossip:\n  bind: %s:0\n  key_file: %s\n  join: [%s]\nmigration:\n  bind: %s:0\n"+
			"capacity:\n  cpu: 2\n  memory: 4GiB\ndata_dir: %s\ntls:\n  ca: %s\n  cert: %s\n  key: %s\ninventory:\n  interval: 200ms\n%s",
			name, role, apiTestIP(i), key, join, apiTestIP(i), filepath.Join(dir, name), files.CA, files.Cert, files.Key, extra)
		text = strings.Replace(text, "  join: []\n", "", 1)
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := agent.LoadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		rt := migrate.NewFakeRuntime(filepath.Join(dir, name, "engine"))
		if name == "c1" {
			rt.Add("w", []byte("memory of w"), map[string]string{migrate.LabelManaged: "true"})
		}
		a, err := agent.New(cfg, agent.WithRuntime(rt, nil), agent.WithTuning(apiTestTuning),
			agent.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Shutdown() })
		return a
	}
	s1 = start("s1", agent.RoleServer, 1, fmt.Sprintf("server:\n  raft:\n    bind: %s:0\n  bootstrap_expect: 1\n", apiTestIP(1)), "")
	c1 = start("c1", agent.RoleClient, 2, "", s1.GossipAddr())
	deadline := time.Now().Add(30 * time.Second)
	for !(s1.ControlPlane().Leader().Leading() && len(c1.Gossip().View().Alive()) == 2 && len(s1.Gossip().View().Alive()) == 2) {
		if time.Now().After(deadline) {
			t.Fatal("the cluster did not form")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return dir, s1, c1
}

// TestClusterCommands runs the API commands against a one-server cluster with a client
// agent: reads, a migration through the client agent (redirected to the leader) waited for
// to its end, drains, policies, and the exit codes of what goes wrong.
func TestClusterCommands(t *testing.T) {
	isolateCLIEnv(t)
	dir, s1, c1 := startAPICluster(t)
	op, err := pki.Quick(filepath.Join(dir, "pki"), "alice", pki.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	nodeCert := filepath.Join(dir, "pki", "client-c1.pem")
	nodeKey := filepath.Join(dir, "pki", "client-c1-key.pem")
	t.Setenv(envAddr, "https://"+c1.APIAddr())
	t.Setenv(envCACert, op.CA)
	t.Setenv(envClientCert, op.Cert)
	t.Setenv(envClientKey, op.Key)
	// The container shows in the client's inventory before it can be moved.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, out, _ := runCLI(t, "containers", "--json"); code == 0 && strings.Contains(out, `"node": "c1"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("w never showed in containers")
		}
		time.Sleep(100 * time.Millisecond)
	}
	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: sometimes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Recommend mode: the leader explains, moves nothing by itself.
	good := "../../configs/policies/conservative.yaml"
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"status", []string{"status"}, exitOK, []string{"agent      c1 (client", "leader     s1 at " + s1.APIAddr(), "members    2 alive"}},
		{"status --json", []string{"status", "--json"}, exitOK, []string{`"node": "c1"`, `"name": "s1"`}},
		{"nodes", []string{"nodes"}, exitOK, []string{"NAME", "c1", "s1", "server", "4096MiB"}},
		{"containers", []string{"containers"}, exitOK, []string{"WORKLOAD", "c1"}},
		{"migrations, none yet", []string{"migrations"}, exitOK, []string{"ID"}},
		{"migrations, unknown ID", []string{"migrations", "m-nosuch"}, exitUsage, []string{"no migration", "not-found"}},
		{"status, extra argument", []string{"status", "x"}, exitUsage, []string{"usage: godwit status"}},
		{"migrate, unknown workload", []string{"migrate", "nosuch", "--to", "s1"}, exitUsage, []string{"unknown workload", "unknown-workload"}},
		{"migrate, unknown node", []string{"migrate", "w", "--to", "nowhere"}, exitUsage, []string{"unknown node", "unknown-node"}},
		{"migrate, post-copy through the leader", []string{"migrate", "w", "--to", "s1", "--method", "post-copy"}, exitUsage, []string{"--direct"}},
		{"drain, unknown node", []string{"drain", "nowhere"}, exitUsage, []string{"unknown-node"}},
		{"drain, no node", []string{"drain"}, exitUsage, []string{"usage: godwit drain NODE"}},
		{"drain as a client node", []string{"drain", "s1", "--client-cert", nodeCert, "--client-key", nodeKey}, exitFailure, []string{"forbidden"}},
		{"drain", []string{"drain", "c1"}, exitOK, []string{"c1: drained"}},
		{"undrain", []string{"undrain", "c1", "--json"}, exitOK, []string{`"node": "c1"`}},
		{"policy apply, invalid", []string{"policy", "apply", invalid}, exitUsage, []string{invalid + ":4:9:", "nothing applied"}},
		{"policy apply, missing file", []string{"policy", "apply", filepath.Join(dir, "nope.yaml")}, exitUsage, []string{"nope.yaml"}},
		{"policy explain before any policy", []string{"policy", "explain"}, exitUsage, []string{"no-policy"}},
		{"policy explain, half offline", []string{"policy", "explain", "--policy", good}, exitUsage, []string{"--view FILE"}},
		{"policy apply", []string{"policy", "apply", good, "--addr", "https://" + s1.APIAddr()}, exitOK, []string{"in force, version 1"}},
		{"acl token create, bad role", []string{"acl", "token", "create", "--role", "admin"}, exitUsage, []string{"usage: godwit acl token create"}},
		{"acl token create", []string{"acl", "token", "create", "--role", "viewer", "--name", "wall"}, exitOK, []string{"(wall, viewer)", "gdw_"}},
		{"acl token create as a client node", []string{"acl", "token", "create", "--role", "operator", "--client-cert", nodeCert, "--client-key", nodeKey}, exitFailure, []string{"forbidden"}},
		{"acl token list", []string{"acl", "token", "list", "--addr", "https://" + s1.APIAddr()}, exitOK, []string{"wall", "viewer", "alice (operator)"}},
		{"acl token delete, unknown", []string{"acl", "token", "delete", "t-000000000000", "--addr", "https://" + s1.APIAddr()}, exitUsage, []string{"not-found"}},
		{"status on a migration service", []string{"status", "--addr", c1.MigrationAddr()}, exitUsage, []string{"is a migration service"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout+stderr, w) {
					t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", w, stdout, stderr)
				}
			}
		})
	}

	// A migration through the client agent: redirected to the leader, recorded, waited for.
	code, stdout, stderr := runCLI(t, "migrate", "w", "--to", "s1", "--json")
	if code != exitOK {
		t.Fatalf("migrate: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var rep struct {
		scheduler.Migration
		DowntimeSeconds float64 `json:"downtimeSeconds"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.Phase != scheduler.PhaseCompleted || rep.Source != "c1" || rep.Target != "s1" || rep.DowntimeSeconds <= 0 || !strings.Contains(stderr, "recorded by the leader") {
		t.Fatalf("report %+v\nstderr: %s", rep, stderr)
	}
	code, stdout, _ = runCLI(t, "migrations", rep.ID)
	if code != exitOK || !strings.Contains(stdout, "c1 -> s1, stop-and-copy: completed") || !strings.Contains(stdout, "requested by alice (operator)") {
		t.Fatalf("migrations %s: exit %d\n%s", rep.ID, code, stdout)
	}

	// The leader explains its last plan under the policy applied above, once a round saw
	// the workload on its new node.
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, stdout, stderr = runCLI(t, "policy", "explain")
		if code == exitOK && strings.Contains(stdout, rep.Workload+" on s1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy explain: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(stdout, "mode recommend") || !strings.Contains(stdout, rep.Workload+" on s1") {
		t.Fatalf("policy explain:\n%s", stdout)
	}
	if code, _, stderr = runCLI(t, "policy", "explain", "nosuch"); code != exitUsage || !strings.Contains(stderr, `no workload "nosuch"`) {
		t.Fatalf("policy explain nosuch: exit %d: %s", code, stderr)
	}
}
