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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
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

// The cluster demo (`godwit demo`): three server agents, each over its own dockerd, all on
// this machine, each node on its own 127.0.0.x and at its own site. Two workloads run on n1;
// the demo turns their CPU knobs so that n1 runs hot, and the leader, under a policy that
// relieves hot nodes, moves one of them off n1 with nobody ordering the migration. Then the
// other workload's users are reported at another site (`godwit users set`), and the leader
// moves it there.

// demoPolicy relieves hot nodes and follows users, one move at a time; the leader decides
// every 5 s (the policy's interval).
const demoPolicy = `apiVersion: godwit.io/v1
kind: Policy
metadata:
  name: demo-balance-follow
spec:
  mode: auto
  interval: 5s
  triggers:
    # A node is hot above 30% of the CPU it offers, and cool again under 15%.
    - name: node-hot
      when: node.cpu > 0.3
      until: node.cpu < 0.15
    # A workload's users are far when they are more than 10 ms away on average.
    - name: users-far
      scope: container
      when: container.userRTT > 10
      until: container.userRTT < 5
    - name: drained
      when: node.drained
  objectives:
    relieveOverload: 1.0
    overloadThreshold: 0.3
    balanceLoad: 0.5
    followUsers: 1.0
    evacuateDrained: 1.0
  constraints:
    maxDowntime: 30s
    maxConcurrent: 1
    maxMovesPerEvaluation: 1
    cooldown: 30s
    minImprovement: 0.05
    downtimeCost: 0.001
    headroom:
      cpu: 0.4
      memory: 0.1
`

// Demo sizing: each node offers demoNodeCPU cores; the knob of each of the two workloads
// burns demoBurn cores, so n1 runs at 80% of what it offers: above the policy's 30% as long
// as the burners get more than 3/8 of what they ask (on this 2-core machine they got about
// 70% of it at a load average of 10, and 30% at 30, when the demo fails), and a node with
// one of them stays under the 60% the headroom allows.
const (
	demoNodeCPU = 1.0
	demoBurn    = 0.4
	// demoDelay is each node's emulated one-way gossip delay: sites are about 20 ms apart.
	demoDelay = 10 * time.Millisecond
)

// demoAPIPort is every demo agent's API port, each on its node's own address.
const demoAPIPort = 7970

// demoNodes are the demo's nodes and their sites.
var demoNodes = []struct{ name, site string }{{"n1", "site-a"}, {"n2", "site-b"}, {"n3", "site-c"}}

// demoWorkloads are the two workloads the demo starts on n1.
var demoWorkloads = []string{"web", "cache"}

// demoOptions are what `godwit demo` was asked for; tests shrink them.
type demoOptions struct {
	mib int
	// ipBase is the first three octets of the nodes' addresses and ipFirst the last of
	// the first node's: 127.0.0.21-23 by default, away from `godwit dev` (127.0.0.2 and
	// up) and the manual demo (127.0.0.2, 127.0.0.3).
	ipBase  string
	ipFirst int
	// exe is the godwit binary the agents run (default: this one).
	exe string
	// engineName prefixes the engines' names (default "demo-").
	engineName string
	// drain adds a third act: the operator drains the node that took the first workload,
	// and the leader empties it.
	drain bool
	// measureHot, when above 0, replaces the acts: n1 is made hot that many times, with
	// fresh workloads each time, and the time until a workload runs elsewhere is printed
	// with its median.
	measureHot int
}

func (o demoOptions) nodeIP(i int) string { return fmt.Sprintf("%s.%d", o.ipBase, o.ipFirst+i) }

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
func startDemoAgent(exe, name, ip, config string) (*demoAgent, error) {
	a := &demoAgent{name: name, ip: ip, api: net.JoinHostPort(ip, strconv.Itoa(demoAPIPort)), log: &demoLog{}, exited: make(chan struct{})}
	a.cmd = exec.Command(exe, "agent", "--config", config)
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
	opt      demoOptions
	out      io.Writer
	dir      string
	say      func(format string, a ...any)
	engines  map[string]*dockerd.Engine
	clis     map[string]*client.Client
	agents   []*demoAgent
	operator pki.Files
	ac       *apiClient
	apiArgs  []string
	// ids are the workloads' identities, by name.
	ids map[string]string
	// seen, when set, is called once by awaitMove with the first migration it sees.
	seen func(*scheduler.Migration)
}

func runClusterDemo(opt demoOptions, stdout io.Writer) (err error) {
	start := time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	if opt.exe == "" {
		if opt.exe, err = os.Executable(); err != nil {
			return err
		}
	}
	if opt.ipBase == "" {
		opt.ipBase, opt.ipFirst = "127.0.0", 21
	}
	if opt.engineName == "" {
		opt.engineName = "demo-"
	}
	dir, err := os.MkdirTemp("", "godwit-demo-")
	if err != nil {
		return err
	}
	d := &clusterDemo{opt: opt, out: stdout, dir: dir, say: say, engines: map[string]*dockerd.Engine{}, clis: map[string]*client.Client{}, ids: map[string]string{}}
	defer func() {
		if err != nil && ctx.Err() == nil {
			d.report()
		}
		d.cleanup()
		if err == nil {
			say("\ndone in %s", time.Since(start).Round(time.Second))
		}
	}()
	say("godwit demo: a 3-node cluster on this machine; n1 runs hot and godwit moves a workload off it by itself,\nthen a workload's users move to another site and it follows them")

	if err := d.setup(ctx); err != nil {
		return err
	}
	if opt.measureHot > 0 {
		return d.measureHot(ctx, opt.measureHot)
	}

	// Act 1: n1 runs hot.
	before := map[string]workload.State{}
	for _, name := range demoWorkloads {
		if before[name], err = workload.WaitState(ctx, d.clis["n1"], name, 30*time.Second); err != nil {
			return err
		}
	}
	say("\n[4/6] n1 runs hot: the CPU knobs of web and cache burn %g cores each (n1 offers %g); nobody orders a migration", demoBurn, demoNodeCPU)
	hot := time.Now()
	for _, name := range demoWorkloads {
		if err := workload.SetCPUOf(ctx, d.clis["n1"], name, demoBurn); err != nil {
			return err
		}
	}
	say("  waiting for the agents to measure it and the leader's next decision round, then the migration it orders:")
	// As soon as the leader has chosen which workload to move, the other one's knob goes
	// back to zero: one burner alone may still leave n1 over the hot line, and act 2 is
	// about users, not load. (The machine is shared, too.)
	var cooled time.Time
	d.seen = func(m *scheduler.Migration) {
		for _, name := range demoWorkloads {
			if d.ids[name] != m.Workload {
				_ = workload.SetCPUOf(ctx, d.clis["n1"], name, 0)
				cooled = time.Now()
			}
		}
	}
	m, why, err := d.awaitMove(ctx, "n1", []string{d.ids["web"], d.ids["cache"]}, hot)
	d.seen = nil
	if err != nil {
		return err
	}
	moved := nameOf(d.ids, m.Workload)
	if err := d.report1(ctx, m, why, moved, before[moved], "node-hot", time.Since(hot)); err != nil {
		return err
	}
	stay := demoWorkloads[0]
	if stay == moved {
		stay = demoWorkloads[1]
	}
	_ = workload.SetCPUOf(ctx, d.clis[m.Target], moved, 0)
	if cooled.IsZero() {
		_ = workload.SetCPUOf(ctx, d.clis["n1"], stay, 0)
		cooled = time.Now()
	}
	// Act 2 starts from a cool n1: a decision round made after the agents measured the
	// knob at zero no longer finds n1 hot.
	if err := d.wait(ctx, "n1 to cool down in the leader's plan", 2*time.Minute, func() bool {
		var ex api.Explain
		if d.ac.get(ctx, "/v1/explain", &ex) != nil || ex.At.Before(cooled.Add(3*time.Second)) {
			return false
		}
		for _, x := range ex.Explanations {
			if x.Container == d.ids[stay] && slices.Contains(x.Triggers, "node-hot") {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}

	// Act 2: the users of the workload left on n1 are at another site.
	site, node := d.emptiestSite(ctx, m.Target)
	say("\n[5/6] %s's users are now at %s (where %s is): a load balancer reports it (godwit users set %s %s=1)", stay, site, node, stay, site)
	if before[stay], err = workload.WaitState(ctx, d.clis["n1"], stay, 30*time.Second); err != nil {
		return err
	}
	reported := time.Now()
	if err := runUsers(append([]string{"set", stay, site + "=1"}, d.apiArgs...), indented(stdout), stdout); err != nil {
		return err
	}
	say("  waiting for the leader's next decision round, then the migration it orders:")
	m2, why2, err := d.awaitMove(ctx, "n1", []string{d.ids[stay]}, reported)
	if err != nil {
		return err
	}
	if err := d.report1(ctx, m2, why2, stay, before[stay], "users-far", time.Since(reported)); err != nil {
		return err
	}
	if m2.Target != node {
		return fmt.Errorf("%s moved to %s, not to %s where its users are", stay, m2.Target, node)
	}

	moves := 2
	if d.opt.drain {
		// Act 3, when asked: the node that took the first workload is drained.
		drained := m.Target
		say("\n[+] the operator drains %s (godwit drain %s); nobody orders a migration", drained, drained)
		if before[moved], err = workload.WaitState(ctx, d.clis[drained], moved, 30*time.Second); err != nil {
			return err
		}
		at := time.Now()
		if err := drainCommand("drain", append([]string{drained}, d.apiArgs...), indented(stdout), stdout); err != nil {
			return err
		}
		m3, why3, err := d.awaitMove(ctx, drained, []string{d.ids[moved]}, at)
		if err != nil {
			return err
		}
		if err := d.report1(ctx, m3, why3, moved, before[moved], "drained", time.Since(at)); err != nil {
			return err
		}
		moves++
	}

	say("\n[6/6] the cluster now (godwit status; godwit containers; godwit users show; the leader's metrics)")
	for _, cmd := range []func([]string, io.Writer, io.Writer) error{runStatus, runContainers} {
		say("")
		if err := cmd(d.apiArgs, indented(stdout), stdout); err != nil {
			return err
		}
	}
	say("")
	if err := runUsers(append([]string{"show"}, d.apiArgs...), indented(stdout), stdout); err != nil {
		return err
	}
	if err := d.checkMetrics(ctx, moves); err != nil {
		return err
	}
	say("\nPASS: godwit moved %s off the hot node n1 (%s, downtime %.3f s) and %s to its users at %s (%s, downtime %.3f s), by itself, with their memory",
		moved, m.Target, m.Measured.Downtime.Seconds(), stay, site, m2.Target, m2.Measured.Downtime.Seconds())
	return nil
}

// setup starts the engines, two workloads on n1 and the agents, waits for a leader with
// the policy in force that sees both workloads, and prints the cluster.
func (d *clusterDemo) setup(ctx context.Context) error {
	opt, say, stdout := d.opt, d.say, d.out
	var err error
	say("\n[1/6] starting a dockerd for each node (n1, n2, n3) and two %d MiB memhog workloads on n1 (web, cache)", opt.mib)
	if err := d.startEngines(ctx); err != nil {
		return err
	}
	if err := workload.BuildImage(ctx, d.clis["n1"]); err != nil {
		return err
	}
	for _, name := range demoWorkloads {
		c, err := d.clis["n1"].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(opt.mib),
			NetworkDisabled: workload.NetworkDisabled(ctx, d.clis["n1"]), // what can move on this engine
			Labels:          map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		if err != nil {
			return err
		}
		d.ids[name] = c.ID
		if err := d.clis["n1"].ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return err
		}
	}
	for _, name := range demoWorkloads {
		if _, err := workload.WaitState(ctx, d.clis["n1"], name, 60*time.Second); err != nil {
			return err
		}
	}

	say("\n[2/6] starting the agents: n1, n2, n3 (servers: gossip, raft, the leader's policy; sites a, b, c, about 20 ms apart)")
	if err := d.startAgents(ctx); err != nil {
		return err
	}
	var st api.Status
	err = d.wait(ctx, "a leader with the policy in force, and both workloads in n1's inventory", 2*time.Minute, func() bool {
		if d.ac.get(ctx, "/v1/status", &st) != nil || st.Leader == nil || st.PolicyVersion == 0 || st.Members != len(demoNodes) {
			return false
		}
		var cs []api.Container
		if d.ac.get(ctx, "/v1/containers", &cs) != nil {
			return false
		}
		n := 0
		for _, ct := range cs {
			if ct.Node == "n1" && ct.MemoryBytes >= uint64(opt.mib)<<20 && (ct.Workload == d.ids["web"] || ct.Workload == d.ids["cache"]) {
				n++
			}
		}
		return n == len(demoWorkloads)
	})
	if err != nil {
		return err
	}
	say("\n[3/6] the cluster, through n1's API as the operator (godwit status; godwit nodes; godwit containers)")
	for _, cmd := range []func([]string, io.Writer, io.Writer) error{runStatus, runNodes, runContainers} {
		say("")
		if err := cmd(d.apiArgs, indented(stdout), stdout); err != nil {
			return err
		}
	}

	return nil
}

// checkMetrics reads the leader's /metrics and checks that its ledger counts at least
// moves completed migrations.
func (d *clusterDemo) checkMetrics(ctx context.Context, moves int) error {
	var st api.Status
	if err := d.ac.get(ctx, "/v1/status", &st); err != nil || st.Leader == nil {
		return fmt.Errorf("no leader to read metrics from: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+st.Leader.APIAddr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := d.ac.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	const series = `godwit_migrations_finished{result="completed"}`
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			d.say("\nthe leader's metrics (%s's /metrics): %s %s", st.Leader.Name, series, v)
			if n, err := strconv.ParseFloat(v, 64); err != nil || n < float64(moves) {
				return fmt.Errorf("metrics: %s is %s, want at least %d", series, v, moves)
			}
			return nil
		}
	}
	return fmt.Errorf("metrics: no %s in the leader's /metrics", series)
}

// measureHot makes n1 hot n times, each time with two fresh workloads, and prints the
// time from the knobs being turned to the workload running elsewhere (the ledger's
// completed time), and the median.
func (d *clusterDemo) measureHot(ctx context.Context, n int) error {
	// The workloads of the setup go: each round starts from an idle n1.
	for _, name := range demoWorkloads {
		_ = d.clis["n1"].ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	}
	var took []time.Duration
	for i := 1; i <= n; i++ {
		names := []string{fmt.Sprintf("web-%d", i), fmt.Sprintf("cache-%d", i)}
		var ids []string
		for _, name := range names {
			c, err := d.clis["n1"].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(d.opt.mib),
				NetworkDisabled: workload.NetworkDisabled(ctx, d.clis["n1"]), // what can move on this engine
				Labels:          map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
				&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
			if err != nil {
				return err
			}
			d.ids[name] = c.ID
			ids = append(ids, c.ID)
			if err := d.clis["n1"].ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				return err
			}
			if _, err := workload.WaitState(ctx, d.clis["n1"], name, 60*time.Second); err != nil {
				return err
			}
		}
		err := d.wait(ctx, "n1 idle with both workloads in its inventory", 2*time.Minute, func() bool {
			var nodes []api.Node
			var cs []api.Container
			if d.ac.get(ctx, "/v1/nodes", &nodes) != nil || d.ac.get(ctx, "/v1/containers", &cs) != nil {
				return false
			}
			seen := 0
			for _, c := range cs {
				if c.Node == "n1" && slices.Contains(ids, c.Workload) {
					seen++
				}
			}
			for _, nd := range nodes {
				if nd.Name == "n1" && nd.CPUCores > 0.15*nd.CPUCapacity {
					return false
				}
			}
			if seen != 2 {
				return false
			}
			// A decision round has seen both, with n1 not hot: the clock starts from cool.
			var ex api.Explain
			if d.ac.get(ctx, "/v1/explain", &ex) != nil {
				return false
			}
			cool := 0
			for _, x := range ex.Explanations {
				if slices.Contains(ids, x.Container) && !slices.Contains(x.Triggers, "node-hot") {
					cool++
				}
			}
			return cool == 2
		})
		if err != nil {
			return err
		}
		d.say("\nround %d/%d: n1 runs hot (%s and %s burn %g cores each)", i, n, names[0], names[1], demoBurn)
		hot := time.Now()
		for _, name := range names {
			if err := workload.SetCPUOf(ctx, d.clis["n1"], name, demoBurn); err != nil {
				return err
			}
		}
		m, _, err := d.awaitMove(ctx, "n1", ids, hot)
		if err != nil {
			return err
		}
		if m.Phase != scheduler.PhaseCompleted {
			return fmt.Errorf("round %d: migration %s ended %s: %s", i, m.ID, m.Phase, m.Failure)
		}
		t := m.Updated.Sub(hot)
		took = append(took, t)
		d.say("  %s running on %s %.1f s after n1 turned hot (downtime %.3f s)", nameOf(d.ids, m.Workload), m.Target, t.Seconds(), m.Measured.Downtime.Seconds())
		for _, id := range ids {
			for _, cli := range d.clis {
				_ = cli.ContainerRemove(ctx, nameOf(d.ids, id), container.RemoveOptions{Force: true})
			}
		}
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	parts := make([]string, len(took))
	for i, t := range took {
		parts[i] = fmt.Sprintf("%.1f", t.Seconds())
	}
	d.say("\ntime from n1 turning hot to a workload running elsewhere: median %.1f s of %d rounds (%s s)",
		sorted[len(sorted)/2].Seconds(), len(took), strings.Join(parts, ", "))
	return nil
}

// nameOf is the demo's name of a workload identity.
func nameOf(ids map[string]string, id string) string {
	for n, w := range ids {
		if w == id {
			return n
		}
	}
	return id
}

// startEngines starts a dockerd per node, side by side.
func (d *clusterDemo) startEngines(ctx context.Context) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs error
	for _, n := range demoNodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := dockerd.Start(ctx, dockerd.Config{Name: d.opt.engineName + n.name})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = errors.Join(errs, fmt.Errorf("engine of %s: %w", n.name, err))
				return
			}
			d.engines[n.name] = e
		}()
	}
	wg.Wait()
	if errs != nil {
		return errs
	}
	for name, e := range d.engines {
		cli, err := e.Client()
		if err != nil {
			return err
		}
		d.clis[name] = cli
	}
	return nil
}

// emptiestSite is the site of the node other than n1 with the fewest containers (from
// the API), preferring the one that is not avoid.
func (d *clusterDemo) emptiestSite(ctx context.Context, avoid string) (site, node string) {
	var nodes []api.Node
	_ = d.ac.get(ctx, "/v1/nodes", &nodes)
	best := -1
	for _, n := range nodes {
		if n.Name == "n1" {
			continue
		}
		score := n.Containers * 2
		if n.Name == avoid {
			score++
		}
		if best < 0 || score < best {
			best, site, node = score, n.Site, n.Name
		}
	}
	if node == "" {
		return demoNodes[2].site, demoNodes[2].name
	}
	return site, node
}

// report1 prints what one act did: the ledger's migration, the leader's reasons, the
// state check. It fails unless the migration completed, was the leader's own, named
// trigger, and the workload runs once, on the target, with its memory.
func (d *clusterDemo) report1(ctx context.Context, m *scheduler.Migration, why *api.Explain, name string, before workload.State, trigger string, took time.Duration) error {
	if m.Phase != scheduler.PhaseCompleted {
		printLedgerReport(d.indent(), m)
		return fmt.Errorf("migration %s ended %s: %s", m.ID, m.Phase, m.Failure)
	}
	if m.Manual {
		return fmt.Errorf("migration %s was ordered by hand: not the leader's own", m.ID)
	}
	d.say("  %s is running on %s %.1f s after the change", name, m.Target, took.Seconds())
	d.say("\nthe ledger (godwit migrations %s):", m.ID)
	printLedgerReport(d.indent(), m)
	var st api.Status
	_ = d.ac.get(ctx, "/v1/status", &st) // the leader now, for the explanation's heading
	named := strings.Contains(m.Reason, trigger)
	if why != nil {
		d.say("")
		printWhy(d.stdout(), st, why, m.Workload, name)
		printUsedUsers(d.stdout(), why, m.Workload)
		for _, dc := range why.Decisions {
			if dc.Container == m.Workload && slices.Contains(dc.Triggers, trigger) {
				named = true
			}
		}
	} else {
		d.say("why it moved (the ledger): %s", m.Reason)
	}
	if !named {
		return fmt.Errorf("the decision to move %s does not name the trigger %s: %s", name, trigger, m.Reason)
	}
	return d.checkState(ctx, name, m.Workload, m.Source, m.Target, before)
}

func (d *clusterDemo) indent() io.Writer { return indented(d.stdout()) }

// stdout is where say writes.
func (d *clusterDemo) stdout() io.Writer { return d.out }

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
// starts the three agents, the first as everyone's seed, and makes the operator's client.
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
	for i, n := range demoNodes {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		ip := d.opt.nodeIP(i)
		files, err := pki.Quick(pkiDir, n.name, pki.RoleServer, net.ParseIP(ip))
		if err != nil {
			return err
		}
		text := fmt.Sprintf("node: %s\nrole: server\nsite: %s\ngossip:\n  bind: %s:0\n  key_file: gossip.key\n  emulated_delay: %s\n", n.name, n.site, ip, demoDelay)
		if seed != "" {
			text += "  join: [" + seed + "]\n"
		}
		text += fmt.Sprintf("migration:\n  bind: %s:0\napi:\n  bind: %s:%d\ncapacity: {cpu: %g, memory: 2GiB}\ndata_dir: data-%s\n", ip, ip, demoAPIPort, demoNodeCPU, n.name)
		text += fmt.Sprintf("tls: {ca: %s, cert: %s, key: %s}\nlog: {level: info, format: json}\ninventory: {interval: 1s}\n", files.CA, files.Cert, files.Key)
		text += "server:\n  raft: {bind: '" + ip + ":0'}\n  bootstrap_expect: 3\n  policy_file: policy.yaml\n"
		e := d.engines[n.name]
		text += fmt.Sprintf("docker: {host: '%s', data_root: '%s', runc_root: '%s', cgroup_parent: '/godwit-%s'}\n", e.Host, e.DataRoot, e.RuncRoot(), e.Name)
		path := filepath.Join(d.dir, n.name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return err
		}
		a, err := startDemoAgent(d.opt.exe, n.name, ip, path)
		if a != nil {
			d.agents = append(d.agents, a)
		}
		if err != nil {
			return err
		}
		if seed == "" {
			seed = a.gossip
		}
		d.say("  %-3s %-7s %-13s api https://%s", n.name, n.site, ip, a.api)
	}
	first := d.agents[0].api
	d.ac, err = newAPIClient(&clientFlags{addr: first, caCert: d.operator.CA, clientCert: d.operator.Cert, clientKey: d.operator.Key})
	d.apiArgs = []string{"--addr", first, "--cacert", d.operator.CA, "--client-cert", d.operator.Cert, "--client-key", d.operator.Key}
	return err
}

// awaitMove follows the ledger, through the API, until a migration off source of one of
// workloads, created after since, ends; meanwhile it keeps the leader's plan that decided
// it.
func (d *clusterDemo) awaitMove(ctx context.Context, source string, workloads []string, since time.Time) (*scheduler.Migration, *api.Explain, error) {
	var why *api.Explain
	var found *scheduler.Migration
	var last scheduler.Phase
	err := d.wait(ctx, "the leader to move a workload off "+source, 6*time.Minute, func() bool {
		if why == nil {
			var ex api.Explain
			if d.ac.get(ctx, "/v1/explain", &ex) == nil {
				for _, dc := range ex.Decisions {
					if slices.Contains(workloads, dc.Container) && dc.From == source {
						why = &ex
					}
				}
			}
		}
		var ms []scheduler.Migration
		if d.ac.get(ctx, "/v1/migrations", &ms) != nil {
			return false
		}
		for i := range ms {
			m := &ms[i]
			if !slices.Contains(workloads, m.Workload) || m.Source != source || m.Created.Before(since.Add(-time.Second)) {
				continue
			}
			if found == nil && d.seen != nil {
				d.seen(m)
			}
			found = m
			if m.Phase != last {
				by := ""
				if n := len(m.History); n > 0 && m.History[n-1].By != "" {
					by = " (" + m.History[n-1].By + ")"
				}
				d.say("  +%5.1fs  %s %s -> %s: %s%s", time.Since(since).Seconds(), nameOf(d.ids, m.Workload), m.Source, m.Target, m.Phase, by)
				last = m.Phase
			}
			return m.Phase.Terminal()
		}
		return false
	})
	if err != nil && found == nil {
		d.whyNot(ctx, workloads)
	}
	return found, why, err
}

// whyNot prints, for a move that did not come, the nodes' load and the leader's last
// explanation of the workloads.
func (d *clusterDemo) whyNot(ctx context.Context, workloads []string) {
	d.say("\nno move; the nodes and the leader's last plan:")
	defer func() {
		var ex api.Explain
		if d.ac.get(ctx, "/v1/explain", &ex) == nil {
			d.say("  (that plan was made %.0f s ago)", time.Since(ex.At).Seconds())
		}
	}()
	_ = runNodes(d.apiArgs, d.indent(), d.out)
	var ex api.Explain
	if d.ac.get(ctx, "/v1/explain", &ex) != nil {
		return
	}
	var st api.Status
	_ = d.ac.get(ctx, "/v1/status", &st)
	for _, w := range workloads {
		printWhy(d.out, st, &ex, w, nameOf(d.ids, w))
		printUsedUsers(d.out, &ex, w)
	}
	for _, p := range ex.Problems {
		d.say("  problem: %s", p)
	}
}

// printWhy prints the leader's decision and its explanation for the workload.
func printWhy(w io.Writer, st api.Status, ex *api.Explain, wid, name string) {
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
		fmt.Fprintf(w, "  decision: %s %s -> %s, score %.3f (%s), triggers %s, predicted downtime %s\n", name, dc.From, dc.To, dc.Score,
			strings.Join(objs, ", "), strings.Join(dc.Triggers, ","), dc.Cost.Downtime.Round(time.Millisecond))
	}
	for _, x := range ex.Explanations {
		if x.Container != wid {
			continue
		}
		fmt.Fprintf(w, "  %s on %s: %s", name, x.Node, x.Reason)
		if x.Detail != "" {
			fmt.Fprintf(w, " (%s)", x.Detail)
		}
		fmt.Fprintln(w)
		for _, c := range x.Candidates {
			verdict := "chosen"
			if x.Moved && x.Detail != "to "+c.Node {
				verdict = "not chosen (an equal or better target was)"
			}
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

// printUsedUsers prints the user sites the plan used for workload wid.
func printUsedUsers(w io.Writer, ex *api.Explain, wid string) {
	for _, u := range ex.Users {
		if u.Workload == wid {
			fmt.Fprintf(w, "  its users: %s (from %s)\n", formatSites(u.Sites), usersFrom(u))
		}
	}
}

// checkState checks that exactly one copy of the workload runs, on target, with the memory
// it had before the move and its tick counter continued.
func (d *clusterDemo) checkState(ctx context.Context, name, wid, source, target string, before workload.State) error {
	running := map[string]int{}
	count := func() int {
		total := 0
		for node, cli := range d.clis {
			n := 0
			for _, f := range []filters.Args{filters.NewArgs(filters.Arg("label", migrate.LabelWorkload+"="+wid)), filters.NewArgs(filters.Arg("id", wid))} {
				if list, err := cli.ContainerList(ctx, container.ListOptions{Filters: f}); err == nil {
					n += len(list)
				}
			}
			running[node] = n
			total += n
		}
		return total
	}
	_ = d.wait(ctx, "one running copy", 15*time.Second, func() bool { return count() == 1 && running[target] == 1 })
	cli, ok := d.clis[target]
	if !ok {
		return fmt.Errorf("%s moved to %s, which has no engine", name, target)
	}
	after, err := workload.WaitState(ctx, cli, name, 30*time.Second)
	if err != nil {
		return err
	}
	d.say("\nstate check: %s on %s: %v", name, target, after)
	d.say("  seed %s, memory checksum %s, ticks %d -> %d (%s); running copies: %s %d, %s %d",
		same(after.Seed == before.Seed), same(after.CRC == before.CRC), before.Ticks, after.Ticks,
		map[bool]string{true: "continued", false: "RESET"}[after.Ticks >= before.Ticks], source, running[source], target, running[target])
	if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks || count() != 1 || running[target] != 1 {
		return errors.New("state check failed")
	}
	return nil
}

// report prints the agents' last warnings and errors, for a failed run, and keeps their
// whole logs in files beside the demo's directory.
func (d *clusterDemo) report() {
	for _, a := range d.agents {
		if p := a.log.problems(4); len(p) > 0 {
			d.say("last warnings of %s:\n  %s", a.name, strings.Join(p, "\n  "))
		}
		a.log.mu.Lock()
		text := a.log.b.String()
		a.log.mu.Unlock()
		file := d.dir + "-" + a.name + ".log"
		if os.WriteFile(file, []byte(text), 0o600) == nil {
			d.say("the log of %s: %s", a.name, file)
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
