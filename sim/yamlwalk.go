package sim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree strictly: every key must be known, every value must have
// the expected type, and every problem is recorded with its file:line:col. It keeps going
// after an error so that one run reports all of them.
type decoder struct {
	file string
	errs ScenarioErrors
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &FieldError{File: d.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping is a YAML mapping being decoded; get marks keys as used, done reports the rest.
type mapping struct {
	d     *decoder
	node  *yaml.Node
	path  string
	keys  map[string]*yaml.Node // key -> value
	knode map[string]*yaml.Node // key -> key node, for positions
	used  map[string]bool
}

func (d *decoder) mapping(n *yaml.Node, path string) *mapping {
	n = resolve(n)
	m := &mapping{d: d, node: n, path: path, keys: map[string]*yaml.Node{}, knode: map[string]*yaml.Node{}, used: map[string]bool{}}
	if n == nil {
		return m
	}
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return m
		}
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return m
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings")
			continue
		}
		if _, dup := m.keys[k.Value]; dup {
			d.errorf(k, path+"."+k.Value, "duplicate key %q", k.Value)
			continue
		}
		m.keys[k.Value] = v
		m.knode[k.Value] = k
	}
	return m
}

// get returns the value for key (nil when absent) and marks it used.
func (m *mapping) get(key string) *yaml.Node {
	m.used[key] = true
	return resolve(m.keys[key])
}

func (m *mapping) has(key string) bool {
	_, ok := m.keys[key]
	return ok
}

func (m *mapping) sub(key string) string { return m.path + "." + key }

// done reports every key that no get asked for, with the list of keys that are allowed.
func (m *mapping) done() {
	var unknown []string
	for k := range m.keys {
		if !m.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return
	}
	sort.Slice(unknown, func(i, j int) bool {
		a, b := m.knode[unknown[i]], m.knode[unknown[j]]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	known := make([]string, 0, len(m.used))
	for k := range m.used {
		known = append(known, k)
	}
	sort.Strings(known)
	for _, k := range unknown {
		m.d.errorf(m.knode[k], m.sub(k), "unknown field %q (known: %s)", k, strings.Join(known, ", "))
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a scalar, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.scalar(n, path)
	return s
}

// float parses a finite number; present reports whether the key was there.
func (d *decoder) float(n *yaml.Node, path string) (v float64, present bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, n != nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorf(n, path, "expected a number, got %q", s)
		return 0, true
	}
	return f, true
}

func (d *decoder) int(n *yaml.Node, path string) (v int64, present bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, n != nil
	}
	i, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		d.errorf(n, path, "expected an integer, got %q", s)
		return 0, true
	}
	return i, true
}

func (d *decoder) uint(n *yaml.Node, path string) (v uint64, present bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, n != nil
	}
	i, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		d.errorf(n, path, "expected a non-negative integer, got %q", s)
		return 0, true
	}
	return i, true
}

func (d *decoder) bool(n *yaml.Node, path string) (v, present bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return false, n != nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		d.errorf(n, path, "expected true or false, got %q", s)
		return false, true
	}
	return b, true
}

// duration accepts Go duration strings ("90s", "1h30m") and plain numbers of seconds.
func (d *decoder) duration(n *yaml.Node, path string) (v time.Duration, present bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, n != nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), true
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "expected a duration such as 90s or 1h30m, got %q", s)
		return 0, true
	}
	return v, true
}

// seq returns the items of a sequence (nil when absent).
func (d *decoder) seq(n *yaml.Node, path string) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a sequence, got %s", kindName(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = resolve(c)
	}
	return out
}

func (d *decoder) strings(n *yaml.Node, path string) []string {
	items := d.seq(n, path)
	out := make([]string, 0, len(items))
	for i, it := range items {
		if s, ok := d.scalar(it, fmt.Sprintf("%s[%d]", path, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) stringMap(n *yaml.Node, path string) map[string]string {
	m := d.mapping(n, path)
	if len(m.keys) == 0 {
		return nil
	}
	out := make(map[string]string, len(m.keys))
	for k := range m.keys {
		out[k] = d.str(m.get(k), m.sub(k))
	}
	return out
}

// pos is a position in the scenario file, kept for errors found after decoding.
type pos struct {
	Line, Column int
	Path         string
}

func posOf(n *yaml.Node, path string) pos {
	if n == nil {
		return pos{Path: path}
	}
	return pos{Line: n.Line, Column: n.Column, Path: path}
}

func (d *decoder) errorAt(p pos, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: p.Line, Column: p.Column, Path: p.Path, Message: fmt.Sprintf(format, args...)})
}
