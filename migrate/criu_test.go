package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
)

// memhogProc is a memhog started by a test as a plain process in its own session.
type memhogProc struct {
	cmd  *exec.Cmd
	pid  int
	addr string
	port int
}

// startMemhog starts memhog with mib MiB listening on ip and waits until it answers. It is
// killed and reaped when the test ends, whatever happened to it.
func startMemhog(t *testing.T, mib int, ip string) *memhogProc {
	t.Helper()
	bin, err := workload.Binary()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t, ip)
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	cmd := exec.Command(bin, "-mib", strconv.Itoa(mib), "-addr", addr)
	cmd.Env = append(os.Environ(),
		"GODEBUG=multipathtcp=0",
		EnvLabels+"="+LabelProbePort+"="+strconv.Itoa(port)+","+LabelManaged+"=true")
	// Own session, stdio on /dev/null (exec's default): nothing ties it to the test.
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reaps it when CRIU kills it after the dump
		close(exited)
	}()
	m := &memhogProc{cmd: cmd, pid: cmd.Process.Pid, addr: addr, port: port}
	t.Cleanup(func() {
		// os.Process signals through a pidfd: this never hits a restored copy that reuses
		// the PID.
		_ = cmd.Process.Kill()
		<-exited
		// A restored copy (our child, rst_sibling) the test did not remove, e.g. after a
		// failure: kill it too. Only our own children, so never a stranger reusing the PID.
		if st, err := readProcStat(m.pid); err == nil && st.ppid == os.Getpid() && st.state != 'Z' {
			_ = unix.Kill(m.pid, unix.SIGKILL)
			waitNotZombie(t, m.pid)
		}
	})
	m.waitAnswer(t, 60*time.Second)
	return m
}

// waitExited waits until the original process is gone and reaped, so its PID is free.
func (m *memhogProc) waitExited(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", m.pid)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dumped process %d still exists", m.pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (m *memhogProc) state(t *testing.T) workload.State {
	t.Helper()
	s, err := queryMemhog(m.addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (m *memhogProc) waitAnswer(t *testing.T, timeout time.Duration) workload.State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := queryMemhog(m.addr)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("memhog on %s does not answer: %v", m.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queryMemhog(addr string) (workload.State, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return workload.State{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return workload.State{}, err
	}
	return workload.ParseState(line)
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newTestCRIURuntime(t *testing.T, probeHost string) *CRIURuntime {
	t.Helper()
	cfg := DefaultCRIURuntimeConfig()
	cfg.CRIUPath = testenv.CRIUPath()
	cfg.WorkDir = t.TempDir()
	cfg.ProbeHost = probeHost
	rt, err := NewCRIURuntime(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// removeOnCleanup removes a workload when the test ends, even if it failed half-way.
func removeOnCleanup(t *testing.T, rt *CRIURuntime, id string) {
	t.Cleanup(func() {
		if err := rt.Remove(context.Background(), id); err != nil {
			t.Errorf("cleanup: Remove(%s): %v", id, err)
		}
	})
}

// checkContinued checks that after is the same memhog as before, resumed rather than
// restarted.
func checkContinued(t *testing.T, before, after workload.State) {
	t.Helper()
	if after.Seed != before.Seed || after.CRC != before.CRC || after.MiB != before.MiB {
		t.Errorf("state changed: before %v, after %v", before, after)
	}
	if after.Ticks <= before.Ticks {
		t.Errorf("ticks did not continue: before %d, after %d", before.Ticks, after.Ticks)
	}
}

func TestCRIURuntimeMigrate(t *testing.T) {
	testenv.RequireCRIU(t)
	for _, mib := range []int{64, 1024} {
		t.Run(fmt.Sprintf("%dMiB", mib), func(t *testing.T) {
			if mib > 64 && testing.Short() {
				t.Skip("1 GiB migration skipped in -short")
			}
			testCRIUMigrate(t, mib)
		})
	}
}

func testCRIUMigrate(t *testing.T, mib int) {
	ctx := context.Background()
	const ip = "127.0.0.31"
	src := newTestCRIURuntime(t, ip)
	dst := newTestCRIURuntime(t, ip) // another node's runtime on the same host
	m := startMemhog(t, mib, ip)
	id := strconv.Itoa(m.pid)

	spec, err := src.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Runtime != "criu" || spec.ID != id || spec.Arch != runtime.GOARCH || spec.Name != "memhog" {
		t.Errorf("spec = %+v", spec)
	}
	if spec.MemoryBytes < int64(mib)<<20 || spec.MemoryBytes > int64(mib+64)<<20 {
		t.Errorf("MemoryBytes = %d MiB, want about %d MiB", spec.MemoryBytes>>20, mib)
	}
	if spec.Labels[LabelProbePort] != strconv.Itoa(m.port) {
		t.Errorf("labels = %v, want %s=%d from %s", spec.Labels, LabelProbePort, m.port, EnvLabels)
	}
	var pc criuProcessConfig
	if err := json.Unmarshal(spec.Config, &pc); err != nil || len(pc.Cmdline) == 0 || !strings.HasSuffix(pc.Cmdline[0], "memhog") || pc.Cwd != "/" {
		t.Errorf("config = %s (%v)", spec.Config, err)
	}
	if err := src.CheckSource(ctx, spec); err != nil {
		t.Fatalf("CheckSource: %v", err)
	}
	if err := dst.CheckTarget(ctx, spec); err != nil {
		t.Fatalf("CheckTarget: %v", err)
	}
	p, err := dst.Prepare(ctx, "mig-1", spec)
	if err != nil {
		t.Fatal(err)
	}
	removeOnCleanup(t, dst, p.ID)
	if p2, err := dst.Prepare(ctx, "mig-1", spec); err != nil || p2 != p {
		t.Errorf("second Prepare = %+v, %v; want %+v", p2, err, p)
	}

	before := m.state(t)
	dirA := filepath.Join(t.TempDir(), "checkpoint")
	start := time.Now()
	if err := src.Checkpoint(ctx, id, dirA); err != nil {
		t.Fatal(err)
	}
	dumpTime := time.Since(start)
	m.waitExited(t)
	if _, err := queryMemhog(m.addr); err == nil {
		t.Fatal("memhog still answers after the dump")
	}

	// The transfer, simulated.
	if err := os.CopyFS(p.CheckpointDir, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := dst.Restore(ctx, p); err != nil {
		t.Fatal(err)
	}
	restoreTime := time.Since(start)
	t.Logf("%d MiB: dump %v, restore %v", mib, dumpTime.Round(time.Millisecond), restoreTime.Round(time.Millisecond))

	if err := dst.Verify(ctx, p.ID); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The endpoint drops the checkpoint once the migration is done; p.ID still names the
	// restored process.
	if err := os.RemoveAll(p.CheckpointDir); err != nil {
		t.Fatal(err)
	}
	if err := dst.Verify(ctx, p.ID); err != nil {
		t.Fatalf("Verify without the checkpoint dir: %v", err)
	}
	if s, err := dst.Inspect(ctx, p.ID); err != nil || s.ID != id {
		t.Errorf("Inspect(%s) = %+v, %v; want the restored process %s", p.ID, s, err, id)
	}
	time.Sleep(300 * time.Millisecond) // a few ticks
	checkContinued(t, before, m.state(t))

	pid, err := dst.PID(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Restoring again is harmless and keeps the same process.
	if err := os.CopyFS(p.CheckpointDir, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(ctx, p); err != nil {
		t.Fatalf("second Restore: %v", err)
	}
	if pid2, _ := dst.PID(p.ID); pid2 != pid {
		t.Errorf("second Restore made process %d, first %d", pid2, pid)
	}
	// The restored process is our child (rst_sibling), not an orphan left to pid 1.
	if st, err := readProcStat(pid); err != nil || st.ppid != os.Getpid() {
		t.Errorf("restored process %d has parent %d (err %v), want the test process %d", pid, st.ppid, err, os.Getpid())
	}

	// Cleaning up the source copy must not touch the restored one, though on this single
	// host it has the same PID.
	if err := src.Remove(ctx, id); err != nil {
		t.Fatalf("source Remove: %v", err)
	}
	if err := src.Verify(ctx, id); err == nil {
		t.Error("source Verify of the dumped workload succeeded")
	}
	if err := dst.Verify(ctx, p.ID); err != nil {
		t.Fatalf("source Remove hurt the restored process: %v", err)
	}

	if err := dst.Remove(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := queryMemhog(m.addr); err == nil {
		t.Error("restored memhog still answers after Remove")
	}
	if _, err := os.Stat(filepath.Dir(p.CheckpointDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging dir not removed: %v", err)
	}
	waitNotZombie(t, pid)
	if err := dst.Remove(ctx, p.ID); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// waitNotZombie checks a killed restored process was reaped, not left as a zombie.
func waitNotZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := readProcStat(pid)
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d left in state %c", pid, st.state)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Rollback: the source restores its own checkpoint.
func TestCRIURuntimeResume(t *testing.T) {
	testenv.RequireCRIU(t)
	ctx := context.Background()
	const ip = "127.0.0.32"
	rt := newTestCRIURuntime(t, ip)
	m := startMemhog(t, 64, ip)
	id := strconv.Itoa(m.pid)
	spec, err := rt.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	before := m.state(t)
	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := rt.Checkpoint(ctx, id, dir); err != nil {
		t.Fatal(err)
	}
	m.waitExited(t)
	// A repeated Checkpoint finds the dump done.
	if err := rt.Checkpoint(ctx, id, dir); err != nil {
		t.Fatalf("repeated Checkpoint: %v", err)
	}
	start := time.Now()
	if err := rt.Resume(ctx, spec, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("resume of 64 MiB: %v", time.Since(start).Round(time.Millisecond))
	removeOnCleanup(t, rt, id)
	if err := rt.Verify(ctx, id); err != nil {
		t.Fatalf("Verify after Resume: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	checkContinued(t, before, m.state(t))
	// Resume again: harmless, same process.
	if err := rt.Resume(ctx, spec, dir); err != nil {
		t.Fatalf("second Resume: %v", err)
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := queryMemhog(m.addr); err == nil {
		t.Error("memhog still answers after Remove")
	}
	waitNotZombie(t, m.pid)
}

// Pre-flight refuses a process holding an MPTCP socket and leaves it running.
func TestCRIURuntimePreflightMPTCP(t *testing.T) {
	testenv.RequireCRIU(t)
	if b, err := os.ReadFile("/proc/sys/net/mptcp/enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("kernel has MPTCP disabled (net.mptcp.enabled != 1)")
	}
	ctx := context.Background()
	rt := newTestCRIURuntime(t, "127.0.0.33")
	cmd, addr := listenerChild(t, "mptcp", "127.0.0.33")
	spec, err := rt.Inspect(ctx, strconv.Itoa(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	err = rt.CheckSource(ctx, spec)
	if !errors.Is(err, ErrNotCheckpointable) || !strings.Contains(err.Error(), "MPTCP") {
		t.Fatalf("CheckSource = %v, want ErrNotCheckpointable naming MPTCP", err)
	}
	t.Logf("refused: %v", err)
	expectListenerAnswers(t, cmd.Process.Pid, addr)

	// Dumping anyway fails inside CRIU; the error quotes CRIU's log and the process is
	// thawed, not killed.
	err = rt.Checkpoint(ctx, spec.ID, filepath.Join(t.TempDir(), "checkpoint"))
	if err == nil {
		t.Fatal("Checkpoint of an MPTCP process succeeded")
	}
	if !strings.Contains(err.Error(), "criu-dump.log ends:") || !strings.Contains(err.Error(), "262") {
		t.Errorf("Checkpoint error does not quote the CRIU log's reason: %v", err)
	}
	t.Logf("dump failed as expected: %v", err)
	expectListenerAnswers(t, cmd.Process.Pid, addr)
	// The orchestrator's rollback after a failed dump: nothing to restore, the process
	// never stopped.
	if err := rt.Resume(ctx, spec, filepath.Join(t.TempDir(), "checkpoint")); err != nil {
		t.Errorf("Resume after a failed dump: %v", err)
	}
	expectListenerAnswers(t, cmd.Process.Pid, addr)
}

func expectListenerAnswers(t *testing.T, pid int, addr string) {
	t.Helper()
	if st, err := readProcStat(pid); err != nil || st.state == 'T' || st.state == 't' || st.state == 'Z' {
		t.Fatalf("process %d: state %c, err %v; want running", pid, st.state, err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("process no longer answers: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ok\n" {
		t.Fatalf("process answered %q, %v", line, err)
	}
}

func TestCRIURuntimeCheckTarget(t *testing.T) {
	testenv.RequireCRIU(t)
	ctx := context.Background()
	rt := newTestCRIURuntime(t, "127.0.0.1")
	for _, tc := range []struct {
		desc    string
		spec    Spec
		wantErr error
		substr  string
	}{
		{"fits", Spec{Runtime: "criu", Arch: runtime.GOARCH, MemoryBytes: 1 << 20}, nil, ""},
		{"too big", Spec{Runtime: "criu", Arch: runtime.GOARCH, MemoryBytes: 1 << 50}, ErrPreflight, "not enough memory"},
		{"other arch", Spec{Runtime: "criu", Arch: "riscv64", MemoryBytes: 1 << 20}, ErrPreflight, "riscv64"},
		{"other runtime", Spec{Runtime: "docker", Arch: runtime.GOARCH}, ErrPreflight, "docker"},
	} {
		err := rt.CheckTarget(ctx, &tc.spec)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil && !strings.Contains(err.Error(), tc.substr)) {
			t.Errorf("%s: CheckTarget = %v, want %v containing %q", tc.desc, err, tc.wantErr, tc.substr)
		}
	}
}

func TestCRIURuntimeMissing(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	rt := newTestCRIURuntime(t, "127.0.0.1")
	for _, id := range []string{"staged-nope", "999999999", "x"} {
		if err := rt.Remove(ctx, id); err != nil && id != "x" {
			t.Errorf("Remove(%q) = %v, want nil for a missing workload", id, err)
		}
		if _, err := rt.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Inspect(%q) = %v, want ErrNotFound", id, err)
		}
		if err := rt.Verify(ctx, id); err == nil {
			t.Errorf("Verify(%q) succeeded", id)
		}
	}
	if _, err := rt.Prepare(ctx, "../escape", &Spec{Runtime: "criu"}); err == nil {
		t.Error("Prepare accepted a migration ID with a slash")
	}
}

func TestCRIURuntimeConfigValidate(t *testing.T) {
	base := DefaultCRIURuntimeConfig()
	base.WorkDir = "/var/lib/godwit/criu"
	if err := base.Validate(); err != nil {
		t.Fatalf("default config with WorkDir: %v", err)
	}
	for _, tc := range []struct {
		desc  string
		mod   func(*CRIURuntimeConfig)
		field string
	}{
		{"no work dir", func(c *CRIURuntimeConfig) { c.WorkDir = "" }, "WorkDir"},
		{"relative work dir", func(c *CRIURuntimeConfig) { c.WorkDir = "criu" }, "WorkDir"},
		{"probe host name", func(c *CRIURuntimeConfig) { c.ProbeHost = "localhost" }, "ProbeHost"},
		{"zero probe timeout", func(c *CRIURuntimeConfig) { c.ProbeTimeout = 0 }, "ProbeTimeout"},
		{"negative margin", func(c *CRIURuntimeConfig) { c.MemoryMargin = -1 }, "MemoryMargin"},
		{"log level", func(c *CRIURuntimeConfig) { c.LogLevel = 5 }, "LogLevel"},
	} {
		c := base
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.desc, err, tc.field)
		}
	}
}

// criuNode is one simulated node: a CRIU runtime and its migration service (TLS) on the
// node's own 127.0.0.x address.
type criuNode struct {
	rt       *CRIURuntime
	node     *Node
	endpoint string
	stateDir string
	fault    func(string) error
}

func startCRIUNode(t *testing.T, p *testPKI, name, addr, probeHost string) *criuNode {
	t.Helper()
	rt := newTestCRIURuntime(t, probeHost)
	state := t.TempDir()
	cn := &criuNode{rt: rt, stateDir: state}
	n, err := NewNode(NodeConfig{Name: name, Runtime: rt, StateDir: state, TLS: p.tls(t, name, pki.RoleClient),
		Fault: func(point string) error {
			if cn.fault != nil {
				return cn.fault(point)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	bound, err := n.Listen(addr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	t.Cleanup(func() { n.Close() })
	cn.node, cn.endpoint = n, bound
	return cn
}

func (cn *criuNode) migrate(ctx context.Context, id string, to *criuNode, mid string) (*Report, error) {
	return cn.node.Migrate(ctx, Order{ID: mid, Workload: id, TargetNode: to.node.Name(), TargetAddr: to.endpoint})
}

// Through the real orchestrator and transfer: migrate, migrate back, a rollback, and a
// refusal. Plain processes share the host's network namespace, so the workload keeps
// listening on its own address wherever it runs, and both nodes probe that address.
func TestCRIUMigrateEndToEnd(t *testing.T) {
	testenv.RequireCRIU(t)
	ctx := context.Background()
	const workIP = "127.0.0.36"
	p := newTestPKI(t)
	n1 := startCRIUNode(t, p, "n1", "127.0.0.37", workIP)
	n2 := startCRIUNode(t, p, "n2", "127.0.0.38", workIP)
	m := startMemhog(t, 64, workIP)
	id := strconv.Itoa(m.pid)

	before := m.state(t)
	rep, err := n1.migrate(ctx, id, n2, "e2e-1")
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	removeOnCleanup(t, n2.rt, rep.TargetID)
	t.Logf("to n2: target ID %s, downtime %v, checkpoint %d MiB, phases %v", rep.TargetID, rep.Downtime, rep.CheckpointBytes>>20, rep.Phases)
	time.Sleep(200 * time.Millisecond)
	mid := m.state(t)
	checkContinued(t, before, mid)
	if err := n2.rt.Verify(ctx, rep.TargetID); err != nil {
		t.Fatalf("target Verify(%s): %v", rep.TargetID, err)
	}
	if err := n1.rt.Verify(ctx, id); err == nil {
		t.Error("source still reports the workload")
	}
	if n := countFiles(t, filepath.Join(n1.stateDir, "checkpoints")); n != 0 {
		t.Errorf("%d files left in the source's state dir", n)
	}

	// And back, addressed by the target's ID.
	rep2, err := n2.migrate(ctx, rep.TargetID, n1, "e2e-2")
	if err != nil {
		t.Fatalf("Migrate back: %v", err)
	}
	removeOnCleanup(t, n1.rt, rep2.TargetID)
	time.Sleep(200 * time.Millisecond)
	checkContinued(t, mid, m.state(t))
	if err := n1.rt.Verify(ctx, rep2.TargetID); err != nil {
		t.Fatalf("Verify after migrating back: %v", err)
	}

	// A failure after the freeze rolls back onto the source.
	before = m.state(t)
	n2.fault = func(point string) error {
		if point == "target-before-restore" {
			return errors.New("injected failure before restore")
		}
		return nil
	}
	_, err = n1.migrate(ctx, rep2.TargetID, n2, "e2e-3")
	n2.fault = nil
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("Migrate with a failure before restore = %v, want ErrRolledBack", err)
	}
	time.Sleep(200 * time.Millisecond)
	checkContinued(t, before, m.state(t))
	if err := n1.rt.Verify(ctx, rep2.TargetID); err != nil {
		t.Fatalf("Verify after rollback: %v", err)
	}

	// An MPTCP process is refused before anything freezes.
	cmd, addr := listenerChild(t, "mptcp", "127.0.0.36")
	_, err = n1.migrate(ctx, strconv.Itoa(cmd.Process.Pid), n2, "e2e-4")
	if !errors.Is(err, ErrNotCheckpointable) || !strings.Contains(err.Error(), "MPTCP") {
		t.Fatalf("Migrate of an MPTCP process = %v, want ErrNotCheckpointable naming MPTCP", err)
	}
	expectListenerAnswers(t, cmd.Process.Pid, addr)
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}
