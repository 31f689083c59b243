package agent

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one error in a file, at the position of the YAML node it is about.
type Problem struct {
	File    string
	Line    int
	Column  int
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
}

// ConfigError is every problem found in one config file, in file order. It wraps
// ErrInvalidConfig.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// nodeDecoder is implemented by field types that read themselves from a scalar (sizes,
// durations); the message of a returned error is reported at the node.
type nodeDecoder interface {
	decodeNode(n *yaml.Node) error
}

// decoder turns a YAML document into a struct strictly: unknown fields, duplicates and
// wrong kinds are problems (with a "did you mean" for near misses), all collected. It
// records each field's key node by dotted path (spec.raft.bind) so that validation can
// report at the field's position too.
type decoder struct {
	file     string
	problems []Problem
	keys     map[string]*yaml.Node
	// failed are the paths whose values did not decode: validation says nothing more
	// about them (a bad value is not also "required").
	failed map[string]bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, keys: map[string]*yaml.Node{}, failed: map[string]bool{}}
}

func (d *decoder) at(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	msg := fmt.Sprintf(format, args...)
	if path, _, ok := strings.Cut(msg, ": "); ok {
		d.failed[path] = true
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Message: msg})
}

// atPath reports at the key of the field at path or, when it was not given, at the key of
// its nearest enclosing field that was (else at fallback). Nothing is reported for a path
// whose value already failed to decode.
func (d *decoder) atPath(path string, fallback *yaml.Node, format string, args ...any) {
	if d.failed[path] {
		return
	}
	n := d.keys[path]
	for p := path; n == nil; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			n = fallback
			break
		}
		p = p[:i]
		n = d.keys[p]
	}
	d.at(n, "%s: %s", path, fmt.Sprintf(format, args...))
}

func (d *decoder) sorted() []Problem {
	out := append([]Problem(nil), d.problems...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Column < out[j].Column
	})
	return out
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

// reflectValue is the settable value p points to.
func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		d.at(n, "%s: aliases are not accepted in godwit files", path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		if n.Kind != yaml.ScalarNode {
			d.at(n, "%s: want a single value, got %s", path, kindName(n))
			return
		}
		if err := v.Addr().Interface().(nodeDecoder).decodeNode(n); err != nil {
			d.at(n, "%s: %v", path, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			d.at(n, "%s: want a string, got %s", path, kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.at(n, "%s: want true or false, got %s", path, kindName(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.at(n, "%s: want a whole number, got %s", path, kindName(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			d.at(n, "%s: %q is not a whole number", path, n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			d.at(n, "%s: want a number, got %s", path, kindName(n))
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.at(n, "%s: %q is not a number", path, n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.at(n, "%s: want a list, got %s", path, kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.at(n, "%s: want a mapping, got %s", path, kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.at(k, "%s: want a key, got %s", path, kindName(k))
				continue
			}
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.at(k, "%s: key %q given twice", path, k.Value)
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.keys[path+"."+k.Value] = k
			d.decode(val, ev, path+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	default:
		d.at(n, "%s: cannot decode into %s", path, v.Type())
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.at(n, "%s: want a mapping, got %s", orTop(path), kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.at(k, "%s: want a field name, got %s", orTop(path), kindName(k))
			continue
		}
		fp := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := closest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(", did you mean %q?", s)
			} else {
				msg += " (known: " + strings.Join(names(fields), ", ") + ")"
			}
			d.at(k, "%s: %s", orTop(path), msg)
			continue
		}
		if seen[k.Value] {
			d.at(k, "%s: given twice", fp)
			continue
		}
		seen[k.Value] = true
		d.keys[fp] = k
		d.decode(val, v.Field(idx), fp)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = i
	}
	return m
}

func names(fields map[string]int) []string {
	out := make([]string, 0, len(fields))
	for k := range fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// closest is the known field a misspelt one most likely meant (case, _ for -, or at most
// two edits), or "".
func closest(got string, fields map[string]int) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestD := "", 3
	for _, name := range names(fields) {
		if norm(name) == norm(got) {
			return name
		}
		if dist := levenshtein(norm(got), norm(name)); dist < bestD {
			best, bestD = name, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 10
	}
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			sub := diag
			if a[i-1] != b[j-1] {
				sub++
			}
			diag = row[j]
			row[j] = min(row[j]+1, row[j-1]+1, sub)
		}
	}
	return row[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", v)
	case "!!int", "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	case "!!null":
		return "nothing (null)"
	}
	return fmt.Sprintf("%q", v)
}
