package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

// policyExplainLive shows the leader's last plan, asked through any agent's API: why each
// workload (or those named) moves or stays under the policy in force.
func policyExplainLive(cf *clientFlags, workloads []string, asJSON bool, stdout io.Writer) error {
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var rec scheduler.PolicyRecord
	if err := c.get(ctx, "/v1/policy", &rec); err != nil {
		return exitErr(err)
	}
	p, err := rec.Parse()
	if err != nil {
		return err
	}
	var ex api.Explain
	if err := c.get(ctx, "/v1/explain", &ex); err != nil {
		return exitErr(err)
	}
	plan := policy.Plan{At: ex.At, Mode: ex.Mode, Problems: ex.Problems}
	for _, d := range ex.Decisions {
		if len(workloads) == 0 || slices.Contains(workloads, d.Container) {
			plan.Decisions = append(plan.Decisions, d)
		}
	}
	for _, x := range ex.Explanations {
		if len(workloads) == 0 || slices.Contains(workloads, x.Container) {
			plan.Explanations = append(plan.Explanations, x)
		}
	}
	for _, w := range workloads {
		if !slices.ContainsFunc(plan.Explanations, func(x policy.Explanation) bool { return x.Container == w }) {
			return usagef("the leader's last plan has no workload %q (godwit containers lists them)", w)
		}
	}
	if asJSON {
		return writeJSON(stdout, plan)
	}
	printPlan(stdout, p, plan)
	var us []scheduler.WorkloadUsers
	for _, u := range ex.Users {
		if len(workloads) == 0 || slices.Contains(workloads, u.Workload) {
			us = append(us, u)
		}
	}
	if len(us) > 0 {
		fmt.Fprintln(stdout, "\nwhere the users were (the sites this plan was evaluated with):")
		printUsers(indented(stdout), us)
	}
	return nil
}
