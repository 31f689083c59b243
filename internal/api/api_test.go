package api_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/agent"
	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// testNet is the /24 of the test nodes: 127.0.95.0/24 is used by no other package's
// tests (auth_test.go and ui_test.go set 127.0.106 while they run).
var testNet = "127.0.95"

// runtimeFor, when a test sets it, wraps each node's fake runtime (ui_test.go slows one).
var runtimeFor func(node string, rt *migrate.FakeRuntime) migrate.Runtime

// tuningFor, when a test sets it, changes fastTuning (ui_test.go: calmer raft while a
// browser loads the machine).
var tuningFor func(*agent.Tuning)

// testIP is the loopback address of test node i.
func testIP(i int) string { return fmt.Sprintf("%s.%d", testNet, i) }

// fastTuning shrinks the production timing for agents on one loaded machine.
func fastTuning(t *agent.Tuning) {
	g := &t.Gossip
	g.LoadInterval = 100 * time.Millisecond
	g.RefreshInterval = 2 * time.Second
	g.ProbeInterval = 400 * time.Millisecond
	g.ProbeTimeout = 200 * time.Millisecond
	g.GossipInterval = 100 * time.Millisecond
	g.PushPullInterval = 3 * time.Second
	g.JoinRetryInterval = 100 * time.Millisecond
	g.JoinRetryMaxInterval = time.Second
	r := &t.Raft
	r.HeartbeatTimeout, r.ElectionTimeout, r.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	r.CommitTimeout, r.ApplyTimeout = 10*time.Millisecond, 5*time.Second
	r.TransportTimeout, r.HandshakeTimeout = 2*time.Second, 2*time.Second
	r.BootstrapRetryInterval = 100 * time.Millisecond
	r.AutopilotUpdateInterval, r.AutopilotReconcileInterval = 100*time.Millisecond, 200*time.Millisecond
	r.LastContactThreshold, r.ServerStabilizationTime = 500*time.Millisecond, time.Second
	t.LeaderInterval, t.LeaderPoll = 200*time.Millisecond, 50*time.Millisecond
	t.ServerInterval = 200 * time.Millisecond
	t.ShutdownLeave = time.Second
	t.MigrateSettle = 5 * time.Second
}

// logBuf keeps the agents' logs for a failing test, and lets a test look for secrets.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// cluster is three server agents and one client agent (c1, running workload w) on
// 127.0.95.x, and the CA's directory for more certificates.
type cluster struct {
	dir      string
	servers  []*agent.Agent
	client   *agent.Agent
	rts      map[string]*migrate.FakeRuntime
	workload string
	log      *logBuf
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir(), rts: map[string]*migrate.FakeRuntime{}, log: &logBuf{}}
	t.Cleanup(func() {
		if t.Failed() {
			s := c.log.String()
			t.Logf("last log:\n%s", s[max(0, len(s)-20000):])
		}
	})
	key := filepath.Join(c.dir, "gossip.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(name, role string, i int, extra, join string) *agent.Agent {
		pr := pki.RoleClient
		if role == agent.RoleServer {
			pr = pki.RoleServer
		}
		files, err := pki.Quick(filepath.Join(c.dir, "pki"), name, pr, net.ParseIP(testIP(i)))
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("node: %s\nrole: %s\nsite: site-%d\ngossip:\n  bind: %s:0\n  key_file: %s\n", name, role, i, testIP(i), key)
		if join != "" {
			text += fmt.Sprintf("  join: [%s]\n", join)
		}
		text += fmt.Sprintf("migration:\n  bind: %s:0\ncapacity:\n  cpu: 4\n  memory: 8GiB\ndata_dir: %s\ntls:\n  ca: %s\n  cert: %s\n  key: %s\ninventory:\n  interval: 200ms\n%s",
			testIP(i), filepath.Join(c.dir, name), files.CA, files.Cert, files.Key, extra)
		file := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := agent.LoadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		c.rts[name] = migrate.NewFakeRuntime(filepath.Join(c.dir, name, "engine"))
		if name == "c1" {
			c.workload = c.rts[name].Add("w", []byte("the memory of w"), map[string]string{migrate.LabelManaged: "true"})
		}
		log := slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
		var rt migrate.Runtime = c.rts[name]
		var inv agent.Inventory
		if runtimeFor != nil {
			rt, inv = runtimeFor(name, c.rts[name]), agent.FakeInventory{RT: c.rts[name]}
		}
		a, err := agent.New(cfg, agent.WithRuntime(rt, inv), agent.WithLogger(log), agent.WithTuning(func(t *agent.Tuning) {
			fastTuning(t)
			if tuningFor != nil {
				tuningFor(t)
			}
		}))
		if err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		t.Cleanup(func() { a.Shutdown() })
		return a
	}
	seed := ""
	for i := 1; i <= 3; i++ {
		extra := fmt.Sprintf("server:\n  raft:\n    bind: %s:0\n  bootstrap_expect: 3\n", testIP(i))
		if i == 1 {
			extra += "metrics:\n  listen: 127.0.100.1:0\n" // a metrics listener of its own (TestMetrics)
		}
		a := start(fmt.Sprintf("s%d", i), agent.RoleServer, i, extra, seed)
		seed = a.GossipAddr()
		c.servers = append(c.servers, a)
	}
	c.client = start("c1", agent.RoleClient, 4, "", seed)
	for _, a := range c.all() {
		waitFor(t, a.Config().Node+" to see 4 members with their API addresses", 30*time.Second, func() bool {
			v := a.Gossip().View()
			if len(v.Alive()) != 4 {
				return false
			}
			for _, n := range v.Nodes {
				if n.Labels[agent.LabelAPIAddr] == "" {
					return false
				}
			}
			return true
		})
	}
	waitFor(t, "a leader every server knows", 30*time.Second, func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		for _, s := range c.servers {
			if name, _ := s.ControlPlane().Server().Leader(); name != l.Config().Node {
				return false
			}
		}
		return true
	})
	return c
}

func (c *cluster) all() []*agent.Agent {
	return append(append([]*agent.Agent{}, c.servers...), c.client)
}

func (c *cluster) leader() *agent.Agent {
	for _, s := range c.servers {
		if s.ControlPlane().Server().IsLeader() && s.ControlPlane().Leader().Leading() {
			return s
		}
	}
	return nil
}

func (c *cluster) follower() *agent.Agent {
	for _, s := range c.servers {
		if !s.ControlPlane().Server().IsLeader() {
			return s
		}
	}
	return nil
}

// httpClient dials agents as the holder of (node, role)'s certificate; node "" presents
// no certificate.
func (c *cluster) httpClient(t *testing.T, node string, role pki.Role) *http.Client {
	t.Helper()
	var tc *tls.Config
	if node == "" {
		tc = &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	} else {
		files, err := pki.Quick(filepath.Join(c.dir, "pki"), node, role)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pki.Load(files)
		if err != nil {
			t.Fatal(err)
		}
		tc = id.ClientConfig("")
	}
	tc.NextProtos = []string{"http/1.1"}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
}

// answer is one API answer.
type answer struct {
	status   int
	servedBy string
	body     []byte
	err      api.Error
}

func do(t *testing.T, hc *http.Client, method string, a *agent.Agent, path string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+a.APIAddr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, a.Config().Node, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	ans := answer{status: resp.StatusCode, servedBy: resp.Header.Get(api.HeaderServedBy), body: data}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &ans.err); err != nil || ans.err.Code == "" || ans.err.Message == "" {
			t.Fatalf("%s %s: error body is not {error, code}: %s", method, path, data)
		}
	}
	return ans
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if a.status >= 300 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("%v in %s", err, a.body)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAPI runs every endpoint against one in-process cluster of three servers and a
// client agent: reads from every agent, refusals by role and without a certificate,
// forwarding to the leader, a migration ordered through a follower that the ledger
// records completed, and the errors of bad requests.
func TestAPI(t *testing.T) {
	c := startCluster(t)
	op := c.httpClient(t, "alice", pki.RoleOperator)
	leader, follower := c.leader(), c.follower()

	t.Run("status from every agent", func(t *testing.T) {
		for _, a := range c.all() {
			var st api.Status
			do(t, op, "GET", a, "/v1/status", nil).decode(t, &st)
			if st.Node != a.Config().Node || st.Leader == nil || st.Leader.Name != leader.Config().Node || st.Leader.APIAddr != leader.APIAddr() || len(st.Servers) != 3 || st.Members != 4 {
				t.Fatalf("status of %s: %+v", a.Config().Node, st)
			}
		}
	})
	t.Run("nodes", func(t *testing.T) {
		var nodes []api.Node
		do(t, op, "GET", c.client, "/v1/nodes", nil).decode(t, &nodes)
		if len(nodes) != 4 || nodes[0].Name != "c1" || nodes[0].Role != "client" || nodes[0].Site != "site-4" || nodes[0].Status != "alive" || nodes[0].Containers != 1 || nodes[1].Role != "server" || nodes[1].MemoryCapacity != 8<<30 {
			t.Fatalf("nodes: %+v", nodes)
		}
	})
	t.Run("containers from a client agent come from a server", func(t *testing.T) {
		ans := do(t, op, "GET", c.client, "/v1/containers", nil)
		var cs []api.Container
		ans.decode(t, &cs)
		if !strings.HasPrefix(ans.servedBy, "s") {
			t.Fatalf("served by %q", ans.servedBy)
		}
		if len(cs) != 1 || cs[0].Workload != c.workload || cs[0].Name != "w" || cs[0].Node != "c1" || cs[0].MemoryBytes == 0 {
			t.Fatalf("containers: %+v", cs)
		}
	})
	t.Run("no policy yet", func(t *testing.T) {
		if ans := do(t, op, "GET", follower, "/v1/policy", nil); ans.status != 404 || ans.err.Code != api.CodeNoPolicy {
			t.Fatalf("%d %s", ans.status, ans.body)
		}
	})
	t.Run("no certificate and no token is refused", func(t *testing.T) {
		ans := do(t, c.httpClient(t, "", ""), "GET", leader, "/v1/status", nil)
		if ans.status != http.StatusUnauthorized || ans.err.Code != api.CodeUnauthenticated {
			t.Fatalf("without a certificate or token: %d %s", ans.status, ans.body)
		}
	})
	t.Run("a certificate of another CA is refused at TLS", func(t *testing.T) {
		files, err := pki.Quick(filepath.Join(t.TempDir(), "other"), "mallory", pki.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pki.Load(files)
		if err != nil {
			t.Fatal(err)
		}
		tc := id.ClientConfig("")
		tc.VerifyConnection = nil // mallory does not care who answers
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		if _, err := hc.Get("https://" + leader.APIAddr() + "/v1/status"); err == nil {
			t.Fatal("served a certificate of another CA")
		}
	})
	nodeClient := c.httpClient(t, "c9", pki.RoleClient)
	t.Run("a client node may read but not change", func(t *testing.T) {
		if ans := do(t, nodeClient, "GET", leader, "/v1/migrations", nil); ans.status != 200 {
			t.Fatalf("read: %d %s", ans.status, ans.body)
		}
		for _, w := range []struct{ path, body string }{
			{"/v1/migrate", `{"workload":"w","to":"s1"}`},
			{"/v1/drain/c1", ""},
			{"/v1/undrain/c1", ""},
			{"/v1/policy", "x"},
		} {
			for _, a := range []*agent.Agent{leader, follower} {
				if ans := do(t, nodeClient, "POST", a, w.path, []byte(w.body)); ans.status != 403 || ans.err.Code != api.CodeForbidden {
					t.Fatalf("POST %s as a client node: %d %s", w.path, ans.status, ans.body)
				}
			}
		}
	})
	t.Run("unknown workload and node", func(t *testing.T) {
		ans := do(t, op, "POST", follower, "/v1/migrate", []byte(`{"workload":"nosuch","to":"s1"}`))
		if ans.status != 400 || ans.err.Code != api.CodeUnknownWorkload || ans.servedBy != leader.Config().Node {
			t.Fatalf("%d by %s: %s", ans.status, ans.servedBy, ans.body)
		}
		ans = do(t, op, "POST", leader, "/v1/migrate", []byte(`{"workload":"w","to":"nowhere"}`))
		if ans.status != 400 || ans.err.Code != api.CodeUnknownNode {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if ans = do(t, op, "POST", leader, "/v1/drain/nowhere", nil); ans.status != 400 || ans.err.Code != api.CodeUnknownNode {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if ans = do(t, op, "POST", leader, "/v1/migrate", []byte(`{"workload":"w","to":"s1","extra":1}`)); ans.status != 400 || ans.err.Code != api.CodeBadRequest {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if ans = do(t, op, "GET", leader, "/v1/migrations/nosuch", nil); ans.status != 404 || ans.err.Code != api.CodeNotFound {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
	})
	t.Run("invalid policy refused with positions", func(t *testing.T) {
		data, err := os.ReadFile("testdata/invalid.yaml")
		if err != nil {
			t.Fatal(err)
		}
		ans := do(t, op, "POST", follower, "/v1/policy?file=invalid.yaml", data)
		if ans.status != 400 || ans.err.Code != api.CodeInvalidPolicy || len(ans.err.Problems) != 2 {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if p := ans.err.Problems[0]; p.File != "invalid.yaml" || p.Line != 6 || p.Column != 9 || p.String() != `invalid.yaml:6:9: mode "sometimes": want off, recommend or auto (.spec.mode)` {
			t.Fatalf("problem %+v", p)
		}
		if st := leader.ControlPlane().FSM().State(); st.Policy != nil {
			t.Fatal("an invalid policy changed the state")
		}
	})
	t.Run("policy applied through a follower", func(t *testing.T) {
		data, err := os.ReadFile("testdata/recommend.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var acc api.Accepted
		do(t, op, "POST", follower, "/v1/policy?file=recommend.yaml", data).decode(t, &acc)
		if acc.PolicyVersion != 1 || acc.Policy != "evacuate-advice" {
			t.Fatalf("%+v", acc)
		}
		var rec scheduler.PolicyRecord
		waitFor(t, "the policy on every server", 5*time.Second, func() bool {
			for _, s := range c.servers {
				if s.ControlPlane().FSM().State().Policy == nil {
					return false
				}
			}
			return true
		})
		do(t, op, "GET", c.client, "/v1/policy", nil).decode(t, &rec)
		if rec.Version != 1 || rec.AppliedBy != "alice (operator)" || rec.Source != string(data) {
			t.Fatalf("%+v", rec)
		}
		// The leader explains its next round; a follower forwards the question.
		waitFor(t, "an explanation", 10*time.Second, func() bool {
			return do(t, op, "GET", follower, "/v1/explain?workload="+c.workload, nil).status == 200
		})
		var ex api.Explain
		ans := do(t, op, "GET", c.client, "/v1/explain?workload="+c.workload, nil)
		ans.decode(t, &ex)
		if ans.servedBy != leader.Config().Node {
			t.Fatalf("explain through the client agent served by %s", ans.servedBy)
		}
		if ex.Mode != "recommend" || len(ex.Explanations) != 1 || ex.Explanations[0].Node != "c1" {
			t.Fatalf("%+v", ex)
		}
	})
	t.Run("drain through a client agent is redirected to the leader", func(t *testing.T) {
		ans := do(t, op, "POST", c.client, "/v1/drain/s3", nil)
		if ans.status != http.StatusMisdirectedRequest || ans.err.Code != api.CodeNotLeader || ans.err.LeaderAddr != "https://"+leader.APIAddr() {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if ans = do(t, op, "POST", leader, "/v1/drain/s3", nil); ans.status != 200 {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		waitFor(t, "s3 drained on every server", 5*time.Second, func() bool {
			for _, s := range c.servers {
				if _, ok := s.ControlPlane().FSM().State().Drained["s3"]; !ok {
					return false
				}
			}
			return true
		})
		var nodes []api.Node
		do(t, op, "GET", follower, "/v1/nodes", nil).decode(t, &nodes)
		for _, n := range nodes {
			if n.Drained != (n.Name == "s3") {
				t.Fatalf("%s drained %v", n.Name, n.Drained)
			}
		}
		// Moving onto a drained node conflicts with the ledger.
		ans = do(t, op, "POST", follower, "/v1/migrate", []byte(`{"workload":"w","to":"s3"}`))
		if ans.status != 409 || ans.err.Code != api.CodeConflict {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if ans = do(t, op, "POST", follower, "/v1/undrain/s3", nil); ans.status != 200 {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
		if _, ok := leader.ControlPlane().FSM().State().Drained["s3"]; ok {
			t.Fatal("s3 still drained")
		}
	})
	t.Run("users: set through a follower, shown, explained, refused when bad, cleared", func(t *testing.T) {
		users := func() []scheduler.WorkloadUsers {
			var us []scheduler.WorkloadUsers
			do(t, op, "GET", c.client, "/v1/users", nil).decode(t, &us)
			return us
		}
		if us := users(); len(us) != 0 {
			t.Fatalf("users before any: %+v", us)
		}
		var acc api.Accepted
		ans := do(t, op, "PUT", follower, "/v1/users/w", []byte(`{"sites":[{"site":"site-1","weight":0.7},{"site":"site-2","weight":0.3}]}`))
		ans.decode(t, &acc)
		if acc.Workload != c.workload || ans.servedBy != leader.Config().Node {
			t.Fatalf("by %s: %s", ans.servedBy, ans.body)
		}
		waitFor(t, "the users on every server", 5*time.Second, func() bool {
			for _, s := range c.servers {
				if _, ok := s.ControlPlane().FSM().State().Users[c.workload]; !ok {
					return false
				}
			}
			return true
		})
		us := users()
		if len(us) != 1 || us[0].Workload != c.workload || us[0].Source != scheduler.UsersFromAPI || us[0].By != "alice (operator)" || len(us[0].Sites) != 2 || us[0].Sites[0].Site != "site-1" {
			t.Fatalf("users: %+v", us)
		}
		waitFor(t, "a plan that used them", 10*time.Second, func() bool {
			var ex api.Explain
			do(t, op, "GET", follower, "/v1/explain?workload="+c.workload, nil).decode(t, &ex)
			return len(ex.Users) == 1 && ex.Users[0].Source == scheduler.UsersFromAPI && len(ex.Users[0].Sites) == 2
		})
		before := leader.ControlPlane().FSM().State()
		for _, bad := range []struct{ path, body, code string }{
			{"/v1/users/w", `{"sites":[{"site":"nowhere","weight":1}]}`, api.CodeUnknownSite},
			{"/v1/users/w", `{"sites":[{"site":"site-1","weight":0}]}`, api.CodeInvalidUsers},
			{"/v1/users/w", `{"sites":[{"site":"site-1","weight":-2}]}`, api.CodeInvalidUsers},
			{"/v1/users/w", `{"sites":[]}`, api.CodeInvalidUsers},
			{"/v1/users/w", `{}`, api.CodeInvalidUsers},
			{"/v1/users/w", `{"sites":[{"site":"site-1","weight":1},{"site":"site-1","weight":2}]}`, api.CodeInvalidUsers},
			{"/v1/users/w", `{"sites":[{"site":"site-1","weight":"heavy"}]}`, api.CodeBadRequest},
			{"/v1/users/w", `{"sites":[{"site":"site-1","weight":1}],"extra":1}`, api.CodeBadRequest},
			{"/v1/users/w", `not json`, api.CodeBadRequest},
			{"/v1/users/nosuch", `{"sites":[{"site":"site-1","weight":1}]}`, api.CodeUnknownWorkload},
		} {
			if ans := do(t, op, "PUT", follower, bad.path, []byte(bad.body)); ans.status != 400 || ans.err.Code != bad.code {
				t.Errorf("PUT %s %s: %d %s, want 400 %s", bad.path, bad.body, ans.status, ans.body, bad.code)
			}
		}
		if ans := do(t, nodeClient, "PUT", leader, "/v1/users/w", []byte(`{"sites":[{"site":"site-1","weight":1}]}`)); ans.status != 403 {
			t.Errorf("a client node set users: %d", ans.status)
		}
		if d := before.Users[c.workload]; len(leader.ControlPlane().FSM().State().Users) != 1 || leader.ControlPlane().FSM().State().Users[c.workload].At != d.At {
			t.Fatal("a refused request changed the recorded users")
		}
		do(t, op, "DELETE", follower, "/v1/users/w", nil).decode(t, &acc)
		if acc.Workload != c.workload || !strings.HasPrefix(acc.Message, "cleared") {
			t.Fatalf("clear: %+v", acc)
		}
		if _, ok := leader.ControlPlane().FSM().State().Users[c.workload]; ok {
			t.Fatal("still recorded after clear")
		}
		if ans := do(t, op, "DELETE", leader, "/v1/users/nosuch", nil); ans.status != 400 || ans.err.Code != api.CodeUnknownWorkload {
			t.Fatalf("clear of an unknown workload: %d %s", ans.status, ans.body)
		}
	})
	t.Run("migrate through a follower ends completed in the ledger", func(t *testing.T) {
		target := c.servers[0].Config().Node
		ans := do(t, op, "POST", follower, "/v1/migrate", []byte(fmt.Sprintf(`{"workload":"w","to":%q}`, target)))
		var acc api.Accepted
		ans.decode(t, &acc)
		if ans.status != http.StatusAccepted || acc.ID == "" || acc.Location != "/v1/migrations/"+acc.ID || ans.servedBy != leader.Config().Node {
			t.Fatalf("%d by %s: %s", ans.status, ans.servedBy, ans.body)
		}
		var m scheduler.Migration
		waitFor(t, "the migration completed", 60*time.Second, func() bool {
			do(t, op, "GET", c.client, "/v1/migrations/"+acc.ID, nil).decode(t, &m)
			return m.Phase.Terminal()
		})
		if m.Phase != scheduler.PhaseCompleted || !m.Manual || m.Reason != "requested by alice (operator)" || m.Source != "c1" || m.Target != target || m.Workload != c.workload {
			t.Fatalf("%+v", m)
		}
		var ms []scheduler.Migration
		do(t, op, "GET", follower, "/v1/migrations", nil).decode(t, &ms)
		if len(ms) != 1 || ms[0].ID != acc.ID {
			t.Fatalf("ledger %+v", ms)
		}
		if running := c.rts[target].Running(); len(running) != 1 || string(running[0].Memory) != "the memory of w" {
			t.Fatalf("on %s: %+v", target, running)
		}
	})
	t.Run("forwarded identity is believed only from servers", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "https://"+leader.APIAddr()+"/v1/drain/c1", nil)
		req.Header.Set(api.HeaderForwardedFor, "alice/operator")
		resp, err := nodeClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("a client node claiming to forward for an operator: %d", resp.StatusCode)
		}
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		if ans := do(t, op, "GET", leader, "/v1/nosuch", nil); ans.status != 404 || ans.err.Code != api.CodeNotFound {
			t.Fatalf("%d: %s", ans.status, ans.body)
		}
	})
	if l := c.log.String(); strings.Contains(l, "PRIVATE KEY") || !strings.Contains(l, "API request") {
		t.Fatal("the log holds a key, or no request lines")
	}
}
