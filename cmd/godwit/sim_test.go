package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimSuite runs `godwit sim suite` on a directory with one small scenario and checks
// its exit codes.
func TestSimSuite(t *testing.T) {
	dir := t.TempDir()
	small := `apiVersion: godwit.io/v1
kind: Scenario
metadata: {name: tiny}
spec:
  duration: 2h
  sites: [{name: a, coordinates: [0, 0]}, {name: b, coordinates: [30, 0]}]
  nodes:
    - {name: a, count: 2, site: a, cpu: 4, memoryGiB: 8}
    - {name: b, count: 2, site: b, cpu: 4, memoryGiB: 8}
  containers:
    - name: web
      count: 8
      placement: {sites: [a]}
      memoryGiB: 0.5
      labels: {godwit.io/managed: "true"}
      cpu: {model: constant, value: 0.9}
      users: [{count: 2, site: b}]
`
	if err := os.WriteFile(filepath.Join(dir, "tiny.yaml"), []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "bad.yaml"), []byte("apiVersion: godwit.io/v1\nkind: Scenario\nspec:\n  duration: soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"a directory", []string{"sim", "suite", "--seeds", "1,2", dir}, exitOK, []string{"SLO / best baseline", "tiny", "threshold"}},
		{"json", []string{"sim", "suite", "--json", dir}, exitOK, []string{`"scenario": "tiny"`}},
		{"post-copy offered", []string{"sim", "suite", "--post-copy", dir}, exitOK, []string{"post-copy degraded s", "tiny"}},
		{"suite page", []string{"sim", "suite", "--out", filepath.Join(dir, "out"), dir}, exitOK, []string{"suite page: "}},
		{"bad seeds", []string{"sim", "suite", "--seeds", "one", dir}, exitUsage, []string{"--seeds"}},
		{"bad scenario", []string{"sim", "suite", bad}, exitUsage, []string{"bad.yaml:4:"}},
		{"unknown arm", []string{"sim", "suite", "--arms", "policy,magic", dir}, exitUsage, []string{"magic"}},
		{"no such directory", []string{"sim", "suite", filepath.Join(dir, "nope")}, exitFailure, []string{"nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
