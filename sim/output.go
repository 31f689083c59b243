package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

func ff(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

// WriteTimeSeriesCSV writes every arm's samples, one row per arm and sample time.
func WriteTimeSeriesCSV(w io.Writer, results []*Result) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("arm,t_s,mean_util,max_util,imbalance,overloaded_nodes,latency_p50_ms,latency_p95_ms,latency_p99_ms,users,slo_violations,unavailable,in_flight,started,completed,downtime_s,bytes_moved\n")
	for _, r := range results {
		for _, s := range r.Samples {
			fmt.Fprintf(bw, "%s,%d,%s,%s,%s,%d,%s,%s,%s,%d,%d,%d,%d,%d,%d,%s,%d\n",
				r.Arm, int64(s.T/time.Second), ff(s.MeanUtil, 4), ff(s.MaxUtil, 4), ff(s.Imbalance, 4), s.Overloaded,
				ff(s.LatencyP50, 2), ff(s.LatencyP95, 2), ff(s.LatencyP99, 2), s.Users, s.Violations, s.Unavailable,
				s.InFlight, s.Started, s.Completed, ff(s.DowntimeS, 3), s.BytesMoved)
		}
	}
	return bw.Flush()
}

// WriteMigrationsCSV writes every arm's migrations.
func WriteMigrationsCSV(w io.Writer, results []*Result) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("arm,id,container,from,to,start_s,end_s,predicted_downtime_s,downtime_s,bytes,completed\n")
	for _, r := range results {
		for _, m := range r.Migrations {
			fmt.Fprintf(bw, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%d,%t\n", r.Arm, m.ID, m.Container, m.From, m.To,
				ff(m.Start.Seconds(), 3), ff(m.End.Seconds(), 3), ff(m.Predicted.Seconds(), 3), ff(m.Downtime.Seconds(), 3), m.Bytes, m.Completed)
		}
	}
	return bw.Flush()
}

// WriteNodesCSV writes each node's utilisation per sample (results run with KeepNodeSeries).
func WriteNodesCSV(w io.Writer, results []*Result) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("arm,t_s,node,cpu_util\n")
	for _, r := range results {
		for i, row := range r.NodeUtil {
			t := int64(r.Samples[i].T / time.Second)
			for n, u := range row {
				fmt.Fprintf(bw, "%s,%d,%s,%s\n", r.Arm, t, r.NodeNames[n], ff(float64(u), 4))
			}
		}
	}
	return bw.Flush()
}

// RunSummary is the JSON summary of a run.
type RunSummary struct {
	Scenario string    `json:"scenario"`
	Seed     uint64    `json:"seed"`
	Duration string    `json:"duration"`
	Policy   string    `json:"policy"`
	Arms     []Summary `json:"arms"`
}

// NewRunSummary gathers the arms' summaries.
func NewRunSummary(sc *Scenario, policyName string, results []*Result) RunSummary {
	s := RunSummary{Scenario: sc.Name, Seed: sc.Seed, Duration: sc.Duration.String(), Policy: policyName}
	for _, r := range results {
		s.Arms = append(s.Arms, r.Summary)
	}
	return s
}

// WriteSummaryJSON writes the summary as indented JSON.
func WriteSummaryJSON(w io.Writer, s RunSummary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// summaryRows are the table's rows: a label and the value for each arm.
func summaryRows(arms []Summary) [][]string {
	row := func(label string, f func(s Summary) string) []string {
		r := []string{label}
		for _, s := range arms {
			r = append(r, f(s))
		}
		return r
	}
	return [][]string{
		row("migrations (completed/rolled back)", func(s Summary) string {
			return fmt.Sprintf("%d (%d/%d)", s.Migrations, s.Completed, s.RolledBack)
		}),
		row("ping-pongs within 1h", func(s Summary) string { return strconv.Itoa(s.PingPongs) }),
		row("downtime total / max (s)", func(s Summary) string { return ff(s.DowntimeS, 1) + " / " + ff(s.MaxDowntimeS, 1) }),
		row("bytes moved (GiB)", func(s Summary) string { return ff(float64(s.BytesMoved)/(1<<30), 1) }),
		row("mean load imbalance (stddev)", func(s Summary) string { return ff(s.MeanImbalance, 3) }),
		row("overloaded node-minutes", func(s Summary) string { return ff(s.OverloadedNodeMinutes, 0) }),
		row("latency p50 / p95 / p99 (ms)", func(s Summary) string {
			return ff(s.LatencyP50, 1) + " / " + ff(s.LatencyP95, 1) + " / " + ff(s.LatencyP99, 1)
		}),
		row("SLO violations (user-min, rate)", func(s Summary) string {
			return ff(s.SLOViolationUserMinutes, 0) + " (" + ff(100*s.SLOViolationRate, 2) + "%)"
		}),
		row("unavailable user-minutes", func(s Summary) string { return ff(s.UnavailableUserMinutes, 0) }),
		row("node failures / cold restarts", func(s Summary) string { return fmt.Sprintf("%d / %d", s.NodeFailures, s.Restarts) }),
		row("decisions refused on commit", func(s Summary) string {
			out := strconv.Itoa(s.StaleDecisions)
			for i, r := range s.Refused {
				sep := ", "
				if i == 0 {
					sep = " ("
				}
				out += sep + string(r.Reason) + " " + strconv.Itoa(r.Count)
			}
			if len(s.Refused) > 0 {
				out += ")"
			}
			return out
		}),
	}
}

// WriteSummaryTable writes the arms side by side for people.
func WriteSummaryTable(w io.Writer, s RunSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario %s, seed %d, %s, policy %s\n\n", s.Scenario, s.Seed, s.Duration, s.Policy)
	head := "metric"
	for _, a := range s.Arms {
		head += "\t" + a.Arm
	}
	fmt.Fprintln(tw, head)
	for _, r := range summaryRows(s.Arms) {
		line := r[0]
		for _, c := range r[1:] {
			line += "\t" + c
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
