package sim

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// series is one line of a plot.
type series struct {
	Name  string
	Color string
	X, Y  []float64
	// Thin lines are drawn faint and left out of the legend (per-node loads).
	Thin bool
}

// plot is a line or bar chart drawn as inline SVG: no script, no external resource.
type plot struct {
	Title, XLabel, YLabel string
	Series                []series
	Bars                  bool    // draw the series as grouped bars
	HLine                 float64 // a dashed reference line (0: none)
	HLineLabel            string
}

const (
	plotW, plotH           = 880, 300
	padL, padR, padT, padB = 60, 150, 30, 40
	innerW, innerH         = plotW - padL - padR, plotH - padT - padB
	maxPlotPoints          = 600
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// downsample keeps at most maxPlotPoints points, each the max of its bucket so that peaks
// stay visible.
func downsample(x, y []float64) ([]float64, []float64) {
	if len(x) <= maxPlotPoints {
		return x, y
	}
	k := (len(x) + maxPlotPoints - 1) / maxPlotPoints
	var ox, oy []float64
	for i := 0; i < len(x); i += k {
		m := y[i]
		for j := i; j < i+k && j < len(y); j++ {
			m = math.Max(m, y[j])
		}
		ox = append(ox, x[i])
		oy = append(oy, m)
	}
	return ox, oy
}

// svg renders the plot.
func (p *plot) svg() string {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymax := 0.0
	for _, s := range p.Series {
		for i := range s.X {
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			ymax = math.Max(ymax, s.Y[i])
		}
	}
	ymax = math.Max(ymax, p.HLine)
	if math.IsInf(xmin, 1) {
		xmin, xmax = 0, 1
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if ymax <= 0 {
		ymax = 1
	}
	yt := niceTicks(0, ymax*1.05, 5)
	ytop := yt[len(yt)-1]
	if ytop < ymax {
		ytop = ymax
	}
	sx := func(v float64) float64 { return padL + (v-xmin)/(xmax-xmin)*innerW }
	sy := func(v float64) float64 { return padT + innerH - v/ytop*innerH }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		plotW, plotH, plotW, plotH, html.EscapeString(p.Title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, padL, html.EscapeString(p.Title))
	// grid and axes
	for _, v := range yt {
		y := sy(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`, padL, y, padL+innerW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`, padL-5, y+4, fmtTick(v))
	}
	for _, v := range niceTicks(xmin, xmax, 8) {
		x := sx(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`, x, padT, x, padT+innerH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`, x, padT+innerH+15, fmtTick(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, padL, padT, innerW, innerH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="middle">%s</text>`, padL+innerW/2, plotH-5, html.EscapeString(p.XLabel))
	fmt.Fprintf(&b, `<text x="14" y="%d" font-size="12" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`, padT+innerH/2, padT+innerH/2, html.EscapeString(p.YLabel))
	if p.HLine > 0 {
		y := sy(p.HLine)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#555" stroke-dasharray="5,4"/>`, padL, y, padL+innerW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11">%s</text>`, padL+innerW+4, y+4, html.EscapeString(p.HLineLabel))
	}
	if p.Bars {
		p.bars(&b, sx, sy, xmin, xmax)
	} else {
		for _, s := range p.Series {
			x, y := downsample(s.X, s.Y)
			var pts strings.Builder
			for i := range x {
				fmt.Fprintf(&pts, "%.1f,%.1f ", sx(x[i]), sy(y[i]))
			}
			width, opacity := "1.6", "1"
			if s.Thin {
				width, opacity = "0.7", "0.35"
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%s" stroke-opacity="%s" points="%s"><title>%s</title></polyline>`,
				s.Color, width, opacity, strings.TrimSpace(pts.String()), html.EscapeString(s.Name))
		}
	}
	// legend
	ly := padT + 10
	for _, s := range p.Series {
		if s.Thin {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, padL+innerW+10, ly-10, s.Color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12">%s</text>`, padL+innerW+26, ly, html.EscapeString(s.Name))
		ly += 18
	}
	b.WriteString("</svg>")
	return b.String()
}

func (p *plot) bars(b *strings.Builder, sx, sy func(float64) float64, xmin, xmax float64) {
	n := len(p.Series)
	if n == 0 || len(p.Series[0].X) == 0 {
		return
	}
	slot := innerW / float64(len(p.Series[0].X))
	w := math.Max(1, slot*0.8/float64(n))
	for k, s := range p.Series {
		for i := range s.X {
			if s.Y[i] <= 0 {
				continue
			}
			x := padL + float64(i)*slot + slot*0.1 + float64(k)*w
			y := sy(s.Y[i])
			fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
				x, y, w, padT+innerH-y, s.Color, html.EscapeString(s.Name), fmtTick(s.Y[i]))
		}
	}
}
