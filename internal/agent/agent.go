package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/metrics"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// Tuning holds the timing the agent starts from: the production profiles by default; tests
// shrink them (WithTuning). Identity, addresses and everything the config file says are set
// by the agent after the tuning function ran.
type Tuning struct {
	Gossip gossip.Config
	Raft   scheduler.ServerConfig
	// LeaderInterval and LeaderPoll are scheduler.LeaderConfig's Interval and PollInterval
	// (0: its defaults).
	LeaderInterval time.Duration
	LeaderPoll     time.Duration
	// ServerInterval is how often a server refreshes its raft peers from gossip and, as
	// leader, checks the policy in force and the drains. Default 1s: gossip events also
	// trigger it, the tick only catches what events miss.
	ServerInterval time.Duration
	// ShutdownLeave bounds how long a stopping agent waits for its leave to spread.
	ShutdownLeave time.Duration
	// ShutdownWait bounds how long a stopping agent waits for the migrations in progress
	// (as source, target or their leader) to end. Default 45s: a migration of a few GiB
	// ends within it here, and with the rest of the shutdown it stays within the systemd
	// unit's TimeoutStopSec (90s); what is still in progress is settled by the journal's
	// recovery at the next start and by the next leader.
	ShutdownWait time.Duration
	// MigrateSettle is migrate.NodeConfig.SettleTimeout (0: its default).
	MigrateSettle time.Duration
	// PostCopyLoopback is migrate.NodeConfig.LoopbackAddr, where post-copy page servers
	// and relays listen ("": its default, 127.0.0.1); tests keep to their own addresses.
	PostCopyLoopback string
}

func defaultTuning(profile string) Tuning {
	g := gossip.DefaultLANConfig()
	if profile == "wan" {
		g = gossip.DefaultWANConfig()
	}
	return Tuning{Gossip: g, Raft: scheduler.DefaultServerConfig(), ServerInterval: time.Second, ShutdownLeave: 5 * time.Second,
		ShutdownWait: 45 * time.Second}
}

// Option changes how New builds the agent.
type Option func(*options)

type options struct {
	rt     migrate.Runtime
	inv    Inventory
	log    *slog.Logger
	tune   func(*Tuning)
	logOut io.Writer
	fault  func(point string) error
}

// WithRuntime makes the agent use rt instead of the Docker engine of the config, and inv
// for its inventory (nil: FakeInventory when rt is a *migrate.FakeRuntime). For tests.
func WithRuntime(rt migrate.Runtime, inv Inventory) Option {
	return func(o *options) { o.rt, o.inv = rt, inv }
}

// WithLogger replaces the logger the config describes.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithLogOutput makes the configured logger write to w (default os.Stderr).
func WithLogOutput(w io.Writer) Option { return func(o *options) { o.logOut = w } }

// WithMigrateFault sets migrate.NodeConfig.Fault: fault-injection tests stop or fail a
// migration at a named point.
func WithMigrateFault(f func(point string) error) Option { return func(o *options) { o.fault = f } }

// WithTuning lets f change the timing before the agent starts.
func WithTuning(f func(*Tuning)) Option { return func(o *options) { o.tune = f } }

// Agent is one running node: gossip, the migration service and, on servers, the control
// plane. Its methods are safe for concurrent use.
type Agent struct {
	cfg    *Config
	tuning Tuning
	log    *slog.Logger
	id     *pki.TLS
	rt     migrate.Runtime
	inv    Inventory
	docker *client.Client // nil unless the agent made it

	node     *migrate.Node
	migAddr  string
	postCopy bool // the runtime passed the post-copy pre-flight at start (scheduler.LabelPostCopy)
	cp       *scheduler.ControlPlane
	events   *metrics.Events   // a server's event counters, fed by its control plane
	metrics  *metrics.Listener // the separate metrics listener (metrics.listen), if any
	raftAddr string
	api      *api.Server
	apiAddr  string
	gossip   atomic.Pointer[gossip.Agent]
	polMu    sync.Mutex
	policy   *policyFile // servers with a policy file; guarded by polMu

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	shutErr error
	kickInv chan struct{}
	kickSrv chan struct{}
}

// New starts an agent as cfg says: the migration service, the control plane on servers,
// then gossip. On error everything started is stopped again.
func New(cfg *Config, opts ...Option) (_ *Agent, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	a := &Agent{cfg: cfg, kickInv: make(chan struct{}, 1), kickSrv: make(chan struct{}, 1)}
	a.tuning = defaultTuning(cfg.Gossip.Profile)
	if o.tune != nil {
		o.tune(&a.tuning)
	}
	a.log = o.log
	if a.log == nil {
		out := o.logOut
		if out == nil {
			out = os.Stderr
		}
		a.log = NewLogger(out, cfg.Log.Level, cfg.Log.Format)
	}
	a.log = a.log.With("node", cfg.Node)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	defer func() {
		if err != nil {
			a.stop()
		}
	}()

	m, err := cfg.readMaterials()
	if err != nil {
		return nil, err
	}
	a.id, a.policy = m.id, m.policy
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := a.openRuntime(o); err != nil {
		return nil, err
	}
	a.checkPostCopy(ctx)
	if err := a.startNode(o.fault); err != nil {
		return nil, err
	}
	if cfg.Server != nil {
		if err := a.startControlPlane(); err != nil {
			return nil, err
		}
	}
	if err := a.startAPI(); err != nil {
		return nil, err
	}
	if err := a.startGossip(m.key); err != nil {
		return nil, err
	}
	// Recovery after Listen and gossip: settling a migration may need the peers.
	a.node.Start(ctx)
	a.wg.Add(1)
	go a.inventoryLoop(ctx)
	if w, ok := a.inv.(Watcher); ok {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.Watch(ctx, func() { kickChan(a.kickInv) })
		}()
	}
	if a.cp != nil {
		a.wg.Add(1)
		go a.serverLoop(ctx)
	}
	a.log.Info("agent started", "role", cfg.Role, "site", cfg.Site, "gossip", a.GossipAddr(), "migration", a.migAddr, "raft", a.raftAddr, "api", a.apiAddr)
	return a, nil
}

func kickChan(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (a *Agent) openRuntime(o options) error {
	if o.rt != nil {
		a.rt, a.inv = o.rt, o.inv
		if a.inv == nil {
			if f, ok := o.rt.(*migrate.FakeRuntime); ok {
				a.inv = FakeInventory{RT: f}
			} else {
				return errors.New("agent: WithRuntime needs an Inventory for this runtime")
			}
		}
		return nil
	}
	cli, err := client.NewClientWithOpts(client.WithHost(a.cfg.Docker.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker.host: %w", err)
	}
	a.docker = cli
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: a.cfg.Docker.DataRoot, RuncRoot: a.cfg.Docker.RuncRoot,
		StateDir: a.migrateDir(), MemoryCapacity: int64(a.cfg.Capacity.Memory), PublishAddress: a.cfg.Docker.PublishAddress,
		Policy: migrate.DockerPolicy{AllowHostNetwork: a.cfg.Accept.AllowHostNetwork, BindRoots: a.cfg.Accept.BindRoots,
			AllowCapabilities: a.cfg.Accept.AllowCapabilities},
	})
	if err != nil {
		return err
	}
	a.rt, a.inv = rt, DockerInventory{Client: cli}
	return nil
}

// checkPostCopyTimeout bounds the post-copy pre-flight at start (it runs `criu check` once).
const checkPostCopyTimeout = 30 * time.Second

// checkPostCopy runs the runtime's post-copy pre-flight once: when it passes, the node
// gossips scheduler.LabelPostCopy=true and the leader may choose post-copy for moves
// between it and another such node. A failure is not an error: the node migrates by
// stop-and-copy, and the log says why.
func (a *Agent) checkPostCopy(ctx context.Context) {
	pc, ok := a.rt.(migrate.PostCopier)
	if !ok {
		a.log.Info("post-copy not offered: the migration runtime cannot do it", "runtime", a.rt.Name())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, checkPostCopyTimeout)
	defer cancel()
	if err := pc.CheckPostCopy(ctx); err != nil {
		a.log.Warn("post-copy not offered: its pre-flight failed", "err", err)
		return
	}
	a.postCopy = true
}

func (a *Agent) migrateDir() string { return filepath.Join(a.cfg.DataDir, "migrate") }

// advertised is the address to publish for a listener bound at bound, given the config's
// advertise (empty: the bound address; port 0: the bound port).
func advertised(adv, bound string) (string, error) {
	if adv == "" {
		host, _, err := net.SplitHostPort(bound)
		if err != nil {
			return "", err
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			return "", fmt.Errorf("bound to %s: set advertise to the address the other nodes dial", bound)
		}
		return bound, nil
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		return "", err
	}
	if port == "0" {
		_, bp, err := net.SplitHostPort(bound)
		if err != nil {
			return "", err
		}
		port = bp
	}
	return net.JoinHostPort(host, port), nil
}

func (a *Agent) startNode(fault func(string) error) error {
	n, err := migrate.NewNode(migrate.NodeConfig{
		Name: a.cfg.Node, Runtime: a.rt, StateDir: a.migrateDir(), TLS: a.id, Fault: fault,
		Log: a.log.With("component", "migrate"), SettleTimeout: a.tuning.MigrateSettle, LoopbackAddr: a.tuning.PostCopyLoopback,
		// What each checkpoint stream took is the link's bandwidth estimate, gossiped for
		// the leader's cost model (gossip keeps it off memberlist's goroutines).
		OnTransfer: func(tr migrate.Transfer) {
			g := a.gossip.Load()
			if g == nil || tr.Duration <= 0 {
				return
			}
			go func() { // off the migration's path: it runs inside the downtime
				if err := g.ObserveTransfer(tr.Peer, tr.Bytes, tr.Duration.Seconds()); err != nil {
					a.log.Debug("bandwidth estimate not recorded", "peer", tr.Peer, "err", err)
				}
			}()
		},
	})
	if err != nil {
		return err
	}
	a.node = n
	bound, err := n.Listen(a.cfg.Migration.Bind)
	if err != nil {
		return err
	}
	if a.migAddr, err = advertised(a.cfg.Migration.Advertise, bound); err != nil {
		return fmt.Errorf("migration: %w", err)
	}
	return nil
}

func (a *Agent) startControlPlane() error {
	sc := a.tuning.Raft
	sc.Name, sc.DataDir, sc.TLS = a.cfg.Node, a.cfg.DataDir, a.id
	sc.BindAddr, sc.BootstrapExpect = a.cfg.Server.Raft.Bind, a.cfg.Server.BootstrapExpect
	sc.AdvertiseAddr = a.cfg.Server.Raft.Advertise
	if _, port, err := net.SplitHostPort(sc.AdvertiseAddr); err == nil && port == "0" {
		// The port is only known once bound: scheduler advertises what it binds when the
		// bind address is a specific IP (validated), so ask for that and publish what it got.
		sc.AdvertiseAddr = ""
	}
	sc.Log = a.log.With("component", "raft")
	a.events = metrics.NewEvents()
	cp, err := scheduler.NewControlPlane(sc, scheduler.LeaderConfig{
		Gossip: a.view, Directory: directory{a}, Nodes: &migrate.Client{TLS: a.id},
		Log: a.log.With("component", "leader"), Interval: a.tuning.LeaderInterval, PollInterval: a.tuning.LeaderPoll,
		Observer: a.events,
	})
	if err != nil {
		return err
	}
	a.cp = cp
	a.raftAddr = cp.Server().Addr()
	return nil
}

// startAPI serves the HTTPS API (before gossip, which publishes its address).
func (a *Agent) startAPI() error {
	mc := metrics.Config{Node: a.cfg.Node, View: a.view, GossipStats: a.gossipStats}
	if a.cp != nil {
		mc.Ledger, mc.Raft, mc.Events = a.cp.FSM().Read, a.cp.Server(), a.events
	}
	mh := metrics.Handler(metrics.NewRegistry(mc))
	s, err := api.New(api.Config{
		Node: a.cfg.Node, Role: a.cfg.Role, Site: a.cfg.Site, TLS: a.id,
		View: a.view, APIAddr: a.nodeAPIAddr, RoleOf: func(n gossip.NodeView) string { return n.Labels[LabelRole] },
		ControlPlane: a.cp, Log: a.log.With("component", "api"),
		Metrics: mh,
	})
	if err != nil {
		return err
	}
	if a.cfg.Metrics.Listen != "" {
		if a.metrics, err = metrics.Listen(a.cfg.Metrics.Listen, a.id.ServerConfig(), mh, a.log.With("component", "metrics")); err != nil {
			return err
		}
	}
	bound, err := s.Listen(a.cfg.API.Bind)
	if err != nil {
		return err
	}
	a.api = s
	if a.apiAddr, err = advertised(a.cfg.API.Advertise, bound); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// nodeAPIAddr is the API address a node publishes (this node's own without gossip).
func (a *Agent) nodeAPIAddr(node string) (string, bool) {
	if node == a.cfg.Node {
		return a.apiAddr, a.apiAddr != ""
	}
	n, ok := a.view().Node(node)
	if !ok {
		return "", false
	}
	addr := n.Labels[LabelAPIAddr]
	return addr, addr != ""
}

func (a *Agent) startGossip(key []byte) error {
	g := a.tuning.Gossip
	g.Name = a.cfg.Node
	host, port, _ := net.SplitHostPort(a.cfg.Gossip.Bind)
	g.BindAddr = host
	g.BindPort, _ = strconv.Atoi(port)
	if a.cfg.Gossip.Advertise != "" {
		ah, ap, _ := net.SplitHostPort(a.cfg.Gossip.Advertise)
		g.AdvertiseAddr = ah
		g.AdvertisePort, _ = strconv.Atoi(ap)
	}
	g.Join = a.cfg.Gossip.Join
	g.SecretKey = key
	g.Capacity = gossip.Capacity{CPUCores: a.cfg.Capacity.CPU, MemoryBytes: uint64(a.cfg.Capacity.Memory)}
	g.Logger = newHCLog(a.log, "gossip")
	g.Labels = a.nodeLabels()
	if d := time.Duration(a.cfg.Gossip.EmulatedDelay); d > 0 {
		tr, err := gossip.NewDelayTransport(g.BindAddr, g.BindPort, func(string, string) time.Duration { return d }, nil)
		if err != nil {
			return err
		}
		g.Transport, g.BindPort = tr, tr.Port()
		a.log.Info("gossip packets delayed on purpose (gossip.emulated_delay)", "delay", d)
	}
	ga, err := gossip.Start(g)
	if err != nil {
		if g.Transport != nil {
			_ = g.Transport.Shutdown()
		}
		return err
	}
	a.gossip.Store(ga)
	if a.cfg.Drain {
		ga.SetDrain(true)
	}
	return nil
}

// nodeLabels are the labels this node publishes: the operator's, the site, and godwit's
// (scheduler.LabelPostCopy among them when the post-copy pre-flight passed).
func (a *Agent) nodeLabels() map[string]string {
	l := map[string]string{}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	if a.cfg.Site != "" {
		l[gossip.LabelSite] = a.cfg.Site
	}
	l[LabelRole] = a.cfg.Role
	l[LabelMigrationAddr] = a.migAddr
	if a.postCopy {
		l[scheduler.LabelPostCopy] = "true"
	}
	if a.raftAddr != "" {
		l[LabelRaftAddr] = a.raftAddr
	}
	if a.apiAddr != "" {
		l[LabelAPIAddr] = a.apiAddr
	}
	return l
}

// view is the gossiped cluster (empty before gossip starts).
func (a *Agent) view() gossip.ClusterView {
	if g := a.gossip.Load(); g != nil {
		return g.View()
	}
	return gossip.ClusterView{Self: a.cfg.Node}
}

// gossipStats is gossip's counters (zero before gossip starts).
func (a *Agent) gossipStats() gossip.Stats {
	if g := a.gossip.Load(); g != nil {
		return g.Stats()
	}
	return gossip.Stats{}
}

// directory finds nodes' migration services in the gossip view.
type directory struct{ a *Agent }

// MigrationAddr implements scheduler.Directory: the address a node publishes, whatever its
// status (a failed node's last address is where to ask once it is back).
func (d directory) MigrationAddr(node string) (string, bool) {
	if node == d.a.cfg.Node {
		return d.a.migAddr, true
	}
	n, ok := d.a.view().Node(node)
	if !ok {
		return "", false
	}
	addr := n.Labels[LabelMigrationAddr]
	return addr, addr != ""
}

// Config is the agent's configuration.
func (a *Agent) Config() *Config { return a.cfg }

// Gossip is the gossip agent.
func (a *Agent) Gossip() *gossip.Agent { return a.gossip.Load() }

// GossipAddr is the gossip address bound ("" before gossip starts).
func (a *Agent) GossipAddr() string {
	if g := a.gossip.Load(); g != nil {
		return g.Addr()
	}
	return ""
}

// MigrationAddr is the migration service's advertised address.
func (a *Agent) MigrationAddr() string { return a.migAddr }

// MetricsAddr is the separate metrics listener's address ("" without metrics.listen).
func (a *Agent) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.Addr()
}

// APIAddr is the HTTPS API's advertised address.
func (a *Agent) APIAddr() string { return a.apiAddr }

// RaftAddr is a server's raft address ("" on clients).
func (a *Agent) RaftAddr() string { return a.raftAddr }

// ControlPlane is a server's control plane (nil on clients).
func (a *Agent) ControlPlane() *scheduler.ControlPlane { return a.cp }

// Node is the migration service.
func (a *Agent) Node() *migrate.Node { return a.node }

// SetDrain sets this node's drain flag in gossip; the leader records a drain it sees.
func (a *Agent) SetDrain(drain bool) {
	if g := a.gossip.Load(); g != nil {
		g.SetDrain(drain)
	}
}

// Shutdown stops the agent gracefully, logging one line per step: it refuses new work
// (orders and pre-flights to its migration service, changes through its API, and, on a
// server, new migrations of the leader loop), hands raft leadership to another voter if it
// leads (or, as the only voter, waits for the migrations it drives), waits up to
// Tuning.ShutdownWait for the migrations this node takes part in, closes the API and the
// migration service (the journal lets the next start settle anything still cut short),
// leaves gossip (peers see the node as left, not failed), and shuts raft down without
// leaving the raft configuration. Safe to call more than once.
func (a *Agent) Shutdown() error {
	a.once.Do(func() {
		a.log.Info("shutting down: refusing new migrations and changes")
		a.stopTakingWork()
		a.shutErr = a.stop()
		a.log.Info("stopped")
	})
	return a.shutErr
}

// stopTakingWork is the first part of a graceful stop: no new work, leadership handed
// over, migrations in progress given their bounded time.
func (a *Agent) stopTakingWork() {
	ctx, cancel := context.WithTimeout(context.Background(), a.tuning.ShutdownWait)
	defer cancel()
	if a.api != nil {
		a.api.StopWrites()
	}
	if a.node != nil {
		// Before leadership moves: the next leader's orders find this node refusing.
		a.node.RefuseNew()
	}
	if a.cp != nil {
		lead := a.cp.Server().IsLeader()
		if lead {
			a.log.Info("leading: handing leadership over", "driving", a.cp.Leader().Driving())
		}
		moved, to, err := a.cp.StopLeading(ctx)
		switch {
		case err != nil:
			a.log.Warn("leadership not handed over; the other servers elect a leader once this one is gone", "err", err)
		case moved:
			a.log.Info("leadership handed over", "leader", to)
		case lead && a.cp.Leader().Driving() > 0:
			a.log.Warn("the only voter: migrations it still drives are left to the next leader", "driving", a.cp.Leader().Driving())
		case lead:
			a.log.Info("the only voter: no migration left to drive")
		}
	}
	if a.node == nil {
		return
	}
	if busy := a.node.InProgress(); len(busy) > 0 {
		a.log.Info("waiting for migrations in progress", "migrations", strings.Join(busy, ","), "max_wait", a.tuning.ShutdownWait)
	}
	if left := a.node.Drain(ctx); len(left) > 0 {
		a.log.Warn("migrations still in progress are left to recovery at the next start", "migrations", strings.Join(left, ","))
	} else {
		a.log.Info("no migration in progress")
	}
}

// stop stops everything started, in order; after New failed it is the whole shutdown.
func (a *Agent) stop() error {
	var errs []error
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.api != nil {
		// Requests in progress get a moment; a migration a request ordered goes on.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.api.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api: %w", err))
		}
		cancel()
		a.log.Info("api closed")
	}
	if a.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.metrics.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		cancel()
	}
	if a.node != nil {
		if err := a.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("migration service: %w", err))
		}
		a.log.Info("migration service closed")
	}
	if g := a.gossip.Load(); g != nil {
		if err := g.Leave(a.tuning.ShutdownLeave); err != nil {
			a.log.Warn("leaving gossip", "err", err)
		} else {
			a.log.Info("left gossip")
		}
		if err := g.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip: %w", err))
		}
	}
	if a.cp != nil {
		if err := a.cp.Shutdown(); err != nil && !errors.Is(err, scheduler.ErrServerShutdown) {
			errs = append(errs, fmt.Errorf("control plane: %w", err))
		}
		a.log.Info("raft closed; this server stays in the raft configuration")
	}
	if a.docker != nil {
		_ = a.docker.Close()
	}
	return errors.Join(errs...)
}

// inventoryLoop lists the runtime's containers every inventory interval and whenever the
// runtime says they changed, measures Docker containers' cgroups, and publishes the
// inventory (when it changed beyond drift) and the node's load.
func (a *Agent) inventoryLoop(ctx context.Context) {
	defer a.wg.Done()
	var cg *gossip.CgroupLoadSource
	var ids []string
	if _, ok := a.inv.(DockerInventory); ok {
		cg = gossip.NewCgroupLoadSource("/sys/fs/cgroup", func() []string { return ids })
		if p := strings.Trim(a.cfg.Docker.CgroupParent, "/"); p != "" {
			cg.Patterns = []string{p + "/%s"}
		}
	}
	var last []gossip.Container
	var lastUse map[string]gossip.ContainerUsage
	published := false
	var lastErr string
	labels := labelWarnings{}
	t := time.NewTicker(time.Duration(a.cfg.Inventory.Interval))
	defer t.Stop()
	for {
		g := a.gossip.Load()
		cs, err := a.inv.Containers(ctx)
		if err == nil {
			labels.check(a.log, cs)
			sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
			var cpu float64
			var mem uint64
			if cg != nil {
				ids = ids[:0]
				for _, c := range cs {
					ids = append(ids, c.ID)
				}
				s, serr := cg.Sample(time.Now())
				if serr != nil {
					a.log.Debug("sampling container cgroups", "err", serr)
				}
				// A container whose cgroup cannot be read now (frozen for a checkpoint,
				// starting) keeps its last known use rather than dropping to zero.
				seen := make(map[string]gossip.ContainerUsage, len(cs))
				for i := range cs {
					u, ok := s.Containers[cs[i].ID]
					if !ok {
						u, ok = lastUse[cs[i].ID]
					}
					if ok {
						cs[i].MemoryBytes, cs[i].CPUCores = u.MemoryBytes, u.CPUCores
						seen[cs[i].ID] = u
					}
				}
				lastUse = seen
			}
			if len(cs) > a.tuning.Gossip.MaxContainers {
				a.log.Warn("more containers than gossip carries; publishing the first", "containers", len(cs), "max", a.tuning.Gossip.MaxContainers)
				cs = cs[:a.tuning.Gossip.MaxContainers]
			}
			for _, c := range cs {
				cpu += c.CPUCores
				mem += c.MemoryBytes
			}
			if !published || !sameInventory(last, cs) {
				if err = g.SetInventory(cs); err == nil {
					last, published = cs, true
					a.log.Debug("inventory published", "containers", len(cs), "memory_bytes", mem)
				}
			}
			if err == nil {
				err = g.SetLoad(cpu, mem, 0)
			}
		}
		if err != nil && ctx.Err() == nil && err.Error() != lastErr {
			a.log.Warn("listing the runtime's containers", "err", err)
		}
		if err != nil {
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.kickInv:
		}
	}
}
