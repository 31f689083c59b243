package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	dto "github.com/prometheus/client_model/go"
)

// dashboardFile is the Grafana dashboard shipped in configs/.
var dashboardFile = filepath.Join("..", "..", "configs", "grafana", "godwit.json")

// checkDashboard fails for every metric a query of the dashboard names that families (a
// live server agent's /metrics) does not have, for every label a query uses that none of
// its metrics has, and for a query that names no metric.
func checkDashboard(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	queries := 0
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, tg := range p.Targets {
				queries++
				names, labels := promQLRefs(tg.Expr)
				if len(names) == 0 {
					t.Errorf("%s: panel %q query %s: no metric name in %q", dashboardFile, p.Title, tg.RefID, tg.Expr)
				}
				have := map[string]bool{"instance": true, "job": true} // added by Prometheus
				for _, n := range names {
					f := family(families, n)
					if f == nil {
						t.Errorf("%s: panel %q query %s uses %s, which the agent does not export", dashboardFile, p.Title, tg.RefID, n)
						continue
					}
					switch f.GetType() {
					case dto.MetricType_HISTOGRAM:
						have["le"] = true
					case dto.MetricType_SUMMARY:
						have["quantile"] = true
					}
					for _, m := range f.GetMetric() {
						for _, l := range m.GetLabel() {
							have[l.GetName()] = true
						}
					}
				}
				for _, l := range labels {
					if !have[l] {
						t.Errorf("%s: panel %q query %s uses the label %s, which none of %v has", dashboardFile, p.Title, tg.RefID, l, names)
					}
				}
			}
		}
	}
	walk(dash.Panels)
	if queries == 0 {
		t.Errorf("%s: no queries", dashboardFile)
	}
}

type dashboardPanel struct {
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

// family is the family name names in families, or the histogram or summary whose
// _bucket, _sum or _count series name is (nil when none).
func family(families map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := families[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f := families[base]; f != nil {
			typ := f.GetType()
			if typ == dto.MetricType_HISTOGRAM || (typ == dto.MetricType_SUMMARY && suffix != "_bucket") {
				return f
			}
		}
	}
	return nil
}

// promQLKeywords are the identifiers of PromQL that are not metric names (functions and
// aggregations are recognised by the parenthesis after them).
var promQLKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
}

// promQLAggregations may have their by or without clause before their parenthesis.
var promQLAggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// promQLRefs returns the metric names and the label names a PromQL expression uses. Metric
// names are the identifiers outside label matchers ({...}), ranges ([...]) and strings that
// are neither a function or aggregation (an identifier followed by "(", or an
// aggregation's name) nor a keyword. Label names are those matchers test and those listed
// after by, without, on, ignoring, group_left and group_right.
func promQLRefs(expr string) (names, labels []string) {
	rs := []rune(expr)
	skipSpace := func(i int) int {
		for i < len(rs) && unicode.IsSpace(rs[i]) {
			i++
		}
		return i
	}
	skipTo := func(i int, closing rune) int {
		for i < len(rs) && rs[i] != closing {
			if rs[i] == '"' || rs[i] == '\'' || rs[i] == '`' {
				q := rs[i]
				for i++; i < len(rs) && rs[i] != q; i++ {
					if rs[i] == '\\' {
						i++
					}
				}
			}
			i++
		}
		return i
	}
	isIdentStart := func(r rune) bool { return r == '_' || r == ':' || unicode.IsLetter(r) }
	isIdent := func(r rune) bool { return isIdentStart(r) || unicode.IsDigit(r) }
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '{':
			end := skipTo(i+1, '}')
			// name op "value", ...: the identifier before each operator.
			for k := i + 1; k < end; {
				switch {
				case rs[k] == '"' || rs[k] == '\'' || rs[k] == '`':
					k = skipTo(k+1, rs[k]) + 1
				case isIdentStart(rs[k]):
					j := k
					for j < end && isIdent(rs[j]) {
						j++
					}
					labels = append(labels, string(rs[k:j]))
					k = j
				default:
					k++
				}
			}
			i = end + 1
		case r == '[':
			i = skipTo(i+1, ']') + 1
		case r == '"' || r == '\'' || r == '`':
			i = skipTo(i+1, r) + 1
		case unicode.IsDigit(r) || r == '.':
			// A number (also 1e3, 0x1f, 5m as a duration after offset): letters after a
			// digit belong to it.
			for i < len(rs) && (isIdent(rs[i]) || rs[i] == '.') {
				i++
			}
		case isIdentStart(r):
			j := i
			for j < len(rs) && isIdent(rs[j]) {
				j++
			}
			word := string(rs[i:j])
			next := skipSpace(j)
			switch {
			case promQLKeywords[strings.ToLower(word)]:
				if next < len(rs) && rs[next] == '(' {
					end := skipTo(next+1, ')') // a label list
					for _, l := range strings.Split(string(rs[next+1:min(end, len(rs))]), ",") {
						if l = strings.TrimSpace(l); l != "" {
							labels = append(labels, l)
						}
					}
					next = end + 1
				}
				i = next
			case next < len(rs) && rs[next] == '(', promQLAggregations[strings.ToLower(word)]:
				i = j // a function or aggregation
			default:
				names = append(names, word)
				i = j
			}
		default:
			i++
		}
	}
	return names, labels
}

func TestPromQLRefs(t *testing.T) {
	for _, tc := range []struct {
		expr          string
		names, labels string
	}{
		{`godwit_raft_term`, "godwit_raft_term", ""},
		{`max by (instance) (godwit_raft_leader)`, "godwit_raft_leader", "instance"},
		{`histogram_quantile(0.9, sum by (le, phase) (rate(a_bucket{phase!~"x|y", q='}'}[5m])))`, "a_bucket", "le phase phase q"},
		{`sum without(le) (x) / on (job) group_left (instance) y offset 5m > bool 1e3`, "x y", "le job instance"},
		{`rate(process_cpu_seconds_total[$__rate_interval])`, "process_cpu_seconds_total", ""},
		{`1 + 2`, "", ""},
	} {
		names, labels := promQLRefs(tc.expr)
		if got := strings.Join(names, " "); got != tc.names {
			t.Errorf("%s: names %q, want %q", tc.expr, got, tc.names)
		}
		if got := strings.Join(labels, " "); got != tc.labels {
			t.Errorf("%s: labels %q, want %q", tc.expr, got, tc.labels)
		}
	}
}
