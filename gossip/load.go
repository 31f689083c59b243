package gossip

import (
	"sync"
	"time"
)

// LoadSource measures the resource use of a node's containers. Sample is called from one
// goroutine at a time, every Config.LoadInterval; it should take milliseconds, not
// seconds.
type LoadSource interface {
	Sample(now time.Time) (LoadSample, error)
}

// LoadSample is one measurement: totals over the node's containers, and per container.
type LoadSample struct {
	CPUCores       float64
	MemoryBytes    uint64
	MemoryPressure float64 // 0..1
	// Containers maps container ID to its use; the agent copies these into the matching
	// inventory entries. May be nil.
	Containers map[string]ContainerUsage
}

// ContainerUsage is one container's resource use.
type ContainerUsage struct {
	CPUCores    float64
	MemoryBytes uint64
}

// StaticLoadSource is a LoadSource returning whatever was last Set: for tests, the
// simulator's agents and nodes without cgroup access. Safe for concurrent use.
type StaticLoadSource struct {
	mu     sync.Mutex
	sample LoadSample
	err    error
}

var _ LoadSource = (*StaticLoadSource)(nil)

// NewStaticLoadSource returns a source that reports s until Set is called.
func NewStaticLoadSource(s LoadSample) *StaticLoadSource { return &StaticLoadSource{sample: s} }

// Set replaces the sample (and clears any error).
func (f *StaticLoadSource) Set(s LoadSample) {
	f.mu.Lock()
	f.sample, f.err = s, nil
	f.mu.Unlock()
}

// SetError makes Sample fail with err until the next Set.
func (f *StaticLoadSource) SetError(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Sample returns a copy of the current sample.
func (f *StaticLoadSource) Sample(time.Time) (LoadSample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sample
	if s.Containers != nil {
		s.Containers = make(map[string]ContainerUsage, len(f.sample.Containers))
		for k, v := range f.sample.Containers {
			s.Containers[k] = v
		}
	}
	return s, f.err
}
