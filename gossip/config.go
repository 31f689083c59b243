package gossip

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
)

// Config configures one Agent. Start from DefaultLANConfig (nodes of one site or a metro
// edge) or DefaultWANConfig (sites far apart), set Name, BindAddr and Join, and call
// Validate (Start does too). A Config must not be changed after Start.
type Config struct {
	// Name identifies the node in the cluster; unique, 1..128 bytes.
	Name string

	// BindAddr and BindPort are where memberlist listens (UDP and TCP on the same port).
	// BindPort 0 picks a free port; Agent.Addr reports it.
	BindAddr string
	BindPort int

	// AdvertiseAddr and AdvertisePort are what other nodes are told to use; empty and 0
	// mean the bind address and port.
	AdvertiseAddr string
	AdvertisePort int

	// Join lists "host:port" addresses of existing members. Start keeps retrying them in
	// the background, JoinRetryInterval apart (doubling up to JoinRetryMaxInterval), until
	// one is reached or the agent shuts down. Empty means: start a new cluster.
	Join                 []string
	JoinRetryInterval    time.Duration
	JoinRetryMaxInterval time.Duration

	// SecretKey enables memberlist's encryption (AES-GCM) with this key: 16, 24 or 32
	// bytes. Production configs set it; every member must use the same key, and a node
	// with another key (or none) cannot join.
	SecretKey []byte

	// Labels are published with the node: site, zone, arch, anything the operator sets.
	// LabelSite is also carried in the node meta.
	Labels map[string]string

	// Capacity is what the node offers godwit's containers; load is use against it, so
	// several agents on one machine each report their own load.
	Capacity Capacity

	// LoadSource is sampled every LoadInterval. Nil means the load only changes through
	// Agent.SetLoad.
	LoadSource   LoadSource
	LoadInterval time.Duration

	// PublishThreshold is the smallest change of CPU or memory fraction (0..1) that makes
	// the agent broadcast its load at once; smaller drifts wait for RefreshInterval.
	PublishThreshold float64

	// RefreshInterval is the longest time between two broadcasts of the node's state,
	// which also carries its current network coordinate.
	RefreshInterval time.Duration

	// LoadChangeThreshold is the change of a node's CPU or memory fraction (0..1), against
	// the last value announced to subscribers, that raises an EventLoadChange.
	LoadChangeThreshold float64

	// EventBuffer is the default channel buffer of Subscribe.
	EventBuffer int

	// MaxContainers bounds the inventory a node publishes (and accepts from others).
	MaxContainers int

	// MaxLinks bounds the bandwidth estimates a node publishes (the most recent ones).
	MaxLinks int

	// BandwidthHalfLife weighs transfer observations: an observation this old counts half
	// as much as a new one.
	BandwidthHalfLife time.Duration

	// FailedRetention is how long a failed or departed node stays in the view (marked,
	// with its inventory stale) before it is forgotten.
	FailedRetention time.Duration

	// Memberlist timing; see memberlist.Config for their meaning.
	ProbeInterval       time.Duration
	ProbeTimeout        time.Duration
	GossipInterval      time.Duration
	GossipNodes         int
	GossipToTheDeadTime time.Duration
	PushPullInterval    time.Duration
	TCPTimeout          time.Duration
	SuspicionMult       int
	RetransmitMult      int
	// DeadNodeReclaimTime lets a failed node come back under its name from another
	// address after this long; 0 means only from the same address.
	DeadNodeReclaimTime time.Duration

	// Coordinate configures the Vivaldi client; nil means coordinate.DefaultConfig().
	Coordinate *coordinate.Config

	// Transport replaces memberlist's UDP/TCP transport, e.g. with a DelayTransport in
	// tests. When set, BindAddr and BindPort must match what it is bound to.
	Transport memberlist.NodeAwareTransport

	// Logger receives the agent's and memberlist's logs; nil means hclog.Default().
	Logger hclog.Logger
}

// Capacity is what a node offers to godwit's containers.
type Capacity struct {
	CPUCores    float64
	MemoryBytes uint64
}

// LabelSite is the label naming a node's site; it is also carried in the node meta.
const LabelSite = "site"

// DefaultLANConfig returns the profile for nodes within one site or a metro edge (RTTs
// under about 50 ms). Memberlist timing is memberlist's LAN profile; the rest is godwit's.
func DefaultLANConfig() Config {
	ml := memberlist.DefaultLANConfig()
	return Config{
		BindAddr: "0.0.0.0",
		BindPort: 7946, // memberlist's customary port
		// A missing seed is usually still booting: retry soon, then back off so a long
		// outage costs little.
		JoinRetryInterval:    time.Second,
		JoinRetryMaxInterval: 30 * time.Second,
		// Sampling every 5 s follows load within a scheduler round (tens of seconds)
		// at negligible cost (a few file reads per container).
		LoadInterval: 5 * time.Second,
		// 5 percentage points: below the scheduler's meaningful resolution, above cgroup
		// sampling noise, so a steady node stays quiet.
		PublishThreshold: 0.05,
		// Refresh carries coordinate drift and heals lost broadcasts even when nothing
		// changes; push-pull does the rest.
		RefreshInterval: 30 * time.Second,
		// 10 points is a change worth waking the leader for.
		LoadChangeThreshold: 0.10,
		EventBuffer:         256,
		// An edge node runs tens of managed containers; 256 leaves room and bounds the
		// state a peer must hold.
		MaxContainers: 256,
		// The links a node recently migrated over; older ones age out.
		MaxLinks: 16,
		// Links change over minutes to hours; a 10 min half-life follows that without
		// jumping on one slow transfer.
		BandwidthHalfLife: 10 * time.Minute,
		// Long enough for the leader to see what a failed node ran and reschedule it.
		FailedRetention: time.Hour,

		ProbeInterval:       ml.ProbeInterval,
		ProbeTimeout:        ml.ProbeTimeout,
		GossipInterval:      ml.GossipInterval,
		GossipNodes:         ml.GossipNodes,
		GossipToTheDeadTime: ml.GossipToTheDeadTime,
		PushPullInterval:    ml.PushPullInterval,
		TCPTimeout:          ml.TCPTimeout,
		SuspicionMult:       ml.SuspicionMult,
		RetransmitMult:      ml.RetransmitMult,
	}
}

// DefaultWANConfig returns the profile for sites far apart or behind slow, lossy links:
// memberlist's WAN timing (longer probe timeouts, slower gossip), and less chatter.
func DefaultWANConfig() Config {
	c := DefaultLANConfig()
	ml := memberlist.DefaultWANConfig()
	c.ProbeInterval = ml.ProbeInterval
	c.ProbeTimeout = ml.ProbeTimeout
	c.GossipInterval = ml.GossipInterval
	c.GossipNodes = ml.GossipNodes
	c.GossipToTheDeadTime = ml.GossipToTheDeadTime
	c.PushPullInterval = ml.PushPullInterval
	c.TCPTimeout = ml.TCPTimeout
	c.SuspicionMult = ml.SuspicionMult
	c.RetransmitMult = ml.RetransmitMult
	c.JoinRetryInterval = 5 * time.Second
	c.JoinRetryMaxInterval = 2 * time.Minute
	c.LoadInterval = 10 * time.Second
	c.RefreshInterval = time.Minute
	return c
}

// Validate reports every invalid field with its allowed range. The error wraps
// ErrInvalidConfig and is a *ConfigError.
func (c *Config) Validate() error {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if len(c.Name) == 0 || len(c.Name) > maxNameLen {
		bad("Name", "must be 1..%d bytes, got %d", maxNameLen, len(c.Name))
	}
	if net.ParseIP(c.BindAddr) == nil {
		bad("BindAddr", "must be an IP address, got %q", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("BindPort", "must be 0..65535, got %d", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr", "must be empty or an IP address, got %q", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("AdvertisePort", "must be 0..65535, got %d", c.AdvertisePort)
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad(fmt.Sprintf("Join[%d]", i), "must be host:port, got %q", j)
		}
	}
	if c.JoinRetryInterval < 10*time.Millisecond || c.JoinRetryInterval > time.Hour {
		bad("JoinRetryInterval", "must be 10ms..1h, got %v", c.JoinRetryInterval)
	}
	if c.JoinRetryMaxInterval < c.JoinRetryInterval || c.JoinRetryMaxInterval > time.Hour {
		bad("JoinRetryMaxInterval", "must be JoinRetryInterval..1h, got %v", c.JoinRetryMaxInterval)
	}
	if n := len(c.SecretKey); n != 0 && n != 16 && n != 24 && n != 32 {
		bad("SecretKey", "must be empty or 16, 24 or 32 bytes, got %d bytes", n)
	}
	if len(c.Labels) > maxLabels {
		bad("Labels", "at most %d labels, got %d", maxLabels, len(c.Labels))
	}
	for k, v := range c.Labels {
		if len(k) == 0 || len(k) > maxLabelLen || len(v) > maxLabelLen {
			bad("Labels["+k+"]", "key must be 1..%d bytes and value 0..%d bytes", maxLabelLen, maxLabelLen)
		}
	}
	if len(c.Labels[LabelSite]) > maxMetaSite {
		bad("Labels[site]", "must be at most %d bytes (it travels in the node meta)", maxMetaSite)
	}
	if !(c.Capacity.CPUCores > 0) || c.Capacity.CPUCores > 1<<16 {
		bad("Capacity.CPUCores", "must be > 0 and <= 65536, got %v", c.Capacity.CPUCores)
	}
	if c.Capacity.MemoryBytes == 0 {
		bad("Capacity.MemoryBytes", "must be > 0")
	}
	if c.LoadInterval < 10*time.Millisecond || c.LoadInterval > time.Hour {
		bad("LoadInterval", "must be 10ms..1h, got %v", c.LoadInterval)
	}
	if !(c.PublishThreshold >= 0 && c.PublishThreshold <= 1) {
		bad("PublishThreshold", "must be 0..1, got %v", c.PublishThreshold)
	}
	if c.RefreshInterval < 100*time.Millisecond || c.RefreshInterval > 24*time.Hour {
		bad("RefreshInterval", "must be 100ms..24h, got %v", c.RefreshInterval)
	}
	if !(c.LoadChangeThreshold > 0 && c.LoadChangeThreshold <= 1) {
		bad("LoadChangeThreshold", "must be > 0 and <= 1, got %v", c.LoadChangeThreshold)
	}
	if c.EventBuffer < 1 || c.EventBuffer > 1<<20 {
		bad("EventBuffer", "must be 1..1048576, got %d", c.EventBuffer)
	}
	if c.MaxContainers < 0 || c.MaxContainers > maxContainers {
		bad("MaxContainers", "must be 0..%d, got %d", maxContainers, c.MaxContainers)
	}
	if c.MaxLinks < 0 || c.MaxLinks > maxLinks {
		bad("MaxLinks", "must be 0..%d, got %d", maxLinks, c.MaxLinks)
	}
	if c.BandwidthHalfLife < time.Second {
		bad("BandwidthHalfLife", "must be >= 1s, got %v", c.BandwidthHalfLife)
	}
	if c.FailedRetention < 0 {
		bad("FailedRetention", "must be >= 0, got %v", c.FailedRetention)
	}
	if c.ProbeInterval < 10*time.Millisecond || c.ProbeInterval > time.Minute {
		bad("ProbeInterval", "must be 10ms..1m, got %v", c.ProbeInterval)
	}
	if c.ProbeTimeout < time.Millisecond || c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout", "must be >= 1ms and below ProbeInterval (%v), got %v", c.ProbeInterval, c.ProbeTimeout)
	}
	if c.GossipInterval < time.Millisecond || c.GossipInterval > time.Minute {
		bad("GossipInterval", "must be 1ms..1m, got %v", c.GossipInterval)
	}
	if c.GossipNodes < 1 || c.GossipNodes > 64 {
		bad("GossipNodes", "must be 1..64, got %d", c.GossipNodes)
	}
	if c.GossipToTheDeadTime < 0 {
		bad("GossipToTheDeadTime", "must be >= 0, got %v", c.GossipToTheDeadTime)
	}
	if c.PushPullInterval < 0 || (c.PushPullInterval > 0 && c.PushPullInterval < 100*time.Millisecond) {
		bad("PushPullInterval", "must be 0 (off) or >= 100ms, got %v", c.PushPullInterval)
	}
	if c.TCPTimeout < 10*time.Millisecond {
		bad("TCPTimeout", "must be >= 10ms, got %v", c.TCPTimeout)
	}
	if c.SuspicionMult < 1 || c.SuspicionMult > 100 {
		bad("SuspicionMult", "must be 1..100, got %d", c.SuspicionMult)
	}
	if c.RetransmitMult < 1 || c.RetransmitMult > 100 {
		bad("RetransmitMult", "must be 1..100, got %d", c.RetransmitMult)
	}
	if c.DeadNodeReclaimTime < 0 {
		bad("DeadNodeReclaimTime", "must be >= 0, got %v", c.DeadNodeReclaimTime)
	}
	if c.Coordinate != nil && (c.Coordinate.Dimensionality < 1 || c.Coordinate.Dimensionality > maxDims) {
		bad("Coordinate.Dimensionality", "must be 1..%d, got %d", maxDims, c.Coordinate.Dimensionality)
	}
	if len(errs) > 0 {
		return &ConfigError{Fields: errs}
	}
	return nil
}

// memberlistConfig translates c; the delegates are set by the caller.
func (c *Config) memberlistConfig(logger hclog.Logger) *memberlist.Config {
	ml := memberlist.DefaultLANConfig()
	ml.Name = c.Name
	ml.BindAddr = c.BindAddr
	ml.BindPort = c.BindPort
	ml.AdvertiseAddr = c.AdvertiseAddr
	ml.AdvertisePort = c.AdvertisePort
	if ml.AdvertisePort == 0 {
		ml.AdvertisePort = c.BindPort
	}
	ml.ProbeInterval = c.ProbeInterval
	ml.ProbeTimeout = c.ProbeTimeout
	ml.GossipInterval = c.GossipInterval
	ml.GossipNodes = c.GossipNodes
	ml.GossipToTheDeadTime = c.GossipToTheDeadTime
	ml.PushPullInterval = c.PushPullInterval
	ml.TCPTimeout = c.TCPTimeout
	ml.SuspicionMult = c.SuspicionMult
	ml.RetransmitMult = c.RetransmitMult
	ml.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	ml.SecretKey = c.SecretKey
	ml.Logger = logger.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	if c.Transport != nil {
		ml.Transport = c.Transport
	}
	return ml
}
