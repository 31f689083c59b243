package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// TestClusterPostCopyPolicy: two agents over real engines and real CRIU, both passing the
// post-copy pre-flight; under a policy whose constraints.method is post-copy, the leader
// evacuates a drained node's memhog by post-copy with nobody asking: the ledger says
// post-copy and completed, one copy runs, on the target, with its memory.
func TestClusterPostCopyPolicy(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || v < 4<<20 {
		t.Skipf("needs fs.pipe-max-size >= 4 MiB for CRIU's page server (scripts/setup-postcopy.sh); it is %s", strings.TrimSpace(string(b)))
	}
	ctx := context.Background()
	c := newTestCluster(t)
	ip := func(i int) string { return fmt.Sprintf("127.0.107.%d", 10+i) }
	engines := map[string]*dockerd.Engine{}
	clis := map[string]*client.Client{}
	for _, name := range []string{"s1", "c1"} {
		e, err := dockerd.Start(ctx, dockerd.Config{Name: "wir" + name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(context.Background()) })
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		engines[name], clis[name] = e, cli
	}
	if err := workload.BuildImage(ctx, clis["c1"]); err != nil {
		t.Fatal(err)
	}
	const wname = "wir-memhog"
	ct, err := clis["c1"].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(64),
		Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, wname)
	if err != nil {
		t.Fatal(err)
	}
	wid := ct.ID
	if err := clis["c1"].ContainerStart(ctx, wid, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := workload.WaitState(ctx, clis["c1"], wname, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	pol, err := os.ReadFile("testdata/evacuate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(c.dir, "postcopy.yaml")
	if err := os.WriteFile(policyFile, append(pol, "    method: post-copy\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(name, role string, i int, join, extra string) *Agent {
		pr := pki.RoleClient
		if role == RoleServer {
			pr = pki.RoleServer
		}
		files, err := pki.Quick(filepath.Join(c.dir, "pki"), name, pr, net.ParseIP(ip(i)))
		if err != nil {
			t.Fatal(err)
		}
		e := engines[name]
		text := fmt.Sprintf("node: %s\nrole: %s\nsite: lab\ngossip:\n  bind: %s:0\n  key_file: %s\nmigration:\n  bind: %s:0\n"+
			"capacity: {cpu: 2, memory: 4GiB}\ndata_dir: %s\ntls: {ca: %s, cert: %s, key: %s}\ninventory: {interval: 200ms}\n"+
			"docker: {host: '%s', data_root: '%s', runc_root: '%s', cgroup_parent: '/godwit-%s'}\n%s",
			name, role, ip(i), c.key, ip(i), filepath.Join(c.dir, name), files.CA, files.Cert, files.Key,
			e.Host, e.DataRoot, e.RuncRoot(), e.Name, extra)
		file := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(file)
		if err != nil {
			t.Fatal(err)
		}
		if join != "" {
			cfg.Gossip.Join = []string{join}
		}
		log := slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		a, err := New(cfg, WithLogger(log), WithTuning(func(tu *Tuning) {
			fastTuning(tu)
			tu.PostCopyLoopback = ip(i)
		}))
		if err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		t.Cleanup(func() { a.Shutdown() })
		return a
	}
	server := start("s1", RoleServer, 1, "", fmt.Sprintf("server:\n  raft: {bind: '%s:0'}\n  bootstrap_expect: 1\n  policy_file: %s\n", ip(1), policyFile))
	start("c1", RoleClient, 2, server.GossipAddr(), "drain: true\n")

	var m *scheduler.Migration
	waitFor(t, "the leader's migration of the memhog to end", 3*time.Minute, func() bool {
		if server.cp == nil || server.cp.FSM() == nil {
			return false
		}
		for _, x := range server.cp.FSM().State().SortedMigrations() {
			if x.Phase.Terminal() {
				m = x
				return true
			}
		}
		return false
	})
	if m.Phase != scheduler.PhaseCompleted || m.Method != migrate.MethodPostCopy || m.Source != "c1" || m.Target != "s1" {
		t.Fatalf("ledger: %s %s -> %s by %q: %s (%s)", m.ID, m.Source, m.Target, m.Method, m.Phase, m.Failure)
	}
	running := 0
	for name, cli := range clis {
		list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", migrate.LabelWorkload+"="+wid))})
		if err != nil {
			t.Fatal(err)
		}
		if l2, _ := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("id", wid))}); len(l2) > 0 {
			running += len(l2)
			t.Errorf("the original still runs on %s", name)
		}
		running += len(list)
		if len(list) > 0 && name != "s1" {
			t.Errorf("a copy runs on %s", name)
		}
	}
	if running != 1 {
		t.Fatalf("%d running copies; want exactly one", running)
	}
	after, err := workload.WaitState(ctx, clis["s1"], wname, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks {
		t.Fatalf("memory state lost: before %v, after %v", before, after)
	}
	t.Logf("moved by post-copy, measured downtime %v; before %v, after %v", m.Measured.Downtime, before, after)
}
