package gossip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CgroupLoadSource measures containers from their cgroups. A node's load is the sum over
// its own containers (IDs), so several agents on one machine, each with its own Docker
// daemon, report their own load; the agent divides by its configured Capacity.
//
// It reads cgroup v2 (memory.current, memory.stat, cpu.stat, memory.pressure) when Root
// is a unified hierarchy, and falls back to cgroup v1 (memory/…/memory.usage_in_bytes,
// cpuacct/…/cpuacct.usage) otherwise: this project's CI machines run a v1 host. Memory in
// use excludes the inactive file cache, as `docker stats` does. CPU is the usage rate
// between two samples, so a container's first sample reports 0 cores.
type CgroupLoadSource struct {
	// Root is the cgroup mount, normally /sys/fs/cgroup.
	Root string
	// IDs returns the IDs of the node's containers (from its container runtime).
	IDs func() []string
	// Patterns locate a container's cgroup below a controller root; %s is the ID.
	// Nil means DefaultCgroupPatterns.
	Patterns []string

	mu   sync.Mutex
	prev map[string]cpuMark
}

// DefaultCgroupPatterns cover Docker's systemd and cgroupfs drivers.
var DefaultCgroupPatterns = []string{"system.slice/docker-%s.scope", "docker/%s"}

type cpuMark struct {
	usage time.Duration
	at    time.Time
}

var _ LoadSource = (*CgroupLoadSource)(nil)

// NewCgroupLoadSource returns a source over the cgroups under root of the containers
// ids reports.
func NewCgroupLoadSource(root string, ids func() []string) *CgroupLoadSource {
	return &CgroupLoadSource{Root: root, IDs: ids}
}

// ErrNoCgroup is returned (wrapped) by CgroupLoadSource.Sample for a container whose
// cgroup is not found under any pattern; the other containers are still measured.
var ErrNoCgroup = errors.New("gossip: container cgroup not found")

// Sample measures every container IDs returns. Containers whose cgroup cannot be read
// are left out, and reported together in the error (the sample is still usable).
func (c *CgroupLoadSource) Sample(now time.Time) (LoadSample, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prev == nil {
		c.prev = map[string]cpuMark{}
	}
	var ids []string
	if c.IDs != nil {
		ids = c.IDs()
	}
	v2 := fileExists(filepath.Join(c.Root, "cgroup.controllers"))
	out := LoadSample{Containers: make(map[string]ContainerUsage, len(ids))}
	var errs []error
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
		var (
			u        ContainerUsage
			cpu      time.Duration
			pressure float64
			err      error
		)
		if v2 {
			u.MemoryBytes, cpu, pressure, err = c.readV2(id)
		} else {
			u.MemoryBytes, cpu, err = c.readV1(id)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", id, err))
			delete(c.prev, id)
			continue
		}
		if p, ok := c.prev[id]; ok && now.After(p.at) && cpu >= p.usage {
			u.CPUCores = float64(cpu-p.usage) / float64(now.Sub(p.at))
		}
		c.prev[id] = cpuMark{usage: cpu, at: now}
		out.Containers[id] = u
		out.CPUCores += u.CPUCores
		out.MemoryBytes += u.MemoryBytes
		out.MemoryPressure = max(out.MemoryPressure, pressure)
	}
	for id := range c.prev {
		if !seen[id] {
			delete(c.prev, id)
		}
	}
	return out, errors.Join(errs...)
}

func (c *CgroupLoadSource) find(controllerRoot, id string) (string, error) {
	pats := c.Patterns
	if pats == nil {
		pats = DefaultCgroupPatterns
	}
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("%w: bad container id %q", ErrNoCgroup, id)
	}
	for _, p := range pats {
		dir := filepath.Join(controllerRoot, fmt.Sprintf(p, id))
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w under %s", ErrNoCgroup, controllerRoot)
}

func (c *CgroupLoadSource) readV2(id string) (mem uint64, cpu time.Duration, pressure float64, err error) {
	dir, err := c.find(c.Root, id)
	if err != nil {
		return 0, 0, 0, err
	}
	mem, err = readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return 0, 0, 0, err
	}
	if st, err := readKV(filepath.Join(dir, "memory.stat")); err == nil {
		mem = subFloor(mem, st["inactive_file"])
	}
	st, err := readKV(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, 0, 0, err
	}
	usec, ok := st["usage_usec"]
	if !ok {
		return 0, 0, 0, fmt.Errorf("%s: no usage_usec", filepath.Join(dir, "cpu.stat"))
	}
	cpu = time.Duration(usec) * time.Microsecond
	pressure, _ = readPressure(filepath.Join(dir, "memory.pressure")) // absent without PSI
	return mem, cpu, pressure, nil
}

func (c *CgroupLoadSource) readV1(id string) (mem uint64, cpu time.Duration, err error) {
	mdir, err := c.find(filepath.Join(c.Root, "memory"), id)
	if err != nil {
		return 0, 0, err
	}
	mem, err = readUint(filepath.Join(mdir, "memory.usage_in_bytes"))
	if err != nil {
		return 0, 0, err
	}
	if st, err := readKV(filepath.Join(mdir, "memory.stat")); err == nil {
		mem = subFloor(mem, st["total_inactive_file"])
	}
	cdir, err := c.find(filepath.Join(c.Root, "cpuacct"), id)
	if err != nil {
		return 0, 0, err
	}
	ns, err := readUint(filepath.Join(cdir, "cpuacct.usage"))
	if err != nil {
		return 0, 0, err
	}
	return mem, time.Duration(ns), nil
}

func subFloor(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

// readKV reads "key value" lines (memory.stat, cpu.stat).
func readKV(p string) (map[string]uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}

// readPressure reads the "some avg10=" share (0..1) of a PSI file.
func readPressure(p string) (float64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "avg10="); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || x < 0 || x > 100 {
					return 0, fmt.Errorf("%s: bad avg10 %q", p, v)
				}
				return x / 100, nil
			}
		}
	}
	return 0, fmt.Errorf("%s: no some avg10", p)
}
