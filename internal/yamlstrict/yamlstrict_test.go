package yamlstrict

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// size reads itself from a scalar, as the formats' sizes and durations do.
type size int64

func (s *size) DecodeYAMLScalar(n *yaml.Node) error {
	v, ok := strings.CutSuffix(n.Value, "KiB")
	if !ok {
		return errors.New("want a size such as 4KiB")
	}
	var k int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return errors.New("want a size such as 4KiB")
		}
		k = k*10 + int64(c-'0')
	}
	*s = size(k << 10)
	return nil
}

type inner struct {
	Port    int               `yaml:"port"`
	Enabled bool              `yaml:"enabled"`
	Ratio   *float64          `yaml:"ratio"`
	Labels  map[string]string `yaml:"labels"`
}

type file struct {
	Name     string   `yaml:"name"`
	DataDir  string   `yaml:"data_dir"`
	Count    uint8    `yaml:"count"`
	Memory   size     `yaml:"memory"`
	Join     []string `yaml:"join"`
	Inner    inner    `yaml:"inner"`
	Items    []inner  `yaml:"items"`
	internal string
}

// lines formats errors as file:line:col: path: message.
func lines(errs []*Error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func decodeFile(t *testing.T, text string) (file, *Decoder) {
	t.Helper()
	d := New("f.yaml")
	var f file
	if root := d.Load([]byte(text), "a test file"); root != nil {
		d.Decode(root, &f, "")
	}
	return f, d
}

func TestDecodeValid(t *testing.T) {
	f, d := decodeFile(t, `name: n1
data_dir: /var/lib/x
count: 7
memory: 4KiB
join: [a, b]
inner: {port: 0x10, enabled: true, ratio: 0.5, labels: {site: no}}
items:
  - &one {port: 1_000}
  - *one
`)
	if errs := d.Errors(); errs != nil {
		t.Fatalf("errors: %v", lines(errs))
	}
	half := 0.5
	want := file{Name: "n1", DataDir: "/var/lib/x", Count: 7, Memory: 4096, Join: []string{"a", "b"},
		Inner: inner{Port: 16, Enabled: true, Ratio: &half, Labels: map[string]string{"site": "no"}},
		Items: []inner{{Port: 1000}, {Port: 1000}}}
	if diff := cmp.Diff(want, f, cmp.AllowUnexported(file{})); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	// Positions of keys and values by path, for validation after decoding.
	if k := d.Keys["inner.port"]; k == nil || k.Line != 6 || k.Column != 9 {
		t.Errorf("key inner.port at %v", k)
	}
	if v := d.Values["items[1]"]; v == nil || v.Line != 8 {
		t.Errorf("value items[1] (an alias of items[0]) at %v", v)
	}
	if n := Nearest(d.Keys, "inner.labels.missing"); n == nil || n.Value != "labels" {
		t.Errorf("nearest key of inner.labels.missing: %v", n)
	}
}

// TestDecodeErrors: every problem of a file at once, each at its line and column, in file
// order.
func TestDecodeErrors(t *testing.T) {
	_, d := decodeFile(t, `name: [a]
datadir: /x
count: 300
memory: lots
join: a
inner:
  port: "80"
  enabled: yes
  ratio: .inf
  prot: 1
  labels: {a: 1, a: 2}
items:
  - {port: 1, colour: red}
name: again
`)
	want := []string{
		`f.yaml:1:7: name: want a string, got a list`,
		`f.yaml:2:1: unknown field "datadir", did you mean "data_dir"?`,
		`f.yaml:3:8: count: integer 300 out of range`,
		`f.yaml:4:9: memory: want a size such as 4KiB`,
		`f.yaml:5:7: join: want a list, got the string "a"`,
		`f.yaml:7:9: inner.port: want an integer, got the string "80"`,
		`f.yaml:8:12: inner.enabled: want true or false, got the string "yes"`,
		`f.yaml:9:10: inner.ratio: want a finite number, got the number .inf`,
		`f.yaml:10:3: inner: unknown field "prot", did you mean "port"?`,
		`f.yaml:11:18: inner.labels: duplicate key "a"`,
		`f.yaml:13:15: items[0]: unknown field "colour" (known: enabled, labels, port, ratio)`,
		`f.yaml:14:1: duplicate key "name"`,
	}
	if diff := cmp.Diff(want, lines(d.Errors())); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if !d.Failed("inner.port") || d.Failed("inner") {
		t.Errorf("Failed: inner.port %v, inner %v; want true, false", d.Failed("inner.port"), d.Failed("inner"))
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		desc, text string
		want       []string
	}{
		{"empty", "", []string{"f.yaml: empty file: want a test file"}},
		{"only a comment", "# nothing\n", []string{"f.yaml: empty file: want a test file"}},
		{"syntax", "a: b\nc: d: e\n", []string{"f.yaml:2:1: invalid YAML: mapping values are not allowed in this context"}},
		{"tab", "a:\n  b: 1\n\tc: 2\n", []string{"f.yaml:3:1: invalid YAML: found a tab character that violates indentation"}},
		{"second document", "a: 1\n---\nb: 2\n", []string{"f.yaml:2:1: a second YAML document starts here; a file holds exactly one"}},
	} {
		d := New("f.yaml")
		d.Load([]byte(tc.text), "a test file")
		got := lines(d.Errors())
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %q, want %q", tc.desc, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%s: got %q, want it to start with %q", tc.desc, got[i], tc.want[i])
			}
			if !d.Errors()[i].Document {
				t.Errorf("%s: %q is not marked as a problem of the document", tc.desc, got[i])
			}
		}
	}
}

// tree is lists of lists, what the alias bomb below is made of.
type tree []tree

// TestAliasBomb: a file whose aliases expand to billions of nodes stops at MaxSteps with
// one error.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [[], [], [], [], [], [], [], [], [], []]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	d := New("bomb.yaml")
	root := d.Load([]byte(b.String()), "anything")
	var v map[string]tree
	d.Decode(root, &v, "")
	errs := lines(d.Errors())
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "document too large or too deeply aliased") {
		t.Errorf("errors: %q", errs)
	}
}

// TestMapping walks a mapping key by key, as the scenario format does: typed readers,
// unknown keys suggested from the keys asked about.
func TestMapping(t *testing.T) {
	d := New("s.yaml")
	d.DotPaths = true
	root := d.Load([]byte(`spec:
  duration: 90
  interval: 1h30m
  seed: -1
  noise: 0.2
  tags: [a, b]
  labels: {x: y}
  durattion: 2h
`), "a scenario")
	top := d.Mapping(root, "")
	spec := d.Mapping(top.Get("spec"), top.Sub("spec"))
	if v, ok := d.Duration(spec.Get("duration"), spec.Sub("duration")); !ok || v != 90*time.Second {
		t.Errorf("duration %v %v", v, ok)
	}
	if v, ok := d.Duration(spec.Get("interval"), spec.Sub("interval")); !ok || v != 90*time.Minute {
		t.Errorf("interval %v %v", v, ok)
	}
	if _, ok := d.Uint(spec.Get("seed"), spec.Sub("seed")); !ok {
		t.Errorf("seed not present")
	}
	if v, ok := d.Float(spec.Get("noise"), spec.Sub("noise")); !ok || v != 0.2 {
		t.Errorf("noise %v %v", v, ok)
	}
	if v := d.Strings(spec.Get("tags"), spec.Sub("tags")); !cmp.Equal(v, []string{"a", "b"}) {
		t.Errorf("tags %v", v)
	}
	if v := d.StringMap(spec.Get("labels"), spec.Sub("labels")); !cmp.Equal(v, map[string]string{"x": "y"}) {
		t.Errorf("labels %v", v)
	}
	if _, ok := d.Bool(spec.Get("absent"), spec.Sub("absent")); ok {
		t.Errorf("absent key present")
	}
	spec.Done()
	top.Done()
	want := []string{
		`s.yaml:4:9: .spec.seed: want a non-negative integer, got the number -1`,
		`s.yaml:8:3: .spec: unknown field "durattion", did you mean "duration"?`,
	}
	if diff := cmp.Diff(want, lines(d.Errors())); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestClosest(t *testing.T) {
	known := []string{"data_dir", "key_file", "node", "role"}
	for got, want := range map[string]string{
		"datadir": "data_dir", "Data-Dir": "data_dir", "nod": "node", "rol": "role", "keyfile": "key_file",
		"completely-else": "",
	} {
		if c := Closest(got, known); c != want {
			t.Errorf("Closest(%q) = %q, want %q", got, c, want)
		}
	}
}

type base struct {
	ID    string        `json:"id"`
	RTT   time.Duration `json:"rtt"`
	Since time.Time     `json:"since"`
}

type snapshot struct {
	base  `yaml:",inline"`
	Notes string `yaml:"notes" json:"ignored"`
}

// TestDecodeInlineAndTime: an inlined struct's fields, a list of tags, durations and times.
func TestDecodeInlineAndTime(t *testing.T) {
	d := New("v.yaml")
	d.Tag = "yaml,json"
	root := d.Load([]byte("id: a\nrtt: 25ms\nsince: 2026-01-05T00:00:00Z\nnotes: n\n"), "a snapshot")
	var s snapshot
	d.Decode(root, &s, "")
	if errs := d.Errors(); errs != nil {
		t.Fatalf("errors: %v", lines(errs))
	}
	want := snapshot{base: base{ID: "a", RTT: 25 * time.Millisecond, Since: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, Notes: "n"}
	if diff := cmp.Diff(want, s, cmp.AllowUnexported(snapshot{})); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}

	d = New("v.yaml")
	d.Tag = "yaml,json"
	root = d.Load([]byte("rtt: 25\nsince: yesterday\nignored: x\n"), "a snapshot")
	d.Decode(root, &s, "")
	wantErrs := []string{
		`v.yaml:1:6: rtt: want a duration such as 90s or 1h30m, got the number 25`,
		`v.yaml:2:8: since: want a time such as 2026-01-05T00:00:00Z, got the string "yesterday"`,
		`v.yaml:3:1: unknown field "ignored" (known: id, notes, rtt, since)`,
	}
	if diff := cmp.Diff(wantErrs, lines(d.Errors())); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}
