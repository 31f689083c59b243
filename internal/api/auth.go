package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/scheduler"
)

// Bearer tokens. Browsers cannot easily present client certificates, so the API also
// accepts "Authorization: Bearer SECRET" over TLS: the API listener (and only it; the
// migration service keeps mutual TLS) asks for a client certificate but does not require
// one. A caller with a certificate is who the certificate says; one without is who its
// token says, or is refused (401). The state records only the SHA-256 of each secret.
//
// A viewer token acts as a read-only identity (role client: reads only); an operator
// token as an operator, who may drain, undrain, migrate and apply policies. Tokens are
// managed only by callers with a certificate (an operator's, or a server's forwarding
// one): a token cannot mint tokens.

// TokenPrefix starts every secret, so that one is recognisable in a leaked file.
const TokenPrefix = "gdw_"

// tokenCacheTTL is how long a client agent trusts a server's word on a token.
const tokenCacheTTL = 5 * time.Second

// apiServerConfig is the API listener's TLS: the agent's, with client certificates
// verified when given but not required.
func apiServerConfig(t *pki.TLS) *tls.Config {
	tc := t.ServerConfig()
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	verify := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // a bearer token must then come with each request
		}
		return verify(cs)
	}
	return tc
}

// HashToken is the hex SHA-256 of a token's secret, as the state records it.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// bearer returns the request's bearer token ("" when it has none).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// tokenIdentity is how a token's holder acts: viewers as a read-only identity.
func tokenIdentity(t scheduler.Token) pki.Identity {
	role := pki.RoleClient
	if t.Role == scheduler.TokenOperator {
		role = pki.RoleOperator
	}
	return pki.Identity{Node: t.Name, Role: role}
}

// authenticate sets c.caller from the client certificate or, without one, the bearer
// token.
func (s *Server) authenticate(c *call) *Error {
	r := c.r
	if r.TLS == nil {
		return errorf(http.StatusUnauthorized, CodeUnauthenticated, "TLS with a client certificate or a bearer token is required")
	}
	if len(r.TLS.PeerCertificates) > 0 {
		peer, err := pki.PeerIdentity(*r.TLS)
		if err != nil {
			return errorf(http.StatusUnauthorized, CodeUnauthenticated, "no verified identity: %v", err)
		}
		c.caller = peer
		return nil
	}
	secret := bearer(r)
	if secret == "" {
		return errorf(http.StatusUnauthorized, CodeUnauthenticated, "no client certificate and no bearer token (Authorization: Bearer ...)")
	}
	if r.Header.Get(HeaderForwardedFor) != "" {
		return errorf(http.StatusForbidden, CodeForbidden, "a token holder may not forward requests for others")
	}
	if strings.HasPrefix(r.URL.Path, "/v1/acl/") {
		return errorf(http.StatusForbidden, CodeForbidden, "tokens are managed with an operator certificate, not with a token")
	}
	t, ok, err := s.lookupToken(r.Context(), HashToken(secret))
	if err != nil {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "checking the token: %v", err)
	}
	if !ok {
		return errorf(http.StatusUnauthorized, CodeUnauthenticated, "unknown or deleted token")
	}
	c.caller = tokenIdentity(t)
	c.viaToken = t.Role
	return nil
}

// lookupToken finds the token with the given hash: a server in its replicated state, a
// client agent by asking a server (and trusting its answer for tokenCacheTTL).
func (s *Server) lookupToken(ctx context.Context, hash string) (scheduler.Token, bool, error) {
	if cp := s.cfg.ControlPlane; cp != nil {
		var t scheduler.Token
		var ok bool
		cp.FSM().Read(func(st *scheduler.State) { t, ok = st.TokenByHash(hash) })
		return t, ok, nil
	}
	now := time.Now()
	s.tokens.mu.Lock()
	e, ok := s.tokens.m[hash]
	s.tokens.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.token, e.found, nil
	}
	var lastErr error = fmt.Errorf("this client agent knows no alive server to ask")
	for _, p := range s.servers() {
		var res tokenResolution
		if err := s.post(ctx, p, "/v1/acl/resolve", resolveRequest{Hash: hash}, &res); err != nil {
			lastErr = err
			continue
		}
		s.tokens.mu.Lock()
		if s.tokens.m == nil || len(s.tokens.m) > 1024 {
			s.tokens.m = map[string]tokenCacheEntry{}
		}
		s.tokens.m[hash] = tokenCacheEntry{token: res.Token, found: res.Found, until: now.Add(tokenCacheTTL)}
		s.tokens.mu.Unlock()
		return res.Token, res.Found, nil
	}
	return scheduler.Token{}, false, lastErr
}

// tokenCache is a client agent's memory of servers' answers about tokens, by hash.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]tokenCacheEntry
}

type tokenCacheEntry struct {
	token scheduler.Token
	found bool
	until time.Time
}

type resolveRequest struct {
	Hash string `json:"hash"`
}

type tokenResolution struct {
	Found bool            `json:"found"`
	Token scheduler.Token `json:"token"`
}

// post sends a JSON body to p as this agent and decodes the answer.
func (s *Server) post(ctx context.Context, p Peer, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.APIAddr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderHops, "2")
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

// TokenRequest is the body of POST /v1/acl/tokens.
type TokenRequest struct {
	Role string `json:"role"`
	Name string `json:"name,omitempty"`
}

// TokenCreated answers POST /v1/acl/tokens: the only time the secret is shown.
type TokenCreated struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Secret string `json:"secret"`
}

// TokenInfo is one token of GET /v1/acl/tokens (never its secret or hash).
type TokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// operatorOnly refuses token management to anyone but an operator (or a server acting
// for one).
func operatorOnly(c *call) error {
	if c.caller.Role != pki.RoleOperator {
		return errorf(http.StatusForbidden, CodeForbidden, "%s may not manage tokens: that needs an operator certificate", c.caller)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) createToken(c *call) (int, any, error) {
	if err := operatorOnly(c); err != nil {
		return 0, nil, err
	}
	var req TokenRequest
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "body: want {\"role\": \"operator\"|\"viewer\", \"name\": ...}: %v", err)
	}
	if req.Role != scheduler.TokenViewer && req.Role != scheduler.TokenOperator {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "role %q: want operator or viewer", req.Role)
	}
	id := "t-" + randomHex(6)
	if req.Name == "" {
		req.Name = req.Role + "-" + id[2:]
	}
	if err := pki.ValidNodeName(req.Name); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "name: %v", err)
	}
	// 256 random bits; only their hash goes through raft.
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return 0, nil, err
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	if _, err := s.propose(c, scheduler.TypeCreateToken, scheduler.CreateToken{ID: id, Name: req.Name, Role: req.Role, Hash: HashToken(secret)}); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, TokenCreated{ID: id, Name: req.Name, Role: req.Role, Secret: secret}, nil
}

func (s *Server) listTokens(c *call) (int, any, error) {
	if err := operatorOnly(c); err != nil {
		return 0, nil, err
	}
	out := []TokenInfo{}
	for _, t := range s.state().SortedTokens() {
		out = append(out, TokenInfo{ID: t.ID, Name: t.Name, Role: t.Role, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt})
	}
	return http.StatusOK, out, nil
}

func (s *Server) deleteToken(c *call) (int, any, error) {
	if err := operatorOnly(c); err != nil {
		return 0, nil, err
	}
	id := c.r.PathValue("id")
	if _, err := s.propose(c, scheduler.TypeDeleteToken, scheduler.DeleteToken{ID: id}); err != nil {
		if e := toError(err); e.Status == http.StatusInternalServerError {
			return 0, nil, errorf(http.StatusNotFound, CodeNotFound, "%v", err)
		}
		return 0, nil, err
	}
	return http.StatusOK, Accepted{ID: id, Message: "deleted"}, nil
}

// resolveToken tells a client agent about a token, by hash. Only nodes may ask.
func (s *Server) resolveToken(c *call) (int, any, error) {
	if !c.caller.IsNode() || c.viaToken != "" {
		return 0, nil, errorf(http.StatusForbidden, CodeForbidden, "only nodes resolve tokens")
	}
	var req resolveRequest
	if err := json.Unmarshal(c.body, &req); err != nil || len(req.Hash) != 64 {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "body: want {\"hash\": 64 hex digits}")
	}
	t, ok := s.state().TokenByHash(req.Hash)
	t.Hash = ""
	return http.StatusOK, tokenResolution{Found: ok, Token: t}, nil
}
