package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

func init() {
	register("migrate", "migrate one container now: migrate CONTAINER --to NODE", runMigrate)
}

const migrateUsage = "usage: godwit migrate CONTAINER --to NODE [--json]   (GODWIT_ADDR an agent's API: through the leader)\n" +
	"       godwit migrate CONTAINER --to NODE [--to-addr HOST:PORT] [--method stop-and-copy|post-copy] [--compress] [--id ID] [--direct] [--json]\n" +
	"       (GODWIT_ADDR the source's migration service, as godwit dev runs: ordered directly)\n" +
	"       (the agent or source node from --addr or GODWIT_ADDR; TLS from --cacert, --client-cert, --client-key or GODWIT_CACERT, GODWIT_CLIENT_CERT, GODWIT_CLIENT_KEY)"

// Methods the command line knows besides stop-and-copy: post-copy (lazy pages, ordered
// directly from the source's migration service), and auto, which lets the node choose
// (today that is stop-and-copy).
const (
	methodPostCopy = "post-copy"
	methodAuto     = "auto"
)

// runMigrate asks for one migration and prints its report. When --addr (GODWIT_ADDR) is an
// agent's API, the request goes through the leader (recorded in the ledger, with the same
// checks as the leader's own decisions) and the command waits for the outcome the ledger
// records. When it is a bare migration service (godwit endpoint, the nodes of godwit dev),
// or with --direct, the source is ordered directly, as before the agent existed. Which one
// it is the TLS handshake says (the API answers to the ALPN protocol api.ALPN).
func runMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	to := fs.String("to", "", "target `NODE`: its name (found in the local cluster of godwit dev unless --to-addr is given), or HOST:PORT for whichever cluster node serves there")
	toAddr := fs.String("to-addr", "", "the target node's migration address `HOST:PORT` (default: from the local cluster of godwit dev)")
	method := fs.String("method", migrate.MethodStopAndCopy, "migration `METHOD`: stop-and-copy, post-copy (lazy pages; with --direct) or auto (the node chooses)")
	compress := fs.Bool("compress", false, "compress the checkpoint stream with zstd")
	id := fs.String("id", "", "migration `ID` (default: a new one); godwit migration status ID asks about it later")
	asJSON := fs.Bool("json", false, "print the report as JSON (id, workload, source, target, method, phases, downtimeSeconds, result)")
	direct := fs.Bool("direct", false, "order the source's migration service at --addr directly, not through an agent's API and the leader")
	cf := addClientFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s", migrateUsage)
	}
	if *to == "" {
		return usagef("--to is required\n%s", migrateUsage)
	}
	order := migrate.Order{ID: *id, Workload: pos[0], Compress: *compress}
	switch *method {
	case migrate.MethodStopAndCopy, methodPostCopy:
		order.Method = *method
	case methodAuto:
	default:
		return usagef("--method %q: want stop-and-copy, post-copy or auto", *method)
	}
	if !*direct && *toAddr == "" && !strings.Contains(*to, ":") {
		c, err := newAPIClient(cf)
		if err != nil {
			return err
		}
		if isAPI, _ := c.isAgentAPI(context.Background(), c.addr); isAPI {
			if err := pki.ValidNodeName(*to); err != nil {
				return usagef("--to: %w", err)
			}
			if *compress || *id != "" || *method == methodPostCopy {
				return usagef("--compress, --id and --method post-copy are for a migration service (--direct); through the leader, a workload labelled godwit.io/migration-method=post-copy moves by post-copy where both nodes can")
			}
			return migrateViaAPI(c, pos[0], *to, *asJSON, stdout, stderr)
		}
		// Not an agent's API, or not reachable: the direct path says what is wrong.
	}
	if order.TargetNode, order.TargetAddr, err = resolveTarget(*to, *toAddr); err != nil {
		return err
	}
	addr, client, err := cf.connect()
	if err != nil {
		return err
	}
	if order.ID == "" {
		// Chosen here, not by the node, so that an interrupted command can still name it.
		order.ID = migrate.NewID()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := client.Migrate(ctx, addr, "", order, 0)
	// A refusal before anything ran is said once, on stderr; with --json the report goes
	// out whatever happened.
	if rep != nil && (*asJSON || err == nil || len(rep.Phases) > 0) {
		if *asJSON {
			if jerr := writeJSON(stdout, rep); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printReport(stdout, rep)
		}
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; the migration goes on at the source: godwit migration status %s", order.ID)
	case errors.Is(err, migrate.ErrInDoubt):
		return fmt.Errorf("%w\nthe workload stays stopped at the source until the migration is settled; the source keeps asking the target (godwit migration status %s)", err, order.ID)
	}
	return err
}

// resolveTarget returns the target's node name ("" for whichever node answers) and
// migration address, from --to and --to-addr, else from the local cluster's state.
func resolveTarget(to, toAddr string) (node, addr string, err error) {
	if strings.Contains(to, ":") {
		// An address: node names have no colon.
		if toAddr != "" {
			return "", "", usagef("--to %s is an address; with --to-addr, --to names the node", to)
		}
		if addr, err = parseNodeAddr(to); err != nil {
			return "", "", usagef("--to: %w", err)
		}
		return "", addr, nil
	}
	if err := pki.ValidNodeName(to); err != nil {
		return "", "", usagef("--to: %w", err)
	}
	if toAddr != "" {
		if addr, err = parseNodeAddr(toAddr); err != nil {
			return "", "", usagef("--to-addr: %w", err)
		}
		return to, addr, nil
	}
	c, err := readDevState()
	if err != nil {
		return "", "", usagef("--to %s without --to-addr: %w", to, err)
	}
	var names []string
	for _, n := range c.Nodes {
		if n.Engine.Name == to {
			return to, n.Endpoint, nil
		}
		names = append(names, n.Engine.Name)
	}
	return "", "", usagef("--to: no node %q in the local cluster (it has %s); give its address with --to-addr", to, strings.Join(names, ", "))
}

// shortWorkload shortens a workload identity that is a Docker container ID, as docker ps
// does.
func shortWorkload(w string) string {
	if len(w) == 64 && strings.Trim(w, "0123456789abcdef") == "" {
		return w[:12]
	}
	return w
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printReport prints a migration report as a table.
func printReport(w io.Writer, r *migrate.Report) {
	name := r.Container
	if name == "" {
		name = r.Workload
	}
	fmt.Fprintf(w, "\nmigration %s of %s (%d MiB in use)\n", r.ID, name, r.MemoryBytes>>20)
	target := r.Target
	if target == "" {
		target = r.TargetAddr
	}
	fmt.Fprintf(w, "  workload %s: %s -> %s, %s: %s\n", shortWorkload(r.Workload), r.Source, target, r.Method, r.Result)
	if len(r.Phases) > 0 {
		fmt.Fprintf(w, "  %-11s %10s %12s\n", "phase", "seconds", "bytes")
		for _, p := range r.Phases {
			fmt.Fprintf(w, "  %-11s %10.3f %12d\n", p.Phase, p.Duration.Seconds(), p.Bytes)
		}
	}
	if r.Downtime > 0 {
		fmt.Fprintf(w, "  downtime (frozen until running on the target): %.3f s\n", r.Downtime.Seconds())
		fmt.Fprintf(w, "  checkpoint %d MiB, sent %d MiB, image moved %d MiB\n", r.CheckpointBytes>>20, r.WireBytes>>20, r.ImageBytes>>20)
		fmt.Fprintf(w, "  host during checkpoint: CPU peak %.0f%% mean %.0f%%, memory used peak %d MiB\n",
			r.CheckpointUsage.CPUPeak*100, r.CheckpointUsage.CPUMean*100, r.CheckpointUsage.MemPeak>>20)
		fmt.Fprintf(w, "  host during restore:    CPU peak %.0f%% mean %.0f%%, memory used peak %d MiB\n",
			r.RestoreUsage.CPUPeak*100, r.RestoreUsage.CPUMean*100, r.RestoreUsage.MemPeak>>20)
	}
	if r.Connections > 0 {
		fmt.Fprintf(w, "  connections to the target: %d, TLS 1.3 set-up %.1f ms in all\n", r.Connections, r.HandshakeSeconds*1000)
	}
	if r.RolledBack {
		fmt.Fprintln(w, "  ROLLED BACK: the workload runs on the source")
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	fmt.Fprintln(w)
}
