package gossip

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCgroupV2 reads a fake unified hierarchy laid out as Docker's systemd driver does.
func TestCgroupV2(t *testing.T) {
	root := t.TempDir()
	dir := "system.slice/docker-aaa.scope/"
	writeFiles(t, root, map[string]string{
		"cgroup.controllers":        "cpu memory",
		dir + "memory.current":      "1000000\n",
		dir + "memory.stat":         "anon 600000\ninactive_file 200000\n",
		dir + "cpu.stat":            "usage_usec 1000000\nuser_usec 1\n",
		dir + "memory.pressure":     "some avg10=2.50 avg60=0 avg300=0 total=1\nfull avg10=0 avg60=0 avg300=0 total=0\n",
		"docker/bbb/memory.current": "500\n",
		"docker/bbb/cpu.stat":       "usage_usec 0\n",
	})
	src := NewCgroupLoadSource(root, func() []string { return []string{"aaa", "bbb", "missing"} })
	t0 := time.Unix(100, 0)
	s, err := src.Sample(t0)
	if !errors.Is(err, ErrNoCgroup) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("want ErrNoCgroup for the missing container, got %v", err)
	}
	want := LoadSample{MemoryBytes: 800000 + 500, MemoryPressure: 0.025, Containers: map[string]ContainerUsage{
		"aaa": {MemoryBytes: 800000}, "bbb": {MemoryBytes: 500},
	}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("first sample (-want +got):\n%s", diff)
	}
	// 1.5 s of CPU over 1 s: 1.5 cores.
	writeFiles(t, root, map[string]string{dir + "cpu.stat": "usage_usec 2500000\n"})
	s, _ = src.Sample(t0.Add(time.Second))
	if math.Abs(s.Containers["aaa"].CPUCores-1.5) > 1e-9 || math.Abs(s.CPUCores-1.5) > 1e-9 {
		t.Errorf("cpu: got %+v", s)
	}
}

// TestCgroupV1 reads a fake v1 layout (Docker's cgroupfs driver), as on this project's
// CI machines.
func TestCgroupV1(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"memory/docker/ccc/memory.usage_in_bytes": "4096\n",
		"memory/docker/ccc/memory.stat":           "total_inactive_file 1024\n",
		"cpuacct/docker/ccc/cpuacct.usage":        "1000000000\n",
	})
	src := NewCgroupLoadSource(root, func() []string { return []string{"ccc"} })
	t0 := time.Unix(100, 0)
	if _, err := src.Sample(t0); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, map[string]string{"cpuacct/docker/ccc/cpuacct.usage": "1500000000\n"})
	s, err := src.Sample(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryBytes != 3072 || math.Abs(s.CPUCores-0.5) > 1e-9 {
		t.Errorf("got %+v", s)
	}
}

// TestCgroupRealKernel makes a real cgroup (v2, or v1 memory+cpuacct as on this
// project's machines), starts a child process inside it, and measures it through
// CgroupLoadSource. Needs root and a writable /sys/fs/cgroup, else skips; removes the
// cgroup and the child even on failure.
//
// The child is inside the cgroup before it has any memory of its own: a shell writes its
// own PID into cgroup.procs and then execs the child (this test binary again, as
// TestCgroupChildProcess), so every page the child touches is charged to the new cgroup
// (on cgroup v1 with move_charge_at_immigrate=0, pages touched before a move stay charged
// to the old group). Nothing depends on timing: the child says when its memory is
// touched and when it has used a given amount of CPU, and the test samples around that.
func TestCgroupRealKernel(t *testing.T) {
	const root = "/sys/fs/cgroup"
	id := fmt.Sprintf("godwit-gossip-test-%d", os.Getpid())
	var dirs []string
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		dirs = []string{filepath.Join(root, id)}
	} else {
		dirs = []string{filepath.Join(root, "memory", id), filepath.Join(root, "cpuacct", id)}
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Skipf("cannot create a cgroup here (%v)", err)
		}
		t.Cleanup(func() { _ = os.Remove(d) })
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := ""
	for _, d := range dirs {
		script += fmt.Sprintf("echo $$ > %q/cgroup.procs || exit 97; ", d)
	}
	script += `exec "$0" -test.run='^TestCgroupChildProcess$'`
	cmd := exec.Command("sh", "-c", script, self)
	cmd.Env = append(os.Environ(), cgroupChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after the rmdirs, so it runs first: the cgroup must be empty to go.
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		_ = cmd.Process.Kill()
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 97 {
			t.Skipf("cannot start a process inside %v", dirs)
		}
		t.Fatalf("child ended before saying %q: %v", want, err)
	}
	expect("touched")

	src := &CgroupLoadSource{Root: root, IDs: func() []string { return []string{id} }, Patterns: []string{"%s"}}
	if _, err := src.Sample(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "burn\n"); err != nil {
		t.Fatal(err)
	}
	expect("burnt")
	s, err := src.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Between the two samples the child used at least cgroupChildBurn of CPU, so its rate
	// is above 0 however busy the machine is; it is one busy goroutine, so at most about
	// one core (the bound allows for the Go runtime's own threads).
	if s.CPUCores <= 0 || s.CPUCores > float64(runtime.NumCPU()) {
		t.Errorf("child measured at %.3f cores; want more than 0 and at most %d", s.CPUCores, runtime.NumCPU())
	}
	if s.MemoryBytes < cgroupChildMemory {
		t.Errorf("child measured at %d bytes; it touched %d in the cgroup", s.MemoryBytes, cgroupChildMemory)
	}
	t.Logf("child: %.3f cores, %d bytes", s.CPUCores, s.MemoryBytes)
}

const (
	cgroupChildEnv    = "GODWIT_TEST_CGROUP_CHILD"
	cgroupChildMemory = 16 << 20
	cgroupChildBurn   = 100 * time.Millisecond
)

// cgroupChildSink keeps the child's memory reachable.
var cgroupChildSink []byte

// TestCgroupChildProcess is the child of TestCgroupRealKernel, not a test of its own: it
// touches cgroupChildMemory bytes and says "touched", then for each line on stdin uses
// cgroupChildBurn of CPU and says "burnt".
func TestCgroupChildProcess(t *testing.T) {
	if os.Getenv(cgroupChildEnv) != "1" {
		t.Skip("the child process of TestCgroupRealKernel")
	}
	cgroupChildSink = make([]byte, cgroupChildMemory)
	for i := range cgroupChildSink {
		cgroupChildSink[i] = byte(i)
	}
	fmt.Println("touched")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		start := childCPUTime()
		x := uint64(1)
		for childCPUTime()-start < cgroupChildBurn {
			for range 100_000 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		cgroupChildSink[0] = byte(x)
		fmt.Println("burnt")
	}
	os.Exit(0)
}

// childCPUTime is the CPU time this process has used.
func childCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestStaticLoadSourceCopies(t *testing.T) {
	src := NewStaticLoadSource(LoadSample{CPUCores: 1, Containers: map[string]ContainerUsage{"a": {CPUCores: 1}}})
	s, _ := src.Sample(time.Time{})
	s.Containers["a"] = ContainerUsage{CPUCores: 9}
	again, _ := src.Sample(time.Time{})
	if again.Containers["a"].CPUCores != 1 {
		t.Errorf("sample shares its map")
	}
	src.SetError(errors.New("boom"))
	if _, err := src.Sample(time.Time{}); err == nil {
		t.Errorf("SetError ignored")
	}
}

func TestLinkMeter(t *testing.T) {
	t0 := time.Unix(0, 0)
	var m linkMeter
	m.observe(100e6, 1, t0, time.Minute) // 100 MB/s
	m.observe(10e6, 1, t0, time.Minute)  // then 10 MB/s, same moment: byte-weighted 55 MB/s
	if e := m.estimate("p"); math.Abs(e.BytesPerSecond-55e6) > 1 || e.Samples != 2 {
		t.Errorf("got %+v", e)
	}
	// Ten half-lives later one 10 MB/s transfer dominates.
	m.observe(10e6, 1, t0.Add(10*time.Minute), time.Minute)
	if e := m.estimate("p"); math.Abs(e.BytesPerSecond-10e6)/10e6 > 0.05 || !e.ObservedAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("old observations should fade: %+v", e)
	}
}

func TestSubscriptionNeverBlocks(t *testing.T) {
	h := newEventHub()
	s := h.subscribe(1)
	h.publish([]Event{{Type: EventJoin}, {Type: EventLeave}, {Type: EventFailed}})
	if s.Dropped() != 2 {
		t.Errorf("dropped %d, want 2", s.Dropped())
	}
	if e := <-s.C; e.Type != EventJoin {
		t.Errorf("got %v", e.Type)
	}
	s.Cancel()
	s.Cancel()
	h.publish([]Event{{Type: EventJoin}}) // no panic on a cancelled subscription
	if _, ok := <-s.C; ok {
		t.Errorf("channel not closed")
	}
}
