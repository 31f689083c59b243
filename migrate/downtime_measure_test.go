package migrate_test

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
)

var (
	measureDowntime = flag.Bool("downtime.measure", false, "run TestMeasureDowntime (make measure-postcopy; several minutes)")
	downtimeSizes   = flag.String("downtime.sizes", "64,256,1024", "memhog sizes in MiB for TestMeasureDowntime")
	downtimeRepeats = flag.Int("downtime.repeats", 1, "round trips per method and size for TestMeasureDowntime")
)

// TestMeasureDowntime measures stop-and-copy against post-copy in the same run, on the same
// engines and sizes: each round trip migrates the memhog container there and back with each
// method, checking its memory and ticks every time. It prints the median downtime per method
// and size, the ratio post-copy/stop-and-copy, and a least-squares line per method (fixed
// cost + slope per GiB). Not part of make test: `make measure-postcopy`.
func TestMeasureDowntime(t *testing.T) {
	if !*measureDowntime {
		t.Skip("a measurement, not a test: run with -downtime.measure (make measure-postcopy)")
	}
	requirePostCopy(t)
	ctx := context.Background()
	ca := testCA{dir: t.TempDir()}
	n1 := startPostCopyNode(t, ca, "pm1", "127.0.104.3")
	n2 := startPostCopyNode(t, ca, "pm2", "127.0.104.4")
	cli1, _ := n1.engine.Client()
	defer cli1.Close()
	if err := workload.BuildImage(ctx, cli1); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, s := range strings.Split(*downtimeSizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 {
			t.Fatalf("-downtime.sizes: %q is not a size in MiB", s)
		}
		sizes = append(sizes, v)
	}
	methods := []string{migrate.MethodStopAndCopy, migrate.MethodPostCopy}
	type key struct {
		method string
		mib    int
	}
	downtime := map[key][]float64{}
	total := map[key][]float64{}
	pages := map[key][]float64{}
	for _, mib := range sizes {
		name := fmt.Sprintf("wm%d", mib)
		n1.run(t, name, mib, nil)
		// Filling the memory takes a while on a loaded machine.
		if _, err := workload.WaitState(ctx, cli1, name, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < *downtimeRepeats; r++ {
			for _, method := range methods {
				for _, hop := range [][2]*node{{n1, n2}, {n2, n1}} {
					src, dst := hop[0], hop[1]
					before := src.state(t, name)
					start := time.Now()
					rep, err := src.migrate(ctx, name, dst, migrate.Order{Method: method})
					wall := time.Since(start)
					if err != nil {
						t.Fatalf("%s %d MiB %s→%s: %v", method, mib, src.name, dst.name, err)
					}
					sameWorkload(t, before, dst.state(t, name))
					k := key{method, mib}
					downtime[k] = append(downtime[k], rep.Downtime.Seconds())
					total[k] = append(total[k], wall.Seconds())
					pages[k] = append(pages[k], rep.PagesSeconds)
					t.Logf("%-13s %5d MiB %s→%s downtime %.3fs total %.2fs pages %.2fs phases %v steps %v", method, mib, src.name, dst.name, rep.Downtime.Seconds(), wall.Seconds(), rep.PagesSeconds, rep.Phases, rep.Steps)
				}
			}
		}
		cli1.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-8s %-14s %12s %12s %14s %18s\n", "MiB", "method", "downtime s", "total s", "all pages s", "post/stop downtime")
	for _, mib := range sizes {
		for _, method := range methods {
			k := key{method, mib}
			ratio := ""
			if method == migrate.MethodPostCopy {
				ratio = fmt.Sprintf("%.2f", median(downtime[k])/median(downtime[key{migrate.MethodStopAndCopy, mib}]))
			}
			fmt.Fprintf(&b, "%-8d %-14s %12.3f %12.2f %14.2f %18s\n", mib, method, median(downtime[k]), median(total[k]), median(pages[k]), ratio)
		}
	}
	if len(sizes) >= 2 {
		for _, method := range methods {
			var xs, ys []float64
			for _, mib := range sizes {
				for _, d := range downtime[key{method, mib}] {
					xs = append(xs, float64(mib)/1024)
					ys = append(ys, d)
				}
			}
			a, s := fitLine(xs, ys)
			fmt.Fprintf(&b, "%-14s downtime ≈ %.3f s + %.3f s/GiB (fixed cost and slope, least squares over every sample)\n", method, a, s)
		}
	}
	t.Log(b.String())
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fitLine returns the least-squares intercept and slope of ys over xs.
func fitLine(xs, ys []float64) (intercept, slope float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return sy / n, 0
	}
	slope = (n*sxy - sx*sy) / d
	return (sy - slope*sx) / n, slope
}
