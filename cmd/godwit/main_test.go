package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/internal/pki"
)

// cliTestCerts is a cluster CA in a temp dir with an operator's certificate and two nodes'.
type cliTestCerts struct {
	dir                    string
	operator, node1, node2 pki.Files
}

func newCLITestCerts(t *testing.T) cliTestCerts {
	t.Helper()
	c := cliTestCerts{dir: t.TempDir()}
	var err error
	if c.operator, err = pki.Quick(c.dir, "alice", pki.RoleOperator); err != nil {
		t.Fatal(err)
	}
	if c.node1, err = pki.Quick(c.dir, "node1", pki.RoleClient, net.ParseIP("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if c.node2, err = pki.Quick(c.dir, "node2", pki.RoleClient, net.ParseIP("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	return c
}

// operatorEnv is what `godwit dev env` would export for these certificates and addr.
func (c cliTestCerts) operatorEnv(addr string) map[string]string {
	return map[string]string{envAddr: addr, envCACert: c.operator.CA, envClientCert: c.operator.Cert, envClientKey: c.operator.Key}
}

// isolateCLIEnv clears the variables the CLI reads, so the caller's shell does not leak in,
// and points the dev state at a file that does not exist.
func isolateCLIEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{envAddr, envCACert, envClientCert, envClientKey, envFault, envDevState} {
		t.Setenv(v, "")
	}
	old := devStatePath
	devStatePath = filepath.Join(t.TempDir(), "no-dev.json")
	t.Cleanup(func() { devStatePath = old })
}

// TestExitCodes checks the command-line contract: 0 success, 1 runtime failure, 2 usage or
// invalid input, with errors that say what and where.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: sometimes\n  triggers:\n    - name: x\n      when: node.cpuu > 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, _ := filepath.Glob("../../configs/policies/*.yaml")
	if len(good) == 0 {
		t.Fatal("no example policies found")
	}
	certs := newCLITestCerts(t)
	op := certs.operatorEnv("https://127.0.0.1:1") // nothing listens on port 1
	tlsFlags := []string{"--tls-ca", certs.node1.CA, "--tls-cert", certs.node1.Cert, "--tls-key", certs.node1.Key}
	endpoint := func(extra ...string) []string {
		return append(append([]string{"endpoint", "--node", "node1", "--docker-host", "unix:///nope"}, tlsFlags...), extra...)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string // set for the case, on top of an empty GODWIT_* environment
		code    int
		wantErr []string // substrings of the output (checkers print findings on stdout)
	}{
		{"no command", nil, nil, exitUsage, []string{"usage: godwit"}},
		{"unknown command", []string{"frobnicate"}, nil, exitUsage, []string{`unknown command "frobnicate"`}},
		{"help", []string{"help"}, nil, exitOK, nil},
		{"version", []string{"version"}, nil, exitOK, nil},
		{"policy check, example policies", append([]string{"policy", "check"}, good...), nil, exitOK, nil},
		{"policy check, every error with its position", []string{"policy", "check", bad}, nil, exitUsage,
			[]string{bad + ":4:9:", bad + ":7:", "cpuu"}},
		{"policy check, missing file", []string{"policy", "check", filepath.Join(dir, "nope.yaml")}, nil, exitUsage, []string{"nope.yaml"}},

		{"users without a subcommand", []string{"users"}, op, exitUsage, []string{"usage: godwit users set"}},
		{"users, unknown subcommand", []string{"users", "move", "web"}, op, exitUsage, []string{`unknown subcommand "move"`}},
		{"users set, no sites", []string{"users", "set", "web"}, op, exitUsage, []string{"at least one SITE=WEIGHT"}},
		{"users set, no weight", []string{"users", "set", "web", "site-a"}, op, exitUsage, []string{`"site-a": want SITE=WEIGHT`}},
		{"users set, weight not a number", []string{"users", "set", "web", "site-a=most"}, op, exitUsage, []string{`weight "most" is not a number`}},
		{"users set, zero weight", []string{"users", "set", "web", "site-a=0"}, op, exitUsage, []string{"must be > 0"}},
		{"users set, a site twice", []string{"users", "set", "web", "a=1", "a=2"}, op, exitUsage, []string{`site "a" given twice`}},
		{"users set, empty site", []string{"users", "set", "web", "=1"}, op, exitUsage, []string{"must be 1..64 bytes"}},
		{"users clear, no workload", []string{"users", "clear"}, op, exitUsage, []string{"give one workload"}},
		{"users show, two workloads", []string{"users", "show", "a", "b"}, op, exitUsage, []string{"at most one workload"}},
		{"users set, nobody listening", []string{"users", "set", "web", "a=1"}, op, exitFailure, []string{"unreachable"}},
		{"migrate without container", []string{"migrate", "--to", "node2"}, op, exitUsage, []string{"usage: godwit migrate"}},
		{"migrate, two containers", []string{"migrate", "web", "db", "--to", "node2"}, op, exitUsage, []string{"usage: godwit migrate"}},
		{"migrate without --to", []string{"migrate", "web"}, op, exitUsage, []string{"--to is required"}},
		{"migrate without TLS", []string{"migrate", "web", "--to", "127.0.0.1:2", "--addr", "127.0.0.1:1"}, nil, exitUsage,
			[]string{"TLS is required", "--cacert (or GODWIT_CACERT)", "--client-cert (or GODWIT_CLIENT_CERT)", "--client-key (or GODWIT_CLIENT_KEY)"}},
		{"migrate, only the key missing", []string{"migrate", "web", "--to", "127.0.0.1:2"},
			map[string]string{envAddr: "https://127.0.0.1:1", envCACert: certs.operator.CA, envClientCert: certs.operator.Cert}, exitUsage,
			[]string{"--client-key (or GODWIT_CLIENT_KEY) missing"}},
		{"migrate, TLS files that do not exist", []string{"migrate", "web", "--to", "127.0.0.1:2", "--cacert", filepath.Join(dir, "ca.pem")},
			op, exitUsage, []string{"ca.pem"}},
		{"migrate without an address", []string{"migrate", "web", "--to", "127.0.0.1:2"},
			map[string]string{envCACert: certs.operator.CA, envClientCert: certs.operator.Cert, envClientKey: certs.operator.Key}, exitUsage,
			[]string{"--addr (or GODWIT_ADDR)"}},
		{"migrate, plaintext address", []string{"migrate", "web", "--to", "127.0.0.1:2", "--addr", "http://127.0.0.1:1"}, op, exitUsage,
			[]string{"TLS only"}},
		{"migrate, address without port", []string{"migrate", "web", "--to", "127.0.0.1:2"},
			map[string]string{envAddr: "https://127.0.0.1", envCACert: certs.operator.CA, envClientCert: certs.operator.Cert, envClientKey: certs.operator.Key},
			exitUsage, []string{"port is required"}},
		{"migrate, address with a path", []string{"migrate", "web", "--to", "127.0.0.1:2", "--addr", "https://127.0.0.1:1/v1"}, op, exitUsage,
			[]string{"without user, path or query"}},
		{"migrate, bad --json value", []string{"migrate", "web", "--to", "127.0.0.1:2", "--json=maybe"}, op, exitUsage, []string{"-json"}},
		{"migrate, bad --to-addr", []string{"migrate", "web", "--to", "node2", "--to-addr", "node2"}, op, exitUsage, []string{"--to-addr"}},
		{"migrate, --to address and --to-addr", []string{"migrate", "web", "--to", "127.0.0.1:2", "--to-addr", "127.0.0.1:3"}, op, exitUsage,
			[]string{"is an address"}},
		{"migrate, bad node name", []string{"migrate", "web", "--to", "../x"}, op, exitUsage, []string{"--to: pki: invalid node name"}},
		{"migrate, node without address or dev cluster", []string{"migrate", "web", "--to", "node2"}, op, exitUsage,
			[]string{"--to node2 without --to-addr", "no local cluster is up"}},
		{"migrate, unknown method", []string{"migrate", "web", "--to", "127.0.0.1:2", "--method", "teleport"}, op, exitUsage,
			[]string{`--method "teleport"`}},
		{"migrate, source node down", []string{"migrate", "web", "--to", "node2", "--to-addr", "127.0.0.1:2"}, op, exitFailure,
			[]string{"127.0.0.1:1 unreachable"}},
		{"migrate, source node down, plain HOST:PORT and flags", []string{"migrate", "--json", "--to", "127.0.0.1:2", "web", "--addr", "127.0.0.1:1",
			"--cacert", certs.operator.CA, "--client-cert", certs.operator.Cert, "--client-key", certs.operator.Key}, nil, exitFailure,
			[]string{"127.0.0.1:1 unreachable"}},

		{"migration alone", []string{"migration"}, op, exitUsage, []string{"usage: godwit migration status ID"}},
		{"migration, unknown subcommand", []string{"migration", "list"}, op, exitUsage, []string{`unknown subcommand "list"`}},
		{"migration status without ID", []string{"migration", "status"}, op, exitUsage, []string{"usage: godwit migration"}},
		{"migration resolve, bad outcome", []string{"migration", "resolve", "m-1", "--outcome", "maybe"}, op, exitUsage,
			[]string{`--outcome must be commit or abort, got "maybe"`}},
		{"migration resolve without outcome", []string{"migration", "resolve", "m-1"}, op, exitUsage, []string{"--outcome must be"}},
		{"migration status without TLS", []string{"migration", "status", "m-1", "--addr", "127.0.0.1:1"}, nil, exitUsage,
			[]string{"TLS is required"}},
		{"migration status, node down", []string{"migration", "status", "m-1", "--json"}, op, exitFailure, []string{"unreachable"}},
		{"migration resolve, node down", []string{"migration", "resolve", "--outcome", "abort", "m-1"}, op, exitFailure, []string{"unreachable"}},

		{"demo, bad size", []string{"demo", "--mib", "0"}, nil, exitUsage, []string{"--mib"}},
		{"dev, unknown subcommand", []string{"dev", "sideways"}, nil, exitUsage, []string{"sideways"}},
		{"dev env without cluster", []string{"dev", "env", "node1"}, nil, exitFailure, []string{"no local cluster is up"}},

		{"endpoint without --node", []string{"endpoint", "--docker-host", "unix:///nope"}, nil, exitUsage, []string{"--node is required"}},
		{"endpoint without TLS", []string{"endpoint", "--node", "node1", "--docker-host", "unix:///nope", "--tls-ca", certs.node1.CA}, nil, exitUsage,
			[]string{"TLS is required", "--tls-cert, --tls-key missing"}},
		{"endpoint, bad capacity", endpoint("--memory-capacity", "lots"), nil, exitUsage, []string{"memory-capacity"}},
		{"endpoint, relative bind root", endpoint("--bind-root", "data"), nil, exitUsage, []string{`"data" is not an absolute path`}},
		{"endpoint, capability ALL", endpoint("--allow-cap", "NET_ADMIN,cap_all"), nil, exitUsage, []string{"ALL is not accepted"}},
		{"endpoint, bad capability", endpoint("--allow-cap", "NET ADMIN"), nil, exitUsage, []string{`"NET ADMIN" is not a capability name`}},
		{"endpoint, unknown fault point", endpoint(), map[string]string{envFault: "somewhere"}, exitUsage,
			[]string{`GODWIT_FAULT="somewhere": not a fault point`, "target-before-restore"}},
		{"endpoint, another node's certificate", []string{"endpoint", "--node", "node2", "--docker-host", "unix:///nope",
			"--tls-ca", certs.node1.CA, "--tls-cert", certs.node1.Cert, "--tls-key", certs.node1.Key}, nil, exitUsage,
			[]string{"certificate of node1 (client); node node2 serves with its own"}},
		{"endpoint, operator certificate", []string{"endpoint", "--node", "alice", "--docker-host", "unix:///nope",
			"--tls-ca", certs.operator.CA, "--tls-cert", certs.operator.Cert, "--tls-key", certs.operator.Key}, nil, exitUsage,
			[]string{"alice (operator)"}},
		{"endpoint, key of another certificate", []string{"endpoint", "--node", "node1", "--docker-host", "unix:///nope",
			"--tls-ca", certs.node1.CA, "--tls-cert", certs.node1.Cert, "--tls-key", certs.node2.Key}, nil, exitUsage,
			[]string{"node1.pem"}},
		{"bad flag", []string{"demo", "--nope"}, nil, exitUsage, []string{"nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateCLIEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, w := range tc.wantErr {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "512MiB": 512 << 20, "8GiB": 8 << 30, "1024": 1024, "2KiB": 2048} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "-1GiB", "1.5GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
