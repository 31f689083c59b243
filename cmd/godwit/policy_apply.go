package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/policy"
)

// policyApply validates a policy file here, then puts it in force through the leader.
// Problems are printed as file:line:col: message, exit 2, and nothing is sent.
func policyApply(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy apply", stderr)
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: godwit policy apply FILE [--json] %s", apiHint)
	}
	file := pos[0]
	data, err := os.ReadFile(file)
	if err != nil {
		return usageError{err}
	}
	if _, err := policy.Parse(file, data); err != nil {
		fmt.Fprintln(stdout, err)
		return usagef("%s is invalid; nothing applied", file)
	}
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	var acc api.Accepted
	path := "/v1/policy?file=" + url.QueryEscape(filepath.Base(file))
	if err := c.call(context.Background(), "POST", path, "application/yaml", data, &acc); err != nil {
		return exitErr(err)
	}
	if *asJSON {
		return writeJSON(stdout, acc)
	}
	fmt.Fprintf(stdout, "policy %q in force, version %d\n", acc.Policy, acc.PolicyVersion)
	return nil
}
