package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/godwit-io/godwit/internal/pki"
)

// How the raft group forms and changes, from what discovery tells SetPeers:
//
//   - Bootstrap (like Nomad's maybeBootstrap): a server that started without raft state and
//     has BootstrapExpect > 0 checks, at every SetPeers and every BootstrapRetryInterval,
//     whether it knows at least BootstrapExpect servers (itself included). Then it asks each
//     of them over the status protocol whether it already has raft state; if one has, a
//     cluster exists and this server waits for its leader to add it (and never bootstraps).
//     If none has, it bootstraps with exactly the servers known, all voters, sorted by name,
//     so the servers of a new cluster compute the same configuration (raft accepts the same
//     bootstrap from each). A server that started with raft state never bootstraps.
//     Hazard (shared with Nomad and Consul): servers that see different sets of more than
//     BootstrapExpect servers at once bootstrap different configurations; so start the
//     initial cluster with exactly BootstrapExpect servers, and the others after it formed.
//   - Join: the leader adds every server SetPeers reports that is not in the configuration
//     (or is there with another address) as a non-voter (autopilot.AddServer), at once on
//     SetPeers and every AutopilotReconcileInterval. Autopilot, run by the leader only,
//     promotes a non-voter once it has been healthy for ServerStabilizationTime.
//   - Health: autopilot asks every server for its raft status (last index, term, time since
//     it heard from the leader) over the status protocol; healthy means it heard from the
//     leader within LastContactThreshold, is on the leader's term and at most
//     MaxTrailingLogs entries behind.
//   - Removal: a server in the configuration that SetPeers no longer reports (or never
//     reported since this leader took over) counts as failed from the moment it was missed;
//     after DeadServerGrace autopilot may remove it, never taking the voters below
//     BootstrapExpect (autopilot's MinQuorum) nor removing a majority at once.

// Peer is a server known to discovery: its node name (raft server ID) and its raft address
// (ServerConfig.AdvertiseAddr, not its gossip address).
type Peer struct {
	Name string
	Addr string
}

// serverMembers is what the Server knows of the other servers. Guarded by mu.
type serverMembers struct {
	mu sync.Mutex
	// peers are the servers discovery last reported, name to address, without this one.
	peers map[string]string
	// missing records, for servers of the raft configuration that discovery does not
	// report, since when (this server's clock) they have been missed.
	missing map[string]time.Time
	// kick wakes the bootstrap and join loops after SetPeers.
	bootstrapKick chan struct{}
	joinKick      chan struct{}
}

func (m *serverMembers) init() {
	m.peers = map[string]string{}
	m.missing = map[string]time.Time{}
	m.bootstrapKick = make(chan struct{}, 1)
	m.joinKick = make(chan struct{}, 1)
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// SetPeers tells the server which servers exist now (discovery calls it with every change;
// this server may be among them). A peer with an invalid name or address is left out and
// reported in the error; the others are used. A peer named as this server but with another
// address is left out too.
func (s *Server) SetPeers(peers []Peer) error {
	next := make(map[string]string, len(peers))
	var errs []error
	for _, p := range peers {
		if err := pki.ValidNodeName(p.Name); err != nil {
			errs = append(errs, fmt.Errorf("peer %q: %w", p.Name, err))
			continue
		}
		if _, err := validHostPort(p.Addr, true); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: address %w", p.Name, err))
			continue
		}
		if p.Name == s.cfg.Name {
			if p.Addr != s.addr {
				errs = append(errs, fmt.Errorf("peer %s: this server's name with address %s, but this server is at %s", p.Name, p.Addr, s.addr))
			}
			continue
		}
		if prev, dup := next[p.Name]; dup && prev != p.Addr {
			errs = append(errs, fmt.Errorf("peer %s: listed with addresses %s and %s; using the last", p.Name, prev, p.Addr))
		}
		next[p.Name] = p.Addr
	}
	m := &s.members
	m.mu.Lock()
	m.peers = next
	for name := range next {
		delete(m.missing, name)
	}
	m.mu.Unlock()
	kick(m.bootstrapKick)
	kick(m.joinKick)
	if len(errs) > 0 {
		err := fmt.Errorf("scheduler: SetPeers: %w", errors.Join(errs...))
		s.log.Warn("raft: peers left out", "err", err)
		return err
	}
	return nil
}

// knownPeers returns a copy of the peers discovery reports.
func (s *Server) knownPeers() map[string]string {
	m := &s.members
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.peers))
	for k, v := range m.peers {
		out[k] = v
	}
	return out
}

// bootstrapConfiguration is the configuration to bootstrap with: self and peers, all
// voters, sorted by name; false while fewer than expect servers are known.
func bootstrapConfiguration(self Peer, peers map[string]string, expect int) (raft.Configuration, bool) {
	all := []Peer{self}
	for name, addr := range peers {
		if name != self.Name {
			all = append(all, Peer{Name: name, Addr: addr})
		}
	}
	if expect < 1 || len(all) < expect {
		return raft.Configuration{}, false
	}
	slices.SortFunc(all, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	var c raft.Configuration
	for _, p := range all {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.Name), Address: raft.ServerAddress(p.Addr)})
	}
	return c, true
}

// bootstrapLoop runs on a server that started without raft state until it bootstrapped,
// found an existing cluster, or received raft state from a leader.
func (s *Server) bootstrapLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.BootstrapRetryInterval)
	defer t.Stop()
	for {
		if s.tryBootstrap() {
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.members.bootstrapKick:
		}
	}
}

// tryBootstrap makes one bootstrap attempt and reports whether bootstrapping is settled
// (done, or not this server's to do).
func (s *Server) tryBootstrap() bool {
	r := s.raftNode()
	if r.LastIndex() > 0 || len(r.GetConfiguration().Configuration().Servers) > 0 {
		return true // a leader added this server, or it bootstrapped already
	}
	conf, ok := bootstrapConfiguration(Peer{Name: s.cfg.Name, Addr: s.addr}, s.knownPeers(), s.cfg.BootstrapExpect)
	if !ok {
		return false
	}
	for _, srv := range conf.Servers {
		if string(srv.ID) == s.cfg.Name {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		st, err := s.stream.queryStatus(ctx, string(srv.ID), string(srv.Address))
		cancel()
		if err != nil {
			s.log.Debug("raft: bootstrap waits: a server did not answer", "peer", srv.ID, "err", err)
			return false
		}
		if st.HasState {
			s.log.Info("raft: found an existing cluster; waiting for its leader to add this server", "peer", srv.ID)
			return true
		}
	}
	if err := r.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return true
		}
		s.log.Warn("raft: bootstrap failed", "err", err)
		return errors.Is(err, raft.ErrRaftShutdown)
	}
	s.log.Info("raft: bootstrapped the cluster", "servers", fmt.Sprint(conf.Servers))
	return true
}

// addServersLoop runs on the leader: it adds the servers discovery reports to the raft
// configuration as non-voters, at once on SetPeers and periodically.
func (s *Server) addServersLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.AutopilotReconcileInterval)
	defer t.Stop()
	for {
		s.addServers(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.members.joinKick:
		}
	}
}

func (s *Server) addServers(ctx context.Context) {
	r := s.raftNode()
	inConf := map[string]string{}
	for _, srv := range r.GetConfiguration().Configuration().Servers {
		inConf[string(srv.ID)] = string(srv.Address)
	}
	for name, addr := range s.knownPeers() {
		if ctx.Err() != nil {
			return
		}
		if have, ok := inConf[name]; ok && have == addr {
			continue
		}
		err := s.pilot.AddServer(&autopilot.Server{
			ID: raft.ServerID(name), Name: name, Address: raft.ServerAddress(addr), NodeStatus: autopilot.NodeAlive,
		})
		if err != nil {
			s.log.Warn("raft: could not add server", "peer", name, "addr", addr, "err", err)
			continue
		}
		s.log.Info("raft: added server as non-voter", "peer", name, "addr", addr)
	}
}

// pilotDelegate is the Server as raft-autopilot's ApplicationIntegration. Its methods are
// called from autopilot's goroutines on the leader only; none blocks beyond the context
// autopilot gives FetchServerStats.
type pilotDelegate Server

var _ autopilot.ApplicationIntegration = (*pilotDelegate)(nil)

func (d *pilotDelegate) AutopilotConfig() *autopilot.Config {
	c := d.cfg
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    c.LastContactThreshold,
		MaxTrailingLogs:         c.MaxTrailingLogs,
		MinQuorum:               uint(c.BootstrapExpect),
		ServerStabilizationTime: c.ServerStabilizationTime,
	}
}

// NotifyState logs changes of the group's health.
func (d *pilotDelegate) NotifyState(st *autopilot.State) {
	d.log.Debug("raft: autopilot state", "healthy", st.Healthy, "failure_tolerance", st.FailureTolerance, "voters", len(st.Voters), "servers", len(st.Servers))
}

// KnownServers is every server of the raft configuration (each a potential voter: autopilot
// counts only those when it checks that a removal keeps the quorum), alive when discovery reports it
// (or it is this one), failed when not, plus the servers discovery reports that are not in
// the configuration yet. It also keeps the record of since when servers are missing.
func (d *pilotDelegate) KnownServers() map[raft.ServerID]*autopilot.Server {
	s := (*Server)(d)
	conf := s.raftNode().GetConfiguration().Configuration()
	now := time.Now()
	m := &s.members
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[raft.ServerID]*autopilot.Server, len(conf.Servers)+len(m.peers))
	inConf := map[string]bool{}
	for _, srv := range conf.Servers {
		name := string(srv.ID)
		inConf[name] = true
		status := autopilot.NodeAlive
		if _, ok := m.peers[name]; ok || name == s.cfg.Name {
			delete(m.missing, name)
		} else {
			status = autopilot.NodeFailed
			if _, ok := m.missing[name]; !ok {
				m.missing[name] = now
			}
		}
		out[srv.ID] = &autopilot.Server{ID: srv.ID, Name: name, Address: srv.Address, NodeStatus: status, RaftVersion: raft.ProtocolVersionMax, NodeType: autopilot.NodeVoter}
	}
	for name := range m.missing {
		if !inConf[name] {
			delete(m.missing, name)
		}
	}
	for name, addr := range m.peers {
		if !inConf[name] {
			id := raft.ServerID(name)
			out[id] = &autopilot.Server{ID: id, Name: name, Address: raft.ServerAddress(addr), NodeStatus: autopilot.NodeAlive, RaftVersion: raft.ProtocolVersionMax, NodeType: autopilot.NodeVoter}
		}
	}
	return out
}

// FetchServerStats asks every server for its raft status, in parallel, within ctx; this
// server answers from its own raft. A server that does not answer gets no stats (autopilot
// keeps the old ones and its last-contact check ages them out).
func (d *pilotDelegate) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	s := (*Server)(d)
	out := make(map[raft.ServerID]*autopilot.ServerStats, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, srv := range servers {
		if srv.NodeStatus != autopilot.NodeAlive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st raftStatus
			if string(id) == s.cfg.Name {
				st = s.status()
			} else {
				var err error
				if st, err = s.stream.queryStatus(ctx, string(id), string(srv.Address)); err != nil {
					s.log.Debug("raft: no status from server", "peer", id, "err", err)
					return
				}
			}
			mu.Lock()
			out[id] = &autopilot.ServerStats{LastContact: time.Duration(st.LastContactNS), LastTerm: st.LastTerm, LastIndex: st.LastIndex}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// RemoveFailedServer removes a server autopilot found failed, once it has been missing for
// DeadServerGrace (autopilot asks again every reconcile round until then). Autopilot has
// already checked that the removal keeps the quorum and MinQuorum.
func (d *pilotDelegate) RemoveFailedServer(srv *autopilot.Server) {
	s := (*Server)(d)
	m := &s.members
	m.mu.Lock()
	since, ok := m.missing[string(srv.ID)]
	m.mu.Unlock()
	if !ok {
		return // reported again meanwhile
	}
	if gone := time.Since(since); gone < s.cfg.DeadServerGrace {
		s.log.Debug("raft: failed server within its grace period", "peer", srv.ID, "missing_for", gone.Round(time.Second).String())
		return
	}
	r := s.raftNode()
	go func() {
		// Autopilot wants this call to return at once; raft's answer comes later.
		if err := r.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
			s.log.Warn("raft: could not remove failed server", "peer", srv.ID, "err", err)
			return
		}
		s.log.Info("raft: removed server missing for longer than the grace period", "peer", srv.ID, "addr", string(srv.Address), "grace", s.cfg.DeadServerGrace.String())
	}()
}

// ServerHealth is one server as the leader's autopilot last saw it.
type ServerHealth struct {
	Name  string
	Addr  string
	Voter bool
	// Alive is whether discovery reports the server (always true for the leader itself).
	Alive bool
	// Healthy: alive, heard from the leader within LastContactThreshold, on the leader's
	// term and at most MaxTrailingLogs entries behind. StableSince is when that last changed.
	Healthy     bool
	StableSince time.Time
	LastContact time.Duration // since it last heard from the leader; negative: never
	LastTerm    uint64
	LastIndex   uint64
}

// GroupHealth is the raft group's health as the leader's autopilot sees it.
type GroupHealth struct {
	// Healthy is true when every server is healthy.
	Healthy bool
	// FailureTolerance is how many voters may fail without losing the quorum.
	FailureTolerance int
	Leader           string
	Servers          []ServerHealth // by name
}

// Health returns the group's health; false on a server that is not the leader or whose
// autopilot has not measured yet (it runs on the leader only, every
// AutopilotUpdateInterval).
func (s *Server) Health() (GroupHealth, bool) {
	if !s.IsLeader() {
		return GroupHealth{}, false
	}
	st := s.pilot.GetState()
	if st == nil || len(st.Servers) == 0 {
		return GroupHealth{}, false
	}
	h := GroupHealth{Healthy: st.Healthy, FailureTolerance: st.FailureTolerance, Leader: string(st.Leader)}
	for id, srv := range st.Servers {
		h.Servers = append(h.Servers, ServerHealth{
			Name:        string(id),
			Addr:        string(srv.Server.Address),
			Voter:       srv.HasVotingRights(),
			Alive:       srv.Server.NodeStatus == autopilot.NodeAlive,
			Healthy:     srv.Health.Healthy,
			StableSince: srv.Health.StableSince,
			LastContact: srv.Stats.LastContact,
			LastTerm:    srv.Stats.LastTerm,
			LastIndex:   srv.Stats.LastIndex,
		})
	}
	slices.SortFunc(h.Servers, func(a, b ServerHealth) int { return strings.Compare(a.Name, b.Name) })
	return h, true
}
