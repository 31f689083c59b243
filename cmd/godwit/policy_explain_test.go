package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyExplainOffline runs `godwit policy explain --policy --view` on the shipped
// snapshot, and on a snapshot with mistakes: every one reported at its file:line:col, exit 2.
func TestPolicyExplainOffline(t *testing.T) {
	pol := filepath.Join("..", "..", "configs", "policies", "balance-load.yaml")
	view := filepath.Join("..", "..", "policy", "testdata", "snapshot.yaml")
	code, stdout, stderr := runCLI(t, "policy", "explain", "--policy", pol, "--view", view, "--at", "2025-06-02T12:00:00Z")
	if code != exitOK || !strings.Contains(stdout, "web-1") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	text := "nodes:\n  - {id: a, site: x, cpuCores: four}\nsiteLinks:\n  - {from: x, to: y, rtt: 25}\nledger:\n  migratons: []\n"
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "policy", "explain", "--policy", pol, "--view", bad)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitUsage, stdout, stderr)
	}
	for _, want := range []string{
		bad + `:2:32: .nodes[0].cpuCores: want a number, got the string "four"`,
		bad + `:4:27: .siteLinks[0].rtt: want a duration such as 90s or 1h30m, got the number 25`,
		bad + `:6:3: .ledger: unknown field "migratons", did you mean "migrations"?`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
