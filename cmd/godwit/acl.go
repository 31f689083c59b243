package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/godwit-io/godwit/internal/api"
)

func init() {
	register("acl", "API bearer tokens (for the web view and scripts): acl token create --role operator|viewer [--name NAME] | list | delete ID", runACL)
}

const aclUsage = "usage: godwit acl token create --role operator|viewer [--name NAME] | acl token list | acl token delete ID [--json] "

func runACL(args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "token" {
		return usagef("%s%s", aclUsage, apiHint)
	}
	switch args[1] {
	case "create":
		return tokenCreate(args[2:], stdout, stderr)
	case "list":
		return tokenList(args[2:], stdout, stderr)
	case "delete":
		return tokenDelete(args[2:], stdout, stderr)
	}
	return usagef("unknown acl token subcommand %q: want create, list or delete", args[1])
}

// tokenCreate asks the leader, with the operator certificate, for a new token and prints
// its secret: the only time anyone sees it.
func tokenCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("acl token create", stderr)
	role := fs.String("role", "", "operator (may drain, undrain, migrate) or viewer (reads only)")
	name := fs.String("name", "", "who holds it (letters, digits, '.', '_', '-'; default ROLE-ID)")
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || (*role != "operator" && *role != "viewer") {
		return usagef("usage: godwit acl token create --role operator|viewer [--name NAME] [--json] %s", apiHint)
	}
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(api.TokenRequest{Role: *role, Name: *name})
	var tok api.TokenCreated
	if err := c.call(context.Background(), "POST", "/v1/acl/tokens", "application/json", body, &tok); err != nil {
		return exitErr(err)
	}
	if *asJSON {
		return writeJSON(stdout, tok)
	}
	fmt.Fprintf(stdout, "token %s (%s, %s); its secret, shown only now:\n%s\n", tok.ID, tok.Name, tok.Role, tok.Secret)
	return nil
}

func tokenList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("acl token list", stderr)
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: godwit acl token list [--json] %s", apiHint)
	}
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	var list []api.TokenInfo
	if err := c.get(context.Background(), "/v1/acl/tokens", &list); err != nil {
		return exitErr(err)
	}
	if *asJSON {
		return writeJSON(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED BY\tCREATED")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.CreatedBy, t.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func tokenDelete(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("acl token delete", stderr)
	asJSON, cf := addReadFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: godwit acl token delete ID [--json] %s", apiHint)
	}
	c, err := newAPIClient(cf)
	if err != nil {
		return err
	}
	var acc api.Accepted
	if err := c.call(context.Background(), "DELETE", "/v1/acl/tokens/"+url.PathEscape(pos[0]), "", nil, &acc); err != nil {
		return exitErr(err)
	}
	if *asJSON {
		return writeJSON(stdout, acc)
	}
	fmt.Fprintf(stdout, "token %s deleted\n", acc.ID)
	return nil
}

// envToken is the variable `godwit dev env` exports the local cluster's operator token in,
// for pasting into the web view.
const envToken = "GODWIT_TOKEN"

// devTokens are the local cluster's two tokens, kept (0600) next to its certificates.
type devTokens struct {
	Viewer   string `json:"viewer"`
	Operator string `json:"operator"`
}

func devTokensFile(c devCluster) string { return filepath.Join(c.TLSDir, "tokens.json") }

// devCreateTokens makes a viewer and an operator token for the web view of a local cluster
// that is up. A failure is reported and does not fail `dev up`: the cluster works without.
func devCreateTokens(c devCluster, stdout io.Writer) {
	ac, err := devAPIClient(c, c.Nodes[0])
	var toks devTokens
	for _, role := range []string{"viewer", "operator"} {
		if err != nil {
			break
		}
		body, _ := json.Marshal(api.TokenRequest{Role: role, Name: "dev-" + role})
		var tok api.TokenCreated
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = ac.call(ctx, "POST", "/v1/acl/tokens", "application/json", body, &tok)
		cancel()
		if role == "viewer" {
			toks.Viewer = tok.Secret
		} else {
			toks.Operator = tok.Secret
		}
	}
	if err == nil {
		data, _ := json.MarshalIndent(toks, "", "  ")
		err = os.WriteFile(devTokensFile(c), data, 0o600)
	}
	if err != nil {
		fmt.Fprintf(stdout, "web view tokens not created: %v\n", err)
		return
	}
	fmt.Fprintf(stdout, "web view: https://%s/ui/ (godwit dev env exports the operator token as %s; the viewer's is in %s)\n",
		c.Nodes[0].API, envToken, devTokensFile(c))
}

// devTokenEnv is " GODWIT_TOKEN=..." for `godwit dev env`, or "" when dev up made none.
func devTokenEnv(c devCluster) string {
	data, err := os.ReadFile(devTokensFile(c))
	var toks devTokens
	if err != nil || json.Unmarshal(data, &toks) != nil || toks.Operator == "" {
		return ""
	}
	return " " + envToken + "=" + shellQuote(toks.Operator)
}
