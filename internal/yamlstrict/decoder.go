package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoder decodes one file. It collects every problem (Errors) and remembers the key and
// value node of every path it decoded or walked. A Decoder is not safe for concurrent use.
type Decoder struct {
	// File names the file in errors.
	File string
	// Tag is the struct tag that names a field's key for Decode ("yaml" when empty), or
	// several separated by commas, the first a field has naming it ("yaml,json").
	Tag string
	// DotPaths spells paths with a leading dot (.spec.mode, as the policy and scenario
	// formats do) instead of without (spec.mode, the agent config's).
	DotPaths bool
	// Values and Keys are the value node and the key node of every path decoded or walked
	// (a list item has a value node only).
	Values map[string]*yaml.Node
	Keys   map[string]*yaml.Node

	errs   []*Error
	failed map[string]bool
	steps  int
}

// New returns a decoder for the file named file.
func New(file string) *Decoder {
	return &Decoder{File: file, Values: map[string]*yaml.Node{}, Keys: map[string]*yaml.Node{}, failed: map[string]bool{}}
}

// MaxSteps bounds the nodes Decode visits in one file: aliases can make a small file a huge
// tree (an alias bomb), and godwit's files have hundreds of nodes, not thousands.
const MaxSteps = 100_000

// Errorf records a problem with the value at path, at n's position (none when n is nil or
// has none). Later checks can ask Failed(path) so as not to say more about a bad value.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.add(n, path, fmt.Sprintf(format, args...))
}

// ErrorAt records a problem with the value at path at a position given by hand (inside a
// scalar, say).
func (d *Decoder) ErrorAt(line, col int, path, format string, args ...any) {
	d.failed[path] = true
	d.errs = append(d.errs, &Error{File: d.File, Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// add records a problem without marking path failed: an unknown or duplicate key is a
// problem of its mapping, not of the mapping's value.
func (d *Decoder) add(n *yaml.Node, path, msg string) {
	e := &Error{File: d.File, Path: path, Message: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// Failed reports whether a problem was recorded with the value at path.
func (d *Decoder) Failed(path string) bool { return d.failed[path] }

// Len is the number of problems recorded so far.
func (d *Decoder) Len() int { return len(d.errs) }

// Errors returns every problem, in file order (problems without a position first); nil
// when there are none.
func (d *Decoder) Errors() []*Error {
	if len(d.errs) == 0 {
		return nil
	}
	out := append([]*Error(nil), d.errs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return out
}

// Join is the path of the key name in the mapping at path.
func (d *Decoder) Join(path, name string) string {
	if path == "" && !d.DotPaths {
		return name
	}
	return path + "." + name
}

// Index is the path of item i of the list at path.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Nearest is the node in nodes (Values or Keys) of path or, when it has none, of its
// nearest ancestor that has one; nil when no ancestor has.
func Nearest(nodes map[string]*yaml.Node, path string) *yaml.Node {
	for p := path; ; {
		if n := nodes[p]; n != nil && n.Line > 0 {
			return n
		}
		if p == "" {
			return nil
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			i = 0
		}
		p = p[:i]
	}
}

// Load parses data as exactly one YAML document and returns its root node, or nil with
// the problems recorded: an empty file ("empty file: want " + want), a syntax error (at
// its line, and at the offending tab for the library's tab error), a second document.
func (d *Decoder) Load(data []byte, want string) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.documentError(0, 0, "empty file: want "+want)
		} else {
			d.documentError(syntaxErrorPos(err, data))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.documentError(extra.Line, extra.Column, "a second YAML document starts here; a file holds exactly one")
	} else if !errors.Is(err, io.EOF) {
		d.documentError(syntaxErrorPos(err, data))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.documentError(0, 0, "empty file: want "+want)
			return nil
		}
		root = root.Content[0]
	}
	return root
}

func (d *Decoder) documentError(line, col int, msg string) {
	d.errs = append(d.errs, &Error{File: d.File, Line: line, Column: col, Message: msg, Document: true})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxErrorPos places the YAML library's "yaml: line N: msg" at line N, column 1, and
// its tab error at the offending tab (the library reports the line before, where the token
// it was scanning started).
func syntaxErrorPos(err error, src []byte) (line, col int, msg string) {
	msg = err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, 0, "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	}
	line, _ = strconv.Atoi(m[1])
	msg = "invalid YAML: " + m[2]
	col = 1
	if !strings.Contains(msg, "tab character") || line <= 0 {
		return line, col, msg
	}
	lines := strings.Split(string(src), "\n")
	for i := line - 1; i < len(lines) && i <= line; i++ {
		indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
		if j := strings.IndexByte(indent, '\t'); j >= 0 {
			return i + 1, j + 1, msg
		}
	}
	return line, col, msg
}
