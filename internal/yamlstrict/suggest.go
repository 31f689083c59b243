package yamlstrict

import (
	"fmt"
	"slices"
	"strings"
)

// unknownKey is the message for key, which is none of known: with the closest known key
// when one is close enough, else the list of known keys.
func unknownKey(key string, known []string) string {
	if s := Closest(key, known); s != "" {
		return fmt.Sprintf("unknown field %q, did you mean %q?", key, s)
	}
	if len(known) == 0 {
		return fmt.Sprintf("unknown field %q: nothing is expected here", key)
	}
	return fmt.Sprintf("unknown field %q (known: %s)", key, strings.Join(known, ", "))
}

// Closest is the name in known a misspelt got most likely meant: the same up to case and
// - for _, or at most two edits away (the nearest, the first in sorted order on a tie);
// "" when none is.
func Closest(got string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	sorted := slices.Clone(known)
	slices.Sort(sorted)
	best, bestD := "", 3
	for _, name := range sorted {
		if norm(name) == norm(got) {
			return name
		}
		if d := editDistance(norm(got), norm(name)); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (large for long strings, which are
// not worth comparing).
func editDistance(a, b string) int {
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
