package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/testenv"
)

// TestDevCluster brings a local cluster of three nodes up with `godwit dev up` (a dockerd
// and a detached agent per node, on 127.0.102.31-33), checks through `godwit dev env` and
// `godwit status` that the API sees three members and a leader, kills one agent (a crash),
// and checks that `godwit dev down` still removes everything: agents, engines, files.
func TestDevCluster(t *testing.T) {
	testenv.RequireDockerd(t)
	if testing.Short() {
		t.Skip("starts three engines and three agents; not in -short")
	}
	isolateCLIEnv(t)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "dev.json")
	dir := filepath.Join(tmp, "cluster")
	bin := godwitBinary(t)
	dev := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"dev"}, args...)...)
		cmd.Env = append(os.Environ(), envDevState+"="+state)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if _, err := os.Stat(state); err == nil {
			out, err := dev("down")
			t.Logf("cleanup: dev down: %v\n%s", err, out)
		}
	})
	out, err := dev("up", "--nodes", "3", "--dir", dir, "--ip-base", "127.0.102.30", "--name-prefix", "lcdev")
	t.Logf("dev up:\n%s", out)
	if err != nil {
		for i := 1; i <= 3; i++ {
			if b, rerr := os.ReadFile(filepath.Join(dir, devNodeName("lcdev", i), "agent.log")); rerr == nil {
				t.Logf("lcdev%d's agent log:\n%s", i, tail(string(b), 30))
			}
		}
		t.Fatalf("dev up: %v", err)
	}
	old := devStatePath
	devStatePath = state
	t.Cleanup(func() { devStatePath = old })
	c, err := readDevState()
	if err != nil {
		t.Fatal(err)
	}

	out, err = dev("env", "lcdev2")
	if err != nil {
		t.Fatalf("dev env: %v\n%s", err, out)
	}
	for k, v := range parseExports(t, out) {
		t.Setenv(k, v)
	}
	if !strings.HasPrefix(os.Getenv(envToken), api.TokenPrefix) {
		t.Errorf("dev env exports no web view token (%s): %s", envToken, out)
	}
	if os.Getenv(envAddr) != "https://127.0.102.32:7970" || os.Getenv("DOCKER_HOST") != c.Nodes[1].Engine.Host {
		t.Fatalf("dev env lcdev2: %s", out)
	}
	code, sout, serr := runCLI(t, "status", "--json")
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s%s", code, sout, serr)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(sout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "lcdev2" || st.Members != 3 || st.Leader == nil || len(st.Servers) != 3 {
		t.Fatalf("status through lcdev2: %s", sout)
	}
	t.Logf("status: %d members, leader %s, %d raft servers", st.Members, st.Leader.Name, len(st.Servers))

	// A crash: one agent is gone without a word; dev down still cleans up all of it.
	victim := c.Nodes[2]
	if !devAgentAlive(victim) {
		t.Fatalf("%s's agent (pid %d) is not running", victim.Engine.Name, victim.AgentPID)
	}
	if err := syscall.Kill(victim.AgentPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if out, err := dev("down"); err != nil {
		t.Fatalf("dev down: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		if devAgentAlive(n) {
			t.Errorf("%s's agent (pid %d) still runs", n.Engine.Name, n.AgentPID)
		}
		if n.Engine.PID > 0 && syscall.Kill(n.Engine.PID, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.Engine.PID)); err == nil && len(b) > 0 {
				t.Errorf("%s's engine (pid %d) still runs", n.Engine.Name, n.Engine.PID)
			}
		}
	}
	for _, p := range []string{state, dir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there after dev down", p)
		}
	}
}
