package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("migrate", "migrate one container now: migrate CONTAINER --to NODE", runMigrate)
}

// runMigrate asks the source node's endpoint (--addr or GODWIT_ADDR) to migrate a container
// to another node. Until the leader exists it goes to the endpoint directly; NODE is a node
// name of the local cluster (`godwit dev up`) or an endpoint address.
func runMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	to := fs.String("to", "", "target node: a `godwit dev` node name or an endpoint address host:port")
	addr := fs.String("addr", os.Getenv("GODWIT_ADDR"), "the source node's endpoint (default $GODWIT_ADDR)")
	compress := fs.Bool("compress", false, "compress the checkpoint stream with zstd")
	id := fs.String("id", "", "migration ID (default: a new one); repeating an ID repeats its steps harmlessly")
	// Accept the container before or after the flags.
	var container string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		container, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if container == "" && fs.NArg() == 1 {
		container = fs.Arg(0)
	} else if fs.NArg() != 0 || container == "" {
		return usagef("usage: godwit migrate CONTAINER --to NODE [--addr SOURCE]")
	}
	if *to == "" {
		return usagef("--to is required")
	}
	if *addr == "" {
		return usagef("--addr or GODWIT_ADDR must name the source node's endpoint")
	}
	target := *to
	if !strings.Contains(target, ":") {
		c, err := readDevState()
		if err != nil {
			return usagef("--to %s is not host:port and %v", target, err)
		}
		found := false
		for _, n := range c.Nodes {
			if n.Engine.Name == target {
				target, found = n.Endpoint, true
			}
		}
		if !found {
			return usagef("--to: no node %q in the local cluster", *to)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := migrate.RequestMigration(ctx, *addr, migrate.MigrateRequest{
		ID: *id, Workload: container, Target: target, Compress: *compress,
	})
	if rep != nil {
		printReport(stdout, rep)
	}
	return err
}
