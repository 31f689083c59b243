package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/sim"
)

func init() {
	register("sim", "simulate policies on a modelled cluster (sim sweep: tune them; sim suite: every scenario against the baselines)", runSim)
}

// paramFlags collects repeated --param flags.
type paramFlags []sim.Param

func (p *paramFlags) String() string { return fmt.Sprint(len(*p)) }
func (p *paramFlags) Set(s string) error {
	v, err := sim.ParseParam(s)
	if err != nil {
		return err
	}
	*p = append(*p, v)
	return nil
}

// parsePolicyFile is the policy package's parser, the one `godwit policy check` uses.
func parsePolicyFile(name string, data []byte) (*policy.Policy, error) {
	return policy.Parse(name, data)
}

func loadPolicyFile(path string) (*policy.Policy, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := parsePolicyFile(path, data)
	return p, data, asUsage(err)
}

// loadScenario reads --scenario, or the embedded default.
func loadScenario(path string) (*sim.Scenario, error) {
	if path == "" {
		return sim.DefaultScenario()
	}
	sc, err := sim.LoadScenario(path)
	if errors.Is(err, sim.ErrInvalidScenario) {
		return nil, asUsage(err)
	}
	return sc, err
}

// policyFor picks --policy, else the scenario's policy, else the simulator's default.
func policyFor(sc *sim.Scenario, flagPath string) (*policy.Policy, []byte, string, error) {
	path := flagPath
	if path == "" && sc.PolicyFile != "" {
		path = sc.PolicyFile
		if !filepath.IsAbs(path) && sc.File != "" {
			path = filepath.Join(filepath.Dir(sc.File), path)
		}
	}
	if path == "" {
		return sim.SimPolicy(), []byte(sim.DefaultPolicyYAML), "sim-default (built in)", nil
	}
	p, data, err := loadPolicyFile(path)
	if err != nil {
		return nil, nil, "", err
	}
	return p, data, path, nil
}

func runSim(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "sweep" {
		return runSimSweep(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "suite" {
		return runSimSuite(args[1:], stdout, stderr)
	}
	fs := newFlagSet("sim", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: godwit sim [--scenario FILE] [--policy FILE] [--out DIR] [--arms LIST] [--seed N] [--post-copy]")
		fmt.Fprintln(stderr, "       godwit sim suite [--policy FILE] [--seeds N,N,...] [--arms LIST] [--json] [--out DIR] [--post-copy] [DIR]")
		fmt.Fprintln(stderr, "       godwit sim sweep [--scenario FILE] [--policy FILE] [--param PATH=V1,V2,...]... [--objective slo|migrations|downtime|balanced] [--workers N] [--out DIR]")
		fs.PrintDefaults()
	}
	scenario := fs.String("scenario", "", "scenario file (default: the embedded default scenario)")
	policyPath := fs.String("policy", "", "policy file for the policy arm (default: the scenario's, else a built-in one)")
	out := fs.String("out", "godwit-sim", "directory for the report, CSV and JSON outputs")
	arms := fs.String("arms", strings.Join(sim.DefaultArms, ","), "arms to run: policy, none, threshold, lownode, follow")
	seed := fs.String("seed", "", "override the scenario's random seed")
	postCopy := fs.Bool("post-copy", false, "the modelled cluster offers post-copy migration as well as stop-and-copy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		return err
	}
	if *seed != "" {
		v, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			return usagef("--seed: %v", err)
		}
		sc.Seed = v
	}
	pol, _, polName, err := policyFor(sc, *policyPath)
	if err != nil {
		return err
	}
	cfg := sim.Config{
		Policy: pol, Model: policy.DefaultCostModel(), KeepNodeSeries: len(sc.Nodes) <= 200,
	}
	cfg.Model.PostCopy.Enabled = *postCopy
	results, err := sim.Run(sc, cfg, strings.Split(*arms, ","))
	if errors.Is(err, sim.ErrUnknownArm) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	summary := sim.NewRunSummary(sc, polName, results)
	if err := writeSimOutputs(*out, sc, summary, results, cfg.KeepNodeSeries); err != nil {
		return err
	}
	if err := sim.WriteSummaryTable(stdout, summary); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nreport: %s\n", filepath.Join(*out, "report.html"))
	return nil
}

func writeSimOutputs(dir string, sc *sim.Scenario, summary sim.RunSummary, results []*sim.Result, nodes bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"summary.json", func(w io.Writer) error { return sim.WriteSummaryJSON(w, summary) }},
		{"summary.txt", func(w io.Writer) error { return sim.WriteSummaryTable(w, summary) }},
		{"timeseries.csv", func(w io.Writer) error { return sim.WriteTimeSeriesCSV(w, results) }},
		{"migrations.csv", func(w io.Writer) error { return sim.WriteMigrationsCSV(w, results) }},
		{"report.html", func(w io.Writer) error {
			return sim.WriteReport(w, sim.ReportInput{Scenario: sc, Summary: summary, Results: results})
		}},
	}
	if nodes {
		files = append(files, struct {
			name  string
			write func(io.Writer) error
		}{"nodes.csv", func(w io.Writer) error { return sim.WriteNodesCSV(w, results) }})
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func runSimSweep(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim sweep", stderr)
	scenario := fs.String("scenario", "", "scenario file (default: the embedded default scenario)")
	policyPath := fs.String("policy", "", "base policy file the grid modifies (default: the scenario's, else a built-in one)")
	out := fs.String("out", "godwit-sweep", "directory for sweep.csv and best-policy.yaml")
	objective := fs.String("objective", sim.ObjectiveSLO, "how to pick the best point of the Pareto front: slo, migrations, downtime, balanced")
	workers := fs.Int("workers", 0, "parallel runs (default: all cores)")
	var params paramFlags
	fs.Var(&params, "param", "a policy field and its values, PATH=V1,V2,... (repeatable; default: a grid over overloadThreshold, cooldown, minImprovement, maxDowntime)")
	if err := parseFlags(fs, args); err != nil {
		if !errors.Is(err, flag.ErrHelp) && errors.Is(err, sim.ErrInvalidSweep) {
			return asUsage(err)
		}
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	sc, err := loadScenario(*scenario)
	if err != nil {
		return err
	}
	_, base, polName, err := policyFor(sc, *policyPath)
	if err != nil {
		return err
	}
	if len(params) == 0 {
		params = sim.DefaultSweepParams()
	}
	points, err := sim.Sweep(sc, sim.SweepConfig{
		BasePolicy: base, Params: params, ParsePolicy: parsePolicyFile,
		Model: policy.DefaultCostModel(), Workers: *workers,
	})
	if errors.Is(err, sim.ErrInvalidSweep) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	best, err := sim.Best(points, *objective)
	if err != nil {
		return asUsage(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var csv bytes.Buffer
	if err := sim.WriteSweepCSV(&csv, params, points); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "sweep.csv"), csv.Bytes(), 0o644); err != nil {
		return err
	}
	bestPath := filepath.Join(*out, "best-policy.yaml")
	if err := os.WriteFile(bestPath, points[best].PolicyFile, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scenario %s, base policy %s, %d grid points\n\nPareto front (SLO violations, migrations, downtime):\n", sc.Name, polName, len(points))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := ""
	for _, p := range params {
		head += p.Path + "\t"
	}
	fmt.Fprintln(tw, head+"SLO viol. user-min\tmigrations\tdowntime s\t")
	for i, p := range points {
		if !p.Pareto {
			continue
		}
		mark := ""
		if i == best {
			mark = "  <- best (" + *objective + ")"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%.1f\t%s\n", strings.Join(p.Values, "\t"), p.Summary.SLOViolationUserMinutes, p.Summary.Migrations, p.Summary.DowntimeS, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nbest policy: %s\nall points: %s\n", bestPath, filepath.Join(*out, "sweep.csv"))
	return nil
}

// runSimSuite runs every scenario of DIR (default: the built-in scenarios) with one policy
// and every baseline, and prints one table with the policy's ratios against the baselines
// of the same run, then the goals it misses.
func runSimSuite(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim suite", stderr)
	policyPath := fs.String("policy", "", "policy file for every scenario (default: the built-in policy; a scenario's own policy is ignored)")
	seedList := fs.String("seeds", "", "comma-separated seeds to run each scenario with (default: each scenario's own)")
	arms := fs.String("arms", strings.Join(sim.DefaultArms, ","), "arms to run: policy, none, threshold, lownode, follow")
	asJSON := fs.Bool("json", false, "print the rows as JSON instead of a table")
	out := fs.String("out", "", "also write suite.json, suite.txt and suite.html (the suite page) to this directory")
	postCopy := fs.Bool("post-copy", false, "the modelled clusters offer post-copy migration as well as stop-and-copy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("unexpected argument %q", fs.Arg(1))
	}
	var seeds []uint64
	if *seedList != "" {
		for _, s := range strings.Split(*seedList, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return usagef("--seeds: %v", err)
			}
			seeds = append(seeds, v)
		}
	}
	var scs []*sim.Scenario
	var err error
	if fs.NArg() == 1 {
		scs, err = sim.LoadScenarioDir(fs.Arg(0))
		if errors.Is(err, sim.ErrInvalidScenario) {
			return asUsage(err)
		}
	} else {
		var skipped []string
		scs, skipped, err = sim.EmbeddedScenarios()
		for _, s := range skipped {
			fmt.Fprintf(stderr, "godwit sim suite: skipped built-in %s: it reads files that are not built in (give the scenario directory)\n", s)
		}
	}
	if err != nil {
		return err
	}
	pol, polName := sim.SimPolicy(), "built-in"
	if *policyPath != "" {
		if pol, _, err = loadPolicyFile(*policyPath); err != nil {
			return err
		}
		polName = *policyPath
	}
	model := policy.DefaultCostModel()
	model.PostCopy.Enabled = *postCopy
	rows, err := sim.RunSuite(scs, sim.Config{Policy: pol, Model: model}, strings.Split(*arms, ","), seeds)
	if errors.Is(err, sim.ErrUnknownArm) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	writeJSON := func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	writeTable := func(w io.Writer) error {
		fmt.Fprintf(w, "policy %s, %d scenarios\n\n", polName, len(scs))
		if err := sim.WriteSuiteTable(w, rows); err != nil {
			return err
		}
		if miss := sim.SuiteVerdict(rows, suiteMaxSLORatio); len(miss) > 0 {
			fmt.Fprintln(w, "\ngoals missed (SLO at most 0.8x every baseline's, downtime at most the threshold rebalancer's, no ping-pong):")
			for _, m := range miss {
				fmt.Fprintln(w, "  "+m)
			}
		}
		return nil
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		for name, write := range map[string]func(io.Writer) error{
			"suite.json": writeJSON,
			"suite.txt":  writeTable,
			"suite.html": func(w io.Writer) error { return sim.WriteSuiteReport(w, rows, polName, suiteMaxSLORatio) },
		} {
			var buf bytes.Buffer
			if err := write(&buf); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := os.WriteFile(filepath.Join(*out, name), buf.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	if *asJSON {
		return writeJSON(stdout)
	}
	if err := writeTable(stdout); err != nil {
		return err
	}
	if *out != "" {
		fmt.Fprintf(stdout, "\nsuite page: %s\n", filepath.Join(*out, "suite.html"))
	}
	return nil
}

// suiteMaxSLORatio is the goal: the policy's SLO-violation rate at most this times
// the best baseline's.
const suiteMaxSLORatio = 0.8
