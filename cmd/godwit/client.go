package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

// The variables through which the CLI finds and authenticates to the cluster, named as
// Nomad and Consul name theirs. Each has a flag of the same name (--addr, --cacert,
// --client-cert, --client-key), which wins over it.
const (
	envAddr       = "GODWIT_ADDR"
	envCACert     = "GODWIT_CACERT"
	envClientCert = "GODWIT_CLIENT_CERT"
	envClientKey  = "GODWIT_CLIENT_KEY"
)

// clientFlags are how a command reaches a node as an operator: the node's address and the
// TLS files. Values come from the flags, else from the environment (read after parsing, so
// help shows no paths and tests can set the variables).
type clientFlags struct {
	addr, caCert, clientCert, clientKey string
}

// addClientFlags registers --addr, --cacert, --client-cert and --client-key on fs.
func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.addr, "addr", "", "the node to ask, https://HOST:PORT or HOST:PORT (default $"+envAddr+")")
	fs.StringVar(&c.caCert, "cacert", "", "the cluster's CA certificate, PEM (default $"+envCACert+")")
	fs.StringVar(&c.clientCert, "client-cert", "", "your operator certificate, PEM (default $"+envClientCert+")")
	fs.StringVar(&c.clientKey, "client-key", "", "its private key, PEM (default $"+envClientKey+")")
	return c
}

// connect resolves the flags against the environment and loads the operator's identity. It
// returns the node's host:port and a client. Anything missing, malformed or unusable is a
// usage error, which names the flag and its variable.
func (c *clientFlags) connect() (string, *migrate.Client, error) {
	addr, t, err := c.identity()
	if err != nil {
		return "", nil, err
	}
	return addr, &migrate.Client{TLS: t}, nil
}

// identity is connect's first half: the address asked and the operator's TLS identity.
func (c *clientFlags) identity() (string, *pki.TLS, error) {
	orEnv := func(v *string, env string) {
		if *v == "" {
			*v = os.Getenv(env)
		}
	}
	orEnv(&c.addr, envAddr)
	orEnv(&c.caCert, envCACert)
	orEnv(&c.clientCert, envClientCert)
	orEnv(&c.clientKey, envClientKey)
	if c.addr == "" {
		return "", nil, usagef("--addr (or %s) must name the node to ask, https://HOST:PORT", envAddr)
	}
	addr, err := parseNodeAddr(c.addr)
	if err != nil {
		return "", nil, usagef("--addr: %w", err)
	}
	var missing []string
	for _, f := range []struct{ value, flag, env string }{
		{c.caCert, "--cacert", envCACert},
		{c.clientCert, "--client-cert", envClientCert},
		{c.clientKey, "--client-key", envClientKey},
	} {
		if f.value == "" {
			missing = append(missing, fmt.Sprintf("%s (or %s)", f.flag, f.env))
		}
	}
	if len(missing) > 0 {
		return "", nil, usagef("TLS is required: %s missing (`godwit dev env NODE` prints them for a local cluster; `godwit tls cert create --role operator` makes an operator certificate)",
			strings.Join(missing, ", "))
	}
	t, err := pki.Load(pki.Files{CA: c.caCert, Cert: c.clientCert, Key: c.clientKey})
	if err != nil {
		return "", nil, asUsage(err)
	}
	return addr, t, nil
}

// parseNodeAddr accepts https://HOST:PORT (the form of GODWIT_ADDR) or a plain HOST:PORT and
// returns HOST:PORT. Other schemes are refused: godwit has no plaintext listener.
func parseNodeAddr(s string) (string, error) {
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%q is not an address: %v", s, err)
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("%q: godwit speaks TLS only, want https://HOST:PORT", s)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("%q: want https://HOST:PORT, without user, path or query", s)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT (the port is required)", s)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port %q is not between 1 and 65535", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// parseInterspersed parses flags that may come before, between or after the positional
// arguments (`migrate web --to node2` as well as `migrate --to node2 web`) and returns the
// positional ones. After "--" every argument is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
