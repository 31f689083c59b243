package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExamplePolicies(t *testing.T) {
	files, err := filepath.Glob("../configs/policies/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 example policies, got %v (%v)", files, err)
	}
	want := map[string]bool{"balance-load": false, "follow-users": false, "maintenance-drain": false, "conservative": false}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, ok := want[p.Name]; ok {
			want[p.Name] = true
		}
		if base := strings.TrimSuffix(filepath.Base(f), ".yaml"); base != p.Name {
			t.Errorf("%s: metadata.name %q does not match the file name", f, p.Name)
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("example policy %s missing", name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		desc string
		src  string
		want []string // substrings, one per expected error, in order
	}{
		{"empty file", "", []string{"x.yaml: empty file"}},
		{"not yaml", "a: [", []string{"invalid YAML"}},
		{"missing header", "spec: {}\n", []string{"x.yaml:1:1: missing apiVersion", "x.yaml:1:1: missing kind"}},
		{"wrong version", "apiVersion: godwit.io/v2\nkind: Policy\n", []string{"x.yaml:1:13: unsupported apiVersion"}},
		{"unknown field with suggestion", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mdoe: auto\n", []string{`x.yaml:4:3: unknown field "mdoe", did you mean "mode"?`}},
		{"all errors, not just the first", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: sometimes\n  interval: soon\n  constraints:\n    maxConcurrent: -1\n    headroom: {cpu: 1.5}\n",
			[]string{`x.yaml:4:9: mode "sometimes"`, `x.yaml:5:13: want a duration`, "x.yaml:7:20: maxConcurrent -1", "x.yaml:8:21: headroom cpu 1.5"}},
		{"type error", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  explainCandidates: many\n", []string{`x.yaml:4:22: want an integer, got the string "many"`}},
		{"bad expression position", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - name: hot\n      when: node.cpux > 0.9\n", []string{"x.yaml:6:18: in expression: node has no field cpux"}},
		{"quoted expression", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - name: hot\n      when: \"node.cpu > 'a'\"\n", []string{"x.yaml:6:23: in expression: invalid operation"}},
		{"block expression", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - name: hot\n      when: |\n        node.cpu > 0.9 &&\n          node.foo\n", []string{"x.yaml:8:16: in expression: node has no field foo"}},
		{"container field in node trigger", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - name: far\n      when: container.userRTT > 30\n", []string{"x.yaml:6:13: in expression: unknown name container"}},
		{"not boolean", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - name: hot\n      when: node.cpu\n", []string{"x.yaml:6:13: in expression"}},
		{"duplicate trigger", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - {name: a, when: node.drained}\n    - {name: a, when: node.drained}\n", []string{`x.yaml:6:14: trigger name "a" used twice`}},
		{"duplicate key", "apiVersion: godwit.io/v1\nkind: Policy\nkind: Policy\n", []string{`x.yaml:3:1: duplicate key "kind"`}},
		{"selector operator", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  selector:\n    matchExpressions:\n      - {key: a, operator: Has}\n", []string{`x.yaml:6:28: operator "Has"`}},
		{"window", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  windows:\n    timezone: Mars/Olympus\n    allow:\n      - {days: [funday], start: \"25:00\", end: \"06:00\"}\n",
			[]string{`x.yaml:5:15: unknown time zone`, `x.yaml:7:17: day "funday"`, `x.yaml:7:33: time "25:00"`}},
		{"two documents", "apiVersion: godwit.io/v1\nkind: Policy\n---\nkind: Policy\n", []string{"x.yaml:3:1: a second YAML document starts here"}},
		{"cost-benefit values", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  costBenefit:\n    latencyTarget: 10ms\n    serviceTime: 20ms\n    outageWeight: 0.5\n    margin: -1\n",
			[]string{`x.yaml:6:18: serviceTime 20ms: want less than latencyTarget 10ms`, `x.yaml:7:19: outageWeight 0.5`, `x.yaml:8:13: margin -1`}},
		{"tab breaking indentation, on its own line", "apiVersion: godwit.io/v1\nkind: Policy\n\tspec:\n  mode: auto\n", []string{"x.yaml:3:1: invalid YAML: found a tab character"}},
		{"tab after spaces", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: auto\n  \tinterval: 30s\n", []string{"x.yaml:5:3: invalid YAML: found a tab character"}},
		{"size", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  constraints:\n    maxMemory: lots\n", []string{"x.yaml:5:16: want a size"}},
		{"method near miss", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  constraints:\n    method: postcopy\n", []string{`x.yaml:5:13: method "postcopy": want auto, stop-and-copy or post-copy; did you mean "post-copy"?`}},
		{"method unknown", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  constraints:\n    method: teleport\n", []string{`x.yaml:5:13: method "teleport": want auto, stop-and-copy or post-copy`}},
		{"method not a string", "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  constraints:\n    method: [post-copy]\n", []string{"x.yaml:5:13: want a string"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error is not Errors: %T", err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(list[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, list[i].Error(), w)
				}
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse("min.yaml", []byte("apiVersion: godwit.io/v1\nkind: Policy\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultPolicy()
	if p.Mode != ModeRecommend || p.Interval != d.Interval || p.Constraints != d.Constraints || p.Objectives != d.Objectives {
		t.Errorf("minimal policy does not get the defaults: %+v", p)
	}
	// Naming one objective switches the unnamed ones off; explicit zeros stay zero.
	p, err = Parse("o.yaml", []byte("apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  objectives: {balanceLoad: 2}\n  constraints: {maxDowntime: 0s, headroom: {cpu: 0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Objectives.BalanceLoad != 2 || p.Objectives.RelieveOverload != 0 || p.Objectives.EvacuateDrained != 0 {
		t.Errorf("objectives = %+v", p.Objectives)
	}
	if p.Constraints.MaxDowntime != 0 || p.Constraints.HeadroomCPU != 0 || p.Constraints.HeadroomMemory != defaultHeadroom {
		t.Errorf("constraints = %+v", p.Constraints)
	}
}

func TestParseMethod(t *testing.T) {
	tests := []struct {
		desc, yaml, want string
	}{
		{"default", "", ""},
		{"auto", "  constraints: {method: auto}\n", MethodAuto},
		{"stop-and-copy", "  constraints: {method: stop-and-copy}\n", MethodStopAndCopy},
		{"post-copy", "  constraints:\n    method: post-copy\n", MethodPostCopy},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			p, err := Parse("m.yaml", []byte("apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: auto\n"+tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if p.Constraints.Method != tc.want {
				t.Errorf("Constraints.Method = %q, want %q", p.Constraints.Method, tc.want)
			}
		})
	}
}
