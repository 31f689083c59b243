package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// lifecycleIP is the loopback address i of this file's and the dev cluster test's
// listeners: 127.0.102.0/24 is used by no other test.
func lifecycleIP(i int) string { return fmt.Sprintf("127.0.102.%d", i) }

// lcAgent is one `godwit agent` process of a test.
type lcAgent struct {
	name      string
	cmd       *exec.Cmd
	log       *lockedBuffer
	gossip    string
	migration string
	exited    chan struct{} // closed when the process ended, with its exit error in err
	err       error
}

// startLCAgent runs `godwit agent --config config` with env added and waits for its
// first line.
func startLCAgent(t *testing.T, name, config string, env ...string) *lcAgent {
	t.Helper()
	p := &lcAgent{name: name, log: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(godwitBinary(t), "agent", "--config", config)
	p.cmd.Env = append(append(os.Environ(), "PATH="+testenv.CRIUBinDir+":"+os.Getenv("PATH")), env...)
	p.cmd.Stderr = p.log
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.log)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s did not start: %v\n%s", name, err, p.log)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	// "agent NAME running: gossip ADDR, migration ADDR[, raft ADDR]"
	for _, f := range strings.Split(strings.TrimPrefix(strings.TrimSpace(line), "agent "+name+" running: "), ", ") {
		k, v, _ := strings.Cut(f, " ")
		switch k {
		case "gossip":
			p.gossip = v
		case "migration":
			p.migration = v
		}
	}
	return p
}

func (p *lcAgent) waitLog(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q", p.name, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGTERMDuringMigration: an agent learns of a new container from Docker's events (its
// polling is an hour apart). Then the agent process gets SIGTERM while a real migration it is the
// source of is in progress (paused half-way through the checkpoint stream). It refuses a
// new order ("shutting down") but lets the migration in progress finish, leaves gossip
// (the other agent sees it left) and exits 0; the workload then runs exactly once, on the
// target, with its memory, and the source's journal says completed.
func TestSIGTERMDuringMigration(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	if testing.Short() {
		t.Skip("starts two engines and two agent processes; not in -short")
	}
	isolateCLIEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	op, err := pki.Quick(pkiDir, "operator", pki.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	opTLS, err := pki.Load(op)
	if err != nil {
		t.Fatal(err)
	}
	opc := &migrate.Client{TLS: opTLS}
	key := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	engines := map[string]*dockerd.Engine{}
	clis := map[string]*client.Client{}
	for _, name := range []string{"lcsrc", "lcdst"} {
		e, err := dockerd.Start(ctx, dockerd.Config{Name: name})
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
	if err := workload.BuildImage(ctx, clis["lcsrc"]); err != nil {
		t.Fatal(err)
	}
	apiAddr := net.JoinHostPort(lifecycleIP(22), "7980")
	config := func(name string, i int, role pki.Role, join, inventory, extra string) string {
		files, err := pki.Quick(pkiDir, name, role, net.ParseIP(lifecycleIP(i)))
		if err != nil {
			t.Fatal(err)
		}
		e := engines[name]
		joins := ""
		if join != "" {
			joins = ", join: ['" + join + "']"
		}
		text := fmt.Sprintf("node: %s\nrole: %s\ngossip: {bind: '%s:0', key_file: %s%s}\nmigration: {bind: '%s:0'}\n"+
			"capacity: {cpu: 2, memory: 4GiB}\ndata_dir: %s\ntls: {ca: %s, cert: %s, key: %s}\ninventory: {interval: %s}\n"+
			"docker: {host: '%s', data_root: '%s', runc_root: '%s', cgroup_parent: '/godwit-%s'}\n%s",
			name, role, lifecycleIP(i), key, joins, lifecycleIP(i), filepath.Join(dir, name), files.CA, files.Cert, files.Key, inventory,
			e.Host, e.DataRoot, e.RuncRoot(), name, extra)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	release := filepath.Join(dir, "release")
	// The source lists its engine's containers once an hour: only Docker's events can make
	// its new workload known in time.
	srcAPI := net.JoinHostPort(lifecycleIP(21), "7980")
	src := startLCAgent(t, "lcsrc", config("lcsrc", 21, pki.RoleClient, "", "1h", "api: {bind: '"+srcAPI+"'}\n"),
		envFault+"=source-streaming", envFaultRelease+"="+release)
	dst := startLCAgent(t, "lcdst", config("lcdst", 22, pki.RoleServer, src.gossip, "1s",
		fmt.Sprintf("api: {bind: '%s'}\nserver: {raft: {bind: '%s:0'}, bootstrap_expect: 1}\n", apiAddr, lifecycleIP(22))))
	for k, v := range map[string]string{envAddr: "https://" + apiAddr, envCACert: op.CA, envClientCert: op.Cert, envClientKey: op.Key} {
		t.Setenv(k, v)
	}
	nodeStatus := func(name string) string {
		code, out, _ := runCLI(t, "nodes", "--json")
		if code != exitOK {
			return ""
		}
		var nodes []api.Node
		if json.Unmarshal([]byte(out), &nodes) != nil {
			return ""
		}
		for _, n := range nodes {
			if n.Name == name {
				return n.Status
			}
		}
		return ""
	}
	waitUntil(t, "the server agent to see the client alive", time.Minute, func() bool { return nodeStatus("lcsrc") == "alive" })

	const mib = 64
	c, err := clis["lcsrc"].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(mib),
		Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "wsig")
	if err != nil {
		t.Fatal(err)
	}
	wid := c.ID
	if err := clis["lcsrc"].ContainerStart(ctx, wid, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := workload.WaitState(ctx, clis["lcsrc"], "wsig", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	waitUntil(t, "the new workload in the server's view (the source's Docker events)", 30*time.Second, func() bool {
		code, out, _ := runCLI(t, "containers", "--json")
		var cs []api.Container
		if code != exitOK || json.Unmarshal([]byte(out), &cs) != nil {
			return false
		}
		for _, c := range cs {
			if c.Name == "wsig" && c.Node == "lcsrc" {
				return true
			}
		}
		return false
	})

	const id = "m-sigterm-1"
	done := make(chan error, 1)
	go func() {
		_, err := opc.Migrate(ctx, src.migration, "lcsrc", migrate.Order{ID: id, Workload: "wsig", TargetNode: "lcdst", TargetAddr: dst.migration}, 0)
		done <- err
	}()
	src.waitLog(t, "fault: paused at source-streaming", 2*time.Minute)
	if err := src.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	src.waitLog(t, "waiting for migrations in progress", time.Minute)
	// Stopping: a new order is refused and changes nothing.
	_, err = opc.Migrate(ctx, src.migration, "lcsrc", migrate.Order{ID: "m-sigterm-2", Workload: "wsig", TargetNode: "lcdst", TargetAddr: dst.migration}, 0)
	if !errors.Is(err, migrate.ErrShuttingDown) {
		t.Fatalf("order to a stopping agent: %v, want ErrShuttingDown", err)
	}
	// Its API takes no changes either.
	if code, out, errOut := runCLI(t, "drain", "lcdst", "--addr", "https://"+srcAPI); code != exitFailure || !strings.Contains(errOut, "shutting down") {
		t.Fatalf("a change through a stopping agent's API: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the migration in progress: %v", err)
	}
	select {
	case <-src.exited:
		if src.err != nil {
			t.Fatalf("the agent exited with %v, want 0", src.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the agent did not exit within 2 minutes of SIGTERM")
	}
	for _, line := range []string{"shutting down: refusing new migrations and changes", "no migration in progress", "migration service closed", "left gossip", "msg=stopped"} {
		if !strings.Contains(src.log.String(), line) {
			t.Errorf("the stopping agent did not log %q", line)
		}
	}
	// One log line per phase of the migration, with its ID and workload.
	for _, ph := range []string{migrate.PhaseOrdered, migrate.PhaseFrozen, migrate.PhaseStreamed, migrate.PhaseCommitting, migrate.PhaseCompleted} {
		found := false
		for _, l := range strings.Split(src.log.String(), "\n") {
			found = found || strings.Contains(l, `msg="migration phase"`) && strings.Contains(l, "migration="+id) &&
				strings.Contains(l, "workload="+wid) && strings.Contains(l, "phase="+ph)
		}
		if !found {
			t.Errorf("no log line for phase %s of %s with its workload", ph, id)
		}
	}
	waitUntil(t, "the server agent to see the client left", 30*time.Second, func() bool { return nodeStatus("lcsrc") == "left" })

	j, err := migrate.OpenJournal(filepath.Join(dir, "lcsrc", "migrate", "journal"))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := j.Get(id); !ok || e.Phase != migrate.PhaseCompleted {
		t.Fatalf("source journal: %+v", e)
	}
	running, all := 0, 0
	for _, name := range []string{"lcsrc", "lcdst"} {
		r, a := (&procNode{t: t, name: name}).copiesOf(clis[name], wid)
		running, all = running+r, all+a
		if r == 1 && name != "lcdst" {
			t.Fatalf("the workload runs on %s", name)
		}
	}
	if running != 1 || all != 1 {
		t.Fatalf("%d running copies, %d containers in all; want exactly one", running, all)
	}
	after, err := workload.WaitState(ctx, clis["lcdst"], "wsig", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks {
		t.Fatalf("memory state lost: before %v, after %v", before, after)
	}
	t.Logf("SIGTERM mid-migration: the source finished it and exited 0; one copy on lcdst with its memory (%v)", after)
}
