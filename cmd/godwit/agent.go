package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godwit-io/godwit/internal/agent"
)

func init() {
	register("agent", "run this node's agent: agent --config FILE [--check]", runAgent)
	register("keygen", "make a gossip encryption key (base64, for gossip.key_file)", runKeygen)
}

// runAgent runs the node's agent in the foreground until SIGINT or SIGTERM (a graceful
// stop: agent.Shutdown; SIGHUP rereads a server's policy file), or, with --check, only
// validates the config and the files it names. A config with problems prints each as
// file:line:col: message and exits 2.
//
// Testing aid: with GODWIT_FAULT=POINT and GODWIT_FAULT_RELEASE=FILE in its environment,
// the first migration reaching POINT prints "fault: paused at POINT" on stderr and waits
// there until FILE exists.
func runAgent(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent", stderr)
	file := fs.String("config", "", "the agent's config `FILE` (YAML; see configs/agent/)")
	check := fs.Bool("check", false, "validate the config and the files it names, then exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: godwit agent --config FILE [--check]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *file == "" {
		return usagef("--config is required")
	}
	cfg, err := agent.LoadConfig(*file)
	if err == nil {
		err = cfg.Check()
	}
	var ce *agent.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(stderr, p)
		}
		return usagef("%s: %d problem(s)", *file, len(ce.Problems))
	}
	if err != nil {
		return asUsage(err)
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (node %s, role %s)\n", *file, cfg.Node, cfg.Role)
		return nil
	}
	opts := []agent.Option{agent.WithLogOutput(stderr)}
	if point := os.Getenv(envFault); point != "" {
		if !slices.Contains(faultPoints, point) {
			return usagef("%s=%q: not a fault point (%s)", envFault, point, strings.Join(faultPoints, ", "))
		}
		release := os.Getenv(envFaultRelease)
		if release == "" {
			return usagef("%s needs %s (the agent pauses there until that file exists)", envFault, envFaultRelease)
		}
		opts = append(opts, agent.WithMigrateFault(pauseUntil(point, release, stderr)))
	}
	// Signals are caught before the agent starts: whoever sees it running may stop it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	a, err := agent.New(cfg, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "agent %s running: gossip %s, migration %s", cfg.Node, a.GossipAddr(), a.MigrationAddr())
	if a.RaftAddr() != "" {
		fmt.Fprintf(stdout, ", raft %s", a.RaftAddr())
	}
	fmt.Fprintln(stdout)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			// Reread the policy file; an invalid one is logged and the old one kept.
			_ = a.ReloadPolicy()
			continue
		}
		break
	}
	return a.Shutdown()
}

// envFaultRelease names the file whose creation ends the pause at GODWIT_FAULT of `godwit
// agent` (a testing aid: a test pauses a migration, stops the agent while it is in
// progress, then lets it go on).
const envFaultRelease = "GODWIT_FAULT_RELEASE"

// pauseUntil returns a migrate.NodeConfig.Fault that, when the first migration reaches
// point, says "fault: paused at POINT" on w and blocks it until the file release exists.
func pauseUntil(point, release string, w io.Writer) func(string) error {
	var once sync.Once
	return func(p string) error {
		if p != point {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		fmt.Fprintf(w, "fault: paused at %s\n", p)
		for {
			if _, err := os.Stat(release); err == nil {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// runKeygen prints (or writes with --out, mode 0600, never over an existing file) a new
// 32-byte gossip key, base64.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", stderr)
	out := fs.String("out", "", "write the key to this `FILE` (created 0600; must not exist) instead of printing it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	line := base64.StdEncoding.EncodeToString(key) + "\n"
	if *out == "" {
		_, err := io.WriteString(stdout, line)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usagef("--out: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
