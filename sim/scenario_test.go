package sim

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadScenarioSmall(t *testing.T) {
	sc, err := LoadScenario("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(sc.Nodes), 12; got != want {
		t.Errorf("nodes = %d, want %d", got, want)
	}
	if got, want := len(sc.Containers), 48; got != want {
		t.Errorf("containers = %d, want %d", got, want)
	}
	if sc.Containers[0].Name != "web-1" || sc.Containers[0].Node != "a-1" || sc.Containers[1].Node != "a-2" {
		t.Errorf("web placed %s on %s, %s", sc.Containers[0].Name, sc.Containers[0].Node, sc.Containers[1].Node)
	}
	for _, c := range sc.Containers {
		if strings.HasPrefix(c.Name, "replay") && c.Node != "c-1" && c.Node != "c-2" {
			t.Errorf("%s on %s, want c-1 or c-2", c.Name, c.Node)
		}
	}
	if sc.Duration != 6*time.Hour || sc.Seed != 3 || sc.SampleInterval != time.Minute {
		t.Errorf("duration %v seed %d sample %v", sc.Duration, sc.Seed, sc.SampleInterval)
	}
	if len(sc.Events) != 4 || sc.Events[0].Type != EventNodeFailure {
		t.Errorf("events = %+v", sc.Events)
	}
}

func TestDefaultScenarioParses(t *testing.T) {
	sc, err := DefaultScenario()
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Sites) != 6 || len(sc.Nodes) != 44 || len(sc.Containers) != 300 {
		t.Errorf("default scenario: %d sites, %d nodes, %d containers", len(sc.Sites), len(sc.Nodes), len(sc.Containers))
	}
}

const header = "apiVersion: godwit.io/v1\nkind: Scenario\nspec:\n"

func TestParseScenarioErrors(t *testing.T) {
	base := "  sites: [{name: a}]\n  nodes: [{name: n, site: a, cpu: 4, memoryGiB: 8}]\n"
	cases := []struct {
		desc string
		yaml string
		want []string // each a substring of one error line
		// lines is the number of errors expected (0: not checked).
		lines int
	}{
		{"wrong apiVersion", "apiVersion: v2\nkind: Scenario\nspec:\n" + base,
			[]string{"s.yaml:1:13: .apiVersion: must be \"godwit.io/v1\""}, 0},
		{"unknown top-level spec field", header + base + "  durations: 2h\n",
			[]string{"s.yaml:6:3: .spec: unknown field \"durations\", did you mean \"duration\"?"}, 0},
		{"bad duration", header + base + "  duration: two hours\n",
			[]string{"s.yaml:6:13: .spec.duration: want a duration such as 90s or 1h30m, got the string \"two hours\""}, 1},
		{"node on unknown site", header + "  sites: [{name: a}]\n  nodes: [{name: n, site: zz, cpu: 4, memoryGiB: 8}]\n",
			[]string{"s.yaml:5:27: .spec.nodes[0].site: unknown site \"zz\""}, 0},
		{"missing cpu and unknown model", header + base + "  containers:\n    - name: x\n      memoryGiB: 1\n      cpu: {model: sine}\n",
			[]string{"s.yaml:9:20: .spec.containers[0].cpu.model: unknown model \"sine\""}, 0},
		{"diurnal without base", header + base + "  containers:\n    - {name: x, memoryGiB: 1, cpu: {model: diurnal, amplitude: 1}}\n",
			[]string{"s.yaml:7:44: .spec.containers[0].cpu.base: missing: required by model \"diurnal\""}, 0},
		{"event on unknown node", header + base + "  events:\n    - {at: 1h, type: nodeFailure, node: ghost}\n",
			[]string{"s.yaml:7:41: .spec.events[0].node: unknown node \"ghost\""}, 0},
		{"unknown event type", header + base + "  events:\n    - {at: 1h, type: explode}\n",
			[]string{"s.yaml:7:22: .spec.events[0].type: unknown event type \"explode\""}, 0},
		{"sites without link", header + "  sites: [{name: a}, {name: b}]\n  nodes: [{name: n, site: a, cpu: 4, memoryGiB: 8}]\n",
			[]string{"s.yaml: .spec.network: no link between sites \"a\" and \"b\""}, 0},
		{"several errors at once", header + base + "  seed: -1\n  slo: {latencyMs: fast}\n",
			[]string{"s.yaml:6:9: .spec.seed: want a non-negative integer, got the number -1", "s.yaml:7:20: .spec.slo.latencyMs: want a number, got the string \"fast\""}, 2},
		{"duplicate node", header + "  sites: [{name: a}]\n  nodes: [{name: n, site: a, cpu: 4, memoryGiB: 8}, {name: n, site: a, cpu: 4, memoryGiB: 8}]\n",
			[]string{".spec.nodes[1].name: duplicate node \"n\""}, 0},
		{"scripted move to unknown site", header + base + "  containers:\n    - name: x\n      memoryGiB: 1\n      cpu: {model: constant, value: 1}\n      users: [{mobility: {model: scripted, moves: [{at: 1h, site: q}]}}]\n",
			[]string{"s.yaml:10:67: .spec.containers[0].users[0].mobility.moves[0].site: unknown site \"q\""}, 0},
		{"trace file missing", header + base + "  containers:\n    - {name: x, memoryGiB: 1, cpu: {model: trace, file: nope.csv}}\n",
			[]string{"s.yaml:7:57: .spec.containers[0].cpu.file: "}, 0},
		{"yaml syntax", header + "  sites: [\n", []string{"s.yaml:"}, 0},
		{"two documents", header + base + "---\nfoo: 1\n", []string{"a second YAML document starts here"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := ParseScenario("s.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidScenario) {
				t.Errorf("error %v is not ErrInvalidScenario", err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; tc.lines > 0 && n != tc.lines {
				t.Errorf("%d errors, want %d:\n%v", n, tc.lines, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestScenarioErrorsAreFieldErrors(t *testing.T) {
	_, err := ParseScenario("s.yaml", []byte(header+"  sites: [{name: a}]\n  nodes: []\n  bogus: 1\n"))
	var es ScenarioErrors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("want ScenarioErrors, got %v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 6 || fe.Column != 3 {
		t.Errorf("first FieldError = %+v", fe)
	}
}

func TestExampleScenariosParse(t *testing.T) {
	entries, err := os.ReadDir("../configs/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		if _, err := LoadScenario("../configs/scenarios/" + e.Name()); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
}
