package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("demo", "a local 3-node cluster that moves workloads off a hot node and toward their users by itself (--manual: one migration ordered by hand)", runDemo)
}

// runDemo runs the cluster demo (demo_cluster.go) or, with --manual, the first demo: two
// engines and one migration ordered by hand.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	manual := fs.Bool("manual", false, "the first demo: two engines, one migration ordered by hand, with per-phase timings")
	mib := fs.Int("mib", 128, "memory of each workload, MiB (384 with --manual unless given)")
	compress := fs.Bool("compress", false, "with --manual: compress the checkpoint stream with zstd")
	drain := fs.Bool("drain", false, "a third act: the operator drains the node that took the first workload, and godwit empties it")
	measureHot := fs.Int("measure-hot", 0, "instead of the acts, make n1 hot N times with fresh workloads and print the time until one runs elsewhere, and the median")
	firstIP := fs.String("first-ip", "127.0.0.21", "the cluster demo's first node address (the others follow it); a loopback IPv4 address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "mib" })
	if *manual && !given {
		*mib = 384
	}
	if *mib < 1 || *mib > 16384 {
		return usagef("--mib must be between 1 and 16384, got %d", *mib)
	}
	if *compress && !*manual {
		return usagef("--compress goes with --manual (the leader decides how the cluster demo migrates)")
	}
	ip := net.ParseIP(*firstIP).To4()
	if ip == nil || !ip.IsLoopback() || ip[3] == 0 || ip[3] > 250 {
		return usagef("--first-ip must be a loopback IPv4 address from x.x.x.1 to x.x.x.250, got %q", *firstIP)
	}
	if *measureHot < 0 || *measureHot > 100 {
		return usagef("--measure-hot must be between 0 and 100, got %d", *measureHot)
	}
	if *manual && (*drain || *measureHot > 0 || *firstIP != "127.0.0.21") {
		return usagef("--drain, --measure-hot and --first-ip go with the cluster demo, not --manual")
	}
	opt := demoOptions{mib: *mib, ipBase: fmt.Sprintf("%d.%d.%d", ip[0], ip[1], ip[2]), ipFirst: int(ip[3]), drain: *drain, measureHot: *measureHot}
	if os.Geteuid() != 0 {
		return errors.New("the demo starts dockerd and CRIU: run it as root (make demo)")
	}
	if *manual {
		return runManualDemo(*mib, *compress, stdout)
	}
	return runClusterDemo(opt, stdout)
}

// demoNode is one simulated node of the demo: an engine, its runtime and its endpoint.
type demoNode struct {
	name     string
	engine   *dockerd.Engine
	endpoint *exec.Cmd // `godwit endpoint` for this node, a process of its own
	addr     string
}

func (n *demoNode) stop() {
	if n.endpoint != nil && n.endpoint.Process != nil {
		_ = n.endpoint.Process.Signal(syscall.SIGTERM)
		_ = n.endpoint.Wait()
	}
	n.engine.Stop(context.Background())
}

// runManualDemo is `godwit demo --manual`: two engines, each with a `godwit endpoint`, and
// one migration ordered by hand, as the operator.
func runManualDemo(mib int, compress bool, stdout io.Writer) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	// A throwaway CA for the demo: the nodes' certificates and the operator's (ours).
	tlsDir, err := os.MkdirTemp("", "godwit-demo-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tlsDir)
	opFiles, err := pki.Quick(tlsDir, "demo", pki.RoleOperator)
	if err != nil {
		return err
	}
	operator, err := pki.Load(opFiles)
	if err != nil {
		return err
	}
	var nodes []*demoNode
	defer func() {
		say("cleaning up: stopping engines and endpoints")
		for _, n := range nodes {
			n.stop()
		}
	}()
	for i, name := range []string{"edge1", "edge2"} {
		ip := net.IPv4(127, 0, 0, byte(i+2))
		say("starting node %s: dockerd (own data-root, socket, containerd) and a `godwit endpoint` process on %s (TLS, certificate %s)", name, ip, name)
		certs, err := pki.Quick(tlsDir, name, pki.RoleClient, ip)
		if err != nil {
			return err
		}
		n, err := startDemoNode(ctx, name, ip.String(), certs, stdout)
		if n != nil {
			nodes = append(nodes, n)
		}
		if err != nil {
			return err
		}
	}
	src, dst := nodes[0], nodes[1]
	cli, err := src.engine.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	say("building the workload image (FROM scratch + a static Go program) on %s only", src.name)
	if err := workload.BuildImage(ctx, cli); err != nil {
		return err
	}
	c, err := cli.ContainerCreate(ctx, &container.Config{
		Image:  workload.Image,
		Cmd:    workload.Cmd(mib),
		Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)},
		// What can move on this engine (Docker 28 moves only containers without a network
		// namespace of Docker's).
		NetworkDisabled: workload.NetworkDisabled(ctx, cli),
	}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "memhog")
	if err != nil {
		return err
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return err
	}
	before, err := probeContainer(ctx, src.engine, "memhog")
	if err != nil {
		return err
	}
	say("workload running on %s: %v", src.name, before)
	time.Sleep(time.Second) // let it tick, so continuity shows

	say("asking %s's endpoint (%s), as operator, to migrate memhog to %s (endpoint %s)", src.name, src.addr, dst.name, dst.addr)
	rep, err := (&migrate.Client{TLS: operator}).Migrate(ctx, src.addr, src.name, migrate.Order{
		Workload: "memhog", TargetNode: dst.name, TargetAddr: dst.addr, Compress: compress,
	}, 0)
	if rep != nil {
		printReport(stdout, rep)
	}
	if err != nil {
		return err
	}
	after, err := probeContainer(ctx, dst.engine, "memhog")
	if err != nil {
		return err
	}
	say("workload on %s now: %v", dst.name, after)
	ok := after.Seed == before.Seed && after.CRC == before.CRC && after.Ticks >= before.Ticks
	srcList, _ := cli.ContainerList(ctx, container.ListOptions{All: true})
	say("state check: seed %s, memory checksum %s, ticks %d -> %d (%s); copies left on %s: %d",
		same(after.Seed == before.Seed), same(after.CRC == before.CRC), before.Ticks, after.Ticks,
		map[bool]string{true: "continued", false: "RESET"}[after.Ticks >= before.Ticks], src.name, len(srcList))
	if !ok || len(srcList) != 0 {
		return errors.New("state check failed")
	}
	say("PASS: the workload moved with its memory, and exactly one copy runs")
	return nil
}

func same(b bool) string {
	if b {
		return "unchanged"
	}
	return "CHANGED"
}

func startDemoNode(ctx context.Context, name, ip string, certs pki.Files, logw io.Writer) (*demoNode, error) {
	e, err := dockerd.Start(ctx, dockerd.Config{Name: name})
	if err != nil {
		return nil, err
	}
	n := &demoNode{name: name, engine: e}
	self, err := os.Executable()
	if err != nil {
		return n, err
	}
	cmd := exec.Command(self, "endpoint", "--node", name, "--listen", ip+":0",
		"--tls-ca", certs.CA, "--tls-cert", certs.Cert, "--tls-key", certs.Key,
		"--docker-host", e.Host, "--data-root", e.DataRoot, "--runc-root", e.RuncRoot(), "--state-dir", filepath.Join(e.Dir, "godwit"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return n, err
	}
	logs, err := cmd.StderrPipe()
	if err != nil {
		return n, err
	}
	if err := cmd.Start(); err != nil {
		return n, err
	}
	n.endpoint = cmd
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "msg=progress") || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				fmt.Fprintf(logw, "  [%s endpoint] %s\n", name, line)
			}
		}
	}()
	first, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return n, fmt.Errorf("endpoint of %s did not start: %v", name, err)
	}
	n.addr = strings.TrimSpace(strings.TrimPrefix(first, "listening on "))
	return n, nil
}

func probeContainer(ctx context.Context, e *dockerd.Engine, name string) (workload.State, error) {
	cli, err := e.Client()
	if err != nil {
		return workload.State{}, err
	}
	defer cli.Close()
	return workload.WaitState(ctx, cli, name, 10*time.Second)
}
