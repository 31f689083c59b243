package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
)

func init() {
	register("dev", "start and stop a local cluster on this machine (dev up|down|env|status)", runDev)
}

// devStatePath records the local cluster `godwit dev up` started (a variable for tests).
var devStatePath = "/run/godwit/dev.json"

// devOperator is the name in the local cluster's operator certificate.
const devOperator = "dev"

// devEndpointPort is the port of every dev node's endpoint, each on its own 127.0.0.x.
const devEndpointPort = "7950"

// devTLS names a certificate, its key and the CA it chains to.
type devTLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

func devTLSOf(f pki.Files) devTLS { return devTLS{CA: f.CA, Cert: f.Cert, Key: f.Key} }

// devNode is one node of the local cluster.
type devNode struct {
	Engine       dockerd.State `json:"engine"`
	Addr         string        `json:"addr"`     // the node's own 127.0.0.x
	Endpoint     string        `json:"endpoint"` // its migration endpoint, host:port
	EndpointPID  int           `json:"endpointPID"`
	EndpointLogs string        `json:"endpointLogs"`
	TLS          devTLS        `json:"tls"` // the node's certificate (role client)
}

type devCluster struct {
	// Dir is --dir; TLSDir holds the cluster's CA (TLSDir/ca) and every certificate.
	Dir      string    `json:"dir"`
	TLSDir   string    `json:"tlsDir"`
	Operator devTLS    `json:"operator"` // what `godwit dev env` exports for the CLI
	Nodes    []devNode `json:"nodes"`
}

func runDev(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: godwit dev up [--nodes N] [--dir DIR] | down | env NODE | status")
	}
	switch args[0] {
	case "up":
		return devUp(args[1:], stdout, stderr)
	case "down":
		return devDown(stdout)
	case "env":
		if len(args) != 2 {
			return usagef("usage: godwit dev env NODE")
		}
		return devEnv(args[1], stdout)
	case "status":
		c, err := readDevState()
		if err != nil {
			return err
		}
		for _, n := range c.Nodes {
			fmt.Fprintf(stdout, "%-8s %-12s endpoint https://%-20s docker %s\n", n.Engine.Name, n.Addr, n.Endpoint, n.Engine.Host)
		}
		return nil
	}
	return usagef("unknown dev command %q (up, down, env, status)", args[0])
}

func devUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev up", stderr)
	nodes := fs.Int("nodes", 3, "number of nodes")
	dir := fs.String("dir", "/var/lib/godwit-dev", "where the nodes' engines keep their data and the cluster its certificates")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *nodes < 1 || *nodes > 200 {
		return usagef("--nodes must be between 1 and 200, got %d", *nodes)
	}
	if os.Geteuid() != 0 {
		return errors.New("dev up starts dockerd instances: run it as root")
	}
	if _, err := os.Stat(devStatePath); err == nil {
		return fmt.Errorf("a local cluster is already up (%s): godwit dev down first", devStatePath)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	base, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	c := devCluster{Dir: base, TLSDir: filepath.Join(base, "tls")}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	// Certificates of a cluster that is not up are stale (an interrupted dev up): a new CA.
	if err := os.RemoveAll(c.TLSDir); err != nil {
		return err
	}
	certs, err := devCertificates(&c, *nodes)
	if err != nil {
		devStop(c, stdout)
		return err
	}
	fmt.Fprintf(stdout, "certificates: CA %s, operator %s\n", c.Operator.CA, c.Operator.Cert)
	ctx := context.Background()
	for i := 1; i <= *nodes; i++ {
		name := devNodeName(i)
		ndir := filepath.Join(base, name)
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			devStop(c, stdout)
			return err
		}
		e, err := dockerd.Start(ctx, dockerd.Config{Name: name, Dir: ndir})
		if err != nil {
			_ = os.RemoveAll(ndir)
			devStop(c, stdout)
			return err
		}
		n := devNode{Engine: e.State(), Addr: devNodeIP(i).String(), EndpointLogs: filepath.Join(ndir, "endpoint.log"), TLS: certs[i-1]}
		c.Nodes = append(c.Nodes, n)
		ep, pid, err := startDetachedEndpoint(self, n, filepath.Join(ndir, "godwit"))
		if err != nil {
			devStop(c, stdout)
			return fmt.Errorf("%s: %w", name, err)
		}
		c.Nodes[len(c.Nodes)-1].Endpoint, c.Nodes[len(c.Nodes)-1].EndpointPID = ep, pid
		fmt.Fprintf(stdout, "%s up: docker %s, endpoint https://%s\n", name, e.Host, ep)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(filepath.Dir(devStatePath), 0o755); err != nil {
		devStop(c, stdout)
		return err
	}
	if err := os.WriteFile(devStatePath, b, 0o600); err != nil {
		devStop(c, stdout)
		return err
	}
	fmt.Fprintf(stdout, "local cluster of %d nodes is up; `eval $(godwit dev env node1)` sets its environment, `godwit dev down` stops it\n", *nodes)
	return nil
}

func devNodeName(i int) string { return fmt.Sprintf("node%d", i) }

// devNodeIP is node i's own address: node1 is 127.0.0.2.
func devNodeIP(i int) net.IP { return net.IPv4(127, 0, 0, byte(i+1)) }

// devCertificates makes the local cluster's CA, the operator's certificate (into c) and a
// certificate of role client for each node, carrying its IP, so that curl can check
// https://127.0.0.x:7950, and its name.
func devCertificates(c *devCluster, nodes int) ([]devTLS, error) {
	caDir := filepath.Join(c.TLSDir, "ca")
	if _, err := pki.CreateCA(pki.CAOptions{Dir: caDir}); err != nil {
		return nil, err
	}
	op, err := pki.CreateCert(pki.CertOptions{CADir: caDir, OutDir: c.TLSDir, Node: devOperator, Role: pki.RoleOperator})
	if err != nil {
		return nil, err
	}
	c.Operator = devTLSOf(op)
	var certs []devTLS
	for i := 1; i <= nodes; i++ {
		f, err := pki.CreateCert(pki.CertOptions{CADir: caDir, OutDir: c.TLSDir, Node: devNodeName(i), Role: pki.RoleClient,
			IPs: []net.IP{devNodeIP(i)}})
		if err != nil {
			return nil, err
		}
		certs = append(certs, devTLSOf(f))
	}
	return certs, nil
}

// startDetachedEndpoint starts `godwit endpoint` for n in its own session, so it outlives
// this command, and returns its address and PID.
func startDetachedEndpoint(self string, n devNode, state string) (string, int, error) {
	logf, err := os.OpenFile(n.EndpointLogs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", 0, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "endpoint", "--node", n.Engine.Name, "--listen", net.JoinHostPort(n.Addr, devEndpointPort),
		"--tls-ca", n.TLS.CA, "--tls-cert", n.TLS.Cert, "--tls-key", n.TLS.Key,
		"--docker-host", n.Engine.Host, "--data-root", n.Engine.DataRoot, "--runc-root", n.Engine.RuncRoot(), "--state-dir", state)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", 0, fmt.Errorf("endpoint did not start (see %s)", n.EndpointLogs)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), pid, nil
}

func devDown(stdout io.Writer) error {
	c, err := readDevState()
	if err != nil {
		return err
	}
	devStop(c, stdout)
	return os.Remove(devStatePath)
}

// devStop stops what c records and removes its data and certificates; safe on a partly
// started cluster. Only what dev up made goes: --dir itself only if nothing else is in it.
func devStop(c devCluster, stdout io.Writer) {
	for _, n := range c.Nodes {
		if n.EndpointPID > 0 {
			_ = syscall.Kill(n.EndpointPID, syscall.SIGTERM)
			for i := 0; i < 50 && syscall.Kill(n.EndpointPID, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		_ = dockerd.StopState(context.Background(), n.Engine)
		// A dev cluster's data is disposable: its engines' images and containers go too.
		_ = os.RemoveAll(n.Engine.Dir)
		fmt.Fprintf(stdout, "%s down\n", n.Engine.Name)
	}
	if c.TLSDir != "" {
		_ = os.RemoveAll(c.TLSDir)
	}
	if c.Dir != "" {
		_ = os.Remove(c.Dir) // fails, harmlessly, unless empty
	}
}

// devEnv prints what the CLI, docker and curl need to talk to node name.
func devEnv(name string, stdout io.Writer) error {
	c, err := readDevState()
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if n.Engine.Name == name {
			fmt.Fprintf(stdout, "export DOCKER_HOST=%s %s=%s %s=%s %s=%s %s=%s\n", shellQuote(n.Engine.Host),
				envAddr, shellQuote("https://"+n.Endpoint), envCACert, shellQuote(c.Operator.CA),
				envClientCert, shellQuote(c.Operator.Cert), envClientKey, shellQuote(c.Operator.Key))
			return nil
		}
	}
	return usagef("no node %q in the local cluster", name)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=,@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func readDevState() (devCluster, error) {
	var c devCluster
	b, err := os.ReadFile(devStatePath)
	if errors.Is(err, os.ErrNotExist) {
		return c, errors.New("no local cluster is up (godwit dev up starts one)")
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", devStatePath, err)
	}
	return c, nil
}
