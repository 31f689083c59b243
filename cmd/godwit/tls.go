package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

func init() {
	register("tls", "make the cluster's certificates (tls ca create, tls cert create)", runTLS)
}

const tlsUsage = `usage: godwit tls ca create --out DIR [--days N]
       godwit tls cert create --ca DIR --node NAME --role server|client|operator --out DIR [--ip IP]... [--dns NAME]... [--days N]`

// maxDays bounds --days: a century, well inside what a time.Duration holds.
const maxDays = 36500

func runTLS(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", tlsUsage)
	}
	switch args[0] {
	case "ca", "cert":
		if len(args) < 2 || args[1] != "create" {
			got := "nothing"
			if len(args) >= 2 {
				got = fmt.Sprintf("%q", args[1])
			}
			return usagef("tls %s: want create, got %s\n%s", args[0], got, tlsUsage)
		}
		if args[0] == "ca" {
			return tlsCACreate(args[2:], stdout, stderr)
		}
		return tlsCertCreate(args[2:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stderr, tlsUsage)
		return flag.ErrHelp
	}
	return usagef("unknown subcommand %q: want `ca create` or `cert create`\n%s", args[0], tlsUsage)
}

// tlsCACreate makes the cluster's CA.
func tlsCACreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tls ca create", stderr)
	out := fs.String("out", "", "directory for ca.pem and ca-key.pem (created 0700)")
	days := fs.Int("days", int(pki.DefaultCALifetime/(24*time.Hour)), "days the CA is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required\n%s", tlsUsage)
	}
	lifetime, err := lifetimeOf(*days)
	if err != nil {
		return err
	}
	now := time.Now()
	f, err := pki.CreateCA(pki.CAOptions{Dir: *out, Lifetime: lifetime, Now: func() time.Time { return now }})
	if errors.Is(err, pki.ErrCAExists) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (CA certificate, valid until %s)\n", f.CA, validUntil(now, lifetime))
	fmt.Fprintf(stdout, "wrote %s (CA key: keep it secret; only `godwit tls cert create` needs it)\n",
		filepath.Join(filepath.Dir(f.CA), pki.CAKeyFile))
	return nil
}

// tlsCertCreate issues a node's or an operator's certificate.
func tlsCertCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tls cert create", stderr)
	caDir := fs.String("ca", "", "directory of the CA (`godwit tls ca create --out`)")
	node := fs.String("node", "", "node name: 1-63 letters, digits, '.', '_', '-' (an operator's name for --role operator)")
	roleName := fs.String("role", "", "server (may order migrations), client (a node acting as itself) or operator (the CLI)")
	out := fs.String("out", "", "directory for <role>-<node>.pem and <role>-<node>-key.pem (created 0700)")
	days := fs.Int("days", int(pki.DefaultCertLifetime/(24*time.Hour)), "days the certificate is valid")
	var ips, dns listFlag
	fs.Var(&ips, "ip", "IP address for the certificate, so tools like curl can verify https://IP:port (repeatable, or comma-separated)")
	fs.Var(&dns, "dns", "DNS name besides the node name, which is always included (repeatable, or comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"--ca", *caDir}, {"--node", *node}, {"--role", *roleName}, {"--out", *out}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usagef("%s required\n%s", strings.Join(missing, ", "), tlsUsage)
	}
	role, err := pki.ParseRole(*roleName)
	if err != nil {
		return usagef("--role: %w", err)
	}
	if err := pki.ValidNodeName(*node); err != nil {
		return usagef("--node: %w", err)
	}
	o := pki.CertOptions{CADir: *caDir, OutDir: *out, Node: *node, Role: role, DNSNames: dns}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usagef("--ip %q is not an IP address", s)
		}
		o.IPs = append(o.IPs, ip)
	}
	if o.Lifetime, err = lifetimeOf(*days); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return asUsage(err)
	}
	now := time.Now()
	o.Now = func() time.Time { return now }
	f, err := pki.CreateCert(o)
	switch {
	case errors.Is(err, os.ErrNotExist) && errors.Is(err, pki.ErrBadCA):
		return usagef("%w (make one with `godwit tls ca create --out %s`)", err, *caDir)
	case errors.Is(err, pki.ErrBadCA), errors.Is(err, pki.ErrOutlivesCA):
		return asUsage(err)
	case err != nil:
		return err
	}
	id := pki.Identity{Node: o.Node, Role: o.Role}
	fmt.Fprintf(stdout, "wrote %s (certificate of %s, valid until %s)\n", f.Cert, id, validUntil(now, o.Lifetime))
	fmt.Fprintf(stdout, "wrote %s (its key)\n", f.Key)
	fmt.Fprintf(stdout, "CA certificate: %s\n", f.CA)
	return nil
}

// lifetimeOf turns --days into a lifetime.
func lifetimeOf(days int) (time.Duration, error) {
	if days < 1 || days > maxDays {
		return 0, usagef("--days must be between 1 and %d, got %d", maxDays, days)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func validUntil(now time.Time, lifetime time.Duration) string {
	return now.Add(lifetime).UTC().Format(time.DateOnly)
}

// noArgs refuses positional arguments after the flags.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\n%s", fs.Arg(0), tlsUsage)
	}
	return nil
}

// listFlag collects a flag that may be repeated and whose values may be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return errors.New("empty value")
		}
		*l = append(*l, s)
	}
	return nil
}
