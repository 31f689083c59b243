package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/godwit-io/godwit/policy"
)

// TestIndent: every line of a table comes out two spaces in, however a tabwriter splits its
// writes.
func TestIndent(t *testing.T) {
	var b bytes.Buffer
	w := indented(&b)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE")
	fmt.Fprintln(tw, "s1\tserver")
	tw.Flush()
	fmt.Fprint(w, "a")
	fmt.Fprint(w, "b\n\nc\n")
	want := "  NAME  ROLE\n  s1    server\n  ab\n\n  c\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

// TestDemoFlags: bad combinations are usage errors, before anything starts.
func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"demo", "--compress"}, {"demo", "--mib", "20000"}, {"demo", "now"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v printed %q", args, out.String())
		}
	}
	var errb bytes.Buffer
	run([]string{"demo", "--compress"}, &bytes.Buffer{}, &errb)
	if !strings.Contains(errb.String(), "--compress goes with --manual") {
		t.Errorf("stderr %q", errb.String())
	}
}

// TestDemoPolicy: the demo's policy parses.
func TestDemoPolicy(t *testing.T) {
	if _, err := policy.Parse("demo-policy.yaml", []byte(demoPolicy)); err != nil {
		t.Fatal(err)
	}
}
