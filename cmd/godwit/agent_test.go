package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// agentTestIP is the loopback address of the agent CLI tests (127.0.94.0/24 is used by no
// other test).
const agentTestIP = "127.0.94.1"

// writeAgentConfig writes a single-server cluster's config with real certificates, key and
// policy, and returns its path.
func writeAgentConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	files, err := pki.Quick(filepath.Join(dir, "pki"), "solo", pki.RoleServer, net.ParseIP(agentTestIP))
	if err != nil {
		t.Fatal(err)
	}
	var key bytes.Buffer
	if code := run([]string{"keygen"}, &key, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("keygen exit %d", code)
	}
	mustWrite(t, filepath.Join(dir, "gossip.key"), key.String())
	pol, err := os.ReadFile("../../configs/policies/maintenance-drain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "policy.yaml"), string(pol))
	text := fmt.Sprintf(`node: solo
role: server
site: lab
gossip:
  bind: %[1]s:0
  key_file: gossip.key
migration:
  bind: %[1]s:0
server:
  raft:
    bind: %[1]s:0
  bootstrap_expect: 1
  policy_file: policy.yaml
capacity: {cpu: 2, memory: 1GiB}
docker:
  host: unix://%[2]s/no-docker.sock
data_dir: data
tls: {ca: %[3]s, cert: %[4]s, key: %[5]s}
%[6]s`, agentTestIP, dir, files.CA, files.Cert, files.Key, extra)
	path := filepath.Join(dir, "agent.yaml")
	mustWrite(t, path, text)
	return path
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAgentCheck(t *testing.T) {
	path := writeAgentConfig(t, "")
	var out, errb bytes.Buffer
	if code := run([]string{"agent", "--check", "--config", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok (node solo, role server)") {
		t.Fatalf("stdout %q", out.String())
	}
}

// TestAgentConfigErrors: every problem at file:line:col, all at once, exit code 2.
func TestAgentConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	mustWrite(t, bad, `node: n1
role: client
gossip:
  bindd: 127.0.0.1:7946
  insecure_no_encryption: true
migration:
  bind: 127.0.0.1:7950
capacity: {cpu: 0, memory: 1GiB}
tls: {ca: a, cert: b}
log: {format: xml}
`)
	for _, tc := range []struct {
		desc string
		args []string
		want []string
	}{
		{"no config", []string{"agent"}, []string{"--config is required"}},
		{"stray argument", []string{"agent", "--config", bad, "now"}, []string{"unexpected arguments: now"}},
		{"missing file", []string{"agent", "--config", filepath.Join(dir, "none.yaml")}, []string{"no such file"}},
		{"problems", []string{"agent", "--check", "--config", bad}, []string{
			bad + ":3:1: gossip.advertise: required when bind is 0.0.0.0:7946",
			bad + `:4:3: gossip: unknown field "bindd", did you mean "bind"?`,
			bad + ":8:12: capacity.cpu: required",
			bad + ":9:1: tls.key: required",
			bad + `:10:7: log.format: must be text or json, got "xml"`,
			"bad.yaml: 5 problem(s)",
		}},
		{"files it names", []string{"agent", "--check", "--config", badFiles(t)}, []string{
			"agent.yaml:6:3: gossip.key_file: ", "not base64", "agent.yaml:18:67: tls.cert: ", "no such file", "2 problem(s)"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

// badFiles is a valid config whose key file is not a key and whose certificate is missing.
func badFiles(t *testing.T) string {
	path := writeAgentConfig(t, "")
	dir := filepath.Dir(path)
	mustWrite(t, filepath.Join(dir, "gossip.key"), "xyz\n")
	if err := os.Remove(filepath.Join(dir, "pki", "server-solo.pem")); err != nil {
		entries, _ := os.ReadDir(filepath.Join(dir, "pki"))
		t.Fatalf("%v (pki holds %v)", err, entries)
	}
	return path
}

func TestKeygen(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"keygen"}, &out, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out.String()))
	if err != nil || len(key) != 32 {
		t.Fatalf("key %q: %v", out.String(), err)
	}
	file := filepath.Join(t.TempDir(), "k")
	if code := run([]string{"keygen", "--out", file}, &out, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st, err)
	}
	var errb bytes.Buffer
	if code := run([]string{"keygen", "--out", file}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "exists") {
		t.Fatalf("overwrite: exit %d: %s", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAgentProcess runs `godwit agent` as a process: a one-server cluster bootstraps raft,
// its leader puts the configured policy in force, the logs are JSON records, and SIGTERM
// stops it cleanly (exit 0) after leaving gossip.
func TestAgentProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; not in -short")
	}
	path := writeAgentConfig(t, "log: {format: json}\n")
	cmd := exec.Command(godwitBinary(t), "agent", "--config", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "agent solo running: gossip "+agentTestIP) {
		t.Fatalf("first line %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"configured policy put in force"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no policy put in force; stderr:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}
