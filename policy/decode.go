package policy

import (
	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/internal/yamlstrict"
)

// newDecoder returns the strict decoder of a policy file: keys are the wire types' JSON
// names (the same names the JSON schema gives editors), paths start with a dot
// (.spec.triggers[0].when).
func newDecoder(name string) *yamlstrict.Decoder {
	d := yamlstrict.New(name)
	d.Tag, d.DotPaths = "json", true
	return d
}

// policyErrors returns the decoder's problems as Errors, nil when there are none.
func policyErrors(d *yamlstrict.Decoder) error {
	problems := d.Errors()
	if len(problems) == 0 {
		return nil
	}
	out := make(Errors, len(problems))
	for i, p := range problems {
		out[i] = &Error{File: p.File, Line: p.Line, Column: p.Column, Path: p.Path, Msg: p.Message}
	}
	return out
}

// DecodeYAMLScalar reads a Duration from a policy file (yamlstrict.ScalarDecoder).
func (d *Duration) DecodeYAMLScalar(n *yaml.Node) error { return d.parseScalar(n.Value) }

// DecodeYAMLScalar reads a ByteSize from a policy file (yamlstrict.ScalarDecoder).
func (b *ByteSize) DecodeYAMLScalar(n *yaml.Node) error { return b.parseScalar(n.Value) }
