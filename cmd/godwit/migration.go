package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("migration", "ask a node about one migration, or settle it: migration status|resolve ID", runMigration)
}

const migrationUsage = "usage: godwit migration status ID [--json]\n" +
	"       godwit migration resolve ID --outcome commit|abort [--json]\n" +
	"       (the node from --addr or GODWIT_ADDR; TLS from --cacert, --client-cert, --client-key or GODWIT_CACERT, GODWIT_CLIENT_CERT, GODWIT_CLIENT_KEY)"

// runMigration asks one node what it knows of a migration (its journal entry, and whether
// its copy of the workload exists and runs), or tells it to commit or abort its part: how
// an operator settles a migration left in doubt by a crash.
func runMigration(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", migrationUsage)
	}
	sub := args[0]
	switch sub {
	case "status", "resolve":
	case "help", "-h", "--help":
		fmt.Fprintln(stderr, migrationUsage)
		return nil
	default:
		return usagef("unknown subcommand %q: want status or resolve\n%s", sub, migrationUsage)
	}
	fs := newFlagSet("migration "+sub, stderr)
	asJSON := fs.Bool("json", false, "print the node's answer as JSON")
	var outcome *string
	if sub == "resolve" {
		outcome = fs.String("outcome", "", "commit (the target's running copy is final) or abort (undo this node's part; a source asks its target first)")
	}
	cf := addClientFlags(fs)
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s", migrationUsage)
	}
	id := pos[0]
	if outcome != nil && *outcome != migrate.OutcomeCommit && *outcome != migrate.OutcomeAbort {
		return usagef("--outcome must be %s or %s, got %q\n%s", migrate.OutcomeCommit, migrate.OutcomeAbort, *outcome, migrationUsage)
	}
	addr, client, err := cf.connect()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var st *migrate.Status
	if outcome == nil {
		st, err = client.Status(ctx, addr, "", id)
	} else {
		st, err = client.Resolve(ctx, addr, "", id, *outcome)
	}
	if st != nil {
		if *asJSON {
			if jerr := writeJSON(stdout, st); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printStatus(stdout, st)
		}
	}
	return err
}

// printStatus prints what one node knows of one migration.
func printStatus(w io.Writer, s *migrate.Status) {
	if !s.Known {
		fmt.Fprintf(w, "%s has no record of migration %s\n", s.Node, s.ID)
		return
	}
	fmt.Fprintf(w, "migration %s on %s (%s side)\n", s.ID, s.Node, s.Side)
	fmt.Fprintf(w, "  workload  %s\n", shortWorkload(s.Workload))
	fmt.Fprintf(w, "  nodes     %s -> %s\n", s.Source, s.Target)
	phase := s.Phase
	switch {
	case s.InDoubt:
		phase += " (IN DOUBT: nothing else may move this workload until it is settled)"
	case s.Finished:
		phase += " (finished)"
	default:
		phase += " (in progress)"
	}
	fmt.Fprintf(w, "  phase     %s\n", phase)
	copyState := "none"
	if s.Copy != nil && s.Copy.Exists {
		copyState = "stopped"
		if s.Copy.Running {
			copyState = "running"
		}
	}
	fmt.Fprintf(w, "  copy here %s\n", copyState)
	if s.Error != "" {
		fmt.Fprintf(w, "  error     %s\n", s.Error)
	}
	if !s.Updated.IsZero() {
		fmt.Fprintf(w, "  updated   %s\n", s.Updated.Local().Format(time.RFC3339))
	}
}
