package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes checks the command-line contract: 0 success, 1 runtime failure, 2 usage or
// invalid input, with errors that say what and where.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: sometimes\n  triggers:\n    - name: x\n      when: node.cpuu > 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, _ := filepath.Glob("../../configs/policies/*.yaml")
	if len(good) == 0 {
		t.Fatal("no example policies found")
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr []string // substrings of the output (checkers print findings on stdout)
	}{
		{"no command", nil, exitUsage, []string{"usage: godwit"}},
		{"unknown command", []string{"frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`}},
		{"help", []string{"help"}, exitOK, nil},
		{"version", []string{"version"}, exitOK, nil},
		{"policy check, example policies", append([]string{"policy", "check"}, good...), exitOK, nil},
		{"policy check, every error with its position", []string{"policy", "check", bad}, exitUsage,
			[]string{bad + ":4:9:", bad + ":7:", "cpuu"}},
		{"policy check, missing file", []string{"policy", "check", filepath.Join(dir, "nope.yaml")}, exitUsage, []string{"nope.yaml"}},
		{"migrate without container", []string{"migrate", "--to", "node2", "--addr", "127.0.0.1:1"}, exitUsage, []string{"usage: godwit migrate"}},
		{"migrate without --to", []string{"migrate", "web", "--addr", "127.0.0.1:1"}, exitUsage, []string{"--to is required"}},
		{"migrate, source endpoint down", []string{"migrate", "web", "--to", "127.0.0.1:2", "--addr", "127.0.0.1:1"}, exitFailure, []string{"unreachable"}},
		{"demo, bad size", []string{"demo", "--mib", "0"}, exitUsage, []string{"--mib"}},
		{"dev, unknown subcommand", []string{"dev", "sideways"}, exitUsage, []string{"sideways"}},
		{"endpoint, bad capacity", []string{"endpoint", "--docker-host", "unix:///nope", "--memory-capacity", "lots"}, exitUsage, []string{"memory-capacity"}},
		{"bad flag", []string{"demo", "--nope"}, exitUsage, []string{"nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, w := range tc.wantErr {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "512MiB": 512 << 20, "8GiB": 8 << 30, "1024": 1024, "2KiB": 2048} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "-1GiB", "1.5GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
