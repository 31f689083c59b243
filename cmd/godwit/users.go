package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

func init() {
	register("users", "where workloads' users are: users set WORKLOAD SITE=WEIGHT... | clear WORKLOAD | show [WORKLOAD]", runUsers)
}

const usersUsage = "usage: godwit users set WORKLOAD SITE=WEIGHT... | godwit users clear WORKLOAD | godwit users show [WORKLOAD] [--json] "

// runUsers records, clears or shows where workloads' users are, through any agent's API
// (writes go to the leader). Recorded sites take precedence over a container's
// godwit.io/user-sites label until they are cleared.
func runUsers(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s%s", usersUsage, apiHint)
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet("users "+sub, stderr)
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	var sites []policy.UserSite
	switch sub {
	case "set":
		if len(pos) < 2 {
			return usagef("users set: give the workload and at least one SITE=WEIGHT, e.g. godwit users set web site-a=0.7 site-b=0.3")
		}
		if sites, err = parseSiteWeights(pos[1:]); err != nil {
			return usageError{err}
		}
	case "clear":
		if len(pos) != 1 {
			return usagef("users clear: give one workload")
		}
	case "show":
		if len(pos) > 1 {
			return usagef("users show: at most one workload")
		}
	default:
		return usagef("users: unknown subcommand %q; %s", sub, usersUsage)
	}
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if sub == "show" {
		var us []scheduler.WorkloadUsers
		if err := c.get(ctx, "/v1/users", &us); err != nil {
			return exitErr(err)
		}
		if len(pos) == 1 {
			var one []scheduler.WorkloadUsers
			for _, u := range us {
				if u.Workload == pos[0] || u.Name == pos[0] {
					one = append(one, u)
				}
			}
			if len(one) == 0 {
				return usagef("no user sites known for %q: none recorded, no godwit.io/user-sites label (godwit containers lists the workloads)", pos[0])
			}
			us = one
		}
		if *asJSON {
			return writeJSON(stdout, us)
		}
		printUsers(stdout, us)
		return nil
	}
	path := "/v1/users/" + url.PathEscape(pos[0])
	var acc api.Accepted
	if sub == "set" {
		body, _ := json.Marshal(api.UsersRequest{Sites: sites})
		err = c.call(ctx, "PUT", path, "application/json", body, &acc)
	} else {
		err = c.call(ctx, "DELETE", path, "", nil, &acc)
	}
	if err != nil {
		return exitErr(err)
	}
	if *asJSON {
		return writeJSON(stdout, acc)
	}
	fmt.Fprintf(stdout, "%s: %s\n", shortWorkload(acc.Workload), acc.Message)
	return nil
}

// parseSiteWeights reads SITE=WEIGHT arguments and checks them as the leader will.
func parseSiteWeights(args []string) ([]policy.UserSite, error) {
	var out []policy.UserSite
	for _, a := range args {
		site, w, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want SITE=WEIGHT, e.g. site-a=0.7", a)
		}
		u, err := policy.ParseUserSite(site, w)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := policy.CheckUserSites(out); err != nil {
		return nil, err
	}
	return out, nil
}

// formatSites writes sites as site=weight, ...
func formatSites(us []policy.UserSite) string {
	if len(us) == 0 {
		return "-"
	}
	parts := make([]string, len(us))
	for i, u := range us {
		parts[i] = fmt.Sprintf("%s=%g", u.Site, u.Weight)
	}
	return strings.Join(parts, " ")
}

// usersFrom says where a workload's sites come from, for people.
func usersFrom(u scheduler.WorkloadUsers) string {
	switch {
	case u.Source == scheduler.UsersFromAPI:
		return "godwit users set by " + u.By + " at " + u.At.Format("15:04:05")
	case u.Source == scheduler.UsersFromLabel:
		return "label " + policy.LabelUserSites
	case u.LabelError != "":
		return "none: label " + policy.LabelUserSites + " ignored: " + u.LabelError
	}
	return "-"
}

func printUsers(w io.Writer, us []scheduler.WorkloadUsers) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tNAME\tNODE\tUSERS\tFROM")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortWorkload(u.Workload), orDash(u.Name), orDash(u.Node), formatSites(u.Sites), usersFrom(u))
	}
	tw.Flush()
}
