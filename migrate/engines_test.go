package migrate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// TestCrossEngineMigration moves workloads between Docker 20.10 (containerd 1.6) and Docker
// 28.5 (containerd 2.1), whatever GODWIT_ENGINE says. Docker 28 restores checkpoints only
// into containers without a network namespace or /etc mounts of Docker's, which engines
// before it always set up: a checkpoint from 20.10 is refused by a 28.5 target before the
// freeze, and one from 28.5 (networking disabled) restores on 20.10.
func TestCrossEngineMigration(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCRIU(t)
	for _, v := range []string{"20.10", "28.5"} {
		if _, err := dockerd.Lookup(v); err != nil {
			t.Skipf("needs Docker %s (`make deps` installs it): %v", v, err)
		}
	}
	ctx := context.Background()
	ca := testCA{dir: t.TempDir()}
	old := startNodeOn(t, ca, "xo", "127.0.105.1", migrate.DockerPolicy{}, "20.10")
	cur := startNodeOn(t, ca, "xn", "127.0.105.2", migrate.DockerPolicy{}, "28.5")
	cli, _ := old.engine.Client()
	defer cli.Close()
	if err := workload.BuildImage(ctx, cli); err != nil {
		t.Fatal(err)
	}

	t.Run("network none from 20.10 to 28.5: refused before the freeze, naming the engine", func(t *testing.T) {
		old.run(t, "wnone", 16, nil)
		before := old.state(t, "wnone")
		_, err := old.migrate(ctx, "wnone", cur, migrate.Order{})
		if !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), "Docker 28") {
			t.Fatalf("err = %v, want a pre-flight refusal naming Docker 28", err)
		}
		t.Logf("refused: %v", err)
		sameWorkload(t, before, old.state(t, "wnone"))
		if _, all := cur.containers(t); all != 0 {
			t.Fatalf("the 28.5 node kept %d containers", all)
		}
		cli.ContainerRemove(ctx, "wnone", container.RemoveOptions{Force: true})
	})

	t.Run("networking disabled: 28.5 to 20.10 moves; back to 28.5 is refused before the freeze", func(t *testing.T) {
		cli2, _ := cur.engine.Client()
		defer cli2.Close()
		if err := workload.BuildImage(ctx, cli2); err != nil {
			t.Fatal(err)
		}
		c, err := cli2.ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(64), NetworkDisabled: true,
			Labels: map[string]string{migrate.LabelManaged: "true", migrate.LabelProbePort: strconv.Itoa(workload.Port)}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "wx")
		if err != nil {
			t.Fatal(err)
		}
		if err := cli2.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		before := cur.state(t, "wx")
		rep, err := cur.migrate(ctx, "wx", old, migrate.Order{})
		if err != nil {
			t.Fatalf("28.5 -> 20.10: %v", err)
		}
		sameWorkload(t, before, old.state(t, "wx"))
		t.Logf("28.5 -> 20.10: downtime %v", rep.Downtime)
		if r, all := cur.containers(t); all != 0 {
			t.Fatalf("the 28.5 node keeps %d containers (%d running)", all, r)
		}

		before = old.state(t, "wx")
		_, err = old.migrate(ctx, "wx", cur, migrate.Order{})
		if !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), "Docker 28") {
			t.Fatalf("20.10 -> 28.5: err = %v, want a pre-flight refusal naming Docker 28", err)
		}
		t.Logf("refused: %v", err)
		sameWorkload(t, before, old.state(t, "wx"))
		if r, _ := old.containers(t); r != 1 {
			t.Fatalf("the 20.10 node runs %d containers, want 1", r)
		}
	})
}
