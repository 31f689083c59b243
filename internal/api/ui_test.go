package api_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/agent"
	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

// gatedRuntime holds every checkpoint until gate is closed, so that a migration stays in
// flight for as long as the test needs to see it there.
type gatedRuntime struct {
	*migrate.FakeRuntime
	gate chan struct{}
}

func (g gatedRuntime) Checkpoint(ctx context.Context, id, dir string) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.FakeRuntime.Checkpoint(ctx, id, dir)
}

// login types a token into the view's sign-in form.
func login(b *browser, secret string) {
	b.t.Helper()
	b.waitJS("the sign-in form", `document.readyState === "complete" && !document.getElementById("login").hidden`, 30*time.Second)
	b.eval(fmt.Sprintf(`(() => { document.getElementById("token").value = %q; document.getElementById("login").requestSubmit(); return true })()`, secret), nil)
}

// TestWebView drives the web view in headless Chromium against a real cluster (three
// servers and a client agent over TLS on loopback; fake container runtimes): signed in
// with an operator token it lists the nodes by site, shows a migration in flight and then
// finished, and draws the cost plot; signed in with a viewer token it offers no buttons
// and the API refuses its drain; every request the page made went to the agent it was
// loaded from; the screenshot is not blank.
func TestWebView(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("the web view test needs %s (Debian package chromium): %v", chromiumPath, err)
	}
	useTestNet(t)
	gate := make(chan struct{})
	runtimeFor = func(node string, rt *migrate.FakeRuntime) migrate.Runtime {
		if node == "c1" {
			return gatedRuntime{rt, gate}
		}
		return rt
	}
	// Chromium loads the machine: raft gets two-second timeouts instead of the
	// harness's half-second ones, so that elections do not come and go while the page polls.
	tuningFor = func(t *agent.Tuning) {
		r := &t.Raft
		r.HeartbeatTimeout, r.ElectionTimeout, r.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
	}
	t.Cleanup(func() { runtimeFor, tuningFor = nil, nil })
	c := startCluster(t)
	op := c.httpClient(t, "alice", pki.RoleOperator)
	follower := c.follower()
	oper := createToken(t, op, follower, "operator", "ui-operator")
	viewer := createToken(t, op, follower, "viewer", "ui-viewer")
	waitFor(t, "the follower to know both tokens", 10*time.Second, func() bool {
		return do(t, tokenClient(t, c, viewer.Secret), "GET", follower, "/v1/whoami", nil).status == 200 &&
			do(t, tokenClient(t, c, oper.Secret), "GET", follower, "/v1/whoami", nil).status == 200
	})

	b := startBrowser(t)
	origin := "https://" + follower.APIAddr()
	b.navigate(origin + "/ui/")
	login(b, oper.Secret)
	b.waitJS("signed in as the operator", `document.getElementById("whoami").textContent.includes("ui-operator (operator)")`, 30*time.Second)
	var formShown bool
	b.eval(`getComputedStyle(document.getElementById("login")).display !== "none"`, &formShown)
	if formShown {
		t.Error("the sign-in form is still shown after signing in")
	}

	{ // lists the nodes by site
		b.waitJS("four nodes", `document.querySelectorAll("#sites .node").length === 4`, 30*time.Second)
		var got struct {
			Sites   int    `json:"sites"`
			Leader  string `json:"leader"`
			Buttons int    `json:"buttons"`
			Names   string `json:"names"`
		}
		b.eval(`({sites: document.querySelectorAll("#sites .site").length,
			leader: [...document.querySelectorAll("#sites .node")].filter(n => n.textContent.includes("leader")).map(n => n.dataset.node).join(),
			buttons: document.querySelectorAll("#sites button.op").length,
			names: [...document.querySelectorAll("#sites .node")].map(n => n.dataset.node).sort().join()})`, &got)
		// Elections may come and go on a loaded machine: one server is shown leading.
		if got.Sites != 4 || !strings.HasPrefix(got.Leader, "s") || strings.Contains(got.Leader, ",") || got.Buttons != 4 || got.Names != "c1,s1,s2,s3" {
			t.Errorf("the view shows %+v", got)
		}
	}

	var id string
	{ // a migration appears and finishes
		var acc api.Accepted
		waitFor(t, "the migration to be accepted (retrying while there is no leader)", 30*time.Second, func() bool {
			ans := do(t, op, "POST", follower, "/v1/migrate", []byte(`{"workload":"w","to":"s2"}`))
			if ans.status == http.StatusServiceUnavailable {
				return false
			}
			ans.decode(t, &acc)
			return true
		})
		id = acc.ID
		b.waitJS("the migration in flight", fmt.Sprintf(`document.querySelector('#inflight li[data-migration=%q]')`, id), 30*time.Second)
		b.waitJS("the workload marked moving", `document.querySelector("#workloads tbody tr .badge")`, 30*time.Second)
		close(gate)
		b.waitJS("the migration completed in the history", fmt.Sprintf(`document.querySelector('#history tr[data-migration=%q][data-phase="completed"]')`, id), 60*time.Second)
		b.waitJS("nothing in flight", `document.querySelector("#inflight li").textContent === "none"`, 30*time.Second)
		b.waitJS("the workload on s2", `[...document.querySelectorAll("#workloads tbody td")].some(td => td.textContent === "s2")`, 30*time.Second)
	}
	{ // the cost plot
		b.waitJS("a measured point and the fitted lines", `document.querySelectorAll("#costsvg .pt-checkpoint").length >= 1 && document.querySelector("#costsvg .fit-checkpoint") && document.querySelector("#costsvg .fit-restore")`, 30*time.Second)
		var desc string
		b.eval(`document.getElementById("cost-desc").textContent`, &desc)
		if !strings.Contains(desc, "1 measured migration") {
			t.Errorf("plot description: %q", desc)
		}
	}
	{ // an explanation opens
		b.eval(`document.querySelector("#workloads tbody button").click(), true`, nil)
		b.waitJS("the explanation dialog", `document.getElementById("explain").open && document.getElementById("explainbody").textContent.length > 0`, 30*time.Second)
		b.eval(`document.getElementById("explain").close(), true`, nil)
	}
	{ // screenshot
		shot := b.screenshot()
		// GODWIT_WEBVIEW_SCREENSHOT=FILE keeps the screenshot for a person to look at.
		file := os.Getenv("GODWIT_WEBVIEW_SCREENSHOT")
		if file == "" {
			file = filepath.Join(t.TempDir(), "webview.png")
		}
		if err := os.WriteFile(file, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatal(err)
		}
		var ink, blue, total int
		bd := img.Bounds()
		for y := bd.Min.Y; y < bd.Max.Y; y += 2 {
			for x := bd.Min.X; x < bd.Max.X; x += 2 {
				r, g, bl, _ := img.At(x, y).RGBA()
				r, g, bl = r>>8, g>>8, bl>>8
				total++
				if r < 128 && g < 128 && bl < 128 {
					ink++ // text
				}
				if bl > 140 && r < 60 && g > 60 && g < 130 {
					blue++ // the plot's #0b5cad
				}
			}
		}
		if ink < total/500 || blue < 50 {
			t.Errorf("screenshot %dx%d: %d dark and %d plot-blue of %d pixels sampled: not painted", bd.Dx(), bd.Dy(), ink, blue, total)
		}
		var text string
		b.eval(`document.body.innerText`, &text)
		for _, want := range []string{"Cluster", "site site-1", "Migration history", "completed", "Cost model", "leader "} {
			if !strings.Contains(text, want) {
				t.Errorf("the page does not say %q", want)
			}
		}
	}
	{ // readable at phone width: the page does not scroll sideways (wide tables scroll inside)
		b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}, nil)
		b.waitJS("the page to fit 390 px", `document.documentElement.scrollWidth <= 392`, 10*time.Second)
		if file := os.Getenv("GODWIT_WEBVIEW_SCREENSHOT"); file != "" {
			_ = os.WriteFile(strings.TrimSuffix(file, ".png")+"-phone.png", b.screenshot(), 0o644)
		}
		b.call(b.session, "Emulation.clearDeviceMetricsOverride", map[string]any{}, nil)
	}
	{ // a viewer sees and cannot drain
		b.eval(`document.getElementById("logout").click(), true`, nil)
		var left int
		b.eval(`document.querySelectorAll("#sites .node, #workloads tbody tr, #history tbody tr").length`, &left)
		if left != 0 {
			t.Errorf("%d nodes, workloads or migrations still shown after signing out", left)
		}
		login(b, viewer.Secret)
		b.waitJS("signed in as the viewer", `document.getElementById("whoami").textContent.includes("ui-viewer (viewer)")`, 30*time.Second)
		b.waitJS("four nodes", `document.querySelectorAll("#sites .node").length === 4`, 30*time.Second)
		var buttons int
		b.eval(`document.querySelectorAll("#sites button.op, #workloads select").length`, &buttons)
		if buttons != 0 {
			t.Errorf("a viewer is offered %d drain or migrate controls", buttons)
		}
		var status int
		b.eval(`fetch("/v1/drain/c1", {method: "POST", headers: {Authorization: "Bearer " + sessionStorage.getItem("godwit-token")}}).then(r => r.status)`, &status)
		if status != 403 {
			t.Errorf("a viewer's drain from the page: status %d, want 403", status)
		}
		if _, drained := follower.ControlPlane().FSM().State().Drained["c1"]; drained {
			t.Error("c1 drained by a viewer")
		}
	}
	{ // no request leaves the agent
		reqs := b.seen()
		api := 0
		for _, u := range reqs {
			if u != "about:blank" && !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, origin+"/") {
				t.Errorf("the page asked for %s", u)
			}
			if strings.Contains(u, oper.Secret) || strings.Contains(u, viewer.Secret) {
				t.Errorf("a token in a URL: %s", u)
			}
			if strings.HasPrefix(u, origin+"/v1/") {
				api++
			}
		}
		if api < 10 {
			t.Errorf("only %d API requests seen of %d: %v", api, len(reqs), reqs)
		}
	}
	if logs := c.log.String(); strings.Contains(logs, oper.Secret) || strings.Contains(logs, viewer.Secret) {
		t.Error("a token's secret is in the agents' logs")
	}
}
