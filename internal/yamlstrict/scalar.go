package yamlstrict

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The readers below take a value node (as Mapping.Get returns it; nil when absent) and its
// path. They record the node's position under the path, report a value of the wrong type
// as a problem at its position, and return the zero value for an absent, null or bad one.
// Those that return present say whether a value was given (true also for a bad one).

// Str reads a string. Any scalar is a string here (site: no is the site "no").
func (d *Decoder) Str(n *yaml.Node, path string) string {
	s, _ := d.str(resolve(n), path)
	return s
}

// Bool reads true or false.
func (d *Decoder) Bool(n *yaml.Node, path string) (v, present bool) {
	n = d.take(n, path)
	if n == nil {
		return false, false
	}
	v, _ = d.bool(n, path)
	return v, true
}

// Int reads an integer.
func (d *Decoder) Int(n *yaml.Node, path string) (v int64, present bool) {
	n = d.take(n, path)
	if n == nil {
		return 0, false
	}
	v, _ = d.int(n, path, 64)
	return v, true
}

// Uint reads a non-negative integer.
func (d *Decoder) Uint(n *yaml.Node, path string) (v uint64, present bool) {
	n = d.take(n, path)
	if n == nil {
		return 0, false
	}
	v, _ = d.uint(n, path, 64)
	return v, true
}

// Float reads a finite number.
func (d *Decoder) Float(n *yaml.Node, path string) (v float64, present bool) {
	n = d.take(n, path)
	if n == nil {
		return 0, false
	}
	v, _ = d.float(n, path)
	return v, true
}

// Duration reads a Go duration ("90s", "1h30m") or a number of seconds.
func (d *Decoder) Duration(n *yaml.Node, path string) (v time.Duration, present bool) {
	n = d.take(n, path)
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!int" || n.Tag == "!!float" {
			if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return time.Duration(f * float64(time.Second)), true
			}
		} else if v, err := time.ParseDuration(n.Value); err == nil {
			return v, true
		}
	}
	d.Errorf(n, path, "want a duration such as 90s or 1h30m, got %s", Describe(n))
	return 0, true
}

// Seq reads a list and returns its items, aliases followed (nil when absent).
func (d *Decoder) Seq(n *yaml.Node, path string) []*yaml.Node {
	n = d.take(n, path)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, path, "want a list, got %s", Describe(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = resolve(c)
		if out[i] != nil {
			d.Values[Index(path, i)] = out[i]
		}
	}
	return out
}

// Strings reads a list of strings.
func (d *Decoder) Strings(n *yaml.Node, path string) []string {
	items := d.Seq(n, path)
	out := make([]string, 0, len(items))
	for i, it := range items {
		if s, ok := d.str(it, Index(path, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

// StringMap reads a mapping of strings to strings (nil when absent or empty).
func (d *Decoder) StringMap(n *yaml.Node, path string) map[string]string {
	m := d.Mapping(n, path)
	keys := m.Keys()
	if len(keys) == 0 {
		return nil
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = d.Str(m.Get(k), m.Sub(k))
	}
	return out
}

// take resolves n, records it under path and returns it; nil for an absent or null value.
func (d *Decoder) take(n *yaml.Node, path string) *yaml.Node {
	n = resolve(n)
	if IsNull(n) {
		return nil
	}
	d.Values[path] = n
	return n
}

// The conversions below take a resolved, non-null node; ok is false after a problem.

func (d *Decoder) str(n *yaml.Node, path string) (string, bool) {
	if IsNull(n) {
		return "", false
	}
	d.Values[path] = n
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "want a string, got %s", Describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *Decoder) bool(n *yaml.Node, path string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.Errorf(n, path, "want true or false, got %s", Describe(n))
		return false, false
	}
	b, _ := strconv.ParseBool(strings.ToLower(n.Value))
	return b, true
}

func (d *Decoder) int(n *yaml.Node, path string, bits int) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.Errorf(n, path, "want an integer, got %s", Describe(n))
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, bits)
	if err != nil {
		d.Errorf(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return i, true
}

func (d *Decoder) uint(n *yaml.Node, path string, bits int) (uint64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.Errorf(n, path, "want a non-negative integer, got %s", Describe(n))
		return 0, false
	}
	v := strings.ReplaceAll(n.Value, "_", "")
	if strings.HasPrefix(v, "-") {
		d.Errorf(n, path, "want a non-negative integer, got %s", Describe(n))
		return 0, false
	}
	i, err := strconv.ParseUint(strings.TrimPrefix(v, "+"), 0, bits)
	if err != nil {
		d.Errorf(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return i, true
}

func (d *Decoder) float(n *yaml.Node, path string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
		d.Errorf(n, path, "want a number, got %s", Describe(n))
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.Errorf(n, path, "want a finite number, got %s", Describe(n))
		return 0, false
	}
	return f, true
}
