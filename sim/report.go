package sim

import (
	"html/template"
	"io"
	"strconv"
	"time"
)

// ReportInput is what the HTML report shows.
type ReportInput struct {
	Scenario *Scenario
	Summary  RunSummary
	Results  []*Result
}

var reportTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>godwit sim: {{.Name}}</title>
<style>
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:2em auto;max-width:920px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
figure{margin:1.5em 0}figcaption{font-size:90%;color:#555}
</style></head><body>
<h1>godwit simulation: {{.Name}}</h1>
<p>Seed {{.Seed}}, {{.Duration}} simulated, decisions every {{.Interval}}; {{.Nodes}} nodes in {{.Sites}} sites,
{{.Containers}} containers, {{.Users}} users. Policy <code>{{.Policy}}</code> compared with
the baselines (no migration, threshold and LowNodeUtilization rebalancers, a follow-the-users
mover) on the same load, users and events.</p>
<h2 id="summary">Summary</h2>
<table id="summary-table"><tr><th>metric</th>{{range .Arms}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range $i, $c := .}}<td>{{$c}}</td>{{end}}</tr>
{{end}}</table>
{{range .Plots}}<figure>{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}
{{if .Reasons}}<h2 id="reasons">Why containers stayed (policy arm)</h2>
<p>Reasons the decision engine gave, summed over every evaluation and managed container.</p>
<table><tr><th>reason</th><th>count</th></tr>
{{range .Reasons}}<tr><td>{{.Reason}}</td><td>{{.Count}}</td></tr>
{{end}}</table>{{end}}
{{if .Events}}<h2>Events</h2><ul>{{range .Events}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
`))

type figure struct {
	SVG     template.HTML
	Caption string
}

// WriteReport writes a self-contained HTML report with inline SVG plots: no script and
// nothing fetched, so it opens anywhere.
func WriteReport(w io.Writer, in ReportInput) error {
	sc := in.Scenario
	users := 0
	for _, c := range sc.Containers {
		for _, g := range c.Users {
			users += g.Count
		}
	}
	data := struct {
		Name, Duration, Interval, Policy string
		Seed                             uint64
		Nodes, Sites, Containers, Users  int
		Arms                             []string
		Rows                             [][]string
		Plots                            []figure
		Reasons                          []ReasonCount
		Events                           []string
	}{
		Name: sc.Name, Duration: sc.Duration.String(), Interval: sc.DecisionInterval.String(), Policy: in.Summary.Policy,
		Seed: sc.Seed, Nodes: len(sc.Nodes), Sites: len(sc.Sites), Containers: len(sc.Containers), Users: users,
		Rows: summaryRows(in.Summary.Arms),
	}
	for _, a := range in.Summary.Arms {
		data.Arms = append(data.Arms, a.Arm)
		if a.Arm == ArmPolicy {
			data.Reasons = a.Reasons
		}
	}
	for _, e := range sc.Events {
		s := e.At.String() + ": " + string(e.Type)
		if e.Node != "" {
			s += " " + e.Node
		}
		if e.PolicyFile != "" {
			s += " " + e.PolicyFile
		}
		data.Events = append(data.Events, s)
	}
	data.Plots = reportPlots(sc, in.Results)
	return reportTmpl.Execute(w, data)
}

func hours(d time.Duration) float64 { return d.Hours() }

func sampleSeries(r *Result, name, color string, f func(s *Sample) float64) series {
	s := series{Name: name, Color: color, X: make([]float64, len(r.Samples)), Y: make([]float64, len(r.Samples))}
	for i := range r.Samples {
		s.X[i] = hours(r.Samples[i].T)
		s.Y[i] = f(&r.Samples[i])
	}
	return s
}

func reportPlots(sc *Scenario, results []*Result) []figure {
	var out []figure
	add := func(p plot, caption string) {
		out = append(out, figure{SVG: template.HTML(p.svg()), Caption: caption})
	}
	perArm := func(title, ylabel string, f func(s *Sample) float64, hline float64, hlabel, caption string) {
		p := plot{Title: title, XLabel: "time (h)", YLabel: ylabel, HLine: hline, HLineLabel: hlabel}
		for i, r := range results {
			p.Series = append(p.Series, sampleSeries(r, r.Arm, palette[i%len(palette)], f))
		}
		add(p, caption)
	}
	perArm("Load imbalance", "stddev of node CPU utilisation", func(s *Sample) float64 { return s.Imbalance }, 0, "",
		"Standard deviation of CPU utilisation across live nodes: lower is more even.")
	perArm("Hottest node", "max node CPU utilisation", func(s *Sample) float64 { return s.MaxUtil }, sc.OverloadAbove, "overload",
		"CPU utilisation of the most loaded node; above the dashed line a node counts as overloaded.")
	for _, r := range results {
		p := plot{Title: "Load per node: " + r.Arm, XLabel: "time (h)", YLabel: "CPU utilisation", HLine: sc.OverloadAbove, HLineLabel: "overload"}
		if len(r.NodeUtil) > 0 {
			for n := range r.NodeNames {
				s := series{Name: r.NodeNames[n], Color: palette[n%len(palette)], Thin: true}
				for i, row := range r.NodeUtil {
					s.X = append(s.X, hours(r.Samples[i].T))
					s.Y = append(s.Y, float64(row[n]))
				}
				p.Series = append(p.Series, s)
			}
		}
		p.Series = append(p.Series,
			sampleSeries(r, "mean", "#000", func(s *Sample) float64 { return s.MeanUtil }),
			sampleSeries(r, "max", "#d62728", func(s *Sample) float64 { return s.MaxUtil }))
		add(p, "Each faint line is one node's CPU utilisation ("+r.Arm+" arm); bold lines are the mean and the maximum.")
	}
	for _, r := range results {
		p := plot{Title: "User latency: " + r.Arm, XLabel: "time (h)", YLabel: "latency (ms)", HLine: sc.SLO.LatencyMs, HLineLabel: "SLO"}
		p.Series = []series{
			sampleSeries(r, "p50", palette[0], func(s *Sample) float64 { return s.LatencyP50 }),
			sampleSeries(r, "p95", palette[3], func(s *Sample) float64 { return s.LatencyP95 }),
			sampleSeries(r, "p99", palette[1], func(s *Sample) float64 { return s.LatencyP99 }),
		}
		add(p, "User-perceived latency percentiles over available users ("+r.Arm+" arm); the dashed line is the SLO.")
	}
	perArm("SLO violations", "share of users (%)", func(s *Sample) float64 {
		if s.Users == 0 {
			return 0
		}
		return 100 * float64(s.Violations) / float64(s.Users)
	}, 0, "", "Share of users above the latency SLO or whose container is down.")
	// Migrations per hour, grouped bars.
	bucket, per := time.Hour, "hour"
	if sc.Duration <= 2*time.Hour {
		bucket, per = 5*time.Minute, "5 minutes"
	}
	nb := int((sc.Duration + bucket - 1) / bucket)
	p := plot{Title: "Migrations started per " + per, XLabel: "time (h)", YLabel: "migrations", Bars: true}
	for i, r := range results {
		s := series{Name: r.Arm, Color: palette[i%len(palette)], X: make([]float64, nb), Y: make([]float64, nb)}
		for b := range nb {
			s.X[b] = hours(time.Duration(b) * bucket)
		}
		for _, m := range r.Migrations {
			if b := int(m.Start / bucket); b < nb {
				s.Y[b]++
			}
		}
		p.Series = append(p.Series, s)
	}
	add(p, "Migrations started in each interval, per arm ("+strconv.Itoa(nb)+" intervals).")
	return out
}
