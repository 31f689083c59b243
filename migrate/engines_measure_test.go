package migrate_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/testenv"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

// measureBaseline is the engine the others are compared with: the oldest.
const measureBaseline = "20.10"

var (
	measureEngines = flag.Bool("engines.measure", false, "TestMeasureEngineDowntime: measure the downtime of a 256 MiB migration on each installed engine")
	measureRounds  = flag.Int("engines.rounds", 3, "TestMeasureEngineDowntime: migrations per engine")
)

// TestMeasureEngineDowntime measures the downtime of the same 256 MiB stop-and-copy migration
// on each installed Docker engine, in one run, and reports each engine's median as a ratio of
// Docker 20.10's. Each engine gets two nodes; rounds take the engines in a rotating order so
// that the machine's load drifts over all of them alike. The workload is what can move on
// each engine (network none; networking disabled on Docker 28).
//
//	go test -count=1 -v -run TestMeasureEngineDowntime -engines.measure ./migrate/
func TestMeasureEngineDowntime(t *testing.T) {
	if !*measureEngines {
		t.Skip("a measurement, not a check: run with -engines.measure")
	}
	testenv.RequireRoot(t)
	testenv.RequireCRIU(t)
	ctx := context.Background()
	ca := testCA{dir: t.TempDir()}
	type pair struct {
		version string
		a, b    *node
		onA     bool
		down    []time.Duration
		phases  map[string][]time.Duration
	}
	var pairs []*pair
	for i, v := range dockerd.Versions {
		if _, err := dockerd.Lookup(v); err != nil {
			t.Logf("Docker %s not installed, not measured: %v", v, err)
			continue
		}
		p := &pair{version: v, onA: true, phases: map[string][]time.Duration{}}
		p.a = startNodeOn(t, ca, fmt.Sprintf("me%da", i), fmt.Sprintf("127.0.105.%d", 10+2*i), migrate.DockerPolicy{}, v)
		p.b = startNodeOn(t, ca, fmt.Sprintf("me%db", i), fmt.Sprintf("127.0.105.%d", 11+2*i), migrate.DockerPolicy{}, v)
		cli, _ := p.a.engine.Client()
		if err := workload.BuildImage(ctx, cli); err != nil {
			t.Fatal(err)
		}
		cli.Close()
		p.a.run(t, "wm", 256, nil)
		pairs = append(pairs, p)
	}
	if len(pairs) == 0 {
		t.Fatal("no engine installed")
	}
	for r := 0; r < *measureRounds; r++ {
		for k := range pairs {
			p := pairs[(r+k)%len(pairs)]
			from, to := p.a, p.b
			if !p.onA {
				from, to = p.b, p.a
			}
			before := from.state(t, "wm")
			rep, err := from.migrate(ctx, "wm", to, migrate.Order{})
			if err != nil {
				t.Fatalf("Docker %s: %v", p.version, err)
			}
			sameWorkload(t, before, to.state(t, "wm"))
			p.onA = !p.onA
			p.down = append(p.down, rep.Downtime)
			for _, ph := range rep.Phases {
				p.phases[ph.Phase] = append(p.phases[ph.Phase], ph.Duration)
			}
		}
	}
	var base time.Duration
	for _, p := range pairs {
		if p.version == measureBaseline {
			base = engineMedian(p.down)
		}
	}
	for _, p := range pairs {
		m := engineMedian(p.down)
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", float64(m)/float64(base))
		}
		var ph []string
		for _, name := range []string{"checkpoint", "transfer", "restore"} {
			ph = append(ph, fmt.Sprintf("%s %.2fs", name, engineMedian(p.phases[name]).Seconds()))
		}
		t.Logf("Docker %-5s downtime median %.2fs (runs %v), x%s of %s; %s", p.version, m.Seconds(), engineSecs(p.down), ratio, measureBaseline, strings.Join(ph, ", "))
	}
}

func engineMedian(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func engineSecs(d []time.Duration) string {
	out := make([]string, len(d))
	for i, v := range d {
		out[i] = fmt.Sprintf("%.2f", v.Seconds())
	}
	return strings.Join(out, " ")
}
