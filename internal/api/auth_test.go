package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/internal/agent"
	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/pki"
)

// useTestNet runs the test's cluster on 127.0.106.x, the range of the web view's tests.
func useTestNet(t *testing.T) {
	old := testNet
	testNet = "127.0.106"
	t.Cleanup(func() { testNet = old })
}

// withToken sends each request with a bearer token and no client certificate.
type withToken struct {
	secret string
	rt     http.RoundTripper
}

func (w withToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+w.secret)
	return w.rt.RoundTrip(r)
}

func tokenClient(t *testing.T, c *cluster, secret string) *http.Client {
	hc := c.httpClient(t, "", "")
	hc.Transport = withToken{secret, hc.Transport}
	return hc
}

// createToken asks a as an operator for a token of role.
func createToken(t *testing.T, hc *http.Client, a *agent.Agent, role, name string) api.TokenCreated {
	t.Helper()
	body, _ := json.Marshal(api.TokenRequest{Role: role, Name: name})
	var tok api.TokenCreated
	do(t, hc, "POST", a, "/v1/acl/tokens", body).decode(t, &tok)
	if !strings.HasPrefix(tok.Secret, api.TokenPrefix) || tok.Role != role || tok.ID == "" {
		t.Fatalf("token: %+v", tok)
	}
	return tok
}

// TestTokens: an operator certificate creates tokens through a follower; a viewer token
// reads from every agent (a client agent asks a server about it) and changes nothing; an
// operator token drains and undrains; tokens cannot mint tokens; unknown and deleted
// tokens are refused; no secret reaches a log.
func TestTokens(t *testing.T) {
	useTestNet(t)
	c := startCluster(t)
	op := c.httpClient(t, "alice", pki.RoleOperator)
	follower := c.follower()
	viewer := createToken(t, op, follower, "viewer", "dashboard")
	oper := createToken(t, op, follower, "operator", "")
	vc, oc := tokenClient(t, c, viewer.Secret), tokenClient(t, c, oper.Secret)

	waitFor(t, "every server to know both tokens", 10e9, func() bool {
		for _, s := range c.servers {
			if do(t, vc, "GET", s, "/v1/status", nil).status != 200 || do(t, oc, "GET", s, "/v1/status", nil).status != 200 {
				return false
			}
		}
		return true
	})
	t.Run("viewer reads from every agent", func(t *testing.T) {
		for _, a := range c.all() {
			for _, p := range []string{"/v1/nodes", "/v1/containers", "/v1/migrations", "/v1/status"} {
				if ans := do(t, vc, "GET", a, p, nil); ans.status != 200 {
					t.Errorf("viewer GET %s on %s: %d %s", p, a.Config().Node, ans.status, ans.body)
				}
			}
		}
	})
	t.Run("viewer changes nothing", func(t *testing.T) {
		for _, a := range []*agent.Agent{c.leader(), follower} {
			for _, p := range []string{"/v1/drain/c1", "/v1/undrain/c1", "/v1/migrate", "/v1/policy"} {
				if ans := do(t, vc, "POST", a, p, []byte(`{}`)); ans.status != http.StatusForbidden || ans.err.Code != api.CodeForbidden {
					t.Errorf("viewer POST %s on %s: %d %s", p, a.Config().Node, ans.status, ans.body)
				}
			}
		}
		if c.leader().ControlPlane().FSM().State().Drained["c1"].By != "" {
			t.Error("c1 drained by a viewer")
		}
	})
	t.Run("operator token drains and undrains through a follower", func(t *testing.T) {
		if ans := do(t, oc, "POST", follower, "/v1/drain/c1", nil); ans.status != 200 {
			t.Fatalf("drain: %d %s", ans.status, ans.body)
		}
		rec, ok := c.leader().ControlPlane().FSM().State().Drained["c1"]
		if !ok || !strings.HasPrefix(rec.By, oper.Name+" (operator)") {
			t.Fatalf("drain record %+v, %v", rec, ok)
		}
		if ans := do(t, oc, "POST", follower, "/v1/undrain/c1", nil); ans.status != 200 {
			t.Fatalf("undrain: %d %s", ans.status, ans.body)
		}
	})
	t.Run("tokens cannot manage tokens", func(t *testing.T) {
		for _, hc := range []*http.Client{vc, oc} {
			if ans := do(t, hc, "POST", follower, "/v1/acl/tokens", []byte(`{"role":"operator"}`)); ans.status != http.StatusForbidden {
				t.Errorf("token creating a token: %d %s", ans.status, ans.body)
			}
			if ans := do(t, hc, "GET", follower, "/v1/acl/tokens", nil); ans.status != http.StatusForbidden {
				t.Errorf("token listing tokens: %d %s", ans.status, ans.body)
			}
		}
		nodeClient := c.httpClient(t, "c9", pki.RoleClient)
		if ans := do(t, nodeClient, "POST", c.leader(), "/v1/acl/tokens", []byte(`{"role":"operator"}`)); ans.status != http.StatusForbidden {
			t.Errorf("client node creating a token: %d %s", ans.status, ans.body)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, b := range []string{`{"role":"admin"}`, `{"role":"viewer","name":"no spaces"}`, `{"role":"viewer","extra":1}`, `{"role":"viewer","name":"dashboard"}`} {
			if ans := do(t, op, "POST", follower, "/v1/acl/tokens", []byte(b)); ans.status/100 != 4 {
				t.Errorf("%s: %d %s", b, ans.status, ans.body)
			}
		}
		if ans := do(t, tokenClient(t, c, api.TokenPrefix+"nope"), "GET", follower, "/v1/nodes", nil); ans.status != http.StatusUnauthorized || ans.err.Code != api.CodeUnauthenticated {
			t.Errorf("unknown token: %d %s", ans.status, ans.body)
		}
	})
	t.Run("list shows no secrets; delete revokes", func(t *testing.T) {
		ans := do(t, op, "GET", follower, "/v1/acl/tokens", nil)
		if ans.status != 200 {
			t.Fatalf("list: %d %s", ans.status, ans.body)
		}
		var list []api.TokenInfo
		ans.decode(t, &list)
		if len(list) != 2 || strings.Contains(string(ans.body), viewer.Secret) || strings.Contains(string(ans.body), api.HashToken(viewer.Secret)) {
			t.Fatalf("list: %s", ans.body)
		}
		if ans := do(t, op, "DELETE", follower, "/v1/acl/tokens/"+viewer.ID, nil); ans.status != 200 {
			t.Fatalf("delete: %d %s", ans.status, ans.body)
		}
		if ans := do(t, op, "DELETE", follower, "/v1/acl/tokens/"+viewer.ID, nil); ans.status != http.StatusNotFound {
			t.Fatalf("delete again: %d %s", ans.status, ans.body)
		}
		waitFor(t, "every server to forget the viewer token", 10e9, func() bool {
			for _, s := range c.servers {
				if do(t, vc, "GET", s, "/v1/status", nil).status != http.StatusUnauthorized {
					return false
				}
			}
			return true
		})
	})
	if logs := c.log.String(); strings.Contains(logs, viewer.Secret) || strings.Contains(logs, oper.Secret) {
		t.Error("a token's secret is in the agents' logs")
	}
}
