package yamlstrict

import (
	"fmt"
	"strings"
)

// Error is one problem in a file, at the position of the YAML node it is about.
type Error struct {
	// File is the file's name as the caller gave it.
	File string
	// Line and Column are 1-based; 0 when the problem has no position (an empty file).
	Line, Column int
	// Path is where in the document, spelt as the Decoder spells paths, e.g.
	// .spec.triggers[0].when; for an unknown or duplicate key, the mapping that holds it
	// ("" or "." for the top level).
	Path string
	// Message says what is wrong, without the position or the path.
	Message string
	// Document is true for a problem of the file as a whole (a syntax error, an empty
	// file, a second document) rather than of a value in it.
	Document bool
}

// Error formats as file:line:col: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}
