package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/client"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("endpoint", "serve this node's side of migrations (until the agent exists)", runEndpoint)
}

// envFault names the fault point at which `godwit endpoint` pauses a migration for good, a
// testing aid: crash tests set it, wait for the endpoint to say "fault: paused at POINT" on
// stderr and SIGKILL it there.
const envFault = "GODWIT_FAULT"

// faultPoints are the points of a migration at which migrate.NodeConfig.Fault is called.
var faultPoints = migrate.FaultPoints

// runEndpoint runs a node's migration service in the foreground, over TLS 1.3 with mutual
// authentication: it takes migrations from other nodes into this node's engine, migrates
// this node's managed containers on an operator's or server's order, and answers status and
// resolve. Its journal (in --state-dir) lets a restarted endpoint settle what a crash
// interrupted.
//
// Testing aid: with GODWIT_FAULT=POINT in its environment (a point of faultPoints), the
// first migration that reaches POINT prints "fault: paused at POINT" on stderr and stops
// there for good, so that a test can kill the process at exactly that point.
func runEndpoint(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("endpoint", stderr)
	listen := fs.String("listen", "127.0.0.1:7950", "TCP address to serve migrations on (TLS only)")
	node := fs.String("node", "", "this node's `NAME`; --tls-cert must be this node's certificate (required)")
	tlsCA := fs.String("tls-ca", "", "the cluster's CA certificate (required)")
	tlsCert := fs.String("tls-cert", "", "this node's certificate, role server or client, as godwit tls cert create makes it (required)")
	tlsKey := fs.String("tls-key", "", "its private key (required)")
	dockerHost := fs.String("docker-host", os.Getenv("DOCKER_HOST"), "this node's dockerd (unix:///...)")
	dataRoot := fs.String("data-root", "/var/lib/docker", "this node's dockerd --data-root")
	runcRoot := fs.String("runc-root", "/run/docker/runtime-runc/moby", "runc state directory of this node's containers (<exec-root>/runtime-runc/<containerd namespace>)")
	stateDir := fs.String("state-dir", "/var/lib/godwit", "the migration journal, and checkpoints until their migration is settled")
	memCap := fs.String("memory-capacity", "", "memory this node offers to workloads (e.g. 8GiB); default: the host's")
	allowHostNet := fs.Bool("allow-host-network", false, "accept incoming containers with --network host")
	publishAddr := fs.String("publish-address", "", "this node's address for published ports of incoming containers (default: the engine's)")
	var bindRoots pathsFlag
	fs.Var(&bindRoots, "bind-root", "accept incoming bind mounts whose source lies under this absolute `DIR` (repeatable; none: no bind mounts)")
	var caps listFlag
	fs.Var(&caps, "allow-cap", "accept incoming containers that add this capability `CAP`, e.g. NET_ADMIN (repeatable, or comma-separated; none: no added capabilities)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: godwit endpoint --node NAME --tls-ca FILE --tls-cert FILE --tls-key FILE [flags]")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\ntesting aid: with %s=POINT in the environment, the first migration that reaches POINT prints\n"+
			"\"fault: paused at POINT\" on stderr and stops there for good, so that a crash test can kill the process at\n"+
			"exactly that point. Points: %s.\n", envFault, strings.Join(faultPoints, ", "))
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *node == "" {
		return usagef("--node is required: this node's name, as its certificate carries it")
	}
	if err := pki.ValidNodeName(*node); err != nil {
		return usagef("--node: %w", err)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"--tls-ca", *tlsCA}, {"--tls-cert", *tlsCert}, {"--tls-key", *tlsKey}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usagef("TLS is required (there is no plaintext mode): %s missing; `godwit tls cert create --role client` makes a node's certificate",
			strings.Join(missing, ", "))
	}
	if *dockerHost == "" {
		return usagef("--docker-host (or DOCKER_HOST) is required")
	}
	capacity, err := parseBytes(*memCap)
	if err != nil {
		return usagef("--memory-capacity: %v", err)
	}
	if *publishAddr != "" && net.ParseIP(*publishAddr) == nil {
		return usagef("--publish-address: %q is not an IP address", *publishAddr)
	}
	accept := migrate.DockerPolicy{AllowHostNetwork: *allowHostNet, BindRoots: bindRoots}
	if accept.AllowCapabilities, err = migrate.NormalizeCapabilities(caps); err != nil {
		return usagef("--allow-cap: %w", err)
	}
	var fault func(string) error
	if point := os.Getenv(envFault); point != "" {
		if !slices.Contains(faultPoints, point) {
			return usagef("%s=%q: not a fault point (%s)", envFault, point, strings.Join(faultPoints, ", "))
		}
		fault = pauseAt(point, stderr)
	}
	id, err := pki.Load(pki.Files{CA: *tlsCA, Cert: *tlsCert, Key: *tlsKey})
	if err != nil {
		return asUsage(err)
	}
	if who := id.Identity(); !who.IsNode() || who.Node != *node {
		return usagef("--tls-cert is the certificate of %s; node %s serves with its own node certificate (role server or client)", who, *node)
	}
	if os.Geteuid() != 0 {
		return errors.New("the endpoint checkpoints with runc and CRIU: run it as root")
	}
	// Before listening: whoever has read "listening on" may stop the endpoint with a signal.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := client.NewClientWithOpts(client.WithHost(*dockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return usagef("--docker-host: %v", err)
	}
	defer cli.Close()
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: *dataRoot, RuncRoot: *runcRoot, StateDir: *stateDir, MemoryCapacity: capacity,
		Policy: accept, PublishAddress: *publishAddr,
	})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if fault != nil {
		log.Warn("fault injection armed: the first migration to reach the point pauses there for good (a testing aid)", "point", os.Getenv(envFault))
	}
	n, err := migrate.NewNode(migrate.NodeConfig{
		Name: *node, Runtime: rt, StateDir: *stateDir, TLS: id, Log: log, Fault: fault,
	})
	if err != nil {
		return err
	}
	addr, err := n.Listen(*listen)
	if err != nil {
		n.Close()
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", addr)
	// Recovery runs after Listen: settling a migration may need this node's peers to ask it
	// about the same migration.
	n.Start(ctx)
	<-ctx.Done()
	log.Info("stopping", "node", *node)
	return n.Close()
}

// pauseAt returns a migrate.NodeConfig.Fault that, when a migration reaches point, says so
// on w in one line and blocks that migration forever (a testing aid; see runEndpoint).
func pauseAt(point string, w io.Writer) func(string) error {
	return func(p string) error {
		if p != point {
			return nil
		}
		fmt.Fprintf(w, "fault: paused at %s\n", p)
		if f, ok := w.(interface{ Sync() error }); ok {
			_ = f.Sync()
		}
		select {}
	}
}

// pathsFlag collects a repeatable flag of clean absolute paths (commas are part of a path).
type pathsFlag []string

func (p *pathsFlag) String() string { return strings.Join(*p, " ") }

func (p *pathsFlag) Set(v string) error {
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%q is not an absolute path", v)
	}
	*p = append(*p, filepath.Clean(v))
	return nil
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
