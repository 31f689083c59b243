package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("demo", "live-migrate a workload between two local engines and show what it cost", runDemo)
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

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	mib := fs.Int("mib", 384, "memory of the workload, MiB")
	compress := fs.Bool("compress", false, "compress the checkpoint stream with zstd")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *mib < 1 || *mib > 16384 {
		return usagef("--mib must be between 1 and 16384, got %d", *mib)
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo starts dockerd and CRIU: run it as root (make demo)")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	var nodes []*demoNode
	defer func() {
		say("cleaning up: stopping engines and endpoints")
		for _, n := range nodes {
			n.stop()
		}
	}()
	for i, name := range []string{"edge1", "edge2"} {
		addr := fmt.Sprintf("127.0.0.%d", i+2)
		say("starting node %s: dockerd (own data-root, socket, containerd) and a `godwit endpoint` process on %s", name, addr)
		n, err := startDemoNode(ctx, name, addr, stdout)
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
		Cmd:    workload.Cmd(*mib),
		Labels: map[string]string{"godwit.io/managed": "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)},
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

	say("asking %s's endpoint (%s) to migrate memhog to %s (endpoint %s)", src.name, src.addr, dst.name, dst.addr)
	rep, err := migrate.RequestMigration(ctx, src.addr, migrate.MigrateRequest{
		Workload: "memhog", Target: dst.addr, Compress: *compress,
	})
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

func startDemoNode(ctx context.Context, name, addr string, logw io.Writer) (*demoNode, error) {
	e, err := dockerd.Start(ctx, dockerd.Config{Name: name})
	if err != nil {
		return nil, err
	}
	n := &demoNode{name: name, engine: e}
	self, err := os.Executable()
	if err != nil {
		return n, err
	}
	cmd := exec.Command(self, "endpoint", "--listen", addr+":0", "--docker-host", e.Host,
		"--data-root", e.DataRoot, "--runc-root", e.RuncRoot(), "--state-dir", filepath.Join(e.Dir, "godwit"))
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
			if line := sc.Text(); strings.Contains(line, "msg=progress") || strings.Contains(line, "level=WARN") {
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

// printReport prints a migration report as a table.
func printReport(w io.Writer, r *migrate.Report) {
	fmt.Fprintf(w, "\nmigration %s of %s (%d MiB in use)\n", r.ID, r.Workload, r.MemoryBytes>>20)
	fmt.Fprintf(w, "  %-11s %10s %12s\n", "phase", "seconds", "bytes")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "  %-11s %10.3f %12d\n", p.Phase, p.Duration.Seconds(), p.Bytes)
	}
	fmt.Fprintf(w, "  downtime (frozen until running on the target): %.3f s\n", r.Downtime.Seconds())
	fmt.Fprintf(w, "  checkpoint %d MiB, sent %d MiB, image moved %d MiB\n", r.CheckpointBytes>>20, r.WireBytes>>20, r.ImageBytes>>20)
	fmt.Fprintf(w, "  host during checkpoint: CPU peak %.0f%% mean %.0f%%, memory used peak %d MiB\n",
		r.CheckpointUsage.CPUPeak*100, r.CheckpointUsage.CPUMean*100, r.CheckpointUsage.MemPeak>>20)
	fmt.Fprintf(w, "  host during restore:    CPU peak %.0f%% mean %.0f%%, memory used peak %d MiB\n",
		r.RestoreUsage.CPUPeak*100, r.RestoreUsage.CPUMean*100, r.RestoreUsage.MemPeak>>20)
	if r.RolledBack {
		fmt.Fprintln(w, "  ROLLED BACK: the workload runs on the source")
	}
	fmt.Fprintln(w)
}
