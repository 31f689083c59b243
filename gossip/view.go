package gossip

import (
	"sort"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

// Version orders the states one node publishes. Epoch is the agent's start time (Unix
// nanoseconds, bumped past any version of itself it finds in the cluster), so a restarted
// node's states supersede those of its previous run; Seq counts publications within an
// epoch.
type Version struct {
	Epoch uint64
	Seq   uint64
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	if v.Epoch != o.Epoch {
		return v.Epoch < o.Epoch
	}
	return v.Seq < o.Seq
}

// IsZero reports whether v is the zero Version (nothing known).
func (v Version) IsZero() bool { return v == Version{} }

// Load is a node's resource use against its configured capacity.
type Load struct {
	CPUCores       float64 // cores in use by the node's containers
	CPUCapacity    float64 // cores the node offers
	MemoryBytes    uint64  // memory in use by the node's containers
	MemoryCapacity uint64  // memory the node offers
	// MemoryPressure is the share of time (0..1) tasks stalled on memory (PSI "some",
	// avg10), 0 where the kernel does not report it.
	MemoryPressure float64
}

// CPUFraction is CPUCores / CPUCapacity (0 when the capacity is unknown).
func (l Load) CPUFraction() float64 {
	if l.CPUCapacity <= 0 {
		return 0
	}
	return l.CPUCores / l.CPUCapacity
}

// MemoryFraction is MemoryBytes / MemoryCapacity (0 when the capacity is unknown).
func (l Load) MemoryFraction() float64 {
	if l.MemoryCapacity == 0 {
		return 0
	}
	return float64(l.MemoryBytes) / float64(l.MemoryCapacity)
}

// Container is one managed container in a node's inventory.
type Container struct {
	ID          string
	Name        string
	Image       string
	MemoryBytes uint64
	CPUCores    float64
	Labels      map[string]string
	// UserSites are the sites the container's users are at (for "move closer to users").
	UserSites []string
}

func (c Container) clone() Container {
	c.Labels = cloneLabels(c.Labels)
	if c.UserSites != nil {
		c.UserSites = append([]string(nil), c.UserSites...)
	}
	return c
}

// LinkEstimate is the bandwidth a node measured toward Peer from real transfers.
type LinkEstimate struct {
	Peer           string
	BytesPerSecond float64   // exponentially weighted by age (Config.BandwidthHalfLife)
	Samples        uint32    // transfers observed
	ObservedAt     time.Time // the last transfer, on the measuring node's clock
}

// Age is how old the estimate is at now.
func (l LinkEstimate) Age(now time.Time) time.Duration { return now.Sub(l.ObservedAt) }

// Status is what membership knows about a node.
type Status int

const (
	// StatusUnknown: state was heard of (push-pull) but memberlist has not reported the node.
	StatusUnknown Status = iota
	StatusAlive
	// StatusFailed: memberlist declared the node dead (it stopped answering probes).
	StatusFailed
	// StatusLeft: the node left gracefully.
	StatusLeft
)

func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusFailed:
		return "failed"
	case StatusLeft:
		return "left"
	default:
		return "unknown"
	}
}

// NodeView is one node in a ClusterView. Everything in it is a copy.
type NodeView struct {
	Name        string
	Addr        string // host:port of its gossip endpoint, when membership knows it
	Status      Status
	StatusSince time.Time // local clock

	Version Version // of the newest state received
	Load    Load
	Labels  map[string]string
	Drain   bool

	Containers       []Container
	InventoryVersion Version // of the inventory held here
	// InventoryStale is true when Containers may not be what the node runs now: the
	// node failed or left, or it has announced a newer inventory not received yet, or it
	// failed since this inventory was sent.
	InventoryStale bool

	// Coordinate is the node's latest Vivaldi coordinate known here (nil if none yet).
	Coordinate *coordinate.Coordinate

	// Links are the node's own bandwidth measurements toward its peers.
	Links []LinkEstimate

	// UpdatedAt is when the newest state arrived here (local clock).
	UpdatedAt time.Time
}

// ClusterView is a consistent, read-only snapshot of the cluster as one agent knows it.
// It shares nothing with the agent: callers may keep and read it from any goroutine.
type ClusterView struct {
	Self  string    // the node that took it
	Taken time.Time // when (local clock)
	Nodes []NodeView
	index map[string]int
}

func newClusterView(self string, taken time.Time, nodes []NodeView) ClusterView {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	idx := make(map[string]int, len(nodes))
	for i, n := range nodes {
		idx[n.Name] = i
	}
	return ClusterView{Self: self, Taken: taken, Nodes: nodes, index: idx}
}

// Node returns the named node.
func (v ClusterView) Node(name string) (NodeView, bool) {
	i, ok := v.index[name]
	if !ok {
		return NodeView{}, false
	}
	return v.Nodes[i], true
}

// Alive returns the nodes whose status is StatusAlive, by name.
func (v ClusterView) Alive() []NodeView {
	var out []NodeView
	for _, n := range v.Nodes {
		if n.Status == StatusAlive {
			out = append(out, n)
		}
	}
	return out
}

// RTT estimates the round-trip time between nodes a and b from their network
// coordinates; false when either coordinate is unknown or they are incompatible.
func (v ClusterView) RTT(a, b string) (time.Duration, bool) {
	na, ok1 := v.Node(a)
	nb, ok2 := v.Node(b)
	if !ok1 || !ok2 || na.Coordinate == nil || nb.Coordinate == nil || !na.Coordinate.IsCompatibleWith(nb.Coordinate) {
		return 0, false
	}
	if a == b {
		return 0, true
	}
	return na.Coordinate.DistanceTo(nb.Coordinate), true
}

// Bandwidth returns the bandwidth estimate for the link from a to b, preferring a's own
// measurement and falling back to b's measurement toward a. Its Age(v.Taken) says how
// old it is.
func (v ClusterView) Bandwidth(a, b string) (LinkEstimate, bool) {
	find := func(from, to string) (LinkEstimate, bool) {
		n, ok := v.Node(from)
		if !ok {
			return LinkEstimate{}, false
		}
		for _, l := range n.Links {
			if l.Peer == to {
				return l, true
			}
		}
		return LinkEstimate{}, false
	}
	if l, ok := find(a, b); ok {
		return l, true
	}
	if l, ok := find(b, a); ok {
		l.Peer = b
		return l, true
	}
	return LinkEstimate{}, false
}

func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneContainers(cs []Container) []Container {
	if cs == nil {
		return nil
	}
	out := make([]Container, len(cs))
	for i, c := range cs {
		out[i] = c.clone()
	}
	return out
}
