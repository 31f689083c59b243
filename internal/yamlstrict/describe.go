package yamlstrict

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Describe says what a node is, for messages: "a mapping", "a list", `the string "x"`,
// "the number 3", "the boolean true", "nothing (null)".
func Describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
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

// IsNull reports whether n is absent or an explicit null (~, null, or no value).
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// resolve follows aliases (a nil alias, which the library does not produce, gives nil).
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
