package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/godwit-io/godwit/internal/testenv"
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
	for _, args := range [][]string{{"demo", "--compress"}, {"demo", "--mib", "20000"}, {"demo", "now"},
		{"demo", "--first-ip", "10.0.0.1"}, {"demo", "--first-ip", "127.0.0.0"}, {"demo", "--first-ip", "nowhere"},
		{"demo", "--manual", "--drain"}, {"demo", "--measure-hot", "-1"}} {
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

// TestDemoCluster runs the cluster demo for real, small (16 MiB workloads), with its drain
// act: three agent processes, each a server over its own dockerd with CRIU, on
// 127.0.101.21-23. n1 is made hot and the leader moves a workload off it with nobody
// ordering it (the explanation names the trigger node-hot; the memory checksum is the same
// and the ticks went on, one copy runs); a workload follows its users to the site `users
// set` reports (users-far); a drained node is emptied (drained); the leader's metrics count
// the completed migrations. The demo fails unless each of these holds; the test checks
// that the output says so.
func TestDemoCluster(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	if testing.Short() {
		t.Skip("starts three engines and three agent processes; not in -short")
	}
	var out syncBuffer
	err := runClusterDemo(demoOptions{mib: 16, ipBase: "127.0.101", ipFirst: 21, exe: godwitBinary(t), engineName: "ud", drain: true}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"triggers node-hot", "triggers users-far", "triggers drained", "its users: site-",
		"memory checksum unchanged", "(continued)", `godwit_migrations_finished{result="completed"}`, "PASS:"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output has no %q", want)
		}
	}
	if strings.Count(text, "memory checksum unchanged") != 3 {
		t.Errorf("want three state checks")
	}
	if t.Failed() {
		t.Log(text)
	}
}
