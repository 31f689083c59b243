package dockerd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
)

func TestTwoEnginesRunWorkload(t *testing.T) {
	testenv.RequireDockerd(t)
	ctx := context.Background()
	var engines []*dockerd.Engine
	for _, name := range []string{"t1", "t2"} {
		e, err := dockerd.Start(ctx, dockerd.Config{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(context.Background()) })
		engines = append(engines, e)
	}
	cli, err := engines[0].Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := workload.BuildImage(ctx, cli); err != nil {
		t.Fatal(err)
	}
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: workload.Image, Cmd: workload.Cmd(16)},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var st workload.State
	for i := 0; i < 50; i++ {
		st, err = workload.Probe(ctx, info.State.Pid, workload.Port)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.MiB != 16 {
		t.Fatalf("state %v", st)
	}
	// The second engine does not see the first one's container.
	cli2, _ := engines[1].Client()
	defer cli2.Close()
	list, err := cli2.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil || len(list) != 0 {
		t.Fatalf("engine t2 sees %d containers (err %v)", len(list), err)
	}
	// The engine is the version this run selected (GODWIT_ENGINE), not whatever is on PATH.
	want, _ := dockerd.SelectedVersion()
	ver, err := cli.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if engines[0].Version != want || !strings.HasPrefix(ver.Version, want+".") {
		t.Fatalf("started Docker %s (engine says %s), want %s", engines[0].Version, ver.Version, want)
	}
	t.Logf("Docker %s (API %s), runc root %s, state %v", ver.Version, ver.APIVersion, engines[0].RuncRoot(), st)
}
