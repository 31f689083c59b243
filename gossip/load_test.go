package gossip

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// project's machines), runs a busy child process in it, and measures it through
// CgroupLoadSource. Needs root and a writable /sys/fs/cgroup, else skips; removes the
// cgroup and the child even on failure.
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
	// The child touches its memory only after it has been moved into the cgroup: on cgroup
	// v1 pages charged before the move stay with the old cgroup, and a bare busy loop may
	// then show 0 bytes.
	cmd := exec.Command("sh", "-c", `sleep 0.3; x=$(head -c 4000000 /dev/zero | tr '\0' a); while :; do :; done`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after the rmdirs, so it runs first: the cgroup must be empty to go.
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Skipf("cannot move a process into %s (%v)", d, err)
		}
	}
	src := &CgroupLoadSource{Root: root, IDs: func() []string { return []string{id} }, Patterns: []string{"%s"}}
	time.Sleep(time.Second) // the child allocates, then spins
	t0 := time.Now()
	if _, err := src.Sample(t0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	s, err := src.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A busy loop uses up to one core; on a 2-core machine shared with fuzzers and other
	// tests it may get little of it, so only require that its use shows.
	if s.CPUCores < 0.02 || s.CPUCores > 1.1 || s.MemoryBytes == 0 {
		t.Errorf("busy child measured as %.2f cores, %d bytes; want 0.02..1.1 cores, > 0 bytes", s.CPUCores, s.MemoryBytes)
	}
	t.Logf("busy child: %.2f cores, %d bytes", s.CPUCores, s.MemoryBytes)
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
