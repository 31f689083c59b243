package migrate_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// node is one simulated node: its engine, runtime and migration service.
type node struct {
	name     string
	engine   *dockerd.Engine
	rt       *migrate.DockerRuntime
	node     *migrate.Node
	endpoint string
	stateDir string
	fault    atomic.Pointer[func(string) error]
}

// testCA makes the cluster's certificates for a test.
type testCA struct{ dir string }

func (ca testCA) tls(t *testing.T, name string, role pki.Role) *pki.TLS {
	t.Helper()
	f, err := pki.Quick(ca.dir, name, role)
	if err != nil {
		t.Fatal(err)
	}
	l, err := pki.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func startNode(t *testing.T, ca testCA, name, addr string, policy migrate.DockerPolicy) *node {
	t.Helper()
	return startNodeOn(t, ca, name, addr, policy, "")
}

// startNodeOn starts a node on a given engine version ("" for the one this run selects).
func startNodeOn(t *testing.T, ca testCA, name, addr string, policy migrate.DockerPolicy, version string) *node {
	t.Helper()
	ctx := context.Background()
	e, err := dockerd.Start(ctx, dockerd.Config{Name: name, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	state := filepath.Join(e.Dir, "godwit")
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: e.DataRoot, RuncRoot: e.RuncRoot(), StateDir: state,
		CRIUPath: testenv.CRIUPath(), VerifyTimeout: 15 * time.Second, Policy: policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, engine: e, rt: rt, stateDir: state}
	mn, err := migrate.NewNode(migrate.NodeConfig{Name: name, Runtime: rt, StateDir: state, TLS: ca.tls(t, name, pki.RoleClient),
		SettleTimeout: 5 * time.Second,
		Fault: func(point string) error {
			if f := n.fault.Load(); f != nil {
				return (*f)(point)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	bound, err := mn.Listen(addr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	mn.Start(ctx)
	t.Cleanup(func() { mn.Close() })
	n.node, n.endpoint = mn, bound
	return n
}

// migrate moves workload from n to target, in process.
func (n *node) migrate(ctx context.Context, workload string, target *node, o migrate.Order) (*migrate.Report, error) {
	o.Workload, o.TargetNode, o.TargetAddr = workload, target.name, target.endpoint
	return n.node.Migrate(ctx, o)
}

// setFault installs a fault hook for the next migrations (nil removes it).
func (n *node) setFault(f func(string) error) {
	if f == nil {
		n.fault.Store(nil)
		return
	}
	n.fault.Store(&f)
}

// run starts the workload in a container on this node, with binds (volumes or bind mounts)
// and extra workload flags.
func (n *node) run(t *testing.T, name string, mib int, binds []string, extra ...string) string {
	t.Helper()
	ctx := context.Background()
	cli, _ := n.engine.Client()
	defer cli.Close()
	c, err := cli.ContainerCreate(ctx, &container.Config{
		Image:  workload.Image,
		Cmd:    append(workload.Cmd(mib), extra...),
		Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)},
		// What can move on this engine (Docker 28 moves only containers without a network
		// namespace of Docker's).
		NetworkDisabled: workload.NetworkDisabled(ctx, cli),
	}, &container.HostConfig{NetworkMode: "none", RestartPolicy: container.RestartPolicy{Name: "unless-stopped"}, Binds: binds}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// state probes the workload named name on this node, waiting for it to answer.
func (n *node) state(t *testing.T, name string) workload.State {
	t.Helper()
	cli, _ := n.engine.Client()
	defer cli.Close()
	// Generous: a 256 MiB workload on a loaded shared machine takes a while to start.
	st, err := workload.WaitState(context.Background(), cli, name, 60*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", n.engine.Name, err)
	}
	return st
}

// running lists the names of running containers.
func (n *node) containers(t *testing.T) (running, all int) {
	t.Helper()
	cli, _ := n.engine.Client()
	defer cli.Close()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.State == "running" {
			running++
		}
	}
	return running, len(list)
}

// leftovers counts checkpoint and staging files a node keeps (its journal aside).
func (n *node) leftovers(t *testing.T) int {
	t.Helper()
	return filesUnder(t, filepath.Join(n.stateDir, "checkpoints")) + filesUnder(t, filepath.Join(n.stateDir, "staged")) + filesUnder(t, filepath.Join(n.stateDir, "incoming"))
}

func filesUnder(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// sameWorkload checks that after is before's process continued: same seed and memory
// checksum, ticks not reset.
func sameWorkload(t *testing.T, before, after workload.State) {
	t.Helper()
	if after.Seed != before.Seed || after.CRC != before.CRC {
		t.Fatalf("state lost: before %v, after %v", before, after)
	}
	if after.Ticks < before.Ticks {
		t.Fatalf("tick count went back: before %v, after %v", before, after)
	}
}

// TestDockerMigration runs the migration scenarios of issue 2 against two real engines with
// real CRIU. Subtests share the engines; the one that stops the target engine runs last.
func TestDockerMigration(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	ctx := context.Background()
	ca := testCA{dir: t.TempDir()}
	bindRoot := t.TempDir()
	policy := migrate.DockerPolicy{BindRoots: []string{bindRoot}}
	n1 := startNode(t, ca, "mt1", "127.0.0.2", policy)
	n2 := startNode(t, ca, "mt2", "127.0.0.3", policy)
	cli1, _ := n1.engine.Client()
	defer cli1.Close()
	if err := workload.BuildImage(ctx, cli1); err != nil {
		t.Fatal(err)
	}

	t.Run("migrate 256 MiB, image absent on target", func(t *testing.T) {
		origID := n1.run(t, "w256", 256, nil)
		before := n1.state(t, "w256")
		rep, err := n1.migrate(ctx, "w256", n2, migrate.Order{})
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
		after := n2.state(t, "w256")
		sameWorkload(t, before, after)
		if after.MiB != 256 {
			t.Fatalf("state %v", after)
		}
		if r, all := n1.containers(t); r != 0 || all != 0 {
			t.Fatalf("source still has %d containers (%d running)", all, r)
		}
		if r, _ := n2.containers(t); r != 1 {
			t.Fatalf("target runs %d containers, want 1", r)
		}
		if n := n1.leftovers(t) + n2.leftovers(t); n != 0 {
			t.Fatalf("%d checkpoint files left behind", n)
		}
		cli2, _ := n2.engine.Client()
		defer cli2.Close()
		if info, err := cli2.ContainerInspect(ctx, "w256"); err != nil || info.Config.Labels[migrate.LabelWorkload] != origID {
			t.Fatalf("the copy does not carry the workload identity %s: %v %v", origID, info.Config.Labels, err)
		}
		if rep.Workload != origID || rep.Result != migrate.ResultCompleted || rep.Source != "mt1" || rep.Target != "mt2" {
			t.Fatalf("report: %+v", rep)
		}
		if rep.ImageBytes == 0 {
			t.Fatalf("image was not transferred: %+v", rep)
		}
		if rep.CheckpointBytes < 256<<20 {
			t.Fatalf("checkpoint %d bytes", rep.CheckpointBytes)
		}
		t.Logf("phases %v downtime %v checkpoint %d MiB image %d MiB, %d connections, %.1f ms in TLS handshakes",
			rep.Phases, rep.Downtime, rep.CheckpointBytes>>20, rep.ImageBytes>>20, rep.Connections, rep.HandshakeSeconds*1000)
	})

	t.Run("compressed stream, image present, migrate back by workload identity", func(t *testing.T) {
		before := n2.state(t, "w256")
		cli2, _ := n2.engine.Client()
		defer cli2.Close()
		info, err := cli2.ContainerInspect(ctx, "w256")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := n2.migrate(ctx, info.Config.Labels[migrate.LabelWorkload], n1, migrate.Order{Compress: true})
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
		sameWorkload(t, before, n1.state(t, "w256"))
		if rep.ImageBytes != 0 {
			t.Fatalf("image moved although present: %d bytes", rep.ImageBytes)
		}
		if rep.WireBytes >= rep.CheckpointBytes {
			t.Logf("note: compression did not shrink the stream (%d >= %d)", rep.WireBytes, rep.CheckpointBytes)
		}
	})

	t.Run("not checkpointable: refused before freezing", func(t *testing.T) {
		n1.run(t, "wmptcp", 16, nil, "-mptcp")
		before := n1.state(t, "wmptcp")
		_, err := n1.migrate(ctx, "wmptcp", n2, migrate.Order{})
		if !errors.Is(err, migrate.ErrNotCheckpointable) {
			t.Fatalf("err = %v, want ErrNotCheckpointable", err)
		}
		t.Logf("refused: %v", err)
		if !strings.Contains(err.Error(), "MPTCP") {
			t.Fatalf("reason does not name MPTCP: %v", err)
		}
		sameWorkload(t, before, n1.state(t, "wmptcp"))
		cli1.ContainerRemove(ctx, "wmptcp", container.RemoveOptions{Force: true})
	})

	t.Run("network namespace of Docker's on an engine that cannot restore into one: refused before freezing, naming the engine", func(t *testing.T) {
		if !workload.NetworkDisabled(ctx, cli1) {
			t.Skip("this engine restores containers into network namespaces of Docker's; nothing to refuse")
		}
		c, err := cli1.ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(8),
			Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "wnetns")
		if err != nil {
			t.Fatal(err)
		}
		defer cli1.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		if err := cli1.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		before := n1.state(t, "wnetns")
		_, err = n1.migrate(ctx, "wnetns", n2, migrate.Order{})
		if !errors.Is(err, migrate.ErrNotCheckpointable) || !strings.Contains(err.Error(), "Docker 28") {
			t.Fatalf("err = %v, want ErrNotCheckpointable naming the engine", err)
		}
		t.Logf("refused: %v", err)
		sameWorkload(t, before, n1.state(t, "wnetns"))
	})

	t.Run("shared network namespace: refused before freezing", func(t *testing.T) {
		c, err := cli1.ContainerCreate(ctx, &container.Config{Image: workload.Image,
			Cmd: []string{"-mib", "8", "-addr", "127.0.0.1:7072", "-control="}, Labels: map[string]string{migrate.LabelManaged: "true"}},
			&container.HostConfig{NetworkMode: "container:w256"}, nil, nil, "wshared")
		if err != nil {
			t.Fatal(err)
		}
		defer cli1.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		if err := cli1.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = n1.migrate(ctx, "wshared", n2, migrate.Order{})
		if info, ierr := cli1.ContainerInspect(ctx, c.ID); ierr == nil && info.State != nil && !info.State.Running {
			t.Fatalf("wshared (in w256's network namespace) is not running: exit %d, error %q; the migration answered: %v",
				info.State.ExitCode, info.State.Error, err)
		}
		if !errors.Is(err, migrate.ErrNotCheckpointable) || !strings.Contains(err.Error(), "network") {
			t.Fatalf("err = %v, want ErrNotCheckpointable naming the network", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("tampering in transit: TLS refuses it, rollback", func(t *testing.T) {
		before := n1.state(t, "w256")
		proxy := corruptingProxy(t, n2.endpoint, 3<<20)
		_, err := n1.node.Migrate(ctx, migrate.Order{Workload: "w256", TargetNode: "mt2", TargetAddr: proxy})
		if !errors.Is(err, migrate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack", err)
		}
		t.Logf("error: %v", err)
		sameWorkload(t, before, n1.state(t, "w256"))
		// The target's prepared copy goes with the source's abort (asynchronous).
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, all := n2.containers(t); all == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("target kept its prepared container")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if r, _ := n1.containers(t); r != 1 {
			t.Fatalf("source runs %d containers, want 1", r)
		}
	})

	t.Run("restore fails on target: rollback", func(t *testing.T) {
		before := n1.state(t, "w256")
		// The engines run containers under godwit-runc by default, so the rollback's restore
		// reads the local checkpoint in place too.
		if info, err := cli1.ContainerInspect(ctx, "w256"); err != nil || info.HostConfig.Runtime != migrate.FastRestoreRuntime {
			t.Fatalf("source container runtime %q (%v), want %s", info.HostConfig.Runtime, err, migrate.FastRestoreRuntime)
		}
		n2.setFault(func(point string) error {
			if point == "target-before-restore" {
				// Break the staged checkpoint on the target: CRIU cannot restore it.
				staged := filepath.Join(n2.stateDir, "staged", "m-broken-restore")
				matches, _ := filepath.Glob(filepath.Join(staged, "pages-*.img"))
				for _, m := range matches {
					os.Remove(m)
				}
			}
			return nil
		})
		rep, err := n1.migrate(ctx, "w256", n2, migrate.Order{ID: "m-broken-restore"})
		n2.setFault(nil)
		if !errors.Is(err, migrate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack", err)
		}
		t.Logf("error: %v; rollback %v, downtime %v", err, rep.Phase(migrate.PhaseRollback), rep.Downtime)
		sameWorkload(t, before, n1.state(t, "w256"))
		if _, all := n2.containers(t); all != 0 {
			t.Fatalf("target kept %d containers", all)
		}
	})

	t.Run("local named volume travels with the checkpoint", func(t *testing.T) {
		if _, err := cli1.VolumeCreate(ctx, volume.CreateOptions{Name: "godwit-data"}); err != nil {
			t.Fatal(err)
		}
		v, err := cli1.VolumeInspect(ctx, "godwit-data")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v.Mountpoint, "note.txt"), []byte("kept\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		n1.run(t, "wvol", 16, []string{"godwit-data:/data"})
		before := n1.state(t, "wvol")
		if _, err := n1.migrate(ctx, "wvol", n2, migrate.Order{}); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		sameWorkload(t, before, n2.state(t, "wvol"))
		cli2, _ := n2.engine.Client()
		defer cli2.Close()
		v2, err := cli2.VolumeInspect(ctx, "godwit-data")
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(v2.Mountpoint, "note.txt"))
		if err != nil || string(b) != "kept\n" {
			t.Fatalf("volume contents on target: %q, %v", b, err)
		}
		cli2.ContainerRemove(ctx, "wvol", container.RemoveOptions{Force: true})
	})

	t.Run("bind mount missing on target: refused before freezing", func(t *testing.T) {
		dir, err := os.MkdirTemp(bindRoot, "bind")
		if err != nil {
			t.Fatal(err)
		}
		n1.run(t, "wbind", 16, []string{dir + ":/data:ro"})
		before := n1.state(t, "wbind")
		// Both nodes share this host's filesystem: removing the directory is how the path
		// comes to be missing "on the target".
		os.RemoveAll(dir)
		_, err = n1.migrate(ctx, "wbind", n2, migrate.Order{})
		if !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("err = %v, want ErrPreflight naming %s", err, dir)
		}
		t.Logf("refused: %v", err)
		sameWorkload(t, before, n1.state(t, "wbind"))
		cli1.ContainerRemove(ctx, "wbind", container.RemoveOptions{Force: true})
	})

	t.Run("what the target's node policy forbids: refused before freezing, naming the field", func(t *testing.T) {
		outside := t.TempDir() // not under the nodes' bind root
		escape := filepath.Join(bindRoot, "escape")
		if err := os.Symlink(outside, escape); err != nil {
			t.Fatal(err)
		}
		// A volume that a container on the target uses: a migration must not overwrite it.
		cli2, _ := n2.engine.Client()
		defer cli2.Close()
		if _, err := cli2.VolumeCreate(ctx, volume.CreateOptions{Name: "theirs"}); err != nil {
			t.Fatal(err)
		}
		if err := workload.BuildImage(ctx, cli2); err != nil {
			t.Fatal(err)
		}
		user, err := cli2.ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(8)},
			&container.HostConfig{NetworkMode: "none", Binds: []string{"theirs:/data"}}, nil, nil, "their-app")
		if err != nil {
			t.Fatal(err)
		}
		defer cli2.ContainerRemove(ctx, user.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		for _, tc := range []struct {
			desc  string
			hc    container.HostConfig
			field string
		}{
			{"added capability", container.HostConfig{CapAdd: []string{"NET_ADMIN"}}, "capAdd"},
			{"bind mount outside the allowed roots", container.HostConfig{Binds: []string{outside + ":/data:ro"}}, "mounts[0].source"},
			{"host network (not allowed here)", container.HostConfig{NetworkMode: "host"}, "networkMode"},
			{"bind mount through a symlink out of the allowed roots", container.HostConfig{Binds: []string{escape + ":/data:ro"}}, "leads to"},
			{"a volume another container uses on the target", container.HostConfig{Binds: []string{"theirs:/data"}}, "in use by container their-app"},
		} {
			t.Run(tc.desc, func(t *testing.T) {
				hc := tc.hc
				if hc.NetworkMode == "" {
					hc.NetworkMode = "none"
				}
				c, err := cli1.ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(8),
					NetworkDisabled: hc.NetworkMode == "none" && workload.NetworkDisabled(ctx, cli1),
					Labels:          map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}}, &hc, nil, nil, "wpolicy")
				if err != nil {
					t.Fatal(err)
				}
				defer cli1.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
				if err := cli1.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
					t.Fatal(err)
				}
				_, err = n1.migrate(ctx, "wpolicy", n2, migrate.Order{})
				if !errors.Is(err, migrate.ErrRefused) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("err = %v, want ErrRefused naming %s", err, tc.field)
				}
				t.Logf("refused: %v", err)
				info, err := cli1.ContainerInspect(ctx, c.ID)
				if err != nil || !info.State.Running {
					t.Fatalf("the container does not run on the source any more: %v", err)
				}
				if _, all := n2.containers(t); all != 1 { // their-app
					t.Fatalf("the target created %d containers", all-1)
				}
			})
		}
	})

	t.Run("unmanaged container: refused", func(t *testing.T) {
		c, err := cli1.ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(8)},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "wplain")
		if err != nil {
			t.Fatal(err)
		}
		defer cli1.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		if err := cli1.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := n1.migrate(ctx, "wplain", n2, migrate.Order{}); !errors.Is(err, migrate.ErrRefused) {
			t.Fatalf("err = %v, want ErrRefused", err)
		}
	})

	t.Run("repeating a step with the same migration ID is harmless", func(t *testing.T) {
		spec, err := n1.rt.Inspect(ctx, "w256")
		if err != nil {
			t.Skip("w256 not on the source: an earlier subtest failed")
		}
		spec.Name = "w256-copy"
		p1, err := n2.rt.Prepare(ctx, "m-repeat", spec)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := n2.rt.Prepare(ctx, "m-repeat", spec)
		if err != nil || p2.ID != p1.ID {
			t.Fatalf("second Prepare: %v, %v (want %v)", p2, err, p1)
		}
		if err := n2.rt.Remove(ctx, p1.ID); err != nil {
			t.Fatal(err)
		}
		if err := n2.rt.Remove(ctx, p1.ID); err != nil {
			t.Fatalf("removing twice: %v", err)
		}
	})

	t.Run("restore answer lost: the source asks, finds the copy running, completes; never two copies", func(t *testing.T) {
		before := n1.state(t, "w256")
		n1.setFault(func(point string) error {
			if point == "source-after-restore" {
				return errors.New("answer lost")
			}
			return nil
		})
		rep, err := n1.migrate(ctx, "w256", n2, migrate.Order{})
		n1.setFault(nil)
		if err != nil || rep.Result != migrate.ResultCompleted {
			t.Fatalf("err = %v, result %s; want completed", err, rep.Result)
		}
		sameWorkload(t, before, n2.state(t, "w256"))
		if _, all := n1.containers(t); all != 0 {
			t.Fatalf("source kept %d containers", all)
		}
		// And back for the next subtest.
		if _, err := n2.migrate(ctx, "w256", n1, migrate.Order{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("target engine down: rollback", func(t *testing.T) {
		before := n1.state(t, "w256")
		n1.setFault(func(point string) error {
			if point == "source-after-checkpoint" {
				return n2.engine.Stop(context.Background())
			}
			return nil
		})
		_, err := n1.migrate(ctx, "w256", n2, migrate.Order{})
		n1.setFault(nil)
		if !errors.Is(err, migrate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack", err)
		}
		t.Logf("error: %v", err)
		sameWorkload(t, before, n1.state(t, "w256"))
		if r, _ := n1.containers(t); r != 1 {
			t.Fatalf("source runs %d containers, want 1", r)
		}
		if n := filesUnder(t, filepath.Join(n1.stateDir, "checkpoints")); n != 0 {
			t.Fatalf("%d checkpoint files left on the source", n)
		}
	})
}

// proxy listens on addr and hands each accepted connection, with a fresh connection to
// target, to handle. Both are closed when handle returns.
func proxy(t *testing.T, addr, target string, handle func(client, upstream net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				handle(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

// corruptingProxy forwards TCP connections to target, flipping the byte at offset `at` of
// each client-to-target stream that gets that far (only the checkpoint stream does).
func corruptingProxy(t *testing.T, target string, at int64) string {
	return proxy(t, "127.0.0.4:0", target, func(c, u net.Conn) {
		go func() {
			io.Copy(&flipWriter{w: u, at: at}, c)
			u.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(c, u)
	})
}

type flipWriter struct {
	w   io.Writer
	at  int64
	off int64
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.off && f.at < f.off+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[f.at-f.off] ^= 0x40
		p = q
	}
	f.off += int64(len(p))
	return f.w.Write(p)
}
