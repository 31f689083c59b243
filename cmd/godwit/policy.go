package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/godwit-io/godwit/internal/yamlstrict"
	"github.com/godwit-io/godwit/policy"
)

func init() {
	register("policy", "check, apply (through the leader), explain or print the schema of policy files", runPolicy)
}

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: godwit policy check FILE... | apply FILE | explain [WORKLOAD...] | explain --policy FILE --view FILE [CONTAINER] | schema")
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(args[1:], stdout, stderr)
	case "schema":
		s, err := policy.Schema()
		if err != nil {
			return err
		}
		_, err = stdout.Write(s)
		return err
	case "apply":
		return policyApply(args[1:], stdout, stderr)
	}
	return usagef("unknown policy subcommand %q: want check, apply, explain or schema", args[0])
}

// policyCheck validates files offline and prints every error as file:line:col: message.
// Exit 0 when all are valid, 2 otherwise.
func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy check", stderr)
	quiet := fs.Bool("q", false, "print nothing for valid files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("usage: godwit policy check FILE...")
	}
	bad := 0
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stdout, "%s: %v\n", name, err)
			bad++
			continue
		}
		p, err := policy.Parse(name, data)
		if err != nil {
			fmt.Fprintln(stdout, err)
			bad++
			continue
		}
		if !*quiet {
			fmt.Fprintf(stdout, "%s: ok (policy %q, mode %s, %d triggers)\n", name, p.Name, p.Mode, len(p.Triggers))
		}
	}
	if bad > 0 {
		return usagef("%d of %d files invalid", bad, fs.NArg())
	}
	return nil
}

// explainInput is what `policy explain --view` reads: a cluster snapshot, with an
// optional ledger and cost model.
type explainInput struct {
	policy.ClusterView `yaml:",inline"`
	Ledger             policy.Ledger     `json:"ledger" yaml:"ledger"`
	CostModel          *policy.CostModel `json:"costModel,omitempty" yaml:"costModel,omitempty"`
}

// policyExplain evaluates a policy offline against a snapshot file and shows the plan.
func policyExplain(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy explain", stderr)
	policyFile := fs.String("policy", "", "policy file (required)")
	viewFile := fs.String("view", "", "cluster snapshot, JSON or YAML (required): nodes, containers, links, siteLinks, ledger")
	at := fs.String("at", "", "evaluation time, RFC 3339 (default: now)")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *policyFile == "" && *viewFile == "" && *at == "" {
		// The live cluster: the leader's last plan, through an agent's API.
		return policyExplainLive(cf, fs.Args(), *asJSON, stdout)
	}
	if *policyFile == "" || *viewFile == "" {
		return usagef("usage: godwit policy explain [WORKLOAD...] (the leader's last plan, through --addr or GODWIT_ADDR)\n" +
			"       godwit policy explain --policy FILE --view FILE [CONTAINER...] (offline, against a snapshot)")
	}
	data, err := os.ReadFile(*policyFile)
	if err != nil {
		return err
	}
	p, err := policy.Parse(*policyFile, data)
	if err != nil {
		return asUsage(err)
	}
	in, err := readSnapshot(*viewFile)
	if err != nil {
		return asUsage(err)
	}
	now := time.Now()
	if *at != "" {
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			return usagef("--at: %v", err)
		}
	}
	model := policy.DefaultCostModel()
	if in.CostModel != nil {
		model = *in.CostModel
	}
	plan := policy.Evaluate(in.ClusterView, p, model, in.Ledger, now)
	if fs.NArg() > 0 {
		keep := plan.Explanations[:0]
		for _, x := range plan.Explanations {
			for _, want := range fs.Args() {
				if x.Container == want {
					keep = append(keep, x)
				}
			}
		}
		plan.Explanations = keep
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	printPlan(stdout, p, plan)
	return nil
}

func readSnapshot(name string) (explainInput, error) {
	var in explainInput
	data, err := os.ReadFile(name)
	if err != nil {
		return in, err
	}
	if strings.EqualFold(filepath.Ext(name), ".json") {
		err = json.Unmarshal(data, &in)
		if err != nil {
			return in, fmt.Errorf("%s: %w", name, err)
		}
		return in, nil
	}
	d := yamlstrict.New(name)
	d.Tag, d.DotPaths = "yaml,json", true
	if root := d.Load(data, "a cluster snapshot (nodes, containers, links, siteLinks, ledger)"); root != nil {
		d.Decode(root, &in, "")
	}
	if problems := d.Errors(); problems != nil {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = p
		}
		return in, errors.Join(errs...)
	}
	return in, nil
}

func printPlan(w io.Writer, p *policy.Policy, plan policy.Plan) {
	fmt.Fprintf(w, "policy %q, mode %s, at %s\n", p.Name, plan.Mode, plan.At.Format(time.RFC3339))
	if plan.Mode == policy.ModeRecommend && len(plan.Decisions) > 0 {
		fmt.Fprintln(w, "recommend mode: these moves are advice, nothing is carried out")
	}
	fmt.Fprintf(w, "\n%d moves:\n", len(plan.Decisions))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	cb := p.CostBenefit.Enabled
	score := func(score, gain float64) string {
		if cb {
			return fmt.Sprintf("net %.0f user-s (benefit %.0f)", score, gain)
		}
		return fmt.Sprintf("score %.3f", score)
	}
	// method says how a move would go: stop-and-copy's downtime, or post-copy's freeze and
	// the time its pages take to arrive.
	method := func(c policy.Prediction) string {
		if c.Method == policy.MethodPostCopy {
			return fmt.Sprintf("post-copy: downtime %s, pages %s", c.Downtime.Round(time.Millisecond), c.Pages.Round(100*time.Millisecond))
		}
		return "downtime " + c.Downtime.Round(time.Millisecond).String()
	}
	for _, d := range plan.Decisions {
		fmt.Fprintf(tw, "  %s\t%s -> %s\t%s\t%s\t%s\n", d.Container, d.From, d.To, score(d.Score, d.Gain),
			method(d.Cost), strings.Join(d.Triggers, ","))
	}
	tw.Flush()
	fmt.Fprintln(w, "\ncontainers:")
	for _, x := range plan.Explanations {
		fmt.Fprintf(w, "  %s on %s: %s", x.Container, x.Node, x.Reason)
		if x.Detail != "" {
			fmt.Fprintf(w, " (%s)", x.Detail)
		}
		if x.Horizon > 0 {
			fmt.Fprintf(w, " [condition expected to last %s more]", x.Horizon.Round(time.Minute))
		}
		fmt.Fprintln(w)
		for _, c := range x.Candidates {
			verdict := "ok"
			if c.Rejected != "" {
				verdict = string(c.Rejected)
				if c.Detail != "" {
					verdict += ": " + c.Detail
				}
			}
			fmt.Fprintf(w, "      -> %-12s %s  %-17s %s\n", c.Node, score(c.Score, c.Gain), method(c.Cost), verdict)
		}
	}
	for _, pr := range plan.Problems {
		fmt.Fprintf(w, "problem: %s\n", pr)
	}
}
