package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

// cliTestNode is a migration node over a FakeRuntime, served in this process: the real
// protocol, TLS and journal, without Docker or CRIU.
type cliTestNode struct {
	name string
	rt   *migrate.FakeRuntime
	addr string
}

func startCLITestNode(t *testing.T, name string, certs pki.Files) *cliTestNode {
	t.Helper()
	id, err := pki.Load(certs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tn := &cliTestNode{name: name, rt: migrate.NewFakeRuntime(filepath.Join(dir, "engine"))}
	n, err := migrate.NewNode(migrate.NodeConfig{Name: name, Runtime: tn.rt, StateDir: filepath.Join(dir, "godwit"), TLS: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if tn.addr, err = n.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	return tn
}

// runCLI runs godwit with args and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestMigrateCommands drives `godwit migrate` and `godwit migration` against two nodes on a
// fake runtime: the report in both forms, asking about and settling a migration, refusals,
// and finding the target through the local cluster's state as `godwit dev` leaves it.
func TestMigrateCommands(t *testing.T) {
	isolateCLIEnv(t)
	certs := newCLITestCerts(t)
	n1 := startCLITestNode(t, "node1", certs.node1)
	n2 := startCLITestNode(t, "node2", certs.node2)
	managed := map[string]string{migrate.LabelManaged: "true"}
	n1.rt.Add("web", []byte("web's memory"), managed)
	n1.rt.Add("db", []byte("db's memory"), managed)
	n1.rt.Add("cache", []byte("cache's memory"), managed)
	n1.rt.Add("stray", []byte("not ours"), nil)
	for k, v := range certs.operatorEnv("https://" + n1.addr) {
		t.Setenv(k, v)
	}

	// --json: the report, with downtimeSeconds and phases.
	code, out, errOut := runCLI(t, "migrate", "web", "--to", "node2", "--to-addr", n2.addr, "--id", "m-cli-1", "--json")
	if code != exitOK {
		t.Fatalf("migrate --json: exit %d\n%s%s", code, out, errOut)
	}
	var rep struct {
		ID              string  `json:"id"`
		Workload        string  `json:"workload"`
		Source          string  `json:"source"`
		Target          string  `json:"target"`
		Method          string  `json:"method"`
		Result          string  `json:"result"`
		DowntimeSeconds float64 `json:"downtimeSeconds"`
		Phases          []struct {
			Phase   string  `json:"phase"`
			Seconds float64 `json:"seconds"`
			Bytes   int64   `json:"bytes"`
		} `json:"phases"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("migrate --json printed no JSON report: %v\n%s", err, out)
	}
	if rep.ID != "m-cli-1" || rep.Source != "node1" || rep.Target != "node2" || rep.Method != migrate.MethodStopAndCopy ||
		rep.Result != migrate.ResultCompleted || rep.DowntimeSeconds <= 0 || rep.Workload == "" {
		t.Errorf("report: %+v", rep)
	}
	phases := map[string]bool{}
	for _, p := range rep.Phases {
		phases[p.Phase] = true
	}
	for _, p := range []string{migrate.PhaseCheckpoint, migrate.PhaseTransfer, migrate.PhaseRestore} {
		if !phases[p] {
			t.Errorf("report lacks phase %s: %+v", p, rep.Phases)
		}
	}
	if running := n2.rt.Running(); len(running) != 1 || running[0].Name != "web" {
		t.Errorf("on node2 after the migration: %+v", running)
	}

	// The table, and the CLI choosing the ID.
	code, out, errOut = runCLI(t, "migrate", "--to", "node2", "db", "--to-addr", "https://"+n2.addr)
	if code != exitOK {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("migrate:\n%s", out)
	for _, want := range []string{"migration m-", "of db (0 MiB in use)", "node1 -> node2, stop-and-copy: completed", "downtime (frozen until running on the target)", "connections to the target"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// status on both sides, as JSON and as text.
	code, out, errOut = runCLI(t, "migration", "status", "m-cli-1", "--json", "--addr", n2.addr)
	var st migrate.Status
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("migration status --json: exit %d\n%s%s", code, out, errOut)
	}
	if !st.Known || st.Node != "node2" || st.Side != migrate.SideTarget || st.Copy == nil || !st.Copy.Running {
		t.Errorf("status on node2: %+v", st)
	}
	code, out, errOut = runCLI(t, "migration", "status", "m-cli-1")
	t.Logf("migration status:\n%s", out)
	if code != exitOK || !strings.Contains(out, "migration m-cli-1 on node1 (source side)") || !strings.Contains(out, "(finished)") {
		t.Errorf("migration status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "migration", "status", "m-unknown")
	if code != exitOK || !strings.Contains(out, "node1 has no record of migration m-unknown") {
		t.Errorf("status of an unknown migration: exit %d\n%s", code, out)
	}

	// resolve: a target's running copy is never aborted; it can be committed.
	code, out, errOut = runCLI(t, "migration", "resolve", "m-cli-1", "--outcome", "abort", "--addr", n2.addr)
	if code != exitFailure || !strings.Contains(errOut, "runs here") {
		t.Errorf("resolve abort of a running copy: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "migration", "resolve", "m-cli-1", "--outcome", "commit", "--addr", n2.addr, "--json")
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || st.Phase == "" {
		t.Errorf("resolve commit: exit %d\n%s%s", code, out, errOut)
	}

	// Refusals: exit 1, with the node's reason.
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unmanaged container", []string{"migrate", "stray", "--to", "node2", "--to-addr", n2.addr}, nil, "not managed by godwit"},
		{"no such container", []string{"migrate", "nothing", "--to", "node2", "--to-addr", n2.addr}, nil, "nothing"},
		{"a node's certificate orders", []string{"migrate", "cache", "--to", "node2", "--to-addr", n2.addr},
			map[string]string{envClientCert: certs.node2.Cert, envClientKey: certs.node2.Key}, "may not order migrations"},
		{"the target is another node", []string{"migrate", "cache", "--to", "node3", "--to-addr", n2.addr}, nil, "node3"},
		{"post-copy", []string{"migrate", "cache", "--to", "node2", "--to-addr", n2.addr, "--method", "post-copy"}, nil, "post-copy"},
		{"an ID used before", []string{"migrate", "cache", "--to", "node2", "--to-addr", n2.addr, "--id", "m-cli-1"}, nil, "already used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runCLI(t, tc.args...)
			t.Logf("%s%s", out, errOut)
			if code != exitFailure || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, exitFailure, tc.want, out, errOut)
			}
		})
	}
	if running := n1.rt.Running(); len(running) != 2 {
		t.Errorf("refused orders changed node1: %+v", running)
	}

	// The local cluster's state names the target; dev env exports what the CLI reads.
	writeDevState(t, devCluster{
		Operator: devTLS{CA: certs.operator.CA, Cert: certs.operator.Cert, Key: certs.operator.Key},
		Nodes: []devNode{
			{Engine: dockerd.State{Name: "node1", Host: "unix:///run/godwit/node1/docker.sock"}, Addr: "127.0.0.1", Endpoint: n1.addr},
			{Engine: dockerd.State{Name: "node2", Host: "unix:///run/godwit/node2/docker.sock"}, Addr: "127.0.0.1", Endpoint: n2.addr},
		},
	})
	code, out, errOut = runCLI(t, "dev", "env", "node1")
	if code != exitOK {
		t.Fatalf("dev env: exit %d\n%s%s", code, out, errOut)
	}
	env := parseExports(t, out)
	want := map[string]string{"DOCKER_HOST": "unix:///run/godwit/node1/docker.sock", envAddr: "https://" + n1.addr,
		envCACert: certs.operator.CA, envClientCert: certs.operator.Cert, envClientKey: certs.operator.Key}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("dev env: %s=%q, want %q (line %q)", k, env[k], v, out)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	code, out, errOut = runCLI(t, "migrate", "cache", "--to", "node2")
	if code != exitOK || !strings.Contains(out, "completed") {
		t.Errorf("migrate --to a dev node: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "migrate", "cache", "--to", "node9")
	if code != exitUsage || !strings.Contains(errOut, `no node "node9" in the local cluster (it has node1, node2)`) {
		t.Errorf("migrate --to an unknown dev node: exit %d\n%s", code, errOut)
	}
}

// writeDevState points devStatePath at a new file holding c.
func writeDevState(t *testing.T, c devCluster) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dev.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	old := devStatePath
	devStatePath = p
	t.Cleanup(func() { devStatePath = old })
}

// parseExports reads the one `export K=V ...` line of dev env (values need no quoting here).
func parseExports(t *testing.T, line string) map[string]string {
	t.Helper()
	fields := strings.Fields(line)
	if len(fields) < 2 || fields[0] != "export" {
		t.Fatalf("not an export line: %q", line)
	}
	env := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("not K=V: %q in %q", f, line)
		}
		env[k] = v
	}
	return env
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/godwit-dev/tls/ca/ca.pem": "/var/lib/godwit-dev/tls/ca/ca.pem",
		"https://127.0.0.2:7950":            "https://127.0.0.2:7950",
		"/tmp/my certs/ca.pem":              "'/tmp/my certs/ca.pem'",
		"it's":                              `'it'\''s'`,
		"":                                  "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseNodeAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://127.0.0.2:7950", "127.0.0.2:7950"},
		{"https://127.0.0.2:7950/", "127.0.0.2:7950"},
		{"127.0.0.2:7950", "127.0.0.2:7950"},
		{"https://[::1]:7950", "[::1]:7950"},
		{"node1.example:7950", "node1.example:7950"},
		{"http://127.0.0.2:7950", ""},
		{"https://127.0.0.2", ""},
		{"127.0.0.2", ""},
		{":7950", ""},
		{"127.0.0.2:0", ""},
		{"127.0.0.2:http", ""},
		{"https://u@127.0.0.2:7950", ""},
	} {
		got, err := parseNodeAddr(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseNodeAddr(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseNodeAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
