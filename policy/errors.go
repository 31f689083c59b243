package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPolicy is wrapped by every error Parse returns about the content of a policy
// file: errors.Is(err, ErrInvalidPolicy) tells bad input from other failures.
var ErrInvalidPolicy = errors.New("policy: invalid policy")

// Error is one problem in a policy file, at a position.
type Error struct {
	// File is the name given to Parse.
	File string
	// Line and Column are 1-based; 0 when the problem has no position (an empty file).
	Line, Column int
	// Path is where in the document, e.g. .spec.triggers[0].when.
	Path string
	Msg  string
}

// Error formats as file:line:col: message (path).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Path != "" {
		fmt.Fprintf(&b, " (%s)", e.Path)
	}
	return b.String()
}

// Unwrap makes every Error an ErrInvalidPolicy.
func (e *Error) Unwrap() error { return ErrInvalidPolicy }

// Errors is every problem found in a file, in file order. Parse returns it as its error.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ErrUnknownMigration is returned by Ledger.Advance when the ledger has no migration with
// the given ID.
var ErrUnknownMigration = errors.New("policy: unknown migration")

// ErrInvalidTransition is wrapped by the TransitionError Ledger.Advance returns when the
// transition table (MigrationState.CanBecome) forbids a step.
var ErrInvalidTransition = errors.New("policy: invalid migration state transition")

// TransitionError is a step the transition table forbids.
type TransitionError struct {
	ID       string
	From, To MigrationState
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("policy: migration %s cannot go from %s to %s", e.ID, e.From, e.To)
}

// Unwrap makes every TransitionError an ErrInvalidTransition.
func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }
