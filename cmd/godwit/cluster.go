package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/scheduler"
)

// The commands that read and change the cluster through any agent's HTTPS API.
func init() {
	register("status", "the cluster as an agent sees it: leader, term, servers, policy, migrations in flight", runStatus)
	register("nodes", "the nodes gossip knows: site, role, status, load, drained", runNodes)
	register("containers", "the workloads the nodes run, with their owners and last moves", runContainers)
	register("migrations", "the ledger of migrations, or one of them: migrations [ID]", runMigrations)
	register("drain", "mark a node drained (nothing moves onto it): drain NODE", runDrain)
	register("undrain", "lift a node's drain: undrain NODE", runUndrain)
}

const apiHint = "(the agent from --addr or GODWIT_ADDR; TLS from --cacert, --client-cert, --client-key or GODWIT_CACERT, GODWIT_CLIENT_CERT, GODWIT_CLIENT_KEY)"

// readCommand parses a read command's flags (no positional arguments beyond max) and
// returns its client.
func readCommand(name string, args []string, maxPos int, stderr io.Writer) (*apiClient, []string, bool, error) {
	fs := newFlagSet(name, stderr)
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, false, err
	}
	if len(pos) > maxPos {
		return nil, nil, false, usagef("usage: godwit %s [--json] %s", name, apiHint)
	}
	c, err := newAPIClient(cf)
	return c, pos, *asJSON, err
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	c, _, asJSON, err := readCommand("status", args, 0, stderr)
	if err != nil {
		return err
	}
	var st api.Status
	if err := c.get(context.Background(), "/v1/status", &st); err != nil {
		return exitErr(err)
	}
	if asJSON {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "agent      %s (%s", st.Node, st.Role)
	if st.Site != "" {
		fmt.Fprintf(stdout, ", site %s", st.Site)
	}
	fmt.Fprintf(stdout, ") at %s\n", st.APIAddr)
	if st.Leader != nil {
		fmt.Fprintf(stdout, "leader     %s at %s, term %d\n", st.Leader.Name, st.Leader.APIAddr, st.Term)
	} else {
		fmt.Fprintln(stdout, "leader     none known")
	}
	fmt.Fprintf(stdout, "members    %d alive\n", st.Members)
	if st.PolicyVersion > 0 {
		fmt.Fprintf(stdout, "policy     version %d\n", st.PolicyVersion)
	} else {
		fmt.Fprintln(stdout, "policy     none in force")
	}
	fmt.Fprintf(stdout, "in flight  %d migrations\n", st.InFlight)
	if len(st.Servers) > 0 {
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVER\tRAFT ADDRESS\tVOTER\tLEADER")
		for _, s := range st.Servers {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", s.Name, s.RaftAddr, s.Voter, s.Leader)
		}
		tw.Flush()
	}
	return nil
}

func runNodes(args []string, stdout, stderr io.Writer) error {
	c, _, asJSON, err := readCommand("nodes", args, 0, stderr)
	if err != nil {
		return err
	}
	var nodes []api.Node
	if err := c.get(context.Background(), "/v1/nodes", &nodes); err != nil {
		return exitErr(err)
	}
	if asJSON {
		return writeJSON(stdout, nodes)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSITE\tROLE\tSTATUS\tDRAINED\tCPU\tMEMORY\tCONTAINERS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%.2f/%g\t%s/%s\t%d\n", n.Name, orDash(n.Site), orDash(n.Role), n.Status, n.Drained,
			n.CPUCores, n.CPUCapacity, mib(n.MemoryBytes), mib(n.MemoryCapacity), n.Containers)
	}
	return tw.Flush()
}

func runContainers(args []string, stdout, stderr io.Writer) error {
	c, _, asJSON, err := readCommand("containers", args, 0, stderr)
	if err != nil {
		return err
	}
	var cs []api.Container
	if err := c.get(context.Background(), "/v1/containers", &cs); err != nil {
		return exitErr(err)
	}
	if asJSON {
		return writeJSON(stdout, cs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tNAME\tNODE\tOWNER\tMEMORY\tLAST MOVE\tIN FLIGHT")
	for _, ct := range cs {
		last := "-"
		if ct.LastMove != nil {
			last = fmt.Sprintf("%s -> %s %s ago", ct.LastMove.From, ct.LastMove.To, time.Since(ct.LastMove.At).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortWorkload(ct.Workload), ct.Name, ct.Node, orDash(ct.Owner), mib(ct.MemoryBytes), last, orDash(ct.InFlight))
	}
	return tw.Flush()
}

func runMigrations(args []string, stdout, stderr io.Writer) error {
	c, pos, asJSON, err := readCommand("migrations", args, 1, stderr)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		var m scheduler.Migration
		if err := c.get(context.Background(), "/v1/migrations/"+url.PathEscape(pos[0]), &m); err != nil {
			return exitErr(err)
		}
		if asJSON {
			return writeJSON(stdout, ledgerReport{&m, m.Measured.Downtime.Seconds()})
		}
		printLedgerReport(stdout, &m)
		return nil
	}
	var ms []scheduler.Migration
	if err := c.get(context.Background(), "/v1/migrations", &ms); err != nil {
		return exitErr(err)
	}
	if asJSON {
		return writeJSON(stdout, ms)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKLOAD\tSOURCE\tTARGET\tPHASE\tDOWNTIME PREDICTED\tMEASURED\tCREATED\tREASON")
	for _, m := range ms {
		meas := "-"
		if m.Measured.Downtime > 0 {
			meas = fmt.Sprintf("%.3fs", m.Measured.Downtime.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3fs\t%s\t%s\t%s\n", m.ID, shortWorkload(m.Workload), m.Source, m.Target, m.Phase,
			m.Predicted.Downtime.Seconds(), meas, m.Created.Local().Format(time.DateTime), m.Reason)
	}
	return tw.Flush()
}

func runDrain(args []string, stdout, stderr io.Writer) error {
	return drainCommand("drain", args, stdout, stderr)
}

func runUndrain(args []string, stdout, stderr io.Writer) error {
	return drainCommand("undrain", args, stdout, stderr)
}

// drainCommand asks the leader, through the agent, to record a node drained or not.
func drainCommand(name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, stderr)
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: godwit %s NODE [--json] %s", name, apiHint)
	}
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	var acc api.Accepted
	if err := c.call(context.Background(), "POST", "/v1/"+name+"/"+url.PathEscape(pos[0]), "", nil, &acc); err != nil {
		return exitErr(err)
	}
	if *asJSON {
		return writeJSON(stdout, acc)
	}
	fmt.Fprintf(stdout, "%s: %s\n", acc.Node, acc.Message)
	return nil
}

// ledgerReport is a migration as the ledger records it, with the downtime in seconds
// (the field scripts read in every migration report).
type ledgerReport struct {
	*scheduler.Migration
	DowntimeSeconds float64 `json:"downtimeSeconds"`
}

// printLedgerReport prints one migration of the ledger.
func printLedgerReport(w io.Writer, m *scheduler.Migration) {
	name := m.Container
	if name == "" {
		name = shortWorkload(m.Workload)
	}
	fmt.Fprintf(w, "\nmigration %s of %s (%d MiB in use)\n", m.ID, name, m.MemoryBytes>>20)
	fmt.Fprintf(w, "  workload %s: %s -> %s, %s: %s\n", shortWorkload(m.Workload), m.Source, m.Target, m.Method, m.Phase)
	if m.Reason != "" {
		fmt.Fprintf(w, "  why: %s\n", m.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  phase\tat (s)\tby\tnote")
	for _, h := range m.History {
		fmt.Fprintf(tw, "  %s\t%.3f\t%s\t%s\n", h.Phase, h.At.Sub(m.Created).Seconds(), h.By, h.Note)
	}
	tw.Flush()
	fmt.Fprintf(w, "  downtime: predicted %.3f s", m.Predicted.Downtime.Seconds())
	if m.Measured.Downtime > 0 {
		fmt.Fprintf(w, ", measured %.3f s (checkpoint %.3f, transfer %.3f, restore %.3f; %d MiB checkpoint)",
			m.Measured.Downtime.Seconds(), m.Measured.Checkpoint.Seconds(), m.Measured.Transfer.Seconds(), m.Measured.Restore.Seconds(), m.Measured.CheckpointBytes>>20)
	}
	fmt.Fprintln(w)
	if m.Failure != "" {
		fmt.Fprintf(w, "  failure: %s\n", m.Failure)
	}
	fmt.Fprintln(w)
}

// migrateViaAPI asks the leader, through the agent, for one migration, waits for its
// outcome in the ledger and prints it.
func migrateViaAPI(c *apiClient, workload, to string, asJSON bool, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	body := fmt.Sprintf(`{"workload":%q,"to":%q}`, workload, to)
	var acc api.Accepted
	if err := c.call(ctx, "POST", "/v1/migrate", "application/json", []byte(body), &acc); err != nil {
		return exitErr(err)
	}
	fmt.Fprintf(stderr, "migration %s recorded by the leader; waiting for its outcome\n", acc.ID)
	var m scheduler.Migration
	var last scheduler.Phase
	for {
		err := c.get(ctx, "/v1/migrations/"+url.PathEscape(acc.ID), &m)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("interrupted; the migration goes on: godwit migrations %s", acc.ID)
		case err != nil:
			fmt.Fprintf(stderr, "  asking about %s: %v (retrying)\n", acc.ID, err)
		case m.Phase != last:
			fmt.Fprintf(stderr, "  %s\n", m.Phase)
			if m.Phase == scheduler.PhaseInDoubt {
				fmt.Fprintf(stderr, "  in doubt: the leader settles it by asking the nodes (%s)\n", m.Failure)
			}
			last = m.Phase
		}
		if err == nil && m.Phase.Terminal() {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	if asJSON {
		if err := writeJSON(stdout, ledgerReport{&m, m.Measured.Downtime.Seconds()}); err != nil {
			return err
		}
	} else {
		printLedgerReport(stdout, &m)
	}
	if m.Phase != scheduler.PhaseCompleted {
		return fmt.Errorf("migration %s %s: %s", m.ID, m.Phase, m.Failure)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// mib formats bytes in MiB or GiB.
func mib(b uint64) string {
	if b >= 10<<30 {
		return fmt.Sprintf("%.0fGiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%dMiB", b>>20)
}
