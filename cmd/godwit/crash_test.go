package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// godwitBinary builds this command once per test run: the crash tests run nodes as
// processes of their own, so that SIGKILL kills exactly one node.
func godwitBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "godwit-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "godwit")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// procNode is one node whose migration service runs as a separate `godwit endpoint`
// process over its own engine; the state directory survives the process.
type procNode struct {
	t      *testing.T
	name   string
	engine *dockerd.Engine
	files  pki.Files
	state  string
	addr   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

// start runs the node's process (with GODWIT_FAULT=fault when fault is set) and waits for it
// to listen. The first start picks a port; restarts reuse it.
func (p *procNode) start(fault string) {
	t := p.t
	t.Helper()
	listen := p.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	cmd := exec.Command(godwitBinary(t), "endpoint", "--node", p.name, "--listen", listen,
		"--docker-host", p.engine.Host, "--data-root", p.engine.DataRoot, "--runc-root", p.engine.RuncRoot(),
		"--state-dir", p.state, "--tls-ca", p.files.CA, "--tls-cert", p.files.Cert, "--tls-key", p.files.Key)
	cmd.Env = append(os.Environ(), "PATH="+testenv.CRIUBinDir+":"+os.Getenv("PATH"))
	if fault != "" {
		cmd.Env = append(cmd.Env, "GODWIT_FAULT="+fault)
	}
	p.stderr = &lockedBuffer{}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil {
			p.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
			go io.Copy(io.Discard, out)
			break
		}
		cmd.Wait()
		if attempt > 20 {
			t.Fatalf("%s did not start: %s", p.name, p.stderr)
		}
		// The port may be briefly held by a connection of the killed process.
		time.Sleep(250 * time.Millisecond)
		env := cmd.Env
		cmd = exec.Command(cmd.Path, cmd.Args[1:]...)
		cmd.Env, cmd.Stderr = env, p.stderr
		if out, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd = cmd
}

// kill SIGKILLs the node's process.
func (p *procNode) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		p.cmd = nil
	}
}

// stop ends the node's process gracefully.
func (p *procNode) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			p.kill()
		}
		p.cmd = nil
	}
}

func (p *procNode) waitFor(text string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.stderr.String(), text) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s never logged %q:\n%s", p.name, text, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// copiesOf lists the running containers of workload on the node's engine, and all of them.
func (p *procNode) copiesOf(cli *client.Client, wid string) (running, all int) {
	ctx := context.Background()
	seen := map[string]bool{}
	for _, f := range []filters.Args{filters.NewArgs(filters.Arg("label", migrate.LabelWorkload+"="+wid)), filters.NewArgs(filters.Arg("id", wid))} {
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			p.t.Fatal(err)
		}
		for _, c := range list {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			all++
			if c.State == "running" {
				running++
			}
		}
	}
	return running, all
}

// TestKillDuringMigration kills the source's or the target's process (SIGKILL) at four points
// of a real migration between two engines, restarts it, and checks that exactly one copy of
// the workload runs afterwards, with its memory, and that both journals say how it ended.
func TestKillDuringMigration(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	if testing.Short() {
		t.Skip("starts two engines and kills node processes; not in -short")
	}
	ctx := context.Background()
	pkiDir := t.TempDir()
	op, err := pki.Quick(pkiDir, "operator", pki.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	opTLS, err := pki.Load(op)
	if err != nil {
		t.Fatal(err)
	}
	opc := &migrate.Client{TLS: opTLS}
	var engines []*dockerd.Engine
	var clis []*client.Client
	for _, name := range []string{"kill1", "kill2"} {
		e, err := dockerd.Start(ctx, dockerd.Config{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(context.Background()) })
		cli, err := e.Client()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		engines, clis = append(engines, e), append(clis, cli)
	}
	if err := workload.BuildImage(ctx, clis[0]); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		desc, point string
		killTarget  bool
		on          int    // engine the workload runs on afterwards
		srcEnd      string // source journal's final phase
		dstEnd      string // target journal's final phase
	}{
		{"source killed during the dump", "source-during-checkpoint", false, 0, migrate.PhaseRolledBack, migrate.PhaseAborted},
		{"source killed during the transfer", "source-streaming", false, 0, migrate.PhaseRolledBack, migrate.PhaseAborted},
		{"source killed after the target restored", "source-after-restore", false, 1, migrate.PhaseCompleted, migrate.PhaseCompleted},
		{"target killed during the stream", "target-streaming", true, 0, migrate.PhaseRolledBack, migrate.PhaseAborted},
		{"target killed during the restore", "target-before-restore", true, 0, migrate.PhaseRolledBack, migrate.PhaseAborted},
		{"target killed as the restored copy starts", "target-after-restore", true, 1, migrate.PhaseCompleted, migrate.PhaseCompleted},
	}
	for i, tc := range cases {
		t.Run(tc.point, func(t *testing.T) {
			nodes := make([]*procNode, 2)
			for j := range nodes {
				name := fmt.Sprintf("node%d", j+1)
				f, err := pki.Quick(pkiDir, name, pki.RoleClient)
				if err != nil {
					t.Fatal(err)
				}
				nodes[j] = &procNode{t: t, name: name, engine: engines[j], files: f, state: t.TempDir()}
			}
			src, dst := nodes[0], nodes[1]
			victim := src
			if tc.killTarget {
				victim = dst
			}
			src.start(map[bool]string{true: "", false: tc.point}[tc.killTarget])
			dst.start(map[bool]string{true: tc.point, false: ""}[tc.killTarget])
			defer func() {
				for _, n := range nodes {
					n.stop()
				}
				if t.Failed() {
					t.Logf("source log:\n%s\ntarget log:\n%s", src.stderr, dst.stderr)
				}
			}()

			name := fmt.Sprintf("wkill%d", i)
			c, err := clis[0].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(256),
				NetworkDisabled: workload.NetworkDisabled(ctx, clis[0]), // what can move on this engine
				Labels:          map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
				&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
			if err != nil {
				t.Fatal(err)
			}
			wid := c.ID
			defer func() {
				for _, cli := range clis {
					cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
				}
			}()
			if err := clis[0].ContainerStart(ctx, wid, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}
			before, err := workload.WaitState(ctx, clis[0], name, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}

			id := fmt.Sprintf("m-kill-%d", i)
			done := make(chan error, 1)
			go func() {
				_, err := opc.Migrate(ctx, src.addr, "node1", migrate.Order{ID: id, Workload: name, TargetNode: "node2", TargetAddr: dst.addr}, 0)
				done <- err
			}()
			victim.waitFor("fault: paused at "+tc.point, 2*time.Minute)
			victim.kill()
			if !tc.killTarget {
				<-done // the order's connection died with the source
			}
			time.Sleep(500 * time.Millisecond)
			victim.start("")
			if tc.killTarget {
				<-done
			}

			// Settled: both journals final, as each node answers.
			deadline := time.Now().Add(2 * time.Minute)
			var sst, dstSt *migrate.Status
			for {
				sst, _ = opc.Status(ctx, src.addr, "node1", id)
				dstSt, _ = opc.Status(ctx, dst.addr, "node2", id)
				if sst != nil && dstSt != nil && sst.Phase == tc.srcEnd && dstSt.Phase == tc.dstEnd {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not settled: source %+v, target %+v", sst, dstSt)
				}
				time.Sleep(200 * time.Millisecond)
			}
			total := 0
			running := 0
			for j, n := range nodes {
				r, all := n.copiesOf(clis[j], wid)
				total += all
				running += r
				if r == 1 && j != tc.on {
					t.Fatalf("the workload runs on %s, want %s", n.name, nodes[tc.on].name)
				}
			}
			if running != 1 || total != 1 {
				t.Fatalf("%d running copies, %d containers of the workload in all; want exactly one", running, total)
			}
			after, err := workload.WaitState(ctx, clis[tc.on], name, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks {
				t.Fatalf("memory state lost: before %v, after %v", before, after)
			}
			t.Logf("%s: runs on %s with its memory (%v); source journal %s, target journal %s", tc.desc, nodes[tc.on].name, after, sst.Phase, dstSt.Phase)
		})
	}
}
