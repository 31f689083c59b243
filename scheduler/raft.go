package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/godwit-io/godwit/internal/pki"
)

// The raft group of the control plane.
//
// A Server is one member of the raft group: raft (hashicorp/raft) with its log and stable
// store in bbolt (raft-boltdb) and file snapshots under DataDir, talking to the other
// servers over mutual TLS 1.3 (transport.go), finding them through SetPeers (fed by gossip)
// and bootstrapping, growing and shrinking the group from what it is told (autopilot.go).
// What the group replicates is the caller's raft.FSM; this file knows nothing of it.
//
// Concurrency: every method of Server is safe for concurrent use. Nothing here blocks
// raft: leadership changes reach LeaderCh without waiting for its reader.

var (
	// ErrInvalidServerConfig is returned (wrapped, with every problem found, each naming
	// its field) by ServerConfig.Validate and NewServer.
	ErrInvalidServerConfig = errors.New("scheduler: invalid raft server config")
	// ErrNotLeader is what a *NotLeaderError is (errors.Is): Apply and Barrier return one
	// on a server that is not the leader.
	ErrNotLeader = errors.New("scheduler: not the raft leader")
	// ErrServerShutdown is returned by the methods of a Server after Shutdown.
	ErrServerShutdown = errors.New("scheduler: raft server is shut down")
	// ErrDataDirInUse is returned (wrapped) by NewServer when another process, or another
	// Server of this one, holds the raft store under DataDir.
	ErrDataDirInUse = errors.New("scheduler: raft data directory is in use")
)

// NotLeaderError is returned by Apply and Barrier on a follower, so the caller can forward
// the request. Leader and Addr are the leader this server knows (node name and raft
// address), both empty while it knows none (during an election, or cut off).
type NotLeaderError struct {
	Leader string
	Addr   string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return ErrNotLeader.Error() + ", and no leader is known"
	}
	return fmt.Sprintf("%s; the leader is %s at %s", ErrNotLeader, e.Leader, e.Addr)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// ServerConfig configures one raft Server. Start from DefaultServerConfig, set the
// identity and addresses, BootstrapExpect and the FSM.
type ServerConfig struct {
	// Name is this server's node name and its raft server ID. It must be the node name in
	// TLS's certificate, whose role must be server.
	Name string
	// DataDir holds the raft store and snapshots (in DataDir/raft). A server that finds
	// raft state there rejoins with it and never bootstraps again.
	DataDir string
	// BindAddr is where raft listens, host:port (port 0 picks one; Server.Addr says which).
	// When its host is a specific IP, connections to other servers leave from it too, so a
	// server is one address to the network and to firewall rules.
	BindAddr string
	// AdvertiseAddr is the address the other servers dial, IP:port; empty means the address
	// bound, which then must be a specific IP.
	AdvertiseAddr string
	// TLS is this server's identity and the cluster CA.
	TLS *pki.TLS
	// BootstrapExpect is the number of servers of the initial cluster: once this many
	// servers (this one included) are known through SetPeers, none of them has raft state,
	// and this one has none either, it bootstraps the group with exactly the servers known.
	// 0 means never bootstrap: wait to be added by a leader. Give every server of the
	// initial cluster the same value; servers started later may have it too.
	BootstrapExpect int
	// FSM is the replicated state machine.
	FSM raft.FSM
	// Log receives the server's and raft's logs; nil means slog.Default().
	Log *slog.Logger
	// Observer is told how long each Apply took (metrics); nil means nobody.
	Observer Observer

	// Raft timing (see raft.Config).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// ApplyTimeout bounds Apply and Barrier when their context has no deadline.
	ApplyTimeout time.Duration

	// Snapshots: raft snapshots the FSM every SnapshotInterval (randomized) when at least
	// SnapshotThreshold entries were logged since the last one, keeps TrailingLogs entries
	// behind a snapshot for slow followers, and SnapshotsRetained snapshots on disk.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotsRetained int

	// Transport: TransportTimeout is the I/O deadline of one raft RPC, MaxPool the pooled
	// connections per peer, HandshakeTimeout bounds a TLS handshake and a status query.
	TransportTimeout time.Duration
	MaxPool          int
	HandshakeTimeout time.Duration

	// BootstrapRetryInterval is how often a server without raft state checks again whether
	// it can bootstrap (SetPeers also triggers a check).
	BootstrapRetryInterval time.Duration

	// Autopilot (run by the leader only): how often it refreshes server health and how often
	// it promotes and removes servers; a server is healthy when it heard from the leader
	// within LastContactThreshold and trails it by at most MaxTrailingLogs entries, and is
	// promoted to voter after ServerStabilizationTime of health. A server missing from
	// SetPeers for DeadServerGrace is removed from the group (never below BootstrapExpect
	// voters).
	AutopilotUpdateInterval    time.Duration
	AutopilotReconcileInterval time.Duration
	LastContactThreshold       time.Duration
	MaxTrailingLogs            uint64
	ServerStabilizationTime    time.Duration
	DeadServerGrace            time.Duration
}

// DefaultServerConfig returns the knobs for servers at edge sites, whose links may cross a
// WAN (tens to a few hundred milliseconds of round trip, some loss). Identity, addresses,
// BootstrapExpect and FSM are left for the caller.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		// Twice raft's LAN defaults: edge links have RTTs of up to a few hundred ms and lose
		// packets, and a needless election stops the scheduler for longer than a slightly
		// later failover does (migrations are minutes apart). Consul's production advice
		// sits at 1x, its default at 5x; 2x is between.
		HeartbeatTimeout:   2 * time.Second,
		ElectionTimeout:    2 * time.Second,
		LeaderLeaseTimeout: time.Second, // half the heartbeat timeout, as raft's defaults
		// raft's default: batches entries within 50 ms; an idle group still heartbeats.
		CommitTimeout: 50 * time.Millisecond,
		// Long enough for an election (2-4 s) and a commit over a slow link, short enough
		// that a caller learns within one scheduler round that the group is unavailable.
		ApplyTimeout: 10 * time.Second,

		// The ledger changes a few times a minute, so snapshots are rare: every 2 minutes at
		// most, and only after 4096 entries (raft's default 8192 assumes busier state
		// machines; half keeps restart replay short on slow edge disks).
		SnapshotInterval:  2 * time.Minute,
		SnapshotThreshold: 4096,
		// Entries kept behind a snapshot so a follower that was away briefly catches up from
		// the log instead of a whole snapshot over a thin link (raft's default).
		TrailingLogs: 10240,
		// Two: the newest and one to fall back on if the newest turns out damaged.
		SnapshotsRetained: 2,

		// raft's own transport deadline; also how long a dead peer's RPC can hang.
		TransportTimeout: 10 * time.Second,
		// Three connections per peer (raft's usual): heartbeats, replication, a spare.
		MaxPool: 3,
		// A TLS 1.3 handshake is one round trip plus signatures: 5 s covers slow links and
		// busy CPUs, and bounds what a silent peer holds.
		HandshakeTimeout: 5 * time.Second,

		// Servers of a new cluster come up within seconds of each other.
		BootstrapRetryInterval: 2 * time.Second,

		// raft-autopilot's defaults for the loop intervals.
		AutopilotUpdateInterval:    autopilot.DefaultUpdateInterval,
		AutopilotReconcileInterval: autopilot.DefaultReconcileInterval,
		// Healthy if heard from the leader within a heartbeat timeout: beyond that it would
		// call an election itself.
		LastContactThreshold: 2 * time.Second,
		// Consul's default: a few hundred entries behind is catching up, not broken.
		MaxTrailingLogs: 250,
		// Consul's default: a server must stay healthy 10 s before it votes, so a flapping
		// one never counts in the quorum.
		ServerStabilizationTime: 10 * time.Second,
		// Edge servers reboot for updates and sites lose their uplink for minutes; a server
		// gone for 30 minutes is likely gone for good, and until it is removed it counts in
		// the quorum without voting.
		DeadServerGrace: 30 * time.Minute,
	}
}

// Validate reports every problem of c, each naming its field and what is allowed.
func (c ServerConfig) Validate() error {
	var probs []string
	bad := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	if err := pki.ValidNodeName(c.Name); err != nil {
		bad("Name", "%v", err)
	}
	if c.DataDir == "" {
		bad("DataDir", "required")
	}
	bindIP, err := validHostPort(c.BindAddr, false)
	if err != nil {
		bad("BindAddr", "%v", err)
	}
	if c.AdvertiseAddr != "" {
		if _, err := validHostPort(c.AdvertiseAddr, true); err != nil {
			bad("AdvertiseAddr", "%v", err)
		}
	} else if err == nil && (bindIP == nil || bindIP.IsUnspecified()) {
		bad("AdvertiseAddr", "required when BindAddr %q is not a specific IP", c.BindAddr)
	}
	if c.TLS == nil {
		bad("TLS", "required (this server's certificate, role server)")
	} else if id := c.TLS.Identity(); id.Role != pki.RoleServer || id.Node != c.Name {
		bad("TLS", "certificate is %s, want %s (%s)", id, c.Name, pki.RoleServer)
	}
	if c.BootstrapExpect < 0 {
		bad("BootstrapExpect", "%d: want 0 (join only) or the number of servers of the initial cluster", c.BootstrapExpect)
	}
	if c.FSM == nil {
		bad("FSM", "required")
	}
	atLeast := func(field string, d, lo time.Duration) {
		if d < lo {
			bad(field, "%v: want at least %v", d, lo)
		}
	}
	atLeast("HeartbeatTimeout", c.HeartbeatTimeout, 5*time.Millisecond)
	atLeast("ElectionTimeout", c.ElectionTimeout, c.HeartbeatTimeout)
	atLeast("LeaderLeaseTimeout", c.LeaderLeaseTimeout, 5*time.Millisecond)
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout", "%v: want at most HeartbeatTimeout (%v)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	atLeast("CommitTimeout", c.CommitTimeout, time.Millisecond)
	atLeast("ApplyTimeout", c.ApplyTimeout, time.Millisecond)
	atLeast("SnapshotInterval", c.SnapshotInterval, 5*time.Millisecond)
	if c.SnapshotThreshold < 1 {
		bad("SnapshotThreshold", "0: want at least 1")
	}
	if c.TrailingLogs < 1 {
		bad("TrailingLogs", "0: want at least 1")
	}
	if c.SnapshotsRetained < 1 {
		bad("SnapshotsRetained", "%d: want at least 1", c.SnapshotsRetained)
	}
	atLeast("TransportTimeout", c.TransportTimeout, time.Millisecond)
	if c.MaxPool < 1 {
		bad("MaxPool", "%d: want at least 1", c.MaxPool)
	}
	atLeast("HandshakeTimeout", c.HandshakeTimeout, time.Millisecond)
	atLeast("BootstrapRetryInterval", c.BootstrapRetryInterval, time.Millisecond)
	atLeast("AutopilotUpdateInterval", c.AutopilotUpdateInterval, time.Millisecond)
	atLeast("AutopilotReconcileInterval", c.AutopilotReconcileInterval, time.Millisecond)
	atLeast("LastContactThreshold", c.LastContactThreshold, time.Millisecond)
	atLeast("ServerStabilizationTime", c.ServerStabilizationTime, 0)
	atLeast("DeadServerGrace", c.DeadServerGrace, 0)
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidServerConfig, strings.Join(probs, "; "))
	}
	return nil
}

// validHostPort checks a host:port; with concrete, the host must be a specific IP and the
// port not 0. It returns the host's IP when it is one.
func validHostPort(addr string, concrete bool) (net.IP, error) {
	if addr == "" {
		return nil, errors.New("required (host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: want host:port: %v", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%q: port %q: want 0..65535", addr, port)
	}
	ip := net.ParseIP(host)
	if concrete {
		if ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("%q: want a specific IP address, not %q", addr, host)
		}
		if p == 0 {
			return nil, fmt.Errorf("%q: port 0: want 1..65535", addr)
		}
	}
	return ip, nil
}

// ServerInfo is one member of the raft configuration.
type ServerInfo struct {
	Name  string
	Addr  string
	Voter bool // false: a non-voter (new, not yet promoted by autopilot)
}

// Server is one member of the control plane's raft group.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	hclog  *slogHCLog
	r      atomic.Pointer[raft.Raft]
	store  *raftboltdb.BoltStore
	stream *tlsStreamLayer
	pilot  *autopilot.Autopilot
	addr   string // advertised raft address

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	down   atomic.Bool

	leaderCh chan bool // capacity 1, holds the latest change (see LeaderCh)

	members serverMembers // autopilot.go
}

// NewServer opens the raft store under cfg.DataDir, listens on cfg.BindAddr and starts
// raft. A server without raft state waits for SetPeers to know cfg.BootstrapExpect servers
// (or for a leader to add it); one with state rejoins its group.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("server", cfg.Name)
	s := &Server{cfg: cfg, log: log, hclog: newSlogHCLog(log, "raft"), leaderCh: make(chan bool, 1)}
	s.members.init()
	s.ctx, s.cancel = context.WithCancel(context.Background())

	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("scheduler: raft data directory: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second}, // the file lock: fail, never hang
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("scheduler: raft store in %s: %w", dir, err)
	}
	s.store = store
	fail := func(err error) (*Server, error) {
		if s.stream != nil {
			_ = s.stream.Close()
		}
		_ = store.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, cfg.SnapshotsRetained, s.hclog.Named("snapshots"))
	if err != nil {
		return fail(fmt.Errorf("scheduler: raft snapshots in %s: %w", dir, err))
	}
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fail(fmt.Errorf("scheduler: raft state in %s: %w", dir, err))
	}

	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			return fail(fmt.Errorf("%w: AdvertiseAddr: %v", ErrInvalidServerConfig, err))
		}
		advertise = a
	}
	s.stream, err = newTLSStreamLayer(cfg.BindAddr, advertise, cfg.TLS, cfg.HandshakeTimeout, log, s.status)
	if err != nil {
		return fail(err)
	}
	s.addr = s.stream.Addr().String()
	trans := noPipelineTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: raftAddressProvider{s},
		Logger:                s.hclog.Named("transport"),
		Stream:                s.stream,
		MaxPool:               cfg.MaxPool,
		Timeout:               cfg.TransportTimeout,
	})}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Name)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = s.hclog
	if err := raft.ValidateConfig(rc); err != nil {
		_ = trans.Close()
		return fail(fmt.Errorf("%w: %v", ErrInvalidServerConfig, err))
	}
	// The log cache keeps the newest entries in memory for replication, so followers that
	// keep up never make the leader read bbolt.
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		_ = trans.Close()
		return fail(err)
	}
	r, err := raft.NewRaft(rc, cfg.FSM, logs, store, snaps, trans)
	if err != nil {
		_ = trans.Close()
		return fail(fmt.Errorf("scheduler: starting raft: %w", err))
	}
	s.r.Store(r)
	s.pilot = autopilot.New(r, (*pilotDelegate)(s),
		autopilot.WithLogger(s.hclog),
		autopilot.WithUpdateInterval(cfg.AutopilotUpdateInterval),
		autopilot.WithReconcileInterval(cfg.AutopilotReconcileInterval))

	log.Info("raft server started", "addr", s.addr, "existing_state", hasState, "bootstrap_expect", cfg.BootstrapExpect)
	s.wg.Add(1)
	go s.monitorLeadership(r)
	if !hasState && cfg.BootstrapExpect > 0 {
		s.wg.Add(1)
		go s.bootstrapLoop()
	}
	return s, nil
}

// raftNode returns raft, nil before NewServer started it.
func (s *Server) raftNode() *raft.Raft { return s.r.Load() }

// Name is this server's node name (its raft server ID).
func (s *Server) Name() string { return s.cfg.Name }

// Addr is the raft address this server advertises.
func (s *Server) Addr() string { return s.addr }

// Shutdown stops raft and closes the store and every connection, as if the process had
// died (it does not hand leadership over first). It is safe to call more than once; a
// Server is not restarted: make a new one with NewServer on the same DataDir.
func (s *Server) Shutdown() error {
	var err error
	s.once.Do(func() {
		s.down.Store(true)
		s.cancel()
		pilotDone := s.pilot.Stop()
		err = s.raftNode().Shutdown().Error()
		<-pilotDone
		s.wg.Wait()
		if cerr := s.stream.Close(); err == nil {
			err = cerr
		}
		if cerr := s.store.Close(); err == nil {
			err = cerr
		}
		notifyLatest(s.leaderCh, false)
		s.log.Info("raft server shut down")
	})
	return err
}

// TransferLeadership hands leadership to another voter (the most up to date, as raft
// picks it) when this server leads and another voter exists. transferred is false when
// there was nothing to hand over (not the leader, or the only voter). After a transfer it
// waits, until ctx ends, to learn the new leader's name ("" if it did not).
func (s *Server) TransferLeadership(ctx context.Context) (transferred bool, leader string, err error) {
	if !s.IsLeader() {
		return false, "", nil
	}
	conf, err := s.Configuration()
	if err != nil {
		return false, "", err
	}
	others := 0
	for _, c := range conf {
		if c.Voter && c.Name != s.cfg.Name {
			others++
		}
	}
	if others == 0 {
		return false, "", nil
	}
	if err := s.raftNode().LeadershipTransfer().Error(); err != nil {
		return false, "", s.raftError(err)
	}
	for {
		if name, _ := s.Leader(); name != "" && name != s.cfg.Name {
			return true, name, nil
		}
		select {
		case <-ctx.Done():
			return true, "", nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// IsLeader reports whether this server is the leader now. A leader cut off from a majority
// stops being one within LeaderLeaseTimeout.
func (s *Server) IsLeader() bool {
	return !s.down.Load() && s.raftNode().State() == raft.Leader
}

// Leader returns the current leader's node name and raft address, empty when none is known.
func (s *Server) Leader() (name, addr string) {
	a, id := s.raftNode().LeaderWithID()
	// raft learns the leader's address as the transport encodes it (dialAddress).
	if _, addr, ok := splitDialAddress(a); ok {
		return string(id), addr
	}
	return string(id), string(a)
}

// LeaderCh delivers true when this server becomes the leader and false when it stops being
// one (also at Shutdown). It is one channel with one value of room: a reader that falls
// behind finds only the latest change (two trues in a row mean leadership was lost and won
// again in between). It is never closed. Meant for the one leader loop of the process.
func (s *Server) LeaderCh() <-chan bool { return s.leaderCh }

// notifyLatest puts v into ch (capacity 1), replacing an unread older value. One sender.
func notifyLatest(ch chan bool, v bool) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// monitorLeadership follows raft's leadership signal: the leader runs autopilot and adds
// the servers it learns of; a follower runs neither.
func (s *Server) monitorLeadership(r *raft.Raft) {
	defer s.wg.Done()
	var term *leaderTerm
	defer func() { term.end(s) }()
	for {
		select {
		case <-s.ctx.Done():
			return
		case isLeader := <-r.LeaderCh():
			if isLeader && term == nil {
				s.log.Info("raft: this server is now the leader", "term", r.CurrentTerm())
				term = s.lead()
			} else if !isLeader && term != nil {
				s.log.Info("raft: this server is no longer the leader")
				term.end(s)
				term = nil
			}
			notifyLatest(s.leaderCh, isLeader)
		}
	}
}

// leaderTerm is what runs while this server leads: autopilot and addServersLoop.
type leaderTerm struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *Server) lead() *leaderTerm {
	// Servers missed in an earlier term may have come and gone since: count afresh.
	s.members.mu.Lock()
	clear(s.members.missing)
	s.members.mu.Unlock()
	ctx, cancel := context.WithCancel(s.ctx)
	t := &leaderTerm{cancel: cancel, done: make(chan struct{})}
	s.pilot.Start(ctx)
	go func() {
		defer close(t.done)
		s.addServersLoop(ctx)
	}()
	return t
}

// end stops what lead started and waits for it; nil does nothing.
func (t *leaderTerm) end(s *Server) {
	if t == nil {
		return
	}
	t.cancel()
	<-s.pilot.Stop()
	<-t.done
}

// timeoutFor is how long a raft call may wait under ctx: until its deadline, else
// ApplyTimeout.
func (s *Server) timeoutFor(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond), nil
	}
	return s.cfg.ApplyTimeout, nil
}

// wait waits for f or ctx. Raft cannot take a command back: when ctx ends first, the
// command may still be applied.
func wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w (the raft operation may still complete)", ctx.Err())
	}
}

// Apply replicates cmd and applies it to the FSM of every server, returning what this
// server's FSM.Apply returned, or that value as the error when it is an error. On a
// follower it returns a *NotLeaderError. When the leader loses leadership before the
// command commits, the error wraps raft.ErrLeadershipLost: the command may or may not be
// applied, so commands must be safe to apply twice (or carry an ID the FSM checks).
func (s *Server) Apply(ctx context.Context, cmd []byte) (resp any, err error) {
	if s.cfg.Observer != nil {
		start := time.Now()
		defer func() { s.cfg.Observer.Applied(time.Since(start), err) }()
	}
	if s.down.Load() {
		return nil, ErrServerShutdown
	}
	timeout, err := s.timeoutFor(ctx)
	if err != nil {
		return nil, err
	}
	f := s.raftNode().Apply(cmd, timeout)
	if err := wait(ctx, f); err != nil {
		return nil, s.raftError(err)
	}
	resp = f.Response()
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

// Barrier waits until every entry committed before it is applied to this leader's FSM: a
// new leader calls it before reading state to decide on. On a follower it returns a
// *NotLeaderError.
func (s *Server) Barrier(ctx context.Context) error {
	if s.down.Load() {
		return ErrServerShutdown
	}
	timeout, err := s.timeoutFor(ctx)
	if err != nil {
		return err
	}
	if err := wait(ctx, s.raftNode().Barrier(timeout)); err != nil {
		return s.raftError(err)
	}
	return nil
}

// VerifyLeader confirms with a quorum that this server still leads: IsLeader can be true
// for up to LeaderLeaseTimeout on a leader already cut off. The leader loop calls it before
// acting on the world (ordering a migration). On a follower it returns a *NotLeaderError.
func (s *Server) VerifyLeader(ctx context.Context) error {
	if s.down.Load() {
		return ErrServerShutdown
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := wait(ctx, s.raftNode().VerifyLeader()); err != nil {
		return s.raftError(err)
	}
	return nil
}

// raftError turns raft's errors into this package's where the caller acts on them.
func (s *Server) raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		name, addr := s.Leader()
		return &NotLeaderError{Leader: name, Addr: addr}
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrServerShutdown
	}
	return fmt.Errorf("scheduler: raft: %w", err)
}

// Stats returns raft's statistics (raft.Raft.Stats: state, term, indexes, last_contact,
// latest_configuration, ...) and, on the leader, autopilot's view: "autopilot_healthy"
// (every server healthy) and "autopilot_failure_tolerance" (voters that may fail without
// losing the quorum).
func (s *Server) Stats() map[string]string {
	st := s.raftNode().Stats()
	if s.IsLeader() {
		if ap := s.pilot.GetState(); ap != nil && len(ap.Servers) > 0 {
			st["autopilot_healthy"] = strconv.FormatBool(ap.Healthy)
			st["autopilot_failure_tolerance"] = strconv.Itoa(ap.FailureTolerance)
		}
	}
	return st
}

// Configuration returns the latest raft configuration (possibly not yet committed),
// ordered as raft keeps it.
func (s *Server) Configuration() ([]ServerInfo, error) {
	if s.down.Load() {
		return nil, ErrServerShutdown
	}
	f := s.raftNode().GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.raftError(err)
	}
	var out []ServerInfo
	for _, srv := range f.Configuration().Servers {
		out = append(out, ServerInfo{Name: string(srv.ID), Addr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// status is what this server answers a peer's status query (transport.go).
func (s *Server) status() raftStatus {
	st := raftStatus{Name: s.cfg.Name, LastContactNS: -1}
	r := s.raftNode()
	if r == nil {
		return st
	}
	st.LastIndex = r.LastIndex()
	st.HasState = st.LastIndex > 0 || len(r.GetConfiguration().Configuration().Servers) > 0
	st.LastTerm, _ = strconv.ParseUint(r.Stats()["last_log_term"], 10, 64)
	if r.State() == raft.Leader {
		st.LastContactNS = 0
	} else if lc := r.LastContact(); !lc.IsZero() {
		st.LastContactNS = int64(time.Since(lc))
	}
	return st
}

// noPipelineTransport is raft's network transport without pipelined replication: raft then
// sends one AppendEntries at a time per follower. With the pipeline, a leader that steps
// down (a leadership transfer, a newer term) can leave its replication goroutine blocked
// for good in the pipeline's back-pressure once the pipeline's reader stopped, and
// Raft.Shutdown then waits for that goroutine forever (seen here in shutdown tests). The
// control plane commits a few commands a second, so the pipeline's throughput is not
// needed.
type noPipelineTransport struct{ *raft.NetworkTransport }

// AppendEntriesPipeline implements raft.Transport: never (raft falls back to plain RPCs).
func (noPipelineTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
