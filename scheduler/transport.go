package scheduler

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/godwit-io/godwit/internal/pki"
)

// The raft port speaks two protocols, chosen by ALPN in the TLS handshake: raft's own RPCs
// (handed to raft's NetworkTransport) and a one-shot status query that servers ask each
// other for autopilot's health checks and before bootstrapping. A connection that offers
// neither is refused.
const (
	alpnRaft   = "godwit-raft/1"
	alpnStatus = "godwit-raft-status/1"
)

// maxStatusBytes bounds a status answer read from a peer.
const maxStatusBytes = 64 << 10

// maxHandshakes bounds the incoming TLS handshakes in progress: a flood of connections that
// never finish their handshake costs at most this many goroutines, each for at most
// HandshakeTimeout. A handful of servers needs a few at a time.
const maxHandshakes = 64

// errPeerNotServer is the handshake error for a peer whose certificate is valid but whose
// role is not server: only servers take part in raft.
var errPeerNotServer = errors.New("scheduler: raft peer is not a server")

// errNoServerName is returned by Dial for an address that carries no server name: raft
// asked for an address the configuration does not name (see raftAddressProvider).
var errNoServerName = errors.New("scheduler: no raft server name known for address")

// dialAddress is the address raft hands to Dial: "name@host:port". raft's Dial gets only
// an address, so raftAddressProvider (which raft asks with the server ID before every dial)
// prefixes the ID, and Dial insists that the certificate presented at host:port names that
// server. Node names cannot contain '@'.
func dialAddress(name, addr string) raft.ServerAddress {
	return raft.ServerAddress(name + "@" + addr)
}

// splitDialAddress undoes dialAddress.
func splitDialAddress(a raft.ServerAddress) (name, addr string, ok bool) {
	name, addr, ok = strings.Cut(string(a), "@")
	return name, addr, ok && name != "" && addr != ""
}

// raftAddressProvider gives raft's NetworkTransport, for a server ID, the address to dial
// with the ID in it (dialAddress). The address is the one in raft's latest configuration,
// which is where raft would have dialled anyway. An ID outside the configuration is an
// error, so raft falls back to the bare address, which Dial refuses: raft never talks to a
// server whose name it cannot check.
type raftAddressProvider struct {
	s *Server
}

func (p raftAddressProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	r := p.s.raftNode()
	if r == nil {
		return "", fmt.Errorf("%w: raft not started", errNoServerName)
	}
	for _, srv := range r.GetConfiguration().Configuration().Servers {
		if srv.ID == id {
			return dialAddress(string(id), string(srv.Address)), nil
		}
	}
	return "", fmt.Errorf("%w: server %q is not in the raft configuration", errNoServerName, id)
}

// raftStatus is what a server tells a peer that asks over alpnStatus: enough for
// autopilot's health check (the raft stats Consul fetches by RPC) and for the bootstrap
// check (has this server raft state already?).
type raftStatus struct {
	Name      string `json:"name"`
	HasState  bool   `json:"has_state"`
	LastIndex uint64 `json:"last_index"`
	LastTerm  uint64 `json:"last_term"`
	// LastContactNS is the time since the last contact with a leader in nanoseconds: 0 on
	// the leader, -1 when no leader was ever heard from.
	LastContactNS int64 `json:"last_contact_ns"`
}

// tlsStreamLayer is the raft.StreamLayer: TCP with TLS 1.3 and mutual authentication
// against the cluster CA (internal/pki). It accepts only peers whose certificate has the
// role server, and dials only servers whose certificate carries the name raft meant. TLS
// handshakes run in their own goroutines (bounded by HandshakeTimeout), so a slow or
// hostile peer never holds up raft's accept loop. Close closes the listener and every
// connection it made or accepted, as a crashed process's would be.
type tlsStreamLayer struct {
	ln               net.Listener
	advertise        net.Addr
	tls              *pki.TLS
	serverConf       *tls.Config
	dialer           net.Dialer
	handshakeTimeout time.Duration
	log              *slog.Logger
	status           func() raftStatus

	acceptCh   chan net.Conn
	handshakes chan struct{} // one token per handshake in progress
	closed     chan struct{}
	once       sync.Once
	wg         sync.WaitGroup

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

// newTLSStreamLayer listens on bind and starts accepting. advertise is the address raft
// announces (it must be a concrete IP and port). Outgoing connections leave from bind's IP
// when it is a specific one, so a server is one address to the network (and to firewall
// rules).
func newTLSStreamLayer(bind string, advertise net.Addr, id *pki.TLS, handshakeTimeout time.Duration, log *slog.Logger, status func() raftStatus) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("scheduler: raft listener: %w", err)
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	conf := id.ServerConfig()
	conf.NextProtos = []string{alpnRaft, alpnStatus}
	verifyIdentity := conf.VerifyConnection
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyIdentity(cs); err != nil {
			return err
		}
		return requireServerRole(cs)
	}
	s := &tlsStreamLayer{
		ln:               ln,
		advertise:        advertise,
		tls:              id,
		serverConf:       conf,
		handshakeTimeout: handshakeTimeout,
		log:              log,
		status:           status,
		acceptCh:         make(chan net.Conn),
		handshakes:       make(chan struct{}, maxHandshakes),
		closed:           make(chan struct{}),
		conns:            make(map[*trackedConn]struct{}),
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		s.dialer.LocalAddr = &net.TCPAddr{IP: tcp.IP}
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// requireServerRole refuses a client whose certificate is valid but not a server's. It runs
// inside the handshake (after pki's checks), so the refused peer gets a TLS alert.
func requireServerRole(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return fmt.Errorf("%w: no verified certificate", errPeerNotServer)
	}
	id, err := pki.IdentityOf(cs.VerifiedChains[0][0])
	if err != nil {
		return err
	}
	if id.Role != pki.RoleServer {
		return fmt.Errorf("%w: %s", errPeerNotServer, id)
	}
	return nil
}

func (s *tlsStreamLayer) acceptLoop() {
	defer s.wg.Done()
	delay := 5 * time.Millisecond
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			// Out of file descriptors and the like: back off, never spin.
			s.log.Warn("raft: accept failed", "err", err)
			select {
			case <-s.closed:
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		select {
		case s.handshakes <- struct{}{}:
		default:
			s.log.Warn("raft: refused a connection: too many handshakes in progress", "remote", c.RemoteAddr().String(), "limit", maxHandshakes)
			_ = c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.handshakes }()
			s.handshake(c)
		}()
	}
}

// handshake authenticates one incoming connection and hands it to raft or answers a status
// query. Every refusal is logged with the peer's address and the reason.
func (s *tlsStreamLayer) handshake(raw net.Conn) {
	defer s.wg.Done()
	tc := tls.Server(raw, s.serverConf)
	conn := s.track(tc)
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		conn.Close()
		select {
		case <-s.closed: // shutting down: not the peer's fault
		default:
			s.log.Warn("raft: refused a connection", "remote", raw.RemoteAddr().String(), "err", err)
		}
		return
	}
	cs := tc.ConnectionState()
	peer, _ := pki.PeerIdentity(cs)
	switch cs.NegotiatedProtocol {
	case alpnRaft:
		select {
		case s.acceptCh <- conn:
		case <-s.closed:
			conn.Close()
		}
	case alpnStatus:
		defer conn.Close()
		_ = conn.SetWriteDeadline(time.Now().Add(s.handshakeTimeout))
		if err := json.NewEncoder(conn).Encode(s.status()); err != nil {
			s.log.Debug("raft: status answer not sent", "peer", peer.Node, "err", err)
		}
	default:
		s.log.Warn("raft: refused a connection", "remote", raw.RemoteAddr().String(), "peer", peer.String(),
			"err", fmt.Sprintf("no application protocol (want %s or %s)", alpnRaft, alpnStatus))
		conn.Close()
	}
}

// Accept returns the next authenticated raft connection.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.acceptCh:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes every connection made or accepted here.
func (s *tlsStreamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
		s.mu.Lock()
		conns := make([]*trackedConn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			// Closing the TCP connection under the TLS one: no close_notify that could wait on
			// a peer that no longer reads.
			_ = c.raw.Close()
		}
		s.wg.Wait()
	})
	return err
}

// Addr is the advertised address (raft puts it into the configuration).
func (s *tlsStreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to the server named in address (see dialAddress) for raft's RPCs.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	name, addr, ok := splitDialAddress(address)
	if !ok {
		return nil, fmt.Errorf("%w %q", errNoServerName, address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, name, addr, alpnRaft)
}

// dial opens a TLS connection to the server name at addr for protocol proto and checks that
// the peer is that server.
func (s *tlsStreamLayer) dial(ctx context.Context, name, addr, proto string) (*trackedConn, error) {
	select {
	case <-s.closed:
		return nil, net.ErrClosed
	default:
	}
	raw, err := s.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conf := s.tls.ClientConfig(name)
	conf.NextProtos = []string{proto}
	tc := tls.Client(raw, conf)
	conn := s.track(tc)
	if conn == nil {
		return nil, net.ErrClosed
	}
	hctx, cancel := context.WithTimeout(ctx, s.handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("scheduler: raft server %s at %s: %w", name, addr, err)
	}
	cs := tc.ConnectionState()
	id, err := pki.PeerIdentity(cs)
	if err == nil && id.Role != pki.RoleServer {
		err = fmt.Errorf("%w: %s", errPeerNotServer, id)
	}
	if err == nil && cs.NegotiatedProtocol != proto {
		err = fmt.Errorf("scheduler: raft server %s at %s did not agree to %s", name, addr, proto)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("scheduler: raft server %s at %s: %w", name, addr, err)
	}
	return conn, nil
}

// queryStatus asks the server name at addr for its raftStatus.
func (s *tlsStreamLayer) queryStatus(ctx context.Context, name, addr string) (raftStatus, error) {
	conn, err := s.dial(ctx, name, addr, alpnStatus)
	if err != nil {
		return raftStatus{}, err
	}
	defer conn.Close()
	deadline := time.Now().Add(s.handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) }) // cancelled: give up now
	defer stop()
	var st raftStatus
	if err := json.NewDecoder(io.LimitReader(conn, maxStatusBytes)).Decode(&st); err != nil {
		return raftStatus{}, fmt.Errorf("scheduler: status of raft server %s at %s: %w", name, addr, err)
	}
	if st.Name != name {
		return raftStatus{}, fmt.Errorf("scheduler: status of raft server %s at %s names %q", name, addr, st.Name)
	}
	return st, nil
}

// trackedConn is a connection the stream layer closes when it closes.
type trackedConn struct {
	*tls.Conn
	raw  net.Conn
	s    *tlsStreamLayer
	once sync.Once
}

// track registers c, or closes it and returns nil when the layer is already closed.
func (s *tlsStreamLayer) track(c *tls.Conn) *trackedConn {
	t := &trackedConn{Conn: c, raw: c.NetConn(), s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		_ = t.raw.Close()
		return nil
	default:
	}
	s.conns[t] = struct{}{}
	return t
}

func (t *trackedConn) Close() error {
	var err error
	t.once.Do(func() {
		t.s.mu.Lock()
		delete(t.s.conns, t)
		t.s.mu.Unlock()
		err = t.Conn.Close()
	})
	return err
}
