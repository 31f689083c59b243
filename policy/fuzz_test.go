package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input makes Parse panic, every error it returns is an ErrInvalidPolicy
// with a position inside the input, and a policy it accepts can be evaluated.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../configs/policies/*.yaml")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  triggers:\n    - name: a\n      when: |\n        node.cpu >\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("apiVersion: godwit.io/v1\nkind: Policy\nspec: {windows: {allow: [{start: '24:00', end: '1:1'}]}}\n"))
	v := cluster([]Node{node("a", "s1", 0.95, 0.5), node("b", "s2", 0.1, 0.1)},
		ctr("c1", "a", 2, 0.25, "app", "web"), ctr("c2", "a", 1.9, 0.25))
	v.Containers[0].Users = []UserSite{{Site: "s2", Weight: 1}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error is not ErrInvalidPolicy: %v", err)
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty Errors: %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without error")
		}
		Evaluate(v, p, DefaultCostModel(), Ledger{}, t0)
	})
}
