// Package yamlstrict is the one strict YAML decoder of every file godwit reads: policies,
// simulation scenarios and agent configs. It works on the YAML library's node tree so that
// every problem keeps its file:line:col, and it reports all of them at once:
//
//   - unknown keys, with a "did you mean" for a near miss (or the list of known keys);
//   - duplicate keys;
//   - type errors (a list where a number belongs, a string where true or false does);
//   - syntax errors, an empty file, a second document.
//
// Two ways in, one set of rules and messages: Decode fills a struct by reflection (field
// keys from a struct tag, types that read themselves implement ScalarDecoder), and Mapping
// walks a mapping key by key for formats whose shape depends on their content. Both
// remember the key and value node of every path so that validation after decoding can place
// its own errors.
//
// What it must not do: know any godwit format, or stop at the first error.
package yamlstrict
