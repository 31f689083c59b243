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
// live server agent's /metrics) does not have, and for a query that names none.
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
				names := promQLMetricNames(tg.Expr)
				if len(names) == 0 {
					t.Errorf("%s: panel %q query %s: no metric name in %q", dashboardFile, p.Title, tg.RefID, tg.Expr)
				}
				for _, n := range names {
					if !hasFamily(families, n) {
						t.Errorf("%s: panel %q query %s uses %s, which the agent does not export", dashboardFile, p.Title, tg.RefID, n)
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

// hasFamily reports whether name is a family of families, or a histogram's or summary's
// _bucket, _sum or _count series.
func hasFamily(families map[string]*dto.MetricFamily, name string) bool {
	if families[name] != nil {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f := families[base]; f != nil {
			typ := f.GetType()
			if typ == dto.MetricType_HISTOGRAM || (typ == dto.MetricType_SUMMARY && suffix != "_bucket") {
				return true
			}
		}
	}
	return false
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

// promQLMetricNames returns the metric names a PromQL expression selects: identifiers
// outside label matchers ({...}), ranges ([...]) and strings that are neither a function
// or aggregation (an identifier followed by "(", or an aggregation's name) nor a keyword; the label list after by,
// without, on, ignoring, group_left and group_right is skipped.
func promQLMetricNames(expr string) []string {
	var names []string
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
			i = skipTo(i+1, '}') + 1
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
					next = skipTo(next+1, ')') + 1 // a label list
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
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`godwit_raft_term`, "godwit_raft_term"},
		{`max by (instance) (godwit_raft_leader)`, "godwit_raft_leader"},
		{`histogram_quantile(0.9, sum by (le, phase) (rate(a_bucket{phase!~"x|y", q='}'}[5m])))`, "a_bucket"},
		{`sum without(le) (x) / on (job) group_left (instance) y offset 5m > bool 1e3`, "x y"},
		{`rate(process_cpu_seconds_total[$__rate_interval])`, "process_cpu_seconds_total"},
		{`1 + 2`, ""},
	} {
		if got := strings.Join(promQLMetricNames(tc.expr), " "); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.expr, got, tc.want)
		}
	}
}
