package agent

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/internal/yamlstrict"
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

// decoder is the strict YAML decoder of every godwit file (yamlstrict), with the agent
// config's rule for placing validation problems (atPath). Config keys are the fields' yaml
// tags; paths have no leading dot (server.raft.bind).
type decoder struct{ *yamlstrict.Decoder }

func newDecoder(file string) *decoder { return &decoder{yamlstrict.New(file)} }

// atPath reports at the key of the field at path or, when it was not given, at the key of
// its nearest enclosing field that was (else at fallback). Nothing is reported for a path
// whose value already failed to decode (a bad value is not also "required").
func (d *decoder) atPath(path string, fallback *yaml.Node, format string, args ...any) {
	if d.Failed(path) {
		return
	}
	n := yamlstrict.Nearest(d.Keys, path)
	if n == nil {
		n = fallback
	}
	d.Errorf(n, path, format, args...)
}

// configError is every problem recorded, in file order, each as "path: message" (the
// document's top level is "(top level)"; a problem of the file as a whole has no path, and
// one without a position is at 1:1).
func (d *decoder) configError() *ConfigError {
	var out []Problem
	for _, e := range d.Errors() {
		p := Problem{File: e.File, Line: e.Line, Column: e.Column, Message: orTop(e.Path) + ": " + e.Message}
		if e.Document {
			p.Message = e.Message
		}
		if p.Line <= 0 {
			p.Line, p.Column = 1, 1
		}
		out = append(out, p)
	}
	return &ConfigError{Problems: out}
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// DecodeYAMLScalar reads a ByteSize from a config file (yamlstrict.ScalarDecoder).
func (b *ByteSize) DecodeYAMLScalar(n *yaml.Node) error { return b.decodeNode(n) }

// DecodeYAMLScalar reads a Duration from a config file (yamlstrict.ScalarDecoder).
func (d *Duration) DecodeYAMLScalar(n *yaml.Node) error { return d.decodeNode(n) }
