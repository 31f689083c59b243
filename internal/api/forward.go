package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/godwit-io/godwit/gossip"
)

// transport returns the transport to node at addr: TLS 1.3 with this agent's certificate,
// and the answering certificate must be node's.
func (s *Server) transport(node, addr string) *http.Transport {
	key := node + "@" + addr
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.peers[key]; ok {
		return t
	}
	tc := s.cfg.TLS.ClientConfig(node)
	tc.NextProtos = []string{"http/1.1"}
	t := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30e9, ForceAttemptHTTP2: false}
	s.peers[key] = t
	return t
}

func (s *Server) closePeers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.peers {
		t.CloseIdleConnections()
	}
}

// forward sends c's request to node's API at addr and copies the answer back. A server
// says for whom it asks; a client agent asks as itself (it only forwards reads).
func (s *Server) forward(c *call, node, addr string) (int, error) {
	hops, _ := strconv.Atoi(c.r.Header.Get(HeaderHops))
	if hops >= maxHops {
		return s.writeError(c.w, errorf(http.StatusBadGateway, CodeForward, "forwarded %d times already; not forwarding to %s", hops, node))
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), s.cfg.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.r.Method, "https://"+addr+c.r.URL.RequestURI(), bytes.NewReader(c.body))
	if err != nil {
		return s.writeError(c.w, errorf(http.StatusInternalServerError, CodeInternal, "%v", err))
	}
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set(HeaderHops, strconv.Itoa(hops+1))
	if s.cfg.Role == RoleServer {
		req.Header.Set(HeaderForwardedFor, formatIdentity(c.caller))
	}
	resp, err := s.transport(node, addr).RoundTrip(req)
	if err != nil {
		return s.writeError(c.w, errorf(http.StatusBadGateway, CodeForward, "asking %s at %s: %v", node, addr, err))
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", HeaderServedBy, HeaderLeader} {
		if v := resp.Header.Get(h); v != "" {
			c.w.Header().Set(h, v)
		}
	}
	c.w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(c.w, resp.Body)
	if resp.StatusCode >= 400 {
		return resp.StatusCode, fmt.Errorf("answered by %s", node)
	}
	return resp.StatusCode, nil
}

// servers are the alive server agents that publish an API address, by name.
func (s *Server) servers() []Peer {
	var out []Peer
	for _, n := range s.cfg.View().Alive() {
		if n.Name == s.cfg.Node || s.cfg.RoleOf(n) != RoleServer {
			continue
		}
		if addr, ok := s.cfg.APIAddr(n.Name); ok {
			out = append(out, Peer{Name: n.Name, APIAddr: addr})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// forwardToServer is a client agent's way to answer from the replicated state: ask the
// first server that answers.
func (s *Server) forwardToServer(c *call) (int, error) {
	srvs := s.servers()
	if len(srvs) == 0 {
		return s.writeError(c.w, errorf(http.StatusServiceUnavailable, CodeUnavailable, "this client agent knows no alive server to ask"))
	}
	// Try the next server only when one cannot be reached at all; its answer, whatever
	// it is, is the answer.
	for _, p := range srvs[:len(srvs)-1] {
		if s.reachable(c.r.Context(), p) {
			return s.forward(c, p.Name, p.APIAddr)
		}
	}
	last := srvs[len(srvs)-1]
	return s.forward(c, last.Name, last.APIAddr)
}

// reachable reports whether p's API answers a status request.
func (s *Server) reachable(ctx context.Context, p Peer) bool {
	var st Status
	return s.ask(ctx, p, "/v1/status", &st) == nil
}

// ask GETs path from p as this agent and decodes the answer.
func (s *Server) ask(ctx context.Context, p Peer, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+p.APIAddr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(HeaderHops, strconv.Itoa(maxHops)) // answered there, never forwarded on
	resp, err := s.transport(p.Name, p.APIAddr).RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s: %s: %s", p.Name, resp.Status, e.Message)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// leaderPeer is the leader and its API address, as this agent can learn them: a server
// from raft, a client agent by asking a server.
func (s *Server) leaderPeer(ctx context.Context) (Peer, error) {
	if cp := s.cfg.ControlPlane; cp != nil {
		name, _ := cp.Server().Leader()
		if name == "" {
			return Peer{}, errorf(http.StatusServiceUnavailable, CodeNoLeader, "no raft leader is known now (an election may be under way); retry")
		}
		addr, ok := s.cfg.APIAddr(name)
		if !ok {
			return Peer{Name: name}, errorf(http.StatusServiceUnavailable, CodeNoLeader, "the leader %s publishes no API address in gossip (yet); retry", name)
		}
		return Peer{Name: name, APIAddr: addr}, nil
	}
	for _, p := range s.servers() {
		var st Status
		if err := s.ask(ctx, p, "/v1/status", &st); err == nil && st.Leader != nil && st.Leader.APIAddr != "" {
			return *st.Leader, nil
		}
	}
	return Peer{}, errorf(http.StatusServiceUnavailable, CodeNoLeader, "no server this client agent asked knows a leader; retry")
}

// toLeader sends a leader's request where it belongs. done is false when this agent is
// the leader and answers it itself. A client agent forwards reads (as itself) and
// redirects writes.
func (s *Server) toLeader(c *call, write bool) (done bool, status int, err error) {
	cp := s.cfg.ControlPlane
	if cp != nil && cp.Server().IsLeader() {
		return false, 0, nil
	}
	p, perr := s.leaderPeer(c.r.Context())
	if perr != nil {
		status, err = s.writeError(c.w, toError(perr))
		return true, status, err
	}
	if cp == nil && write {
		e := errorf(http.StatusMisdirectedRequest, CodeNotLeader, "this agent is a client node and does not act for others: ask the leader %s at https://%s", p.Name, p.APIAddr)
		e.Leader, e.LeaderAddr = p.Name, "https://"+p.APIAddr
		status, err = s.writeError(c.w, e)
		return true, status, err
	}
	status, err = s.forward(c, p.Name, p.APIAddr)
	return true, status, err
}

// nodeRole is a gossip node's role.
func (s *Server) nodeRole(n gossip.NodeView) string { return s.cfg.RoleOf(n) }
