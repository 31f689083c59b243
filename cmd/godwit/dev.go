package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/policy"
)

func init() {
	register("dev", "start and stop a local cluster of agents on this machine (dev up|down|env|status)", runDev)
}

// devStatePath records the local cluster `godwit dev up` started (a variable for tests).
var devStatePath = "/run/godwit/dev.json"

// devStateFile is the local cluster's state file: GODWIT_DEV_STATE, else devStatePath (so
// that a test's cluster does not meet the operator's).
func devStateFile() string {
	if p := os.Getenv(envDevState); p != "" {
		return p
	}
	return devStatePath
}

// envDevState names another file for the local cluster's state.
const envDevState = "GODWIT_DEV_STATE"

// devOperator is the name in the local cluster's operator certificate.
const devOperator = "dev"

// The ports of every dev node's services, each node on its own 127.0.0.x.
const (
	devGossipPort    = 7946
	devRaftPort      = 7947
	devMigrationPort = 7950
	devAPIPort       = 7970
)

// devTLS names a certificate, its key and the CA it chains to.
type devTLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

func devTLSOf(f pki.Files) devTLS { return devTLS{CA: f.CA, Cert: f.Cert, Key: f.Key} }

// devNode is one node of the local cluster: an engine and an agent.
type devNode struct {
	Engine   dockerd.State `json:"engine"`
	Addr     string        `json:"addr"`     // the node's own 127.0.0.x
	Role     string        `json:"role"`     // server or client
	Endpoint string        `json:"endpoint"` // its migration service, host:port
	API      string        `json:"api"`      // its agent's HTTPS API, host:port
	Config   string        `json:"config"`   // its agent's config file
	AgentPID int           `json:"agentPID"`
	AgentLog string        `json:"agentLog"`
	TLS      devTLS        `json:"tls"` // the node's certificate
}

type devCluster struct {
	// Dir is --dir; TLSDir holds the cluster's CA (TLSDir/ca) and every certificate.
	Dir      string    `json:"dir"`
	TLSDir   string    `json:"tlsDir"`
	Key      string    `json:"gossipKey"` // the gossip key file
	Operator devTLS    `json:"operator"`  // what `godwit dev env` exports for the CLI
	Nodes    []devNode `json:"nodes"`
	// Net is the network layout; Bridges are the bridges dev up makes, recorded before it
	// makes them so that dev down removes them also after a crash.
	Net     devNet   `json:"net"`
	Bridges []string `json:"bridges,omitempty"`
}

func runDev(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: godwit dev up [--nodes N] [--dir DIR] [--ip-base IP] [--name-prefix P] [--policy FILE] [--subnet-base CIDR] [--bridge-prefix P] [--shared-bridge] [--emulated-delay D] | down | env NODE | status")
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
			state := "running"
			if !devAgentAlive(n) {
				state = "NOT RUNNING"
			}
			fmt.Fprintf(stdout, "%-8s %-6s %-12s api https://%-20s docker %s  agent %s (log %s)\n", n.Engine.Name, n.Role, n.Addr, n.API, n.Engine.Host, state, n.AgentLog)
		}
		return nil
	}
	return usagef("unknown dev command %q (up, down, env, status)", args[0])
}

// devOptions are dev up's flags.
type devOptions struct {
	nodes  int
	dir    string
	base   net.IP // node i is base + i
	prefix string
	policy string // a policy file the servers put in force ("" none)
	net    devNet
	delay  time.Duration // gossip.emulated_delay of every agent (0 none)
}

func devUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev up", stderr)
	nodes := fs.Int("nodes", 3, "number of nodes (the first 3 are raft servers when there are 3 or more, else the first)")
	dir := fs.String("dir", "/var/lib/godwit-dev", "where the nodes' engines and agents keep their data and the cluster its certificates")
	base := fs.String("ip-base", "127.0.0.1", "node i listens on this loopback `IP` plus i (node1 on 127.0.0.2 by default)")
	prefix := fs.String("name-prefix", "node", "node i is named `PREFIX`i (its engine's containerd namespace and cgroup parent too)")
	pol := fs.String("policy", "", "a policy `FILE` the servers put in force (default none: `godwit policy apply` later)")
	subnet := fs.String("subnet-base", "10.200.0.0/16", "the `CIDR` (a /16 in 10.0.0.0/8) the nodes' bridges and address pools are cut from")
	bridgePrefix := fs.String("bridge-prefix", "gwdev", "node i's engine has its bridge `PREFIX`i (PREFIXs is the shared one)")
	shared := fs.Bool("shared-bridge", false, "also attach every engine to one shared bridge: network "+devSharedNetwork+", a layer-2 domain whose containers keep their address when they move")
	delay := fs.Duration("emulated-delay", 0, "delay every gossip packet by this `DURATION` (gossip.emulated_delay, 0 to 1s; default none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o := devOptions{nodes: *nodes, prefix: *prefix, delay: *delay}
	if o.nodes < 1 || o.nodes > 200 {
		return usagef("--nodes must be between 1 and 200, got %d", o.nodes)
	}
	if o.delay < 0 || o.delay > time.Second {
		return usagef("--emulated-delay %s: must be 0 (none) to 1s", o.delay)
	}
	dn, err := newDevNet(*bridgePrefix, *subnet, o.nodes, *shared)
	if err != nil {
		return usagef("%w", err)
	}
	o.net = dn
	o.base = net.ParseIP(*base).To4()
	if o.base == nil || !o.base.IsLoopback() {
		return usagef("--ip-base %q: want an IPv4 loopback address (127.x.y.z): the local cluster listens on this machine only", *base)
	}
	if int(o.base[3])+o.nodes > 254 {
		return usagef("--ip-base %s with --nodes %d runs past %d.%d.%d.254", *base, o.nodes, o.base[0], o.base[1], o.base[2])
	}
	if err := pki.ValidNodeName(devNodeName(o.prefix, o.nodes)); err != nil {
		return usagef("--name-prefix %q: %w", o.prefix, err)
	}
	if *pol != "" {
		src, err := os.ReadFile(*pol)
		if err != nil {
			return usagef("--policy: %w", err)
		}
		o.policy = string(src)
		if err := checkPolicySource(*pol, src); err != nil {
			return err
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("dev up starts dockerd instances: run it as root")
	}
	if _, err := os.Stat(devStateFile()); err == nil {
		return fmt.Errorf("a local cluster is already up (%s): godwit dev down first", devStateFile())
	}
	if in := bridgesInUse(o.net.bridges(o.nodes)); len(in) > 0 {
		return fmt.Errorf("network interfaces %s exist already: another --bridge-prefix, or remove them", strings.Join(in, ", "))
	}
	if in := o.net.subnetInUse(); in != "" {
		return fmt.Errorf("--subnet-base %d.%d.0.0/16 is in use on this machine by %s: give another", o.net.Base[0], o.net.Base[1], in)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if o.dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	c := devCluster{Dir: o.dir, TLSDir: filepath.Join(o.dir, "tls"), Key: filepath.Join(o.dir, "gossip.key"), Net: o.net}
	// From here on, a failure stops what was started; the state file is written at each
	// step so that `godwit dev down` finds everything even if this command dies.
	if err := devStart(&c, o, self, stdout); err != nil {
		devStop(c, stdout)
		_ = os.Remove(devStateFile())
		return err
	}
	fmt.Fprintf(stdout, "local cluster of %d nodes is up; `eval $(godwit dev env %s)` sets its environment, `godwit dev down` stops it\n",
		o.nodes, devNodeName(o.prefix, 1))
	return nil
}

// checkPolicySource validates a policy file before anything starts.
func checkPolicySource(file string, src []byte) error {
	if _, err := policy.Parse(file, src); err != nil {
		return usagef("--policy: %w", err)
	}
	return nil
}

func devStart(c *devCluster, o devOptions, self string, stdout io.Writer) error {
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(devStateFile()), 0o755); err != nil {
		return err
	}
	// Certificates of a cluster that is not up are stale (an interrupted dev up): a new CA.
	if err := os.RemoveAll(c.TLSDir); err != nil {
		return err
	}
	if err := saveDevState(*c); err != nil {
		return err
	}
	servers := 1
	if o.nodes >= 3 {
		servers = 3
	}
	certs, err := devCertificates(c, o, servers)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "certificates: CA %s, operator %s\n", c.Operator.CA, c.Operator.Cert)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.WriteFile(c.Key, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	policyFile := ""
	if o.policy != "" {
		policyFile = filepath.Join(o.dir, "policy.yaml")
		if err := os.WriteFile(policyFile, []byte(o.policy), 0o600); err != nil {
			return err
		}
	}
	ctx := context.Background()
	seed := net.JoinHostPort(devNodeIP(o.base, 1).String(), strconv.Itoa(devGossipPort))
	for i := 1; i <= o.nodes; i++ {
		name := devNodeName(o.prefix, i)
		ndir := filepath.Join(o.dir, name)
		if err := os.MkdirAll(filepath.Join(ndir, "engine"), 0o700); err != nil {
			return err
		}
		ip := devNodeIP(o.base, i).String()
		ecfg := o.net.engine(i, ip)
		ecfg.Name, ecfg.Dir = name, filepath.Join(ndir, "engine")
		// Recorded before they exist: dev down removes them whatever happens next.
		c.Bridges = append(c.Bridges, ecfg.Bridge)
		if i == 1 && o.net.Shared {
			c.Bridges = append(c.Bridges, o.net.sharedBridge())
		}
		if err := saveDevState(*c); err != nil {
			return err
		}
		e, err := dockerd.Start(ctx, ecfg)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n := devNode{Engine: e.State(), Addr: ip, Role: "client", TLS: certs[i-1],
			Endpoint: net.JoinHostPort(ip, strconv.Itoa(devMigrationPort)), API: net.JoinHostPort(ip, strconv.Itoa(devAPIPort)),
			Config: filepath.Join(ndir, "agent.yaml"), AgentLog: filepath.Join(ndir, "agent.log")}
		if i <= servers {
			n.Role = "server"
		}
		c.Nodes = append(c.Nodes, n)
		if err := saveDevState(*c); err != nil {
			return err
		}
		if o.net.Shared {
			if err := o.net.createShared(ctx, e.Host, i, ip); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		join := seed
		if i == 1 {
			join = ""
		}
		if err := os.WriteFile(n.Config, []byte(devAgentConfig(*c, n, filepath.Join(ndir, "data"), join, servers, policyFile, o.delay)), 0o600); err != nil {
			return err
		}
		pid, err := startDevAgent(self, n)
		if pid > 0 {
			c.Nodes[i-1].AgentPID = pid
			if werr := saveDevState(*c); werr != nil && err == nil {
				err = werr
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(stdout, "%s up: %s, docker %s, api https://%s, bridge %s %s\n", name, n.Role, e.Host, n.API, ecfg.Bridge, ecfg.BridgeAddress)
	}
	if err := devWaitReady(*c, o.nodes, stdout); err != nil {
		return err
	}
	devCreateTokens(*c, stdout)
	return nil
}

func devNodeName(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }

// devNodeIP is node i's own address: base + i.
func devNodeIP(base net.IP, i int) net.IP {
	return net.IPv4(base[0], base[1], base[2], base[3]+byte(i))
}

// devCertificates makes the local cluster's CA, the operator's certificate (into c) and a
// certificate for each node (role server for the first servers, client for the others),
// carrying its name and IP, so that curl can check https://127.0.0.x:PORT.
func devCertificates(c *devCluster, o devOptions, servers int) ([]devTLS, error) {
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
	for i := 1; i <= o.nodes; i++ {
		role := pki.RoleClient
		if i <= servers {
			role = pki.RoleServer
		}
		f, err := pki.CreateCert(pki.CertOptions{CADir: caDir, OutDir: c.TLSDir, Node: devNodeName(o.prefix, i), Role: role,
			IPs: []net.IP{devNodeIP(o.base, i)}})
		if err != nil {
			return nil, err
		}
		certs = append(certs, devTLSOf(f))
	}
	return certs, nil
}

// devAgentConfig is node n's agent config: its services on its own address, joining the
// first node's gossip, its engine, its certificate; servers with raft.
func devAgentConfig(c devCluster, n devNode, data, join string, servers int, policyFile string, delay time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by godwit dev up\nnode: %s\nrole: %s\nsite: site-%s\n", n.Engine.Name, n.Role, n.Engine.Name)
	fmt.Fprintf(&b, "gossip:\n  bind: '%s:%d'\n  key_file: '%s'\n", n.Addr, devGossipPort, c.Key)
	if join != "" {
		fmt.Fprintf(&b, "  join: ['%s']\n", join)
	}
	if delay > 0 {
		fmt.Fprintf(&b, "  emulated_delay: %s\n", delay)
	}
	fmt.Fprintf(&b, "migration:\n  bind: '%s'\napi:\n  bind: '%s'\n", n.Endpoint, n.API)
	if n.Role == "server" {
		fmt.Fprintf(&b, "server:\n  raft:\n    bind: '%s:%d'\n  bootstrap_expect: %d\n", n.Addr, devRaftPort, servers)
		if policyFile != "" {
			fmt.Fprintf(&b, "  policy_file: '%s'\n", policyFile)
		}
	}
	fmt.Fprintf(&b, "capacity:\n  cpu: 2\n  memory: 4GiB\n")
	fmt.Fprintf(&b, "docker:\n  host: '%s'\n  data_root: '%s'\n  runc_root: '%s'\n  cgroup_parent: '/godwit-%s'\n  publish_address: '%s'\n",
		n.Engine.Host, n.Engine.DataRoot, n.Engine.RuncRoot(), n.Engine.Name, n.Addr)
	fmt.Fprintf(&b, "data_dir: '%s'\n", data)
	fmt.Fprintf(&b, "tls:\n  ca: '%s'\n  cert: '%s'\n  key: '%s'\n", n.TLS.CA, n.TLS.Cert, n.TLS.Key)
	fmt.Fprintf(&b, "inventory:\n  interval: 2s\nlog:\n  level: info\n  format: text\n")
	return b.String()
}

// startDevAgent starts `godwit agent` for n in its own session, so it outlives this
// command, with its output in n.AgentLog, and waits for it to say it runs. It returns the
// PID as soon as the process exists (for the state file), also on error.
func startDevAgent(self string, n devNode) (int, error) {
	logf, err := os.OpenFile(n.AgentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	start, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(self, "agent", "--config", n.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	// CRIU from scripts/install-criu.sh first, as for the engines.
	cmd.Env = append(os.Environ(), "PATH=/opt/godwit/bin:"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	running := fmt.Sprintf("agent %s running", n.Engine.Name)
	deadline := time.Now().Add(time.Minute)
	for {
		if b, err := os.ReadFile(n.AgentLog); err == nil && int64(len(b)) > start && strings.Contains(string(b[start:]), running) {
			return pid, nil
		}
		select {
		case <-exited:
			return pid, fmt.Errorf("the agent exited at start (see %s)", n.AgentLog)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return pid, fmt.Errorf("the agent did not start within a minute (see %s)", n.AgentLog)
		}
	}
}

// devWaitReady waits until the first node's API reports every member alive and a leader.
func devWaitReady(c devCluster, nodes int, stdout io.Writer) error {
	ac, err := devAPIClient(c, c.Nodes[0])
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	var st api.Status
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := ac.get(ctx, "/v1/status", &st)
		cancel()
		if err == nil && st.Members == nodes && st.Leader != nil {
			fmt.Fprintf(stdout, "cluster ready: %d members, leader %s\n", st.Members, st.Leader.Name)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster did not form within 2 minutes (members %d, leader %v, last error %v; see the agents' logs in %s)",
				st.Members, st.Leader != nil, err, c.Dir)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// devAPIClient is an operator's client of node n's API.
func devAPIClient(c devCluster, n devNode) (*apiClient, error) {
	return newAPIClient(&clientFlags{addr: "https://" + n.API, caCert: c.Operator.CA, clientCert: c.Operator.Cert, clientKey: c.Operator.Key})
}

func devDown(stdout io.Writer) error {
	c, err := readDevState()
	if err != nil {
		return err
	}
	devStop(c, stdout)
	return os.Remove(devStateFile())
}

// devAgentAlive reports whether n's agent process runs: its PID is alive and is a godwit
// agent with n's config (a PID reused after a crash or reboot is not ours to signal).
func devAgentAlive(n devNode) bool {
	if n.AgentPID <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.AgentPID))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 4 || args[1] != "agent" || args[3] != n.Config {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.AgentPID))
	if err != nil {
		return false
	}
	s := string(st)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
		return false
	}
	return true
}

// devStop stops what c records and removes its data and certificates; safe on a partly
// started cluster and after a crash (whatever is already gone is skipped). The agents get
// SIGTERM together (each finishes what is in flight and leaves gossip), SIGKILL after a
// minute; then the engines stop. Only what dev up made goes: --dir itself only if nothing
// else is in it.
func devStop(c devCluster, stdout io.Writer) {
	var alive []devNode
	for _, n := range c.Nodes {
		if devAgentAlive(n) {
			_ = syscall.Kill(n.AgentPID, syscall.SIGTERM)
			alive = append(alive, n)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, n := range alive {
		for devAgentAlive(n) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if devAgentAlive(n) {
			_ = syscall.Kill(n.AgentPID, syscall.SIGKILL)
			fmt.Fprintf(stdout, "%s: agent killed (it did not stop within a minute of SIGTERM)\n", n.Engine.Name)
		}
	}
	for _, n := range c.Nodes {
		_ = dockerd.StopState(context.Background(), n.Engine)
		// A dev cluster's data is disposable: its engines' images and containers go too.
		_ = os.RemoveAll(filepath.Dir(n.Config))
		fmt.Fprintf(stdout, "%s down\n", n.Engine.Name)
	}
	// The engines removed their networks and the bridges they made; whatever is left of
	// those dev up recorded (a crash between recording and starting) goes now.
	removeBridges(c.Bridges)
	if c.TLSDir != "" {
		_ = os.RemoveAll(c.TLSDir)
	}
	if c.Key != "" {
		_ = os.Remove(c.Key)
		_ = os.Remove(filepath.Join(c.Dir, "policy.yaml"))
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
			addr := n.API
			if addr == "" {
				addr = n.Endpoint
			}
			fmt.Fprintf(stdout, "export DOCKER_HOST=%s %s=%s %s=%s %s=%s %s=%s%s\n", shellQuote(n.Engine.Host),
				envAddr, shellQuote("https://"+addr), envCACert, shellQuote(c.Operator.CA),
				envClientCert, shellQuote(c.Operator.Cert), envClientKey, shellQuote(c.Operator.Key), devTokenEnv(c))
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

// saveDevState records c (atomically: a crash leaves the old state or the new).
func saveDevState(c devCluster) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := devStateFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, devStateFile())
}

func readDevState() (devCluster, error) {
	var c devCluster
	b, err := os.ReadFile(devStateFile())
	if errors.Is(err, os.ErrNotExist) {
		return c, errors.New("no local cluster is up (godwit dev up starts one)")
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", devStateFile(), err)
	}
	return c, nil
}
