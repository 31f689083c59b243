package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
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
			"agent.yaml:6:3: gossip.key_file: ", "not base64", "agent.yaml:18:", ": tls.cert: ", "no such file", "2 problem(s)"}},
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

// agentProc is one `godwit agent` process.
type agentProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	gossip string // bound gossip address, from the first line
	exited chan struct{}
}

func startAgentProc(t *testing.T, name, config string) *agentProc {
	t.Helper()
	p := &agentProc{t: t, name: name, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(godwitBinary(t), "agent", "--config", config)
	p.cmd.Env = append(os.Environ(), "PATH="+testenv.CRIUBinDir+":"+os.Getenv("PATH"))
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("log of %s (last 60 lines):\n%s", name, tail(p.stderr.String(), 60))
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s did not start: %v\n%s", name, err, p.stderr.String())
	}
	go io.Copy(io.Discard, out)
	rest, ok := strings.CutPrefix(line, "agent "+name+" running: gossip ")
	if !ok {
		t.Fatalf("%s: first line %q", name, line)
	}
	p.gossip, _, _ = strings.Cut(rest, ",")
	return p
}

func (p *agentProc) signal(s syscall.Signal) {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(s)
	}
}

func (p *agentProc) logged(parts ...string) bool {
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		ok := true
		for _, part := range parts {
			ok = ok && strings.Contains(l, part)
		}
		if ok {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgentClusterKillLeader runs a real cluster of `godwit agent` processes: three servers
// (drained, without engines of their own, so they are never targets) and two clients, each
// over its own dockerd. Client c1 is drained and runs a memhog workload; the leader, under
// the evacuate-on-drain policy of its config, moves it to c2 with nobody asking. While the
// migration runs (the target has created the workload's new container), the leader's
// process is SIGKILLed: the two other servers elect a new leader, which settles the
// migration; in the end exactly one copy runs, with its memory.
func TestAgentClusterKillLeader(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	if testing.Short() {
		t.Skip("starts two engines and five agent processes; not in -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	var key bytes.Buffer
	if code := run([]string{"keygen"}, &key, &bytes.Buffer{}); code != exitOK {
		t.Fatal("keygen")
	}
	mustWrite(t, filepath.Join(dir, "gossip.key"), key.String())
	pol, err := os.ReadFile("../../internal/agent/testdata/evacuate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "policy.yaml"), string(pol))

	engines := map[string]*dockerd.Engine{}
	clis := map[string]*client.Client{}
	for _, name := range []string{"c1", "c2"} {
		e, err := dockerd.Start(ctx, dockerd.Config{Name: "agk" + name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(context.Background()) })
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		engines[name], clis[name] = e, cli
	}
	if err := workload.BuildImage(ctx, clis["c1"]); err != nil {
		t.Fatal(err)
	}
	const wname = "agk-memhog"
	c, err := clis["c1"].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(256),
		NetworkDisabled: workload.NetworkDisabled(ctx, clis["c1"]), // what can move on this engine
		Labels:          map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, wname)
	if err != nil {
		t.Fatal(err)
	}
	wid := c.ID
	if err := clis["c1"].ContainerStart(ctx, wid, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := workload.WaitState(ctx, clis["c1"], wname, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	config := func(name, role string, i int, join string) string {
		ip := fmt.Sprintf("127.0.94.%d", 10+i)
		pr := pki.RoleClient
		if role == "server" {
			pr = pki.RoleServer
		}
		files, err := pki.Quick(filepath.Join(dir, "pki"), name, pr, net.ParseIP(ip))
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("node: %s\nrole: %s\nsite: lab\ngossip:\n  bind: %s:0\n  key_file: gossip.key\n", name, role, ip)
		if join != "" {
			text += "  join: [" + join + "]\n"
		}
		text += fmt.Sprintf("migration:\n  bind: %s:0\ncapacity: {cpu: 2, memory: 4GiB}\ndata_dir: data-%s\ntls: {ca: %s, cert: %s, key: %s}\nlog: {level: debug, format: json}\ninventory: {interval: 1s}\n",
			ip, name, files.CA, files.Cert, files.Key)
		if role == "server" {
			text += fmt.Sprintf("server:\n  raft: {bind: '%s:0'}\n  bootstrap_expect: 3\n  policy_file: policy.yaml\ndrain: true\ndocker: {host: 'unix://%s/none.sock'}\n", ip, dir)
		} else {
			e := engines[name]
			text += fmt.Sprintf("docker: {host: '%s', data_root: '%s', runc_root: '%s', cgroup_parent: '/godwit-%s'}\n", e.Host, e.DataRoot, e.RuncRoot(), e.Name)
			if name == "c1" {
				text += "drain: true\n"
			}
		}
		path := filepath.Join(dir, name+".yaml")
		mustWrite(t, path, text)
		return path
	}
	procs := map[string]*agentProc{}
	seed := ""
	for i, name := range []string{"s1", "s2", "s3", "c1", "c2"} {
		role := "server"
		if name[0] == 'c' {
			role = "client"
		}
		procs[name] = startAgentProc(t, name, config(name, role, i+1, seed))
		if seed == "" {
			seed = procs[name].gossip
		}
	}

	// c1 publishes the workload with the memory its cgroup reports (256 MiB and more).
	waitUntil(t, "c1's inventory with the workload's memory", 60*time.Second, func() bool {
		for _, l := range strings.Split(procs["c1"].stderr.String(), "\n") {
			if !strings.Contains(l, `"msg":"inventory published"`) || !strings.Contains(l, `"containers":1,`) {
				continue
			}
			if _, v, ok := strings.Cut(l, `"memory_bytes":`); ok {
				n, _ := strconv.ParseUint(strings.TrimRight(v, "}"), 10, 64)
				if n >= 256<<20 {
					return true
				}
			}
		}
		return false
	})
	// The leader of the term that decides records c1's drain; find it.
	var leader string
	waitUntil(t, "a leader recording c1's drain", 90*time.Second, func() bool {
		for _, s := range []string{"s1", "s2", "s3"} {
			if procs[s].logged(`"msg":"node recorded drained"`, `"drained":"c1"`) {
				leader = s
				return true
			}
		}
		return false
	})
	// The migration is under way once the target has prepared the new container.
	waitUntil(t, "the migration to reach the target", 2*time.Minute, func() bool {
		list, err := clis["c2"].ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", migrate.LabelMigrationID))})
		return err == nil && len(list) > 0
	})
	if procs[leader].logged(`"msg":"migration recorded"`) {
		t.Fatalf("the migration ended before the leader could be killed")
	}
	procs[leader].signal(syscall.SIGKILL)
	<-procs[leader].exited
	t.Logf("killed leader %s during the migration", leader)

	var settledBy string
	waitUntil(t, "a new leader to record the workload completed", 3*time.Minute, func() bool {
		for _, s := range []string{"s1", "s2", "s3"} {
			if s != leader && procs[s].logged(`"msg":"migration recorded"`, `"phase":"completed"`, `"workload":"`+wid) {
				settledBy = s
				return true
			}
		}
		return false
	})
	t.Logf("%s recorded the migration completed", settledBy)
	running := 0
	for name, cli := range clis {
		list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", migrate.LabelWorkload+"="+wid))})
		if err != nil {
			t.Fatal(err)
		}
		if name == "c1" {
			if l2, _ := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("id", wid))}); len(l2) > 0 {
				running += len(l2)
				t.Errorf("the original still runs on c1")
			}
		}
		running += len(list)
		if len(list) > 0 && name != "c2" {
			t.Errorf("a copy runs on %s", name)
		}
	}
	if running != 1 {
		t.Fatalf("%d running copies; want exactly one", running)
	}
	after, err := workload.WaitState(ctx, clis["c2"], wname, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks {
		t.Fatalf("memory state lost: before %v, after %v", before, after)
	}
	t.Logf("workload on c2 with its memory: before %v, after %v", before, after)
}
