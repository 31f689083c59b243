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
	"syscall"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// requirePostCopy skips unless this host can do post-copy (userfaultfd, fs.pipe-max-size).
func requirePostCopy(t *testing.T) {
	t.Helper()
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || v < 4<<20 {
		t.Skipf("needs fs.pipe-max-size >= 4 MiB for CRIU's page server (scripts/setup-postcopy.sh, run by make deps); it is %s", strings.TrimSpace(string(b)))
	}
}

// startPostCopyNode is startNode with this checkout's godwit-runc (it carries the lazy
// restore) and page servers on addr.
func startPostCopyNode(t *testing.T, ca testCA, name, addr string) *node {
	t.Helper()
	ctx := context.Background()
	runc, err := filepath.Abs("../scripts/godwit-runc")
	if err != nil {
		t.Fatal(err)
	}
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
	state := filepath.Join(e.Dir, "godwit")
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: e.DataRoot, RuncRoot: e.RuncRoot(), StateDir: state,
		CRIUPath: testenv.CRIUPath(), VerifyTimeout: 15 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, engine: e, rt: rt, stateDir: state}
	mn, err := migrate.NewNode(migrate.NodeConfig{Name: name, Runtime: rt, StateDir: state, TLS: ca.tls(t, name, pki.RoleClient),
		SettleTimeout: 5 * time.Second, LoopbackAddr: addr,
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

// TestDockerPostCopy migrates a memhog container with post-copy between two real engines
// with real CRIU lazy pages, then breaks the transfer by killing the target's lazy-pages
// daemon after the copy there resumed.
func TestDockerPostCopy(t *testing.T) {
	requirePostCopy(t)
	ctx := context.Background()
	ca := testCA{dir: t.TempDir()}
	n1 := startPostCopyNode(t, ca, "pc1", "127.0.104.1")
	n2 := startPostCopyNode(t, ca, "pc2", "127.0.104.2")
	cli1, _ := n1.engine.Client()
	defer cli1.Close()
	if err := workload.BuildImage(ctx, cli1); err != nil {
		t.Fatal(err)
	}

	t.Run("post-copy 128 MiB: memory intact, ticks continue, one copy", func(t *testing.T) {
		n1.run(t, "wpc", 128, nil)
		before := n1.state(t, "wpc")
		rep, err := n1.migrate(ctx, "wpc", n2, migrate.Order{Method: migrate.MethodPostCopy})
		if err != nil {
			t.Fatalf("migrate: %v (report %+v)", err, rep)
		}
		after := n2.state(t, "wpc")
		sameWorkload(t, before, after)
		if r, all := n1.containers(t); r != 0 || all != 0 {
			t.Fatalf("source still has %d containers (%d running)", all, r)
		}
		if r, _ := n2.containers(t); r != 1 {
			t.Fatalf("target runs %d containers, want 1", r)
		}
		if rep.Method != migrate.MethodPostCopy || rep.Result != migrate.ResultCompleted || rep.Lazy == nil || !rep.Lazy.Complete() {
			t.Fatalf("report: %+v", rep)
		}
		if rep.LazyBytes < 100<<20 || rep.CheckpointBytes > 64<<20 {
			t.Fatalf("expected most memory to move lazily: lazy %d bytes, image %d bytes", rep.LazyBytes, rep.CheckpointBytes)
		}
		t.Logf("downtime %v, image %d KiB, lazy %d MiB, all pages after %.2fs; %v; phases %v; steps %v",
			rep.Downtime, rep.CheckpointBytes>>10, rep.LazyBytes>>20, rep.PagesSeconds, rep.Lazy, rep.Phases, rep.Steps)
		if n := n1.leftovers(t) + n2.leftovers(t); n != 0 {
			t.Fatalf("%d checkpoint files left behind", n)
		}
	})

	t.Run("lazy-pages daemon killed after the target resumed: target copy removed, source resumes intact", func(t *testing.T) {
		before := n2.state(t, "wpc")
		n1.setFault(func(point string) error {
			if point == "target-lazy-restored" {
				killLazyDaemon(t, n1.stateDir)
			}
			return nil
		})
		rep, err := n2.migrate(ctx, "wpc", n1, migrate.Order{Method: migrate.MethodPostCopy})
		n1.setFault(nil)
		if !errors.Is(err, migrate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack (report %+v)", err, rep)
		}
		t.Logf("error: %v", err)
		sameWorkload(t, before, n2.state(t, "wpc"))
		if r, _ := n2.containers(t); r != 1 {
			t.Fatalf("source runs %d containers, want 1", r)
		}
		if _, all := n1.containers(t); all != 0 {
			t.Fatalf("target kept %d containers", all)
		}
	})

	t.Run("page stream cut after the target resumed: target copy removed, source resumes intact", func(t *testing.T) {
		before := n2.state(t, "wpc")
		// Every connection through the proxy is cut after 16 MiB from the source: only the
		// page stream gets that far (the image is present, the checkpoint is ~100 KiB).
		cut := proxy(t, "127.0.104.5:0", n1.endpoint, func(c, u net.Conn) {
			go func() {
				io.Copy(u, io.LimitReader(c, 16<<20))
				c.Close()
				u.Close()
			}()
			io.Copy(c, u)
		})
		rep, err := n2.node.Migrate(ctx, migrate.Order{Workload: "wpc", TargetNode: n1.name, TargetAddr: cut, Method: migrate.MethodPostCopy})
		if !errors.Is(err, migrate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack (report %+v)", err, rep)
		}
		t.Logf("error: %v", err)
		sameWorkload(t, before, n2.state(t, "wpc"))
		if r, _ := n2.containers(t); r != 1 {
			t.Fatalf("source runs %d containers, want 1", r)
		}
		if _, all := n1.containers(t); all != 0 {
			t.Fatalf("target kept %d containers", all)
		}
	})

	t.Run("post-copy refused by a runtime without it", func(t *testing.T) {
		if _, err := n1.migrate(ctx, "nope", n2, migrate.Order{Method: "pre-copy"}); !errors.Is(err, migrate.ErrRefused) {
			t.Fatalf("err = %v, want ErrRefused", err)
		}
	})
}

// killLazyDaemon kills the criu lazy-pages daemon working under stateDir.
func killLazyDaemon(t *testing.T, stateDir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "lazy-pages") && strings.Contains(string(b), stateDir) {
			t.Logf("killing lazy-pages daemon %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return
		}
	}
	t.Errorf("no lazy-pages daemon under %s", stateDir)
}
