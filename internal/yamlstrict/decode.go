package yamlstrict

import (
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ScalarDecoder is implemented by field types that read themselves from one scalar
// (sizes, durations). The message of a returned error is reported at the node.
type ScalarDecoder interface {
	DecodeYAMLScalar(n *yaml.Node) error
}

var (
	scalarDecoderType = reflect.TypeFor[ScalarDecoder]()
	durationType      = reflect.TypeFor[time.Duration]()
	timeType          = reflect.TypeFor[time.Time]()
)

// Decode fills the value ptr points to from n, the node at path: struct fields by the key
// their Tag names (a field without one is not decoded; an embedded struct tagged ",inline"
// or without a name has its fields inlined), pointers allocated when a value is given,
// lists, maps with string keys, strings, booleans, integers and floats of every size,
// time.Duration from a Go duration ("1m30s"), time.Time from an RFC 3339 time, and
// ScalarDecoders. An absent or null value leaves the zero value. Every problem
// is recorded and decoding goes on with the rest.
func (d *Decoder) Decode(n *yaml.Node, ptr any, path string) {
	d.decode(n, reflect.ValueOf(ptr).Elem(), path)
}

func (d *Decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.steps++
	if d.steps > MaxSteps {
		if d.steps == MaxSteps+1 {
			d.Errorf(n, path, "document too large or too deeply aliased")
		}
		return
	}
	n = resolve(n)
	if IsNull(n) {
		return
	}
	d.Values[path] = n
	if v.CanAddr() && v.Addr().Type().Implements(scalarDecoderType) {
		if n.Kind != yaml.ScalarNode {
			d.Errorf(n, path, "want a single value, got %s", Describe(n))
			return
		}
		if err := v.Addr().Interface().(ScalarDecoder).DecodeYAMLScalar(n); err != nil {
			d.Errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Type() {
	case durationType:
		if dur, err := time.ParseDuration(n.Value); n.Kind == yaml.ScalarNode && err == nil {
			v.SetInt(int64(dur))
		} else {
			d.Errorf(n, path, "want a duration such as 90s or 1h30m, got %s", Describe(n))
		}
		return
	case timeType:
		t, err := time.Parse(time.RFC3339Nano, n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.Errorf(n, path, "want a time such as 2026-01-05T00:00:00Z, got %s", Describe(n))
			return
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Errorf(n, path, "want a list, got %s", Describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), Index(path, i))
		}
		v.Set(s)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			d.Errorf(n, path, "internal error: cannot decode into %s", v.Type())
			return
		}
		m := d.Mapping(n, path)
		out := reflect.MakeMap(v.Type())
		for _, k := range m.Keys() {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(m.Get(k), e, m.Sub(k))
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		if m.Node != nil && m.Node.Kind == yaml.MappingNode {
			v.Set(out)
		}
	case reflect.String:
		if s, ok := d.str(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if b, ok := d.bool(n, path); ok {
			v.SetBool(b)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i, ok := d.int(n, path, v.Type().Bits()); ok {
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if i, ok := d.uint(n, path, v.Type().Bits()); ok {
			v.SetUint(i)
		}
	case reflect.Float32, reflect.Float64:
		if f, ok := d.float(n, path); ok {
			v.SetFloat(f)
		}
	default:
		d.Errorf(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	m := d.Mapping(n, path)
	fields := d.fields(v.Type())
	for name := range fields {
		m.Known(name)
	}
	for _, k := range m.Keys() {
		if idx, ok := fields[k]; ok {
			d.decode(m.Get(k), fieldByIndex(v, idx), m.Sub(k))
		}
	}
	m.Done()
}

// fields maps a struct's keys to field index paths: the key is the name the first of d.Tag's
// tags that a field has gives it; inlined structs' fields are the struct's own.
func (d *Decoder) fields(t reflect.Type) map[string][]int {
	tags := strings.Split(d.Tag, ",")
	if d.Tag == "" {
		tags = []string{"yaml"}
	}
	out := map[string][]int{}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			var tag string
			for _, name := range tags {
				if tv, ok := f.Tag.Lookup(name); ok {
					tag = tv
					break
				}
			}
			name, opts, _ := strings.Cut(tag, ",")
			at := append(append([]int(nil), index...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct && (name == "" || strings.Contains(","+opts+",", ",inline,")) {
				walk(f.Type, at)
				continue
			}
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			if _, dup := out[name]; !dup {
				out[name] = at
			}
		}
	}
	walk(t, nil)
	return out
}

// fieldByIndex is v.FieldByIndex for index paths through embedded structs (not pointers).
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}
