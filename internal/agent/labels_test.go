package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/policy"
)

// TestUserSitesLabelWarnings: an invalid godwit.io/user-sites label is logged once per
// container and value; a valid one never.
func TestUserSitesLabelWarnings(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	w := labelWarnings{}
	ct := func(id, v string) gossip.Container {
		return gossip.Container{ID: id, Name: "n-" + id, Labels: map[string]string{policy.LabelUserSites: v}}
	}
	w.check(log, []gossip.Container{ct("a", "site-a:0.7,site-b:0.3"), ct("b", "site-a")})
	w.check(log, []gossip.Container{ct("a", "site-a:0.7,site-b:0.3"), ct("b", "site-a")})
	if n := strings.Count(buf.String(), "container label ignored"); n != 1 || !strings.Contains(buf.String(), "container=n-b") {
		t.Fatalf("%d warnings:\n%s", n, buf.String())
	}
	w.check(log, []gossip.Container{ct("b", "site-a:-1")})
	if n := strings.Count(buf.String(), "container label ignored"); n != 2 || len(w) != 1 {
		t.Fatalf("%d warnings, %d remembered:\n%s", n, len(w), buf.String())
	}
}

// TestEmulatedDelayConfig: gossip.emulated_delay is 0 by default and at most 1s.
func TestEmulatedDelayConfig(t *testing.T) {
	cfg, err := ParseConfig("f.yaml", []byte(validClient))
	if err != nil || cfg.Gossip.EmulatedDelay != 0 {
		t.Fatalf("default: %v, %v", cfg, err)
	}
	with := strings.Replace(validClient, "  key_file: gossip.key\n", "  key_file: gossip.key\n  emulated_delay: 10ms\n", 1)
	if cfg, err := ParseConfig("f.yaml", []byte(with)); err != nil || cfg.Gossip.EmulatedDelay != Duration(10e6) {
		t.Fatalf("10ms: %v", err)
	}
	with = strings.Replace(with, "10ms", "2s", 1)
	if _, err := ParseConfig("f.yaml", []byte(with)); err == nil || !strings.Contains(err.Error(), "f.yaml:10:3: gossip.emulated_delay: must be 0 (none) to 1s") {
		t.Fatalf("2s: %v", err)
	}
}

// TestSameInventoryCPU: a container whose CPU use rises from idle to a third of a core is
// a new inventory (the leader picks what relieves a hot node by it); noise is not.
func TestSameInventoryCPU(t *testing.T) {
	inv := func(cpu float64) []gossip.Container {
		return []gossip.Container{{ID: "a", Name: "web", MemoryBytes: 64 << 20, CPUCores: cpu}}
	}
	for _, tc := range []struct {
		a, b float64
		same bool
	}{{0, 0.01, true}, {0.30, 0.35, true}, {0, 0.3, false}, {0.35, 0.1, false}, {2, 2.3, true}} {
		if got := sameInventory(inv(tc.a), inv(tc.b)); got != tc.same {
			t.Errorf("%v -> %v: same %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
