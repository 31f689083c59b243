package policy

import (
	"math"
	"slices"
	"time"
)

// Observation is what one real migration measured, for refitting the cost model. Zero
// durations or sizes mean "not measured" and leave that line out.
type Observation struct {
	MemoryBytes int64         `json:"memoryBytes"`
	Checkpoint  time.Duration `json:"checkpoint,omitempty"`
	Restore     time.Duration `json:"restore,omitempty"`
	ImageBytes  int64         `json:"imageBytes,omitempty"`
	// Freeze is a post-copy migration's downtime less the link's RTT (its checkpoint and
	// restore are not measured apart); zero for stop-and-copy.
	Freeze time.Duration `json:"freeze,omitempty"`
}

// DefaultFitWindow is how many of the most recent observations Fit uses: enough to average
// out noise, few enough that the model follows changes of hardware or kernel.
const DefaultFitWindow = 200

// Fit refits the model's checkpoint, restore, image and post-copy freeze lines from the
// last window observations (window <= 0 means DefaultFitWindow; obs is oldest first).
// Each line is a robust least-squares fit (Huber IRLS), so a few outliers (a migration
// that hit a busy disk) barely move it. A line with too few usable points keeps base's
// coefficients; with points at a single memory size only its intercept is refitted.
// Transfer settings are kept from base.
func Fit(base CostModel, obs []Observation, window int) CostModel {
	if window <= 0 {
		window = DefaultFitWindow
	}
	if len(obs) > window {
		obs = obs[len(obs)-window:]
	}
	var cx, cy, rx, ry, ix, iy, fx, fy []float64
	for _, o := range obs {
		if o.MemoryBytes <= 0 {
			continue
		}
		x := float64(o.MemoryBytes) / GiB
		if o.Checkpoint > 0 {
			cx, cy = append(cx, x), append(cy, o.Checkpoint.Seconds())
		}
		if o.Restore > 0 {
			rx, ry = append(rx, x), append(ry, o.Restore.Seconds())
		}
		if o.ImageBytes > 0 {
			ix, iy = append(ix, x), append(iy, float64(o.ImageBytes)/GiB)
		}
		if o.Freeze > 0 {
			fx, fy = append(fx, x), append(fy, o.Freeze.Seconds())
		}
	}
	m := base
	m.Checkpoint = FitLine(base.Checkpoint, cx, cy)
	m.Restore = FitLine(base.Restore, rx, ry)
	m.Image = FitLine(base.Image, ix, iy)
	m.PostCopy.Freeze = FitLine(base.PostCopy.Freeze, fx, fy)
	return m
}

// huberK is the Huber threshold in robust standard deviations: 95% efficiency on clean
// Gaussian noise.
const huberK = 1.345

// FitLine fits y = a + b*x robustly (iteratively reweighted least squares with Huber
// weights, scale from the median absolute deviation). Residuals beyond 3 robust standard
// deviations count as outliers and are left out of RMSE. Too few points (or none) return
// prior unchanged; points at a single x refit only the intercept.
func FitLine(prior Linear, xs, ys []float64) Linear {
	n := len(xs)
	if n == 0 || n != len(ys) {
		return prior
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	a, b := prior.Intercept, prior.Slope
	xmin, xmax := slices.Min(xs), slices.Max(xs)
	slopeFree := n >= 3 && xmax-xmin > 1e-9*math.Max(1, math.Abs(xmax))
	res := make([]float64, n)
	scale := 0.0
	for iter := 0; iter < 50; iter++ {
		na, nb := weightedFit(xs, ys, w, slopeFree, b)
		done := iter > 0 && math.Abs(na-a) < 1e-12 && math.Abs(nb-b) < 1e-12
		a, b = na, nb
		for i := range xs {
			res[i] = ys[i] - (a + b*xs[i])
		}
		scale = robustScale(res)
		if scale == 0 || done {
			break
		}
		for i, r := range res {
			if u := math.Abs(r) / (huberK * scale); u > 1 {
				w[i] = 1 / u
			} else {
				w[i] = 1
			}
		}
	}
	out := Linear{Intercept: a, Slope: b, N: n}
	var sum float64
	var kept int
	for _, r := range res {
		if scale > 0 && math.Abs(r) > 3*scale {
			out.Outliers++
			continue
		}
		sum += r * r
		kept++
	}
	if kept > 0 {
		out.RMSE = math.Sqrt(sum / float64(kept))
	}
	return out
}

// weightedFit is weighted least squares; without a free slope it fits the intercept with
// the slope held at b.
func weightedFit(xs, ys, w []float64, slopeFree bool, b float64) (float64, float64) {
	var sw, sx, sy, sxx, sxy float64
	for i := range xs {
		sw += w[i]
		sx += w[i] * xs[i]
		sy += w[i] * ys[i]
	}
	if !slopeFree {
		return (sy - b*sx) / sw, b
	}
	mx, my := sx/sw, sy/sw
	for i := range xs {
		dx := xs[i] - mx
		sxx += w[i] * dx * dx
		sxy += w[i] * dx * (ys[i] - my)
	}
	if sxx == 0 {
		return (sy - b*sx) / sw, b
	}
	slope := sxy / sxx
	return my - slope*mx, slope
}

// robustScale is the median absolute deviation scaled to a Gaussian standard deviation.
func robustScale(res []float64) float64 {
	abs := make([]float64, len(res))
	for i, r := range res {
		abs[i] = math.Abs(r)
	}
	slices.Sort(abs)
	mid := len(abs) / 2
	med := abs[mid]
	if len(abs)%2 == 0 {
		med = (abs[mid-1] + abs[mid]) / 2
	}
	return 1.4826 * med
}
