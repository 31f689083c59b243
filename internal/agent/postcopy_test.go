package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// postCopyRuntime is the in-memory runtime with a post-copy pre-flight that passes or fails
// as told; it cannot run a post-copy migration (only the pre-flight is asked here).
type postCopyRuntime struct {
	*migrate.FakeRuntime
	preflight error
}

var _ migrate.PostCopier = (*postCopyRuntime)(nil)

func (r *postCopyRuntime) CheckPostCopy(context.Context) error { return r.preflight }

func (r *postCopyRuntime) CheckpointLazy(context.Context, string, string, string) (*migrate.LazyDump, error) {
	return nil, fmt.Errorf("%w: test runtime", migrate.ErrRefused)
}

func (r *postCopyRuntime) RestoreLazy(context.Context, migrate.Prepared, string) (*migrate.LazyRestore, error) {
	return nil, fmt.Errorf("%w: test runtime", migrate.ErrRefused)
}

func (r *postCopyRuntime) ResumeStopped(context.Context, *migrate.Spec, string, string) error {
	return fmt.Errorf("%w: test runtime", migrate.ErrRefused)
}

// TestPostCopyLabel: a node whose runtime passes the post-copy pre-flight gossips
// godwit.io/post-copy=true; one whose pre-flight fails, or whose runtime cannot do
// post-copy, does not, and the leader's view marks it NoPostCopy.
func TestPostCopyLabel(t *testing.T) {
	c := newTestCluster(t)
	// This test's nodes are on 127.0.107.x.
	ip := func(i int) string { return fmt.Sprintf("127.0.107.%d", i) }
	start := func(name string, i int, rt migrate.Runtime, join string) *Agent {
		files, err := pki.Quick(filepath.Join(c.dir, "pki"), name, pki.RoleClient, net.ParseIP(ip(i)))
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("node: %s\nrole: client\nsite: lab\ngossip:\n  bind: %s:0\n  key_file: %s\nmigration:\n  bind: %s:0\n"+
			"capacity: {cpu: 2, memory: 4GiB}\ndata_dir: %s\ntls: {ca: %s, cert: %s, key: %s}\ninventory: {interval: 200ms}\n",
			name, ip(i), c.key, ip(i), filepath.Join(c.dir, name), files.CA, files.Cert, files.Key)
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
		fake := migrate.NewFakeRuntime(filepath.Join(c.dir, name, "engine"))
		if rt == nil {
			rt = fake
		}
		a, err := New(cfg, WithRuntime(rt, FakeInventory{RT: fake}), WithLogger(log), WithTuning(fastTuning))
		if err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		t.Cleanup(func() { a.Shutdown() })
		return a
	}
	able := start("able", 1, &postCopyRuntime{FakeRuntime: migrate.NewFakeRuntime(filepath.Join(c.dir, "able-rt"))}, "")
	start("unable", 2, &postCopyRuntime{FakeRuntime: migrate.NewFakeRuntime(filepath.Join(c.dir, "unable-rt")),
		preflight: fmt.Errorf("%w: fs.pipe-max-size is too small", migrate.ErrPreflight)}, able.GossipAddr())
	start("plain", 3, nil, able.GossipAddr())
	want := map[string]bool{"able": true, "unable": false, "plain": false}
	waitFor(t, "all three nodes in able's view", 30*time.Second, func() bool {
		return len(able.view().Nodes) == 3
	})
	for _, n := range able.view().Nodes {
		if got := n.Labels[scheduler.LabelPostCopy] == "true"; got != want[n.Name] {
			t.Errorf("%s gossips %s=%q; want post-copy %v", n.Name, scheduler.LabelPostCopy, n.Labels[scheduler.LabelPostCopy], want[n.Name])
		}
	}
	for _, n := range scheduler.BuildView(able.view(), scheduler.ViewInputs{}).Nodes {
		if n.NoPostCopy == want[n.ID] {
			t.Errorf("view: %s NoPostCopy %v", n.ID, n.NoPostCopy)
		}
	}
	if !c.log.has("post-copy not offered: its pre-flight failed") {
		t.Error("the node whose pre-flight failed does not log why")
	}
}
