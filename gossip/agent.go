package gossip

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
)

// maxBroadcastBytes is the largest state sent by UDP gossip: memberlist's UDP buffer
// (1400 bytes) less its compound-message and encryption overhead. A bigger state goes
// out as a summary without its inventory, and the inventory by TCP (SendReliable) to
// every member, and in push-pull.
const maxBroadcastBytes = 1200

// Agent is one node's gossip layer. Its methods are safe for concurrent use.
type Agent struct {
	cfg Config
	log hclog.Logger
	ml  *memberlist.Memberlist
	// alive counts alive members for the broadcast queue's retransmit limit. Not
	// ml.NumMembers: the queue asks while holding its lock, publish holds mu while
	// queueing, and memberlist holds its node lock while calling our delegates (which
	// take mu): asking memberlist there could deadlock.
	alive  atomic.Int64
	queue  *broadcastQueue
	coord  *coordinate.Client
	events *eventHub

	// mu guards store and local.
	mu    sync.Mutex
	store *store
	local localState

	invKick  chan struct{}
	stopCh   chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	joined   chan struct{}
	joinOnce sync.Once

	malformed atomic.Uint64
	// now is the local clock (time.Now).
	now func() time.Time
}

// localState is what this node publishes about itself.
type localState struct {
	version       Version
	invVersion    Version
	invDirty      bool // the inventory changed since the last build
	load          Load
	labels        map[string]string
	drain         bool
	leaving       bool
	containers    []Container
	links         map[string]*linkMeter
	published     *nodeState
	publishedAt   time.Time
	publishedLoad Load
}

// Stats are counters for monitoring and benchmarks.
type Stats struct {
	Members   int    // alive members memberlist knows, self included
	Malformed uint64 // payloads dropped because they did not decode
	Queued    int    // broadcasts waiting to be sent
}

// Start validates cfg, creates the memberlist, and starts the agent's loops; if
// cfg.Join is set it keeps trying to join in the background (see Joined).
func Start(cfg Config) (*Agent, error) {
	if dt, ok := cfg.Transport.(*DelayTransport); ok && cfg.BindPort == 0 {
		cfg.BindPort = dt.Port() // it picked a free port; advertise that one
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.Default()
	}
	logger = logger.With("node", cfg.Name)
	ccfg := cfg.Coordinate
	if ccfg == nil {
		ccfg = coordinate.DefaultConfig()
	}
	cc, err := coordinate.NewClient(ccfg)
	if err != nil {
		return nil, fmt.Errorf("gossip: coordinate client: %w", err)
	}
	a := &Agent{
		cfg:     cfg,
		log:     logger,
		coord:   cc,
		events:  newEventHub(),
		store:   newStore(cfg.Name, cfg.LoadChangeThreshold),
		invKick: make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		joined:  make(chan struct{}),
		now:     time.Now,
	}
	now := a.now()
	a.local = localState{
		version:  Version{Epoch: uint64(now.UnixNano())},
		invDirty: true,
		labels:   cloneLabels(cfg.Labels),
		links:    map[string]*linkMeter{},
		load:     Load{CPUCapacity: cfg.Capacity.CPUCores, MemoryCapacity: cfg.Capacity.MemoryBytes},
	}
	a.queue = &broadcastQueue{mult: cfg.RetransmitMult, numNodes: a.numNodes}

	mlc := cfg.memberlistConfig(logger)
	d := &delegates{a: a}
	mlc.Delegate = d
	mlc.Events = d
	mlc.Ping = d
	// Our own state first, so the first push-pull on join carries it.
	a.mu.Lock()
	a.buildLocked(now)
	a.mu.Unlock()

	ml, err := memberlist.Create(mlc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	a.ml = ml
	a.log.Info("gossip agent started", "addr", a.Addr(), "encrypted", len(cfg.SecretKey) > 0)

	a.wg.Add(3)
	go a.loadLoop()
	go a.inventoryLoop()
	go a.repairLoop()
	if len(cfg.Join) > 0 {
		a.wg.Add(1)
		go a.joinLoop(cfg.Join)
	} else {
		a.joinOnce.Do(func() { close(a.joined) })
	}
	return a, nil
}

// Name is this node's name.
func (a *Agent) Name() string { return a.cfg.Name }

// Addr is this node's gossip address, host:port (with the port actually bound).
func (a *Agent) Addr() string {
	n := a.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Joined is closed once the agent has joined a cluster (at once if Config.Join is
// empty).
func (a *Agent) Joined() <-chan struct{} { return a.joined }

// Join contacts the given host:port addresses now and returns how many it reached;
// ErrNoJoin (wrapping memberlist's error) if none.
func (a *Agent) Join(addrs []string) (int, error) {
	if a.stopped() {
		return 0, ErrShutdown
	}
	n, err := a.ml.Join(addrs)
	if n == 0 {
		hint := ""
		if len(a.cfg.SecretKey) > 0 {
			hint = " (this node encrypts gossip: a peer with a different key, or none, drops our messages and closes the connection)"
		} else {
			hint = " (this node does not encrypt gossip: a cluster that does will refuse it)"
		}
		a.log.Warn("join failed"+hint, "addrs", addrs, "error", err)
		return 0, fmt.Errorf("%w %v: %v%s", ErrNoJoin, addrs, err, hint)
	}
	a.joinOnce.Do(func() { close(a.joined) })
	a.log.Info("joined cluster", "via", addrs, "reached", n)
	// Announce ourselves now that there is someone to gossip to: a state queued before
	// the join went nowhere and may have been given up.
	a.publish()
	return n, nil
}

func (a *Agent) joinLoop(addrs []string) {
	defer a.wg.Done()
	wait := a.cfg.JoinRetryInterval
	for {
		if _, err := a.Join(addrs); err == nil || errors.Is(err, ErrShutdown) {
			return
		}
		select {
		case <-a.stopCh:
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, a.cfg.JoinRetryMaxInterval)
	}
}

// Leave announces a graceful departure and waits up to timeout for it to spread; call
// Shutdown afterwards. Peers report the node as left, not failed: a last state marked
// "leaving" goes to every member (best effort, UDP) before memberlist's leave message.
func (a *Agent) Leave(timeout time.Duration) error {
	if a.stopped() {
		return ErrShutdown
	}
	a.mu.Lock()
	a.local.leaving = true
	a.mu.Unlock()
	a.publish()
	a.mu.Lock()
	farewell := *a.local.published
	a.mu.Unlock()
	farewell.HasInventory, farewell.Containers = false, nil
	msg := encodeState(&farewell)
	for _, n := range a.ml.Members() {
		if n.Name != a.cfg.Name {
			_ = a.ml.SendBestEffort(n, msg)
		}
	}
	return a.ml.Leave(timeout)
}

// Shutdown stops the agent without announcing anything (peers will see it fail unless
// Leave was called first) and closes every Subscription. Safe to call more than once.
func (a *Agent) Shutdown() error {
	var err error
	a.stopOnce.Do(func() {
		close(a.stopCh)
		err = a.ml.Shutdown()
		a.wg.Wait()
		a.events.closeAll()
	})
	return err
}

func (a *Agent) stopped() bool {
	select {
	case <-a.stopCh:
		return true
	default:
		return false
	}
}

// View returns a consistent deep copy of everything this agent knows.
func (a *Agent) View() ClusterView {
	self := a.coord.GetCoordinate()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store.snapshot(a.now(), self)
}

// Subscribe returns a subscription with a channel of the given buffer (Config.EventBuffer
// if buffer <= 0).
func (a *Agent) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = a.cfg.EventBuffer
	}
	return a.events.subscribe(buffer)
}

// Stats returns counters.
func (a *Agent) Stats() Stats {
	return Stats{Members: a.ml.NumMembers(), Malformed: a.malformed.Load(), Queued: a.queue.len()}
}

// Coordinate returns this node's current network coordinate.
func (a *Agent) Coordinate() *coordinate.Coordinate { return a.coord.GetCoordinate() }

// SetLoad sets the node's resource use (capacity comes from Config) and publishes it if
// it moved by PublishThreshold. For nodes without a LoadSource.
func (a *Agent) SetLoad(cpuCores float64, memoryBytes uint64, memoryPressure float64) error {
	if math.IsNaN(cpuCores) || math.IsInf(cpuCores, 0) || cpuCores < 0 || math.IsNaN(memoryPressure) || memoryPressure < 0 || memoryPressure > 1 {
		return fmt.Errorf("gossip: SetLoad: cpu %v must be a finite number >= 0 and pressure %v in 0..1", cpuCores, memoryPressure)
	}
	a.apply(LoadSample{CPUCores: cpuCores, MemoryBytes: memoryBytes, MemoryPressure: memoryPressure}, false)
	return nil
}

// Refresh samples the LoadSource now and publishes if the load moved by
// PublishThreshold (or force is set).
func (a *Agent) Refresh(force bool) error {
	if a.cfg.LoadSource == nil {
		if force {
			a.publish()
		}
		return nil
	}
	s, err := a.cfg.LoadSource.Sample(a.now())
	a.apply(s, force)
	return err
}

// SetInventory replaces the node's managed container inventory and publishes it.
func (a *Agent) SetInventory(cs []Container) error {
	if len(cs) > a.cfg.MaxContainers {
		return fmt.Errorf("gossip: inventory of %d containers over MaxContainers %d", len(cs), a.cfg.MaxContainers)
	}
	for _, c := range cs {
		if err := checkContainer(c); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.local.containers = cloneContainers(cs)
	a.local.invDirty = true
	a.mu.Unlock()
	a.publish()
	return nil
}

func checkContainer(c Container) error {
	if len(c.ID) == 0 || len(c.ID) > maxStringLen || len(c.Name) > maxStringLen || len(c.Image) > maxStringLen {
		return fmt.Errorf("gossip: container %q: id must be 1..%d bytes, name and image at most %d", c.ID, maxStringLen, maxStringLen)
	}
	if len(c.Labels) > maxLabels || len(c.UserSites) > maxUserSites {
		return fmt.Errorf("gossip: container %q: at most %d labels and %d user sites", c.ID, maxLabels, maxUserSites)
	}
	for k, v := range c.Labels {
		if len(k) == 0 || len(k) > maxLabelLen || len(v) > maxLabelLen {
			return fmt.Errorf("gossip: container %q: label keys must be 1..%d bytes, values at most %d", c.ID, maxLabelLen, maxLabelLen)
		}
	}
	for _, s := range c.UserSites {
		if len(s) > maxStringLen {
			return fmt.Errorf("gossip: container %q: user site over %d bytes", c.ID, maxStringLen)
		}
	}
	if math.IsNaN(c.CPUCores) || math.IsInf(c.CPUCores, 0) || c.CPUCores < 0 {
		return fmt.Errorf("gossip: container %q: CPUCores must be finite and >= 0", c.ID)
	}
	return nil
}

// SetLabels replaces the node's labels and publishes them.
func (a *Agent) SetLabels(labels map[string]string) error {
	c := a.cfg
	c.Labels = labels
	if err := c.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	a.local.labels = cloneLabels(labels)
	a.mu.Unlock()
	a.publish()
	a.updateMeta()
	return nil
}

// SetDrain sets the node's drain flag and publishes it (also in the node meta).
func (a *Agent) SetDrain(drain bool) {
	a.mu.Lock()
	a.local.drain = drain
	a.mu.Unlock()
	a.publish()
	a.updateMeta()
}

func (a *Agent) updateMeta() {
	if err := a.ml.UpdateNode(a.cfg.TCPTimeout); err != nil {
		a.log.Warn("updating node meta", "error", err)
	}
}

// ObserveTransfer records a real transfer of bytes to peer that took seconds (a
// migration's checkpoint stream, an image copy) and publishes the updated estimate.
func (a *Agent) ObserveTransfer(peer string, bytes int64, seconds float64) error {
	if peer == "" || len(peer) > maxNameLen {
		return fmt.Errorf("gossip: ObserveTransfer: peer name must be 1..%d bytes", maxNameLen)
	}
	if bytes <= 0 || !(seconds > 0) || math.IsInf(seconds, 0) {
		return fmt.Errorf("gossip: ObserveTransfer: bytes (%d) and seconds (%v) must be > 0", bytes, seconds)
	}
	now := a.now()
	a.mu.Lock()
	m := a.local.links[peer]
	if m == nil {
		m = &linkMeter{}
		a.local.links[peer] = m
	}
	m.observe(float64(bytes), seconds, now, a.cfg.BandwidthHalfLife)
	if len(a.local.links) > 4*max(a.cfg.MaxLinks, 1) {
		keep := map[string]bool{}
		for _, l := range recentLinks(a.local.links, a.cfg.MaxLinks) {
			keep[l.Peer] = true
		}
		for p := range a.local.links {
			if !keep[p] {
				delete(a.local.links, p)
			}
		}
	}
	a.mu.Unlock()
	a.publish()
	return nil
}

// apply takes a load sample and publishes when it moved enough (or force).
func (a *Agent) apply(s LoadSample, force bool) {
	a.mu.Lock()
	l := &a.local
	l.load.CPUCores = s.CPUCores
	l.load.MemoryBytes = s.MemoryBytes
	l.load.MemoryPressure = s.MemoryPressure
	moved := math.Abs(l.load.CPUFraction()-l.publishedLoad.CPUFraction()) >= a.cfg.PublishThreshold ||
		math.Abs(l.load.MemoryFraction()-l.publishedLoad.MemoryFraction()) >= a.cfg.PublishThreshold ||
		a.now().Sub(l.publishedAt) >= a.cfg.RefreshInterval
	if (moved || force) && len(s.Containers) > 0 {
		// Per-container use rides along with load publications, not on every sample.
		changed := false
		for i := range l.containers {
			if u, ok := s.Containers[l.containers[i].ID]; ok &&
				(u.MemoryBytes != l.containers[i].MemoryBytes || u.CPUCores != l.containers[i].CPUCores) {
				l.containers[i].MemoryBytes, l.containers[i].CPUCores = u.MemoryBytes, u.CPUCores
				changed = true
			}
		}
		if changed {
			l.invDirty = true
		}
	}
	a.mu.Unlock()
	if moved || force {
		a.publish()
	}
}

// buildLocked makes a new state from local, records it in the store and returns it with
// its encoding.
func (a *Agent) buildLocked(now time.Time) (*nodeState, []byte) {
	l := &a.local
	l.version.Seq++
	if l.invDirty {
		l.invVersion, l.invDirty = l.version, false
	}
	st := &nodeState{
		Name:             a.cfg.Name,
		Version:          l.version,
		InventoryVersion: l.invVersion,
		Drain:            l.drain,
		Leaving:          l.leaving,
		Load:             l.load,
		PublishedAt:      now,
		Labels:           cloneLabels(l.labels),
		Coordinate:       a.coord.GetCoordinate(),
		Links:            recentLinks(l.links, a.cfg.MaxLinks),
		HasInventory:     true,
		Containers:       cloneContainers(l.containers),
	}
	l.published, l.publishedAt, l.publishedLoad = st, now, l.load
	_, evs := a.store.merge(st, now)
	a.events.publish(evs)
	return st, encodeState(st)
}

// publish broadcasts a new state of this node.
func (a *Agent) publish() {
	if a.stopped() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st, msg := a.buildLocked(a.now())
	if len(msg) > maxBroadcastBytes {
		sum := *st
		sum.HasInventory, sum.Containers = false, nil
		msg = encodeState(&sum)
		select {
		case a.invKick <- struct{}{}:
		default:
		}
	}
	// Queued under mu so that a newer state never queues before an older one (the queue
	// keeps the last one queued per node).
	a.queue.put(st.Name, msg)
}

// inventoryLoop sends the full state by TCP to every member when it is too big for a
// broadcast. Coalesced: a burst of changes costs one round.
func (a *Agent) inventoryLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.stopCh:
			return
		case <-a.invKick:
		}
		a.mu.Lock()
		msg := encodeState(a.local.published)
		a.mu.Unlock()
		for _, n := range a.ml.Members() {
			if n.Name == a.cfg.Name || n.State != memberlist.StateAlive {
				continue
			}
			if a.stopped() {
				return
			}
			if err := a.ml.SendReliable(n, msg); err != nil {
				a.log.Debug("sending inventory", "to", n.Name, "error", err)
			}
		}
	}
}

// loadLoop samples the LoadSource, republishes at RefreshInterval, and forgets failed
// nodes after FailedRetention.
func (a *Agent) loadLoop() {
	defer a.wg.Done()
	tick := time.NewTicker(a.cfg.LoadInterval)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-a.stopCh:
			return
		case <-tick.C:
		}
		if err := a.Refresh(false); err != nil {
			if err.Error() != lastErr { // say it once, not every interval
				a.log.Warn("sampling load", "error", err)
			}
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
		a.mu.Lock()
		stale := a.now().Sub(a.local.publishedAt) >= a.cfg.RefreshInterval
		gone := a.store.reap(a.now(), a.cfg.FailedRetention)
		a.mu.Unlock()
		for _, n := range gone {
			a.coord.ForgetNode(n)
		}
		if stale {
			a.publish()
		}
	}
}

// Anti-entropy on demand (repairLoop).
const (
	repairCheck   = 500 * time.Millisecond // how often to look for gaps
	repairGrace   = time.Second            // a gap younger than this may still fill by gossip
	repairMaxWait = 30 * time.Second       // backoff cap while gaps persist
)

// repairLoop heals what gossip missed with a push-pull with a random member, at once
// rather than at memberlist's periodic push-pull (30 s, stretched to 90 s at 100 nodes).
//
// Why it is needed: memberlist's alive messages and our state broadcasts each go only
// to the members the sender knows, a limited number of times. When many nodes join at
// once, a node can join after an early node's alive message has died out and through a
// seed that did not know that node yet: it then never hears of it (memberlist never
// reports it, so its state, which did arrive, stays StatusUnknown) until a push-pull.
// Measured with 100 agents joining together: a few such pairs in most runs, each
// lasting up to the next push-pull. A push-pull (memberlist's Join with a live member)
// exchanges the full member lists and every state, and the alive messages it triggers
// spread the news further.
//
// The backoff (1 s, doubling to repairMaxWait while the gaps do not shrink) bounds the
// cost if a gap cannot be healed (a member that never publishes a state).
func (a *Agent) repairLoop() {
	defer a.wg.Done()
	select {
	case <-a.stopCh:
		return
	case <-a.joined:
	}
	tick := time.NewTicker(repairCheck)
	defer tick.Stop()
	wait := repairGrace
	var next time.Time
	last := 0 // gaps at the last push-pull
	for {
		select {
		case <-a.stopCh:
			return
		case <-tick.C:
		}
		now := a.now()
		a.mu.Lock()
		gaps := a.store.gaps(now, repairGrace, 2*a.cfg.RefreshInterval)
		a.mu.Unlock()
		if gaps == 0 {
			wait, next, last = repairGrace, time.Time{}, 0
			continue
		}
		if gaps < last { // progress: keep pulling soon
			wait = repairGrace
			if next.After(now.Add(wait)) {
				next = now.Add(wait)
			}
		}
		if now.Before(next) {
			continue
		}
		var peers []*memberlist.Node
		for _, n := range a.ml.Members() {
			if n.Name != a.cfg.Name && n.State == memberlist.StateAlive {
				peers = append(peers, n)
			}
		}
		if len(peers) == 0 {
			continue
		}
		p := peers[rand.IntN(len(peers))]
		addr := net.JoinHostPort(p.Addr.String(), strconv.Itoa(int(p.Port)))
		if _, err := a.ml.Join([]string{addr}); err != nil {
			a.log.Debug("repair push-pull", "peer", p.Name, "error", err)
		}
		a.log.Debug("repair push-pull", "peer", p.Name, "gaps", gaps)
		next, last = a.now().Add(wait), gaps
		wait = min(wait*2, repairMaxWait)
	}
}

func (a *Agent) numNodes() int {
	return int(max(a.alive.Load(), 1))
}

// received handles a state from another node. rebroadcast is the raw message to pass on
// when it is news (nil: do not).
func (a *Agent) received(st *nodeState, raw []byte) {
	now := a.now()
	if st.Name == a.cfg.Name {
		a.selfConflict(st)
		return
	}
	a.mu.Lock()
	accepted, evs := a.store.merge(st, now)
	if accepted && raw != nil && len(raw) <= maxBroadcastBytes {
		a.queue.put(st.Name, raw)
	}
	a.mu.Unlock()
	a.events.publish(evs)
}

// selfConflict handles a state that claims to be ours: from a previous run with a clock
// ahead of ours. Jump past it so our states win.
func (a *Agent) selfConflict(st *nodeState) {
	a.mu.Lock()
	if !a.local.version.Less(st.Version) { // our own state echoed back: fine
		a.mu.Unlock()
		return
	}
	a.local.version = Version{Epoch: st.Version.Epoch + 1}
	a.local.invDirty = true
	a.mu.Unlock()
	a.log.Warn("found a newer state of this node (an earlier run with a clock ahead?); superseding it", "their_epoch", st.Version.Epoch)
	a.publish()
}
