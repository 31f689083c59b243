package yamlstrict

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// Mapping is a YAML mapping being walked key by key. Get marks a key as used; Done reports
// every key nobody asked for as unknown. Duplicate and non-string keys are reported when
// the Mapping is made.
type Mapping struct {
	// Node is the mapping's node (nil when absent); Path its path.
	Node *yaml.Node
	Path string

	d     *Decoder
	order []string              // keys in file order
	vals  map[string]*yaml.Node // key -> value
	keys  map[string]*yaml.Node // key -> key node
	known map[string]bool       // keys asked about
	used  map[string]bool       // keys taken
}

// Mapping starts walking the mapping n at path. An absent or null n is an empty mapping;
// anything else that is not a mapping is a problem (and an empty mapping).
func (d *Decoder) Mapping(n *yaml.Node, path string) *Mapping {
	n = resolve(n)
	m := &Mapping{d: d, Node: n, Path: path, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{},
		known: map[string]bool{}, used: map[string]bool{}}
	if IsNull(n) {
		return m
	}
	d.Values[path] = n
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "want a mapping, got %s", Describe(n))
		return m
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.add(n.Content[i], path, "want a key (a name), got "+Describe(k))
			continue
		}
		if _, dup := m.vals[k.Value]; dup {
			d.add(k, path, "duplicate key "+quote(k.Value))
			continue
		}
		m.order = append(m.order, k.Value)
		m.vals[k.Value], m.keys[k.Value] = v, k
		kp := d.Join(path, k.Value)
		d.Keys[kp] = k
		if rv := resolve(v); rv != nil {
			d.Values[kp] = rv
		}
	}
	return m
}

// Get returns the value of key (nil when absent), aliases followed, and marks key used.
func (m *Mapping) Get(key string) *yaml.Node {
	m.known[key], m.used[key] = true, true
	return resolve(m.vals[key])
}

// Has reports whether the mapping has key (and makes key a known one for Done's
// suggestions).
func (m *Mapping) Has(key string) bool {
	m.known[key] = true
	_, ok := m.vals[key]
	return ok
}

// Key returns key's key node (nil when absent), for positions.
func (m *Mapping) Key(key string) *yaml.Node { return m.keys[key] }

// Keys returns the mapping's keys in file order.
func (m *Mapping) Keys() []string { return slices.Clone(m.order) }

// Sub is the path of key.
func (m *Mapping) Sub(key string) string { return m.d.Join(m.Path, key) }

// Known adds names to the keys Done counts as known (and suggests from) without using
// them.
func (m *Mapping) Known(names ...string) {
	for _, n := range names {
		m.known[n] = true
	}
}

// Done reports every key that was not used as unknown, with a suggestion among the keys
// that were asked about (Get, Has, Known).
func (m *Mapping) Done() {
	var known []string
	for k := range m.known {
		known = append(known, k)
	}
	slices.Sort(known)
	for _, k := range m.order {
		if !m.used[k] {
			m.d.add(m.keys[k], m.Path, unknownKey(k, known))
		}
	}
}
