package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/client"
	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("endpoint", "serve this node's side of migrations (until the agent exists)", runEndpoint)
}

// runEndpoint runs a node's migration endpoint in the foreground: it receives migrations
// targeting this node and, on request, migrates this node's containers to other nodes.
func runEndpoint(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("endpoint", stderr)
	listen := fs.String("listen", "127.0.0.1:7950", "TCP address to serve migrations on")
	dockerHost := fs.String("docker-host", os.Getenv("DOCKER_HOST"), "this node's dockerd (unix:///...)")
	dataRoot := fs.String("data-root", "/var/lib/docker", "this node's dockerd --data-root")
	runcRoot := fs.String("runc-root", "/run/docker/runtime-runc/moby", "runc state directory of this node's containers (<exec-root>/runtime-runc/<containerd namespace>)")
	stateDir := fs.String("state-dir", "/var/lib/godwit", "where checkpoints are kept until a migration completes")
	memCap := fs.String("memory-capacity", "", "memory this node offers to workloads (e.g. 8GiB); default: the host's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *dockerHost == "" {
		return usagef("--docker-host (or DOCKER_HOST) is required")
	}
	capacity, err := parseBytes(*memCap)
	if err != nil {
		return usagef("--memory-capacity: %v", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("the endpoint checkpoints with runc and CRIU: run it as root")
	}
	cli, err := client.NewClientWithOpts(client.WithHost(*dockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return usagef("--docker-host: %v", err)
	}
	defer cli.Close()
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: *dataRoot, RuncRoot: *runcRoot, StateDir: *stateDir, MemoryCapacity: capacity,
	})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("node", *listen)
	ep := migrate.NewEndpoint(rt, log)
	ep.Migrator = &migrate.Migrator{Runtime: rt, StateDir: *stateDir, Log: log}
	addr, err := ep.Listen(*listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", addr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return ep.Close()
}

// parseBytes parses "512MiB", "8GiB", "1048576"; "" is 0.
func parseBytes(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 8GiB)", s)
	}
	return n * mult, nil
}
