package migrate

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// NodeConfig configures a node's migration service.
type NodeConfig struct {
	// Name is this node's name; its certificate must carry it. Required.
	Name string
	// Runtime is the node's container (or process) runtime. Required.
	Runtime Runtime
	// StateDir holds the journal, local checkpoints, staged incoming checkpoints and image
	// spools. Required.
	StateDir string
	// TLS is the node's identity and the cluster's CA. Required: there is no plaintext mode.
	TLS *pki.TLS
	Log *slog.Logger

	// IOTimeout bounds every single read and write on a connection. Default 60s: long enough
	// for a slow peer to produce the next megabyte, short enough that a dead one is noticed.
	IOTimeout time.Duration
	// DialTimeout bounds connecting and the TLS handshake. Default 10s.
	DialTimeout time.Duration
	// RestoreTimeout is how long a source waits for a target's restore answer. Default 15m:
	// restoring several GiB on a slow node takes minutes.
	RestoreTimeout time.Duration
	// SettleTimeout is how long a source keeps asking an unreachable target after a lost
	// restore answer before it reports the migration in doubt (and goes on asking in the
	// background). Default 30s.
	SettleTimeout time.Duration
	// StagingTTL is how long a target keeps a staged checkpoint and prepared copy of a
	// migration that does not go on (no restore) before removing them. Default 30m.
	StagingTTL time.Duration
	// Retention is how long finished journal entries are kept. Default 72h.
	Retention time.Duration
	// MaxStreamBytes bounds one checkpoint stream (checkpoint and volumes). Default 64 GiB.
	MaxStreamBytes int64
	// MaxImageBytes bounds one image transfer. Default 16 GiB.
	MaxImageBytes int64
	// MaxStreamEntries bounds the files in one checkpoint stream. Default 1,000,000.
	MaxStreamEntries int
	// CloseTimeout bounds how long Close waits for requests in progress. Default 5s.
	CloseTimeout time.Duration
	// MaxConns bounds connections served at once (handshakes included); more are closed
	// at once. Default 256: far above what a node's migrations need, low enough that a
	// flood of connections cannot exhaust the process.
	MaxConns int
	// OnTransfer, when set, is called on the source after each checkpoint stream the target
	// confirmed: what crossed the network to which node, and how long it took. The agent
	// feeds it to gossip as the link's bandwidth estimate. It must not block.
	OnTransfer func(Transfer)
	// Fault, when set, is called at named points of a migration; an error it returns fails
	// the migration there, as a real failure would (fault-injection tests). Points:
	// "source-during-checkpoint" (100 ms into the dump, from another goroutine; its error is
	// ignored), "source-after-checkpoint", "source-streaming" (half the checkpoint sent),
	// "source-after-restore" (the target confirmed, nothing journaled yet),
	// "target-streaming" (half received), "target-before-restore", "target-after-restore".
	Fault func(point string) error
	// LoopbackAddr is the loopback address post-copy page servers and relays listen on
	// (never reachable from other hosts: the pages cross nodes over TLS). Default: the
	// node's listening address when it is a loopback one, else 127.0.0.1.
	LoopbackAddr string
}

// Transfer is one checkpoint stream as its source saw it.
type Transfer struct {
	Peer     string        // the target node
	Bytes    int64         // on the wire (compressed when the stream was)
	Duration time.Duration // from the first byte sent to the target's confirmation
}

// FaultPoints are the points NodeConfig.Fault is called at, in the order a migration
// reaches them.
var FaultPoints = []string{"source-during-checkpoint", "source-after-checkpoint", "source-streaming", "target-streaming",
	"target-before-restore", "target-after-restore", "source-after-restore",
	// post-copy only: the target copy restored, before its verify; the source once the
	// target runs the workload while its pages arrive.
	"target-lazy-restored", "source-pulling"}

// ValidID reports whether id can be a migration ID (it names files on every node).
func ValidID(id string) bool { return validID(id) }

func (c *NodeConfig) setDefaults() {
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.IOTimeout, 60*time.Second)
	def(&c.DialTimeout, 10*time.Second)
	def(&c.RestoreTimeout, 15*time.Minute)
	def(&c.SettleTimeout, 30*time.Second)
	def(&c.StagingTTL, 30*time.Minute)
	def(&c.Retention, 72*time.Hour)
	def(&c.CloseTimeout, 5*time.Second)
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = 64 << 30
	}
	if c.MaxImageBytes == 0 {
		c.MaxImageBytes = 16 << 30
	}
	if c.MaxConns == 0 {
		c.MaxConns = 256
	}
	if c.MaxStreamEntries == 0 {
		c.MaxStreamEntries = 1_000_000
	}
}

// Validate checks the required fields.
func (c *NodeConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("migrate: NodeConfig.Name is required")
	case c.Runtime == nil:
		return errors.New("migrate: NodeConfig.Runtime is required")
	case c.StateDir == "":
		return errors.New("migrate: NodeConfig.StateDir is required")
	case c.TLS == nil:
		return errors.New("migrate: NodeConfig.TLS is required (there is no plaintext mode)")
	}
	if err := pki.ValidNodeName(c.Name); err != nil {
		return fmt.Errorf("migrate: NodeConfig.Name: %w", err)
	}
	if id := c.TLS.Identity(); id.Node != c.Name || !id.IsNode() {
		return fmt.Errorf("migrate: NodeConfig.Name is %q but the certificate is %s: a node serves with its own node certificate", c.Name, id)
	}
	if c.IOTimeout < 0 || c.DialTimeout < 0 || c.StagingTTL < 0 || c.Retention < 0 {
		return errors.New("migrate: NodeConfig timeouts must be >= 0")
	}
	return nil
}

// Node is one node's migration service: the source side (Migrate, on an order from a server
// or operator), the target side (pre-flight, image, prepare, stream, restore, from the
// migration's source node only), and status/resolve for anyone settling a migration. Each
// node journals every migration it takes part in and recovers them at Start.
type Node struct {
	cfg     NodeConfig
	rt      Runtime
	journal *Journal
	log     *slog.Logger

	ids keyedLocks // one step of a migration at a time

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	closed  bool
	drain   bool                  // shutting down: no new migrations (Drain)
	retry   map[string]retryState // background settle attempts by migration ID
	moving  map[string]string     // workload → the migration moving it from here
	handler sync.WaitGroup
	bg      sync.WaitGroup
	pc      postcopyState
}

// NewNode opens the node's journal and returns the service; call Listen and Start.
func NewNode(cfg NodeConfig) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	j, err := OpenJournal(filepath.Join(cfg.StateDir, "journal"))
	if err != nil {
		return nil, err
	}
	for _, p := range j.Corrupt {
		cfg.Log.Error("journal: unreadable entry set aside; its migration needs an operator", "file", p+journalBadSuffix)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{
		cfg: cfg, rt: cfg.Runtime, journal: j, log: cfg.Log.With("node", cfg.Name),
		ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}, retry: map[string]retryState{}, moving: map[string]string{},
	}, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Journal is the node's journal (read it; the node writes it).
func (n *Node) Journal() *Journal { return n.journal }

// Listen starts serving TLS on addr and returns the bound address.
func (n *Node) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("migrate: listen %s: %w", addr, err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ln.Close()
		return "", errors.New("migrate: node closed")
	}
	n.ln = ln
	n.mu.Unlock()
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted, open := n.track(c)
			if !open {
				c.Close()
				return
			}
			if !accepted {
				continue
			}
			n.handler.Add(1)
			go func() {
				defer n.handler.Done()
				defer n.untrack(c)
				n.serve(c)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// track registers an accepted connection; accepted is false (and c closed) when MaxConns
// are open, open is false once the node is closed.
func (n *Node) track(c net.Conn) (accepted, open bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false, false
	}
	if len(n.conns) >= n.cfg.MaxConns {
		n.log.Warn("refused connection: too many open", "remote", c.RemoteAddr(), "max", n.cfg.MaxConns)
		c.Close()
		return false, true
	}
	n.conns[c] = struct{}{}
	return true, true
}

func (n *Node) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	c.Close()
}

// Close stops accepting, closes open connections, stops background work and waits (at most
// CloseTimeout) for requests in progress. A migration cut short is finished or undone by
// the journal's recovery at the next Start.
func (n *Node) Close() error {
	first, err := n.stop()
	if !first {
		return nil
	}
	done := make(chan struct{})
	go func() {
		n.handler.Wait()
		n.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(n.cfg.CloseTimeout):
		n.log.Warn("close: requests still in progress; the journal settles them at the next start")
	}
	return err
}

// stop closes the listener and every connection and cancels background work, without
// waiting. It reports whether this was the first call.
func (n *Node) stop() (bool, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false, nil
	}
	n.closed = true
	ln := n.ln
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.cancel()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	return true, err
}

// serve handles one connection: TLS handshake, one request, one response.
func (n *Node) serve(raw net.Conn) {
	dc := &deadlineConn{Conn: raw, timeout: n.cfg.IOTimeout}
	conn := tls.Server(dc, n.cfg.TLS.ServerConfig())
	hctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
	err := conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		n.log.Warn("refused connection: TLS handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	peer, err := pki.PeerIdentity(conn.ConnectionState())
	if err != nil {
		n.log.Warn("refused connection: no valid identity", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	br := bufio.NewReaderSize(conn, chunkSize+8)
	magic := make([]byte, len(protoMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != protoMagic {
		n.log.Warn("refused request: not protocol "+protoMagic, "peer", peer.String(), "remote", raw.RemoteAddr())
		n.answer(conn, errorResponse(fmt.Errorf("%w: this node speaks protocol %s only", ErrRefused, protoMagic)))
		return
	}
	var req request
	if err := readStrictFrame(br, &req); err != nil {
		n.log.Warn("refused request: malformed", "peer", peer.String(), "err", err)
		n.answer(conn, errorResponse(fmt.Errorf("%w: %v", ErrRefused, err)))
		return
	}
	var resp response
	if req.Op == opPages {
		// The page stream answers when it ends; until then the connection carries pages.
		resp, err = n.servePages(n.ctx, peer, &req, br, dc, conn)
	} else {
		resp, err = n.handle(n.ctx, peer, &req, br, dc)
	}
	if err != nil {
		lvl := slog.LevelWarn
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrUnsafeStream) {
			lvl = slog.LevelError
		}
		n.log.Log(n.ctx, lvl, "request failed", "op", req.Op, "migration", req.MigrationID, "peer", peer.String(), "err", err)
		er := errorResponse(err)
		resp.Error, resp.Kind = er.Error, er.Kind // the rest (a report) still goes back
	} else {
		resp.OK = true
	}
	n.answer(conn, resp)
}

func (n *Node) answer(conn *tls.Conn, resp response) {
	resp.Node = n.cfg.Name
	bw := bufio.NewWriter(conn)
	if err := writeJSONFrame(bw, resp); err == nil {
		_ = bw.Flush()
	}
	_ = conn.CloseWrite()
}

// handle authorizes and runs one request.
func (n *Node) handle(ctx context.Context, peer pki.Identity, req *request, body io.Reader, dc *deadlineConn) (response, error) {
	if req.Op != opPing && req.Op != opMigrate && !validID(req.MigrationID) {
		return response{}, fmt.Errorf("%w: invalid migration ID %q", ErrRefused, req.MigrationID)
	}
	switch req.Op {
	case opPing:
		return response{}, nil
	case opMigrate:
		if peer.Role != pki.RoleServer && peer.Role != pki.RoleOperator {
			return response{}, fmt.Errorf("%w: %s may not order migrations (servers and operators may)", ErrUnauthorized, peer)
		}
		if req.Order == nil {
			return response{}, fmt.Errorf("%w: migrate request without an order", ErrRefused)
		}
		rep, err := n.Migrate(ctx, *req.Order)
		return response{Report: rep}, err
	case opStatus:
		if err := n.authorizeSettle(peer, req.MigrationID, false); err != nil {
			return response{}, err
		}
		st := n.Status(ctx, req.MigrationID)
		return response{Status: &st}, nil
	case opResolve:
		if err := n.authorizeSettle(peer, req.MigrationID, true); err != nil {
			return response{}, err
		}
		// Only the control plane (or an operator) may fence off an order that has not
		// arrived; a node aborting its own part on a peer never creates anything there.
		fence := peer.Role == pki.RoleServer || peer.Role == pki.RoleOperator
		st, err := n.resolve(ctx, req.MigrationID, req.Outcome, fence)
		return response{Status: &st}, err
	case opPulled:
		// Not under the migration's lock: the transfer settles under it meanwhile.
		e, ok := n.journal.Get(req.MigrationID)
		if !ok || !peer.IsNode() || e.Side != SideTarget || e.Source != peer.Node {
			return response{}, fmt.Errorf("%w: %s is not the source of migration %s", ErrUnauthorized, peer, req.MigrationID)
		}
		dc.setTimeout(n.cfg.RestoreTimeout)
		return n.pulled(ctx, e)
	case opPreflight, opHasImage, opImage, opPrepare, opStream, opRestore:
		if !peer.IsNode() {
			return response{}, fmt.Errorf("%w: %s is not a node; only a migration's source node may send %s", ErrUnauthorized, peer, req.Op)
		}
		if peer.Node == n.cfg.Name {
			return response{}, fmt.Errorf("%w: a node cannot migrate to itself", ErrRefused)
		}
		unlock := n.ids.lock(req.MigrationID)
		defer unlock()
		if req.Op == opPreflight {
			if n.draining() {
				return response{}, fmt.Errorf("%w: not taking migration %s", ErrShuttingDown, req.MigrationID)
			}
			return n.preflight(ctx, peer, req)
		}
		e, ok := n.journal.Get(req.MigrationID)
		if !ok {
			return response{}, fmt.Errorf("%w: migration %s is unknown here (pre-flight first)", ErrNotFound, req.MigrationID)
		}
		if e.Side != SideTarget || e.Source != peer.Node {
			return response{}, fmt.Errorf("%w: %s is not the source of migration %s", ErrUnauthorized, peer, req.MigrationID)
		}
		switch req.Op {
		case opHasImage:
			return n.hasImage(ctx, e)
		case opImage:
			return n.receiveImage(ctx, e, req, body)
		case opPrepare:
			return n.prepare(ctx, e)
		case opStream:
			return n.receiveCheckpoint(ctx, e, req, body)
		case opRestore:
			dc.setTimeout(n.cfg.RestoreTimeout)
			if req.Method == MethodPostCopy {
				return n.restoreLazy(ctx, e, req)
			}
			return n.restore(ctx, e)
		}
	}
	return response{}, fmt.Errorf("%w: unknown operation %q", ErrRefused, req.Op)
}

// authorizeSettle: servers and operators may ask about and settle any migration; a node
// only one it takes part in, and only the source may resolve a target's part.
func (n *Node) authorizeSettle(peer pki.Identity, id string, resolve bool) error {
	if peer.Role == pki.RoleServer || peer.Role == pki.RoleOperator {
		return nil
	}
	e, ok := n.journal.Get(id)
	if !ok {
		return fmt.Errorf("%w: %s takes no part in migration %s", ErrUnauthorized, peer, id)
	}
	if e.Side == SideTarget && e.Source == peer.Node {
		return nil
	}
	if !resolve && e.Side == SideSource && e.Target == peer.Node {
		return nil
	}
	return fmt.Errorf("%w: %s may not %s migration %s", ErrUnauthorized, peer, map[bool]string{true: "resolve", false: "ask about"}[resolve], id)
}

// Status answers from the journal and the engine what this node knows of migration id.
func (n *Node) Status(ctx context.Context, id string) Status {
	st := Status{ID: id, Node: n.cfg.Name}
	e, ok := n.journal.Get(id)
	if !ok {
		return st
	}
	st.Known, st.Side, st.Workload, st.Source, st.Target = true, e.Side, e.Workload, e.Source, e.Target
	st.Phase, st.Finished, st.InDoubt, st.Error, st.Updated = e.Phase, e.Finished(), e.Phase == PhaseInDoubt, e.Error, e.Updated
	if e.LocalID != "" {
		if ws, err := n.rt.State(ctx, e.LocalID); err == nil {
			st.Copy = &ws
		}
	}
	return st
}

// put journals e, logging the phase change.
func (n *Node) put(e *Entry, phase string, err error) error {
	e.Phase = phase
	e.Error = ""
	if err != nil {
		e.Error = err.Error()
	}
	if jerr := n.journal.Put(*e); jerr != nil {
		n.log.Error("journal write failed", "migration", e.ID, "phase", phase, "err", jerr)
		return jerr
	}
	attrs := []any{"migration", e.ID, "workload", e.Workload, "side", e.Side, "phase", phase}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	n.log.Info("migration phase", attrs...)
	return nil
}

func (n *Node) fault(point string) error {
	if n.cfg.Fault != nil {
		if err := n.cfg.Fault(point); err != nil {
			return fmt.Errorf("fault injected at %s: %w", point, err)
		}
	}
	return nil
}

// staging is the target's directory for migration id: derived here, never from the wire.
func (n *Node) staging(id string) string { return filepath.Join(n.cfg.StateDir, "incoming", id) }

// localCheckpoint is the source's own checkpoint of migration id.
func (n *Node) localCheckpoint(id string) string {
	return filepath.Join(n.cfg.StateDir, "checkpoints", id)
}

func removeAllQuiet(p string) { _ = os.RemoveAll(p) }
