package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
)

// TestDevCluster brings a local cluster of three nodes up with `godwit dev up` (a dockerd
// and a detached agent per node, on 127.0.108.31-33, each engine on its own bridge gw108di
// and all on the shared gw108ds, gossip delayed by 2 ms), checks through `godwit dev env`
// and `godwit status` that the API sees three members and a leader, that a container's
// published port on node 1 answers on node 1's address and that the shared network hands
// node 1's range out, kills one agent (a crash), and checks that `godwit dev down` still
// removes everything: agents, engines, bridges, files.
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
	bridges := []string{"gw108d1", "gw108d2", "gw108d3", "gw108ds"}
	if in := bridgesInUse(bridges); len(in) > 0 {
		t.Fatalf("bridges %v exist before the test (left by an earlier run?)", in)
	}
	t.Cleanup(func() { removeBridges(bridges) })
	out, err := dev("up", "--nodes", "3", "--dir", dir, "--ip-base", "127.0.108.30", "--name-prefix", "lcdev",
		"--subnet-base", "10.108.0.0/16", "--bridge-prefix", "gw108d", "--shared-bridge", "--emulated-delay", "2ms")
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
	if os.Getenv(envAddr) != "https://127.0.108.32:7970" || os.Getenv("DOCKER_HOST") != c.Nodes[1].Engine.Host {
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

	// Networking: every bridge is there; the agents' configs carry the publish address and
	// the delay; a published port on node 1 answers on node 1's address.
	if in := bridgesInUse(bridges); len(in) != len(bridges) {
		t.Fatalf("bridges after dev up: %v, want %v", in, bridges)
	}
	cfg, err := os.ReadFile(c.Nodes[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"publish_address: '127.0.108.31'", "emulated_delay: 2ms"} {
		if !strings.Contains(string(cfg), want) {
			t.Fatalf("lcdev1's agent config lacks %q:\n%s", want, cfg)
		}
	}
	if b, err := os.ReadFile(c.Nodes[1].AgentLog); err != nil || !strings.Contains(string(b), "gossip packets delayed on purpose") {
		t.Errorf("lcdev2's agent log does not say it delays gossip (%v):\n%s", err, tail(string(b), 20))
	}
	devPublishedPort(t, c.Nodes[0])
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
	if in := bridgesInUse(bridges); len(in) > 0 {
		t.Errorf("bridges %v are still there after dev down", in)
	}
	for _, p := range []string{state, dir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there after dev down", p)
		}
	}
}

// devPublishedPort runs netkv on n's default bridge with port 8080 published as 18108, and
// on the shared network; it checks that n's address answers and the shared address is in
// n's range of the shared subnet.
func devPublishedPort(t *testing.T, n devNode) {
	t.Helper()
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.WithHost(n.Engine.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := workload.BuildNetKVImage(ctx, cli); err != nil {
		t.Fatal(err)
	}
	p := nat.Port("8080/tcp")
	run := func(name, netName string, hc *container.HostConfig) container.InspectResponse {
		hc.NetworkMode = container.NetworkMode(netName)
		cc, err := cli.ContainerCreate(ctx, &container.Config{Image: workload.NetKVImage, ExposedPorts: nat.PortSet{p: {}}}, hc, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, cc.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		info, err := cli.ContainerInspect(ctx, cc.ID)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	info := run("web", "bridge", &container.HostConfig{PortBindings: nat.PortMap{p: {{HostPort: "18108"}}}})
	if ip := info.NetworkSettings.Networks["bridge"].IPAddress; !strings.HasPrefix(ip, "10.108.64.") {
		t.Errorf("web's address on lcdev1's bridge is %s, want one in 10.108.64.0/24", ip)
	}
	k, err := workload.DialNetKV(ctx, net.JoinHostPort(n.Addr, "18108"), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	for _, rw := range [][2]string{{"PUT a 1", "OK"}, {"GET a", "VALUE 1"}} {
		if got, err := k.Do(rw[0], 30*time.Second); err != nil || got != rw[1] {
			t.Fatalf("%s through %s:18108: %q, %v; want %q", rw[0], n.Addr, got, err, rw[1])
		}
	}
	info = run("l2", devSharedNetwork, &container.HostConfig{})
	ip := net.ParseIP(info.NetworkSettings.Networks[devSharedNetwork].IPAddress)
	if _, r, _ := net.ParseCIDR("10.108.16.0/20"); ip == nil || !r.Contains(ip) {
		t.Errorf("l2's address on %s is %v, want one in lcdev1's range 10.108.16.0/20", devSharedNetwork, ip)
	}
}
