package sim

import (
	"html/template"
	"io"
)

var suiteTmpl = template.Must(template.New("suite").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>godwit sim suite</title>
<style>
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td.l,th.l{text-align:left}th{background:#f3f3f3}tr.policy{font-weight:bold}
td.miss{background:#fde0dc}td.met{background:#e0f5e0}
</style></head><body>
<h1>godwit simulation suite</h1>
<p>Policy <code>{{.Policy}}</code>, the same on every scenario, against every baseline on the
same load, users and events. Ratios are the policy's against the baselines of the same run:
its SLO-violation rate against the best baseline's (goal: at most {{.MaxSLO}}x), its total
downtime against the threshold rebalancer's (goal: at most 1x).</p>
<table id="suite-table"><tr><th class="l">scenario</th><th>seed</th><th class="l">arm</th><th>SLO viol. %</th>
<th>overloaded node-min</th><th>migrations</th><th>downtime s</th><th>max downtime s</th><th>post-copy degraded s</th><th>ping-pongs</th>
<th>SLO / best baseline</th><th>downtime / threshold</th></tr>
{{range .Lines}}<tr{{if .Policy}} class="policy"{{end}}><td class="l">{{.Scenario}}</td><td>{{.Seed}}</td><td class="l">{{.Arm}}</td>
<td>{{.SLO}}</td><td>{{.Overload}}</td><td>{{.Migrations}}</td><td>{{.Downtime}}</td><td>{{.MaxDowntime}}</td><td>{{.Degraded}}</td><td>{{.PingPongs}}</td>
<td{{if .Policy}} class="{{if .SLOMet}}met{{else}}miss{{end}}"{{end}}>{{.SLORatio}}</td>
<td{{if .Policy}} class="{{if .DowntimeMet}}met{{else}}miss{{end}}"{{end}}>{{.DowntimeRatio}}</td></tr>
{{end}}</table>
{{if .Misses}}<h2>Goals missed</h2><ul>{{range .Misses}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>Every goal met.</p>{{end}}
</body></html>
`))

// WriteSuiteReport writes the suite's table as a self-contained HTML page, the policy's
// ratios marked met or missed against the goals (maxSLORatio: see SuiteVerdict).
func WriteSuiteReport(w io.Writer, rows []SuiteRow, policyName string, maxSLORatio float64) error {
	type line struct {
		Scenario                                  string
		Seed                                      uint64
		Arm, SLO, Overload, Downtime, MaxDowntime string
		Degraded                                  string
		Migrations, PingPongs                     int
		Policy, SLOMet, DowntimeMet               bool
		SLORatio, DowntimeRatio                   string
	}
	var lines []line
	for _, r := range rows {
		bestBase := -1.0
		for _, s := range r.Arms {
			if s.Arm != ArmPolicy && (bestBase < 0 || s.SLOViolationRate < bestBase) {
				bestBase = s.SLOViolationRate
			}
		}
		thr, hasThr := r.Arm(ArmThreshold)
		for _, s := range r.Arms {
			l := line{Scenario: r.Scenario, Seed: r.Seed, Arm: s.Arm, SLO: ff(100*s.SLOViolationRate, 2),
				Overload: ff(s.OverloadedNodeMinutes, 0), Migrations: s.Migrations, Downtime: ff(s.DowntimeS, 0),
				MaxDowntime: ff(s.MaxDowntimeS, 1), Degraded: ff(s.DegradedS, 0), PingPongs: s.PingPongs}
			if s.Arm == ArmPolicy {
				l.Policy = true
				l.SLORatio = ratio(s.SLOViolationRate, bestBase)
				l.SLOMet = bestBase >= 0 && s.SLOViolationRate <= maxSLORatio*bestBase
				if hasThr {
					l.DowntimeRatio = ratio(s.DowntimeS, thr.DowntimeS)
					l.DowntimeMet = s.DowntimeS <= thr.DowntimeS
				}
			}
			lines = append(lines, l)
		}
	}
	return suiteTmpl.Execute(w, struct {
		Policy string
		MaxSLO float64
		Lines  []line
		Misses []string
	}{policyName, maxSLORatio, lines, SuiteVerdict(rows, maxSLORatio)})
}
