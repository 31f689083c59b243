package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/scheduler"
)

// Roles of agents, as their gossip labels say.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// Headers of the API.
const (
	// HeaderServedBy names the agent that produced the answer.
	HeaderServedBy = "Godwit-Served-By"
	// HeaderForwardedFor is the identity (node/role) a server forwards a request for.
	HeaderForwardedFor = "Godwit-Forwarded-For"
	// HeaderHops counts the forwards a request went through.
	HeaderHops = "Godwit-Hops"
	// HeaderLeader is the leader's API address, with 421 not-leader.
	HeaderLeader = "Godwit-Leader"
	// ALPN is the TLS protocol name the API also answers to, besides http/1.1: a client
	// that offers only it learns from the handshake alone whether an address is an agent's
	// API (the CLI tells agents from bare migration services this way).
	ALPN = "godwit-api/1"
)

// maxBody bounds request bodies: a policy file is at most 1 MiB.
const maxBody = 1<<20 + 4096

// maxHops is how many times a request may be forwarded (client → server → leader).
const maxHops = 2

// Config is what the API serves from: the agent's identity and its view of the cluster.
type Config struct {
	// Node, Role (server or client) and Site are this agent's.
	Node, Role, Site string
	// TLS is the agent's identity: it serves with it and dials other agents with it.
	TLS *pki.TLS
	// View is the agent's gossip view.
	View func() gossip.ClusterView
	// APIAddr is the API address (IP:port) a node publishes in gossip.
	APIAddr func(node string) (string, bool)
	// RoleOf is a node's role as gossip says (server, client).
	RoleOf func(n gossip.NodeView) string
	// ControlPlane is a server's (nil on client agents).
	ControlPlane *scheduler.ControlPlane
	// Log gets one line per request (debug) and per refused or failed one (info, warn).
	Log *slog.Logger
	// Now is the clock for the commands proposed (default time.Now).
	Now func() time.Time
	// ForwardTimeout bounds a forwarded request (default 30s).
	ForwardTimeout time.Duration
	// Metrics, if set, answers GET /metrics (Prometheus' exposition, internal/metrics)
	// to any caller with a verified cluster identity; without it the path is not found.
	Metrics http.Handler
}

// Server is one agent's API server. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	mux  *http.ServeMux
	http *http.Server
	addr string
	done chan struct{}

	mu    sync.Mutex
	peers map[string]*http.Transport // by node@addr: transports that insist on that node

	stopping atomic.Bool // StopWrites was called

	tokens tokenCache // a client agent's answers from servers about tokens (auth.go)
}

// StopWrites makes the server refuse every change from now on (503, code unavailable,
// "shutting down") while it still answers reads: the agent calls it when it starts to
// shut down, so that nothing new is asked of a node about to leave.
func (s *Server) StopWrites() { s.stopping.Store(true) }

// New returns a server; Listen starts it.
func New(cfg Config) (*Server, error) {
	if cfg.TLS == nil || cfg.View == nil || cfg.APIAddr == nil || cfg.RoleOf == nil || cfg.Node == "" {
		return nil, errors.New("api: Config needs Node, TLS, View, APIAddr and RoleOf")
	}
	if cfg.Role == RoleServer && cfg.ControlPlane == nil {
		return nil, errors.New("api: a server needs its ControlPlane")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), done: make(chan struct{}), peers: map[string]*http.Transport{}}
	s.routes()
	return s, nil
}

// Handler is the API's handler (tests serve it themselves).
func (s *Server) Handler() http.Handler { return s.mux }

// Listen binds bind (host:port, port 0 picks one) and serves until Close. It returns the
// address bound.
func (s *Server) Listen(bind string) (string, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return "", fmt.Errorf("api: %w", err)
	}
	tc := apiServerConfig(s.cfg.TLS)
	tc.NextProtos = []string{"http/1.1", ALPN}
	s.http = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// A failed handshake (no certificate, another CA) is logged by us, briefly.
		ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug),
	}
	s.addr = ln.Addr().String()
	go func() {
		defer close(s.done)
		if err := s.http.Serve(tls.NewListener(ln, tc)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Warn("API server stopped", "err", err)
		}
	}()
	return s.addr, nil
}

// Addr is the address bound ("" before Listen).
func (s *Server) Addr() string { return s.addr }

// Close stops serving: requests in progress get until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	<-s.done
	s.closePeers()
	return err
}

// route says where an endpoint is answered.
type route int

const (
	local   route = iota // any agent, from its own view
	replica              // any server (the replicated state); a client agent forwards
	leader               // the leader; a follower forwards, a client agent redirects
)

// call is one request as the handlers see it.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	caller pki.Identity
	// viaToken is the role of the bearer token the caller authenticated with ("" for a
	// certificate).
	viaToken string
	body     []byte
	// written is the status of an answer a handler wrote itself (errWritten).
	written int
}

// errWritten is what a handler returns when it wrote the answer itself (forwarded it).
var errWritten = errors.New("api: answered")

// handler answers a call: a value to write as JSON with status, or an error.
type handler func(c *call) (int, any, error)

// handle registers pattern ("METHOD /path") with the one wrapper every endpoint goes
// through: identity, authorization, routing, errors as JSON, one log line.
func (s *Server) handle(pattern string, write bool, rt route, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set(HeaderServedBy, s.cfg.Node)
		c := &call{w: w, r: r}
		status, err := s.serve(c, write, rt, h)
		log := s.cfg.Log.With("method", r.Method, "path", r.URL.Path, "caller", c.caller.String(), "status", status, "duration", time.Since(start))
		switch {
		case err != nil && status >= 500:
			log.Warn("API request failed", "err", err)
		case err != nil:
			log.Info("API request refused", "err", err)
		default:
			log.Debug("API request")
		}
	})
}

// serve runs one call; it returns the status written and the error answered, if any.
func (s *Server) serve(c *call, write bool, rt route, h handler) (int, error) {
	r := c.r
	if e := s.authenticate(c); e != nil {
		return s.writeError(c.w, e)
	}
	peer := c.caller
	var err error
	if fwd := r.Header.Get(HeaderForwardedFor); fwd != "" {
		// Only a server acts for someone else; a client node acts only as itself.
		if peer.Role != pki.RoleServer {
			return s.writeError(c.w, errorf(http.StatusForbidden, CodeForbidden, "%s may not forward requests for others", peer))
		}
		id, err := parseIdentity(fwd)
		if err != nil {
			return s.writeError(c.w, errorf(http.StatusBadRequest, CodeBadRequest, "%s: %v", HeaderForwardedFor, err))
		}
		c.caller = id
	}
	if write && s.stopping.Load() {
		return s.writeError(c.w, errorf(http.StatusServiceUnavailable, CodeUnavailable, "agent %s is shutting down: it takes no changes; ask another agent", s.cfg.Node))
	}
	if write && c.viaToken == scheduler.TokenViewer {
		return s.writeError(c.w, errorf(http.StatusForbidden, CodeForbidden, "%s holds a viewer token: it may only read", c.caller.Node))
	}
	if write && c.caller.Role == pki.RoleClient {
		return s.writeError(c.w, errorf(http.StatusForbidden, CodeForbidden, "%s may only read: changes need an operator or a server certificate", c.caller))
	}
	if r.Body != nil {
		c.body, err = io.ReadAll(http.MaxBytesReader(c.w, r.Body, maxBody))
		if err != nil {
			return s.writeError(c.w, errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body: %v", err))
		}
	}
	switch rt {
	case replica:
		if s.cfg.ControlPlane == nil {
			return s.forwardToServer(c)
		}
	case leader:
		if done, status, err := s.toLeader(c, write); done {
			return status, err
		}
	}
	status, v, err := h(c)
	if errors.Is(err, errWritten) {
		return c.written, nil
	}
	if err != nil {
		return s.writeError(c.w, toError(err))
	}
	return status, writeJSON(c.w, status, v)
}

// parseIdentity reads node/role.
func parseIdentity(s string) (pki.Identity, error) {
	node, role, ok := strings.Cut(s, "/")
	if !ok {
		return pki.Identity{}, fmt.Errorf("want node/role, got %q", s)
	}
	r, err := pki.ParseRole(role)
	if err != nil {
		return pki.Identity{}, err
	}
	if err := pki.ValidNodeName(node); err != nil {
		return pki.Identity{}, err
	}
	return pki.Identity{Node: node, Role: r}, nil
}

func formatIdentity(id pki.Identity) string { return id.Node + "/" + string(id.Role) }

func (s *Server) writeError(w http.ResponseWriter, e *Error) (int, error) {
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.LeaderAddr != "" {
		w.Header().Set(HeaderLeader, e.LeaderAddr)
	}
	_ = writeJSON(w, e.Status, e)
	return e.Status, e
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
