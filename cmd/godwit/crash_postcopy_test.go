package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// TestKillDuringPostCopy kills the target's or the source's process (SIGKILL) during a
// post-copy migration, after the target's copy was restored, restarts it, and checks that
// exactly one copy runs afterwards with its memory. Which node keeps it depends on whether
// every page had arrived when the process died: the target keeps its copy only if it had
// counted every page in before; otherwise the source resumes its stopped copy.
func TestKillDuringPostCopy(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	if testing.Short() {
		t.Skip("starts two engines and kills node processes; not in -short")
	}
	if b, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err != nil || atoiOr0(strings.TrimSpace(string(b))) < 4<<20 {
		t.Skip("needs fs.pipe-max-size >= 4 MiB for CRIU's page server (scripts/setup-postcopy.sh, run by make deps)")
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
	// This checkout's godwit-runc: it carries the lazy restore.
	runc, err := filepath.Abs("../../scripts/godwit-runc")
	if err != nil {
		t.Fatal(err)
	}
	var engines []*dockerd.Engine
	var clis []*client.Client
	for _, name := range []string{"pck1", "pck2"} {
		e, err := dockerd.Start(ctx, dockerd.Config{Name: name, FastRestoreRuntime: runc})
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

	for i, tc := range []struct {
		desc, point string
		killTarget  bool
	}{
		{"target killed as its lazily restored copy starts", "target-lazy-restored", true},
		{"source killed while the pages arrive", "source-pulling", false},
	} {
		t.Run(tc.point, func(t *testing.T) {
			nodes := make([]*procNode, 2)
			for j := range nodes {
				name := fmt.Sprintf("node%d", j+1)
				f, err := pki.Quick(pkiDir, name, pki.RoleClient)
				if err != nil {
					t.Fatal(err)
				}
				// Page servers and relays listen on the node's own loopback address.
				nodes[j] = &procNode{t: t, name: name, engine: engines[j], files: f, state: t.TempDir(), addr: fmt.Sprintf("127.0.104.%d:0", 10+j)}
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

			name := fmt.Sprintf("wpckill%d", i)
			c, err := clis[0].ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(128),
				Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
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
			before, err := workload.WaitState(ctx, clis[0], name, 2*time.Minute)
			if err != nil {
				t.Fatal(err)
			}

			id := fmt.Sprintf("m-pckill-%d", i)
			done := make(chan error, 1)
			go func() {
				_, err := opc.Migrate(ctx, src.addr, "node1", migrate.Order{ID: id, Workload: name, TargetNode: "node2", TargetAddr: dst.addr, Method: migrate.MethodPostCopy}, 0)
				done <- err
			}()
			victim.waitFor("fault: paused at "+tc.point, 2*time.Minute)
			victim.kill()
			if !tc.killTarget {
				<-done
			}
			time.Sleep(500 * time.Millisecond)
			victim.start("")
			if tc.killTarget {
				<-done
			}

			// Settled: both journals final, and they agree on where the workload runs.
			deadline := time.Now().Add(3 * time.Minute)
			var sst, dstSt *migrate.Status
			on := -1
			for {
				sst, _ = opc.Status(ctx, src.addr, "node1", id)
				dstSt, _ = opc.Status(ctx, dst.addr, "node2", id)
				if sst != nil && dstSt != nil {
					if sst.Phase == migrate.PhaseRolledBack && dstSt.Phase == migrate.PhaseAborted {
						on = 0
					}
					if sst.Phase == migrate.PhaseCompleted && dstSt.Phase == migrate.PhaseCompleted {
						on = 1
					}
				}
				if on >= 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not settled: source %+v, target %+v", sst, dstSt)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if tc.killTarget && on != 0 {
				t.Fatalf("the target died before counting any page in, yet the workload is on node%d", on+1)
			}
			running, total := 0, 0
			for j, n := range nodes {
				r, all := n.copiesOf(clis[j], wid)
				total += all
				running += r
				if r == 1 && j != on {
					t.Fatalf("the workload runs on %s, the journals say %s", n.name, nodes[on].name)
				}
			}
			if running != 1 || total != 1 {
				t.Fatalf("%d running copies, %d containers of the workload in all; want exactly one", running, total)
			}
			after, err := workload.WaitState(ctx, clis[on], name, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if after.Seed != before.Seed || after.CRC != before.CRC || after.Ticks < before.Ticks {
				t.Fatalf("memory state lost: before %v, after %v", before, after)
			}
			t.Logf("%s: runs on %s with its memory (%v); source journal %s, target journal %s", tc.desc, nodes[on].name, after, sst.Phase, dstSt.Phase)
		})
	}
}

func atoiOr0(s string) int {
	v, _ := strconv.Atoi(s)
	return v
}
