package sim

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidScenario is returned (wrapped in a ScenarioErrors) by ParseScenario and
// LoadScenario when a scenario file is malformed or inconsistent.
var ErrInvalidScenario = errors.New("sim: invalid scenario")

// ErrUnknownArm is returned by Run when asked for an arm it does not know.
var ErrUnknownArm = errors.New("sim: unknown arm")

// FieldError is one problem in a scenario file, at a position in it.
type FieldError struct {
	File   string
	Line   int
	Column int
	// Path locates the value in the document, e.g. ".spec.nodes[2].site".
	Path    string
	Message string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ScenarioErrors collects every problem found in one scenario file, in file order. It
// matches ErrInvalidScenario with errors.Is.
type ScenarioErrors []*FieldError

func (es ScenarioErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalidScenario) true.
func (es ScenarioErrors) Is(target error) bool { return target == ErrInvalidScenario }

// Unwrap exposes the single errors.
func (es ScenarioErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
