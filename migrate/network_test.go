package migrate_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// Addresses of this file's tests: nodes on 127.0.103.x, bridges named gw103*, subnets
// inside 10.103.0.0/16.
const (
	sharedBridge = "gw103s"
	sharedSubnet = "10.103.200.0/24"
)

// startNetNode is startNode with an engine that has its own bridge and publishes ports on
// the node's address.
func startNetNode(t *testing.T, ca testCA, name, addr string, ecfg dockerd.Config) *node {
	t.Helper()
	ctx := context.Background()
	ecfg.Name, ecfg.PublishIP = name, addr
	// The repository's godwit-runc: it passes CRIU the TCP option of networked restores.
	runtime, err := filepath.Abs(filepath.Join("..", "scripts", "godwit-runc"))
	if err != nil {
		t.Fatal(err)
	}
	ecfg.FastRestoreRuntime = runtime
	e, err := dockerd.Start(ctx, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	state := filepath.Join(e.Dir, "godwit")
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: e.DataRoot, RuncRoot: e.RuncRoot(), StateDir: state,
		CRIUPath: testenv.CRIUPath(), VerifyTimeout: 15 * time.Second, PublishAddress: addr,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, engine: e, rt: rt, stateDir: state}
	mn, err := migrate.NewNode(migrate.NodeConfig{Name: name, Runtime: rt, StateDir: state, TLS: ca.tls(t, name, pki.RoleClient),
		SettleTimeout: 5 * time.Second,
		Fault: func(point string) error {
			if f := n.fault.Load(); f != nil {
				return (*f)(point)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	bound, err := mn.Listen(addr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	mn.Start(ctx)
	t.Cleanup(func() { mn.Close() })
	n.node, n.endpoint = mn, bound
	return n
}

// netRun starts netkv on this node attached to netName, publishing hostPort (0: none).
func (n *node) netRun(t *testing.T, name, netName string, hostPort string, ip string, extra ...string) container.InspectResponse {
	t.Helper()
	ctx := context.Background()
	cli, _ := n.engine.Client()
	defer cli.Close()
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(netName), RestartPolicy: container.RestartPolicy{Name: "unless-stopped"}}
	cfg := &container.Config{Image: workload.NetKVImage, Cmd: extra, Labels: map[string]string{migrate.LabelManaged: "true"}}
	if hostPort != "" {
		p := nat.Port("8080/tcp")
		cfg.ExposedPorts = nat.PortSet{p: {}}
		hc.PortBindings = nat.PortMap{p: {{HostPort: hostPort}}}
	}
	es := &network.EndpointSettings{}
	if netName != "bridge" && netName != "none" {
		es.Aliases = []string{name + "-alias"}
	}
	if ip != "" {
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
	}
	c, err := cli.ContainerCreate(ctx, cfg, hc, &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: es}}, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// netCreate makes a bridge network on this node.
func (n *node) netCreate(t *testing.T, name string, opts network.CreateOptions) {
	t.Helper()
	cli, _ := n.engine.Client()
	defer cli.Close()
	opts.Driver = "bridge"
	if opts.Options == nil {
		opts.Options = map[string]string{}
	}
	opts.Options["com.docker.network.bridge.host_binding_ipv4"] = strings.Split(n.endpoint, ":")[0]
	if _, err := cli.NetworkCreate(context.Background(), name, opts); err != nil {
		t.Fatal(err)
	}
}

func (n *node) inspect(t *testing.T, name string) container.InspectResponse {
	t.Helper()
	cli, _ := n.engine.Client()
	defer cli.Close()
	info, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func do(t *testing.T, k *workload.NetKVConn, req, want string) string {
	t.Helper()
	got, err := k.Do(req, 60*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", req, err)
	}
	if want != "" && got != want {
		t.Fatalf("%s: got %q, want %q", req, got, want)
	}
	return got
}

// TestBridgeMigration moves networked containers between two engines, each with its own
// bridge and publishing on its own 127.0.103.x address, and both attached to one shared
// bridge: the scenarios of issue 12.
func TestBridgeMigration(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	if _, err := exec.LookPath("docker-proxy"); err != nil {
		t.Skip("needs docker-proxy (package docker.io) to publish ports without iptables")
	}
	ctx := context.Background()
	ca := testCA{dir: t.TempDir()}
	n1 := startNetNode(t, ca, "nb1", "127.0.103.1", dockerd.Config{Bridge: "gw103n1", BridgeAddress: "10.103.1.1/24",
		AddressPools: []string{"base=10.103.16.0/20,size=24"}})
	n2 := startNetNode(t, ca, "nb2", "127.0.103.2", dockerd.Config{Bridge: "gw103n2", BridgeAddress: "10.103.2.1/24",
		AddressPools: []string{"base=10.103.32.0/20,size=24"}})
	cli1, _ := n1.engine.Client()
	defer cli1.Close()
	if err := workload.BuildNetKVImage(ctx, cli1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", sharedBridge).Run() })

	var downNone, downBridge time.Duration

	t.Run("none baseline", func(t *testing.T) {
		n1.netRun(t, "kv0", "none", "", "")
		rep, err := n1.migrate(ctx, "kv0", n2, migrate.Order{})
		if err != nil {
			t.Fatal(err)
		}
		downNone = rep.Downtime
	})

	t.Run("user network with published port", func(t *testing.T) {
		n1.netCreate(t, "app", network.CreateOptions{})
		n1.netRun(t, "kv", "app", "18080", "")
		k, err := workload.DialNetKV(ctx, "127.0.103.1:18080", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		do(t, k, "PUT greeting hello", "OK")
		seed := do(t, k, "SEED", "")

		rep, err := n1.migrate(ctx, "kv", n2, migrate.Order{})
		if err != nil {
			t.Fatal(err)
		}
		downBridge = rep.Downtime
		// The connection made before the move was closed, not left hanging.
		if err := k.WaitClosed(60 * time.Second); err == nil || isTimeout(err) {
			t.Fatalf("the connection from before the move was not closed: %v", err)
		}
		k2, err := workload.DialNetKV(ctx, "127.0.103.2:18080", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer k2.Close()
		do(t, k2, "GET greeting", "VALUE hello")
		do(t, k2, "SEED", seed)
		if got := do(t, k2, "RESOLVE kv-alias", ""); !strings.HasPrefix(got, "ADDRS 10.103.") {
			t.Fatalf("the alias does not resolve on the target: %s", got)
		}
		if l, err := net.Listen("tcp", "127.0.103.1:18080"); err != nil {
			t.Fatalf("the source's published port is still taken: %v", err)
		} else {
			l.Close()
		}
		cli2, _ := n2.engine.Client()
		defer cli2.Close()
		nw, err := cli2.NetworkInspect(ctx, "app", network.InspectOptions{})
		if err != nil {
			t.Fatalf("network app was not created on the target: %v", err)
		}
		if got := nw.Options["com.docker.network.bridge.host_binding_ipv4"]; got != "127.0.103.2" {
			t.Fatalf("network app on the target publishes on %q, want 127.0.103.2", got)
		}
	})

	t.Run("default bridge", func(t *testing.T) {
		n1.netRun(t, "kvb", "bridge", "18082", "")
		k, err := workload.DialNetKV(ctx, "127.0.103.1:18082", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		do(t, k, "PUT a b", "OK")
		k.Close()
		if _, err := n1.migrate(ctx, "kvb", n2, migrate.Order{}); err != nil {
			t.Fatal(err)
		}
		k2, err := workload.DialNetKV(ctx, "127.0.103.2:18082", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer k2.Close()
		do(t, k2, "GET a", "VALUE b")
	})

	// refused checks that a migration is refused with reason, and that the container still
	// runs on the source with its state.
	refused := func(t *testing.T, name, addr, reason string) {
		t.Helper()
		k, err := workload.DialNetKV(ctx, addr, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		seed := do(t, k, "SEED", "")
		_, err = n1.migrate(ctx, name, n2, migrate.Order{})
		if err == nil {
			t.Fatal("migration was not refused")
		}
		if !errors.Is(err, migrate.ErrPreflight) && !errors.Is(err, migrate.ErrNotCheckpointable) {
			t.Fatalf("want a pre-flight refusal, got %v", err)
		}
		if !strings.Contains(err.Error(), reason) {
			t.Fatalf("refusal %q does not say %q", err, reason)
		}
		t.Logf("refused: %v", err)
		// Nothing was frozen: the same connection still answers with the same process.
		do(t, k, "SEED", seed)
	}

	t.Run("refuses a port taken on the target", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.103.2:18081")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		n1.netRun(t, "kvp", "app", "18081", "")
		refused(t, "kvp", "127.0.103.1:18081", "127.0.103.2:18081")
	})

	t.Run("refuses a process bound to an address that cannot move", func(t *testing.T) {
		n1.netCreate(t, "fixed", network.CreateOptions{IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.103.20.0/24"}}}})
		n1.netRun(t, "kvf", "fixed", "18083", "10.103.20.5", "-addr", "10.103.20.5:8080")
		refused(t, "kvf", "127.0.103.1:18083", "listens on 10.103.20.5:8080")
	})

	t.Run("refuses a layer-2 network whose subnet clashes", func(t *testing.T) {
		n1.netCreate(t, "l2b", network.CreateOptions{Labels: map[string]string{migrate.LabelLayer2: "lab2"},
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.103.210.0/24"}}}})
		n2.netCreate(t, "l2b", network.CreateOptions{Labels: map[string]string{migrate.LabelLayer2: "lab2"},
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.103.211.0/24"}}}})
		n1.netRun(t, "kvl", "l2b", "18084", "")
		refused(t, "kvl", "127.0.103.1:18084", "clashes")
	})

	t.Run("restore fails on the target: back on the source with its port", func(t *testing.T) {
		n1.netCreate(t, "rb", network.CreateOptions{})
		n1.netRun(t, "kvr", "rb", "18085", "")
		k, err := workload.DialNetKV(ctx, "127.0.103.1:18085", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		do(t, k, "PUT r 1", "OK")
		seed := do(t, k, "SEED", "")
		k.Close()
		n2.setFault(func(point string) error {
			if point == "target-before-restore" {
				// Break the staged checkpoint on the target: CRIU cannot restore it.
				matches, _ := filepath.Glob(filepath.Join(n2.stateDir, "staged", "m-net-broken", "pages-*.img"))
				for _, m := range matches {
					os.Remove(m)
				}
			}
			return nil
		})
		_, err = n1.migrate(ctx, "kvr", n2, migrate.Order{ID: "m-net-broken"})
		n2.setFault(nil)
		if !errors.Is(err, migrate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack", err)
		}
		k2, err := workload.DialNetKV(ctx, "127.0.103.1:18085", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer k2.Close()
		do(t, k2, "GET r", "VALUE 1")
		do(t, k2, "SEED", seed)
		cli2, _ := n2.engine.Client()
		defer cli2.Close()
		if _, err := cli2.ContainerInspect(ctx, "kvr"); err == nil {
			t.Fatal("the target kept its copy after the rollback")
		}
	})

	t.Run("shared bridge keeps established connections", func(t *testing.T) {
		for i, n := range []*node{n1, n2} {
			n.netCreate(t, "lab", network.CreateOptions{
				Labels:  map[string]string{migrate.LabelLayer2: "lab"},
				Options: map[string]string{"com.docker.network.bridge.name": sharedBridge},
				IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sharedSubnet, Gateway: "10.103.200.1",
					IPRange: []string{"10.103.200.64/26", "10.103.200.128/26"}[i]}}},
			})
		}
		info := n1.netRun(t, "kvs", "lab", "", "")
		ip := info.NetworkSettings.Networks["lab"].IPAddress
		k, err := workload.DialNetKV(ctx, net.JoinHostPort(ip, "8080"), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		do(t, k, "PUT x 42", "OK")

		// Traffic on the one connection before, during and after the move.
		var (
			mu       sync.Mutex
			longest  time.Duration
			requests int
			loopErr  error
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				got, err := k.Do("PING "+strconv.Itoa(i), 120*time.Second)
				mu.Lock()
				requests++
				if d := time.Since(start); d > longest {
					longest = d
				}
				if err == nil && got != "PONG "+strconv.Itoa(i) {
					err = errors.New("answer " + got)
				}
				if err != nil {
					loopErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		rep, err := n1.migrate(ctx, "kvs", n2, migrate.Order{})
		if err != nil {
			close(stop)
			<-done
			t.Fatal(err)
		}
		// A few requests after the move, then stop.
		mu.Lock()
		after := requests
		mu.Unlock()
		for {
			mu.Lock()
			n, lerr := requests, loopErr
			mu.Unlock()
			if n >= after+5 || lerr != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(stop)
		<-done
		if loopErr != nil {
			t.Fatalf("the connection broke during the move: %v", loopErr)
		}
		do(t, k, "GET x", "VALUE 42")
		moved := n2.inspect(t, "kvs")
		if got := moved.NetworkSettings.Networks["lab"].IPAddress; got != ip {
			t.Fatalf("address changed from %s to %s", ip, got)
		}
		t.Logf("shared bridge: downtime %v, longest pause seen by the open connection %v over %d requests", rep.Downtime, longest, requests)
	})

	if downNone > 0 && downBridge > 0 {
		t.Logf("downtime: --network none %v, user bridge network with a published port %v (ratio %.2f)", downNone, downBridge, float64(downBridge)/float64(downNone))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
