package main

import (
	"bufio"
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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// The cluster demo (`godwit demo`): three server agents and two client agents, each client
// over its own dockerd, all on this machine, each node on its own 127.0.0.x. The operator
// (the demo) drains client c1 through the API; the leader, under a policy that evacuates
// drained nodes, moves c1's managed workload to c2 with nobody ordering the migration.

// demoPolicy evacuates drained nodes, one container at a time. (The leader decides every
// 15 s, the agent's fixed round interval; the policy's own interval is the simulator's.)
const demoPolicy = `apiVersion: godwit.io/v1
kind: Policy
metadata:
  name: demo-evacuate
spec:
  mode: auto
  triggers:
    - name: drained
      when: node.drained
  objectives:
    evacuateDrained: 1.0
    balanceLoad: 0.1
  constraints:
    maxDowntime: 30s
    maxConcurrent: 1
    maxMovesPerEvaluation: 1
    cooldown: 5m
    minImprovement: 0.01
    downtimeCost: 0.001
`

// demoAPIPort is every demo agent's API port, each on its node's own address.
const demoAPIPort = 7970

// demoNodeIP is the address of the demo's node i (1..5): 127.0.0.21 to 127.0.0.25, away
// from `godwit dev` (127.0.0.2 and up) and the manual demo (127.0.0.2, 127.0.0.3).
func demoNodeIP(i int) string { return fmt.Sprintf("127.0.0.%d", 20+i) }

// demoLog is an agent's log, kept in memory for the failure report.
type demoLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *demoLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// problems returns the last n warnings and errors, as "msg: err", leaving out raft's own
// chatter and a server's missing engine (the demo's servers have none).
func (l *demoLog) problems(n int) []string {
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(text, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			if strings.TrimSpace(line) != "" {
				out = append(out, line) // not a log record: the agent's own last words
			}
			continue
		}
		if (rec["level"] != "WARN" && rec["level"] != "ERROR") || rec["component"] == "raft" || rec["msg"] == "listing the runtime's containers" {
			continue
		}
		msg := fmt.Sprint(rec["msg"])
		for _, k := range []string{"migration", "workload", "err"} {
			if v, ok := rec[k]; ok {
				msg += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		out = append(out, msg)
	}
	return out[max(0, len(out)-n):]
}

// demoAgent is one `godwit agent` process of the demo.
type demoAgent struct {
	name, ip, api string
	cmd           *exec.Cmd
	log           *demoLog
	gossip        string // its gossip address, from its first line
	exited        chan struct{}
}

// startDemoAgent runs `godwit agent --config config` in its own process group (a Ctrl-C
// reaches the demo, which stops the agents itself) and waits for its first line.
func startDemoAgent(name, ip, config string) (*demoAgent, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	a := &demoAgent{name: name, ip: ip, api: net.JoinHostPort(ip, strconv.Itoa(demoAPIPort)), log: &demoLog{}, exited: make(chan struct{})}
	a.cmd = exec.Command(self, "agent", "--config", config)
	a.cmd.Env = append(os.Environ(), "PATH=/opt/godwit/bin:"+os.Getenv("PATH"))
	a.cmd.Stderr = a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		a.stop()
		return a, fmt.Errorf("agent %s did not start: %s", name, strings.Join(a.log.problems(5), "\n"))
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	rest, _ := strings.CutPrefix(line, "agent "+name+" running: gossip ")
	a.gossip, _, _ = strings.Cut(strings.TrimSpace(rest), ",")
	return a, nil
}

// stop sends SIGTERM (the agent leaves gossip and finishes what is in flight) and, after
// 20 s, SIGKILL to its process group.
func (a *demoAgent) stop() {
	if a == nil || a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.exited
	}
}

// clusterDemo is what the demo started, for the cleanup.
type clusterDemo struct {
	dir      string
	say      func(format string, a ...any)
	engines  map[string]*dockerd.Engine
	agents   []*demoAgent
	operator pki.Files
}

func runClusterDemo(mib int, stdout io.Writer) (err error) {
	start := time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	dir, err := os.MkdirTemp("", "godwit-demo-")
	if err != nil {
		return err
	}
	d := &clusterDemo{dir: dir, say: say, engines: map[string]*dockerd.Engine{}}
	defer func() {
		if err != nil && ctx.Err() == nil {
			d.report()
		}
		d.cleanup()
		if err == nil {
			say("\ndone in %s", time.Since(start).Round(time.Second))
		}
	}()
	say("godwit demo: 3 servers and 2 clients on this machine; the operator drains c1 and the leader moves its workload by itself")

	// Engines for the two clients, started side by side.
	say("\n[1/5] starting a dockerd for each client (c1, c2) and a %d MiB memhog workload on c1", mib)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var engineErr error
	for _, name := range []string{"c1", "c2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := dockerd.Start(ctx, dockerd.Config{Name: "demo-" + name})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				engineErr = errors.Join(engineErr, fmt.Errorf("engine of %s: %w", name, err))
				return
			}
			d.engines[name] = e
		}()
	}
	wg.Wait()
	if engineErr != nil {
		return engineErr
	}
	clis := map[string]*client.Client{}
	for name, e := range d.engines {
		cli, err := e.Client()
		if err != nil {
			return err
		}
		defer cli.Close()
		clis[name] = cli
	}
	if err := workload.BuildImage(ctx, clis["c1"]); err != nil {
		return err
	}
	c, err := clis["c1"].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(mib),
		NetworkDisabled: workload.NetworkDisabled(ctx, clis["c1"]), // what can move on this engine
		Labels:          map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "memhog")
	if err != nil {
		return err
	}
	wid := c.ID
	if err := clis["c1"].ContainerStart(ctx, wid, container.StartOptions{}); err != nil {
		return err
	}
	if _, err := workload.WaitState(ctx, clis["c1"], "memhog", 60*time.Second); err != nil {
		return err
	}

	say("\n[2/5] starting the agents: s1, s2, s3 (servers: raft, the leader's policy; drained, no engine, never targets), c1, c2 (clients)")
	if err := d.startAgents(ctx); err != nil {
		return err
	}
	ac, err := newAPIClient(&clientFlags{addr: d.agents[0].api, caCert: d.operator.CA, clientCert: d.operator.Cert, clientKey: d.operator.Key})
	if err != nil {
		return err
	}
	apiArgs := []string{"--addr", d.agents[0].api, "--cacert", d.operator.CA, "--client-cert", d.operator.Cert, "--client-key", d.operator.Key}
	var st api.Status
	err = d.wait(ctx, "a leader with the policy in force, and memhog in c1's inventory", 2*time.Minute, func() bool {
		if ac.get(ctx, "/v1/status", &st) != nil || st.Leader == nil || st.PolicyVersion == 0 || st.Members != 5 {
			return false
		}
		var cs []api.Container
		if ac.get(ctx, "/v1/containers", &cs) != nil {
			return false
		}
		for _, ct := range cs {
			if ct.Workload == wid && ct.Node == "c1" && ct.MemoryBytes >= uint64(mib)<<20 {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	say("\n[3/5] the cluster, through s1's API as the operator (godwit status; godwit nodes; godwit containers)")
	for _, cmd := range []func([]string, io.Writer, io.Writer) error{runStatus, runNodes, runContainers} {
		say("")
		if err := cmd(apiArgs, indented(stdout), stdout); err != nil {
			return err
		}
	}

	before, err := workload.WaitState(ctx, clis["c1"], "memhog", 30*time.Second)
	if err != nil {
		return err
	}
	say("\nmemhog on c1: %v", before)
	say("\n[4/5] the operator drains c1 (godwit drain c1); nobody orders a migration")
	drained := time.Now()
	if err := drainCommand("drain", append([]string{"c1"}, apiArgs...), indented(stdout), stdout); err != nil {
		return err
	}
	say("  waiting for the leader's next decision round (every 15 s), then the migration it orders:")
	m, why, err := d.awaitMove(ctx, ac, wid, drained)
	if err != nil {
		return err
	}
	if m.Phase != scheduler.PhaseCompleted {
		printLedgerReport(stdout, m)
		return fmt.Errorf("migration %s ended %s: %s", m.ID, m.Phase, m.Failure)
	}
	if m.Manual || m.Source != "c1" {
		return fmt.Errorf("migration %s: manual %v, source %s: not the leader's own move off c1", m.ID, m.Manual, m.Source)
	}
	say("\n[5/5] what happened")
	say("\nthe ledger (godwit migrations %s):", m.ID)
	printLedgerReport(indented(stdout), m)
	_ = ac.get(ctx, "/v1/status", &st) // the leader now, for the explanation's heading
	if why != nil {
		printWhy(stdout, st, why, wid)
	} else {
		say("why it moved (the ledger): %s", m.Reason)
	}
	return d.checkState(ctx, clis, wid, m.Target, before, m)
}

// indent writes every line two spaces in (the writes of a tabwriter may end mid-line).
type indent struct {
	w       io.Writer
	midLine *bool
}

func indented(w io.Writer) indent { return indent{w, new(bool)} }

func (i indent) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, r := range string(p) {
		if !*i.midLine && r != '\n' {
			b.WriteString("  ")
		}
		*i.midLine = r != '\n'
		b.WriteRune(r)
	}
	if _, err := io.WriteString(i.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// wait polls cond until it holds, failing when timeout passes, the demo is interrupted or
// one of its agents exits.
func (d *clusterDemo) wait(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		for _, a := range d.agents {
			select {
			case <-a.exited:
				return fmt.Errorf("agent %s exited while waiting for %s", a.name, what)
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for %s", what)
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}

// startAgents writes the gossip key, the policy, the certificates and a config per node,
// and starts the five agents, the first as everyone's seed.
func (d *clusterDemo) startAgents(ctx context.Context) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "gossip.key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "policy.yaml"), []byte(demoPolicy), 0o600); err != nil {
		return err
	}
	pkiDir := filepath.Join(d.dir, "pki")
	var err error
	if d.operator, err = pki.Quick(pkiDir, "demo", pki.RoleOperator); err != nil {
		return err
	}
	seed := ""
	for i, name := range []string{"s1", "s2", "s3", "c1", "c2"} {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		ip := demoNodeIP(i + 1)
		role, pr := "server", pki.RoleServer
		if name[0] == 'c' {
			role, pr = "client", pki.RoleClient
		}
		files, err := pki.Quick(pkiDir, name, pr, net.ParseIP(ip))
		if err != nil {
			return err
		}
		text := fmt.Sprintf("node: %s\nrole: %s\nsite: %s\ngossip:\n  bind: %s:0\n  key_file: gossip.key\n", name, role, map[bool]string{true: "core", false: "edge-" + name}[role == "server"], ip)
		if seed != "" {
			text += "  join: [" + seed + "]\n"
		}
		text += fmt.Sprintf("migration:\n  bind: %s:0\napi:\n  bind: %s:%d\ncapacity: {cpu: 2, memory: 4GiB}\ndata_dir: data-%s\n", ip, ip, demoAPIPort, name)
		text += fmt.Sprintf("tls: {ca: %s, cert: %s, key: %s}\nlog: {level: info, format: json}\ninventory: {interval: 1s}\n", files.CA, files.Cert, files.Key)
		if role == "server" {
			text += fmt.Sprintf("server:\n  raft: {bind: '%s:0'}\n  bootstrap_expect: 3\n  policy_file: policy.yaml\ndrain: true\ndocker: {host: 'unix://%s/no-engine.sock'}\n", ip, d.dir)
		} else {
			e := d.engines[name]
			text += fmt.Sprintf("docker: {host: '%s', data_root: '%s', runc_root: '%s', cgroup_parent: '/godwit-%s'}\n", e.Host, e.DataRoot, e.RuncRoot(), e.Name)
		}
		path := filepath.Join(d.dir, name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return err
		}
		a, err := startDemoAgent(name, ip, path)
		if a != nil {
			d.agents = append(d.agents, a)
		}
		if err != nil {
			return err
		}
		if seed == "" {
			seed = a.gossip
		}
		d.say("  %-3s %-7s %-12s api https://%s", name, role, ip, a.api)
	}
	return nil
}

// awaitMove follows the ledger, through the API, until a migration of workload wid created
// after since ends; meanwhile it keeps the leader's plan that decided it.
func (d *clusterDemo) awaitMove(ctx context.Context, ac *apiClient, wid string, since time.Time) (*scheduler.Migration, *api.Explain, error) {
	var why *api.Explain
	var found *scheduler.Migration
	var last scheduler.Phase
	err := d.wait(ctx, "the leader to move memhog off c1", 3*time.Minute, func() bool {
		if why == nil {
			var ex api.Explain
			if ac.get(ctx, "/v1/explain", &ex) == nil {
				for _, dc := range ex.Decisions {
					if dc.Container == wid && dc.From == "c1" {
						why = &ex
					}
				}
			}
		}
		var ms []scheduler.Migration
		if ac.get(ctx, "/v1/migrations", &ms) != nil {
			return false
		}
		for i := range ms {
			m := &ms[i]
			if m.Workload != wid || m.Created.Before(since.Add(-time.Second)) {
				continue
			}
			found = m
			if m.Phase != last {
				by := ""
				if n := len(m.History); n > 0 && m.History[n-1].By != "" {
					by = " (" + m.History[n-1].By + ")"
				}
				d.say("  +%5.1fs  %s -> %s: %s%s", time.Since(since).Seconds(), m.Source, m.Target, m.Phase, by)
				last = m.Phase
			}
			return m.Phase.Terminal()
		}
		return false
	})
	return found, why, err
}

// printWhy prints the leader's decision and its explanation for the workload.
func printWhy(w io.Writer, st api.Status, ex *api.Explain, wid string) {
	leader := "the leader"
	if st.Leader != nil {
		leader = "leader " + st.Leader.Name
	}
	fmt.Fprintf(w, "why it moved (%s's plan at %s, mode %s; godwit policy explain):\n", leader, ex.At.Format("15:04:05"), ex.Mode)
	for _, dc := range ex.Decisions {
		if dc.Container != wid {
			continue
		}
		var objs []string
		for _, o := range dc.Objectives {
			objs = append(objs, fmt.Sprintf("%s %+.3f", o.Objective, o.Gain))
		}
		fmt.Fprintf(w, "  decision: memhog %s -> %s, score %.3f (%s), triggers %s, predicted downtime %s\n", dc.From, dc.To, dc.Score,
			strings.Join(objs, ", "), strings.Join(dc.Triggers, ","), dc.Cost.Downtime.Round(time.Millisecond))
	}
	for _, x := range ex.Explanations {
		if x.Container != wid {
			continue
		}
		fmt.Fprintf(w, "  memhog on %s: %s", x.Node, x.Reason)
		if x.Detail != "" {
			fmt.Fprintf(w, " (%s)", x.Detail)
		}
		fmt.Fprintln(w)
		for _, c := range x.Candidates {
			verdict := "chosen"
			if c.Rejected != "" {
				verdict = "rejected: " + string(c.Rejected)
				if c.Detail != "" && c.Detail != string(c.Rejected) {
					verdict += " (" + c.Detail + ")"
				}
			}
			fmt.Fprintf(w, "    -> %-3s score %7.3f  %s\n", c.Node, c.Score, verdict)
		}
	}
}

// checkState checks that exactly one copy of the workload runs, on target, with the memory
// it had before the move and its tick counter continued.
func (d *clusterDemo) checkState(ctx context.Context, clis map[string]*client.Client, wid, target string, before workload.State, m *scheduler.Migration) error {
	running := map[string]int{}
	count := func() int {
		total := 0
		for name, cli := range clis {
			n := 0
			for _, f := range []filters.Args{filters.NewArgs(filters.Arg("label", migrate.LabelWorkload+"="+wid)), filters.NewArgs(filters.Arg("id", wid))} {
				if list, err := cli.ContainerList(ctx, container.ListOptions{Filters: f}); err == nil {
					n += len(list)
				}
			}
			running[name] = n
			total += n
		}
		return total
	}
	_ = d.wait(ctx, "one running copy", 15*time.Second, func() bool { return count() == 1 && running[target] == 1 })
	cli, ok := clis[target]
	if !ok {
		return fmt.Errorf("the workload moved to %s, which has no engine", target)
	}
	after, err := workload.WaitState(ctx, cli, "memhog", 30*time.Second)
	if err != nil {
		return err
	}
	d.say("\nstate check: memhog on %s: %v", target, after)
	d.say("  seed %s, memory checksum %s, ticks %d -> %d (%s); running copies: c1 %d, c2 %d",
		same(after.Seed == before.Seed), same(after.CRC == before.CRC), before.Ticks, after.Ticks,
		map[bool]string{true: "continued", false: "RESET"}[after.Ticks >= before.Ticks], running["c1"], running["c2"])
	if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks || running["c1"]+running["c2"] != 1 || running[target] != 1 {
		return errors.New("state check failed")
	}
	d.say("\nPASS: memhog moved c1 -> %s by itself (the leader's decision, nobody ordered it), with its memory; downtime %.3f s",
		target, m.Measured.Downtime.Seconds())
	return nil
}

// report prints the agents' last warnings and errors, for a failed run.
func (d *clusterDemo) report() {
	for _, a := range d.agents {
		if p := a.log.problems(4); len(p) > 0 {
			d.say("last warnings of %s:\n  %s", a.name, strings.Join(p, "\n  "))
		}
	}
}

// cleanup stops the agents, then the engines (their containers go with them), and removes
// the demo's directory.
func (d *clusterDemo) cleanup() {
	d.say("\ncleaning up: %d agents, %d engines, %s", len(d.agents), len(d.engines), d.dir)
	var wg sync.WaitGroup
	for _, a := range d.agents {
		wg.Add(1)
		go func() { defer wg.Done(); a.stop() }()
	}
	wg.Wait()
	for _, e := range d.engines {
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Stop(context.Background()) }()
	}
	wg.Wait()
	_ = os.RemoveAll(d.dir)
}
