package sim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/policy"
)

// largeScenarioYAML is 1,000 nodes in 50 sites, 20,000 containers, 24 h, 60 s decisions.
func largeScenarioYAML() string {
	var b strings.Builder
	b.WriteString(`apiVersion: godwit.io/v1
kind: Scenario
metadata: {name: large}
spec:
  duration: 24h
  decisionInterval: 60s
  seed: 7
  network:
    default: {rtt: 30ms, bandwidthMbps: 1000}
  sites:
`)
	for s := range 50 {
		fmt.Fprintf(&b, "    - {name: s%d, coordinates: [%d, %d]}\n", s, (s%10)*6, (s/10)*6)
	}
	b.WriteString("  nodes:\n")
	for s := range 50 {
		fmt.Fprintf(&b, "    - {name: n%d, count: 20, site: s%d, cpu: 16, memoryGiB: 64}\n", s, s)
	}
	b.WriteString(`  containers:
    - name: web
      count: 12000
      memoryGiB: 0.5
      labels: {godwit.io/managed: "true"}
      cpu: {model: diurnal, base: 0.5, amplitude: 0.3, peak: 15h, phaseJitter: 3h, noise: 0.05}
      users:
        - count: 2
          mobility: {model: randomWaypoint, pauseMin: 1h, pauseMax: 6h}
    - name: api
      count: 5000
      memoryGiB: 1
      labels: {godwit.io/managed: "true"}
      cpu: {model: spikes, base: 0.3, height: 1, every: 4h, length: 15m}
      users: [{count: 1}]
    - name: cache
      count: 3000
      memoryGiB: 2
      labels: {godwit.io/managed: "true"}
      cpu: {model: randomWalk, start: 0.5, step: 0.05, min: 0.1, max: 1.5}
  events:
    - {at: 6h, type: nodeFailure, node: n3-4}
    - {at: 8h, type: nodeRecovery, node: n3-4}
`)
	return b.String()
}

func benchRun(b *testing.B, sc *Scenario) {
	cfg := Config{Policy: SimPolicy(), Model: policy.DefaultCostModel()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RunPlanner(sc, cfg, &PolicyPlanner{Policy: cfg.Policy, Model: cfg.Model}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultScenario runs the policy arm of the embedded default scenario for its 24
// simulated hours.
func BenchmarkDefaultScenario(b *testing.B) {
	sc, err := DefaultScenario()
	if err != nil {
		b.Fatal(err)
	}
	benchRun(b, sc)
}

// BenchmarkLargeScenario runs the policy arm of 1,000 nodes and 20,000 containers for 24
// simulated hours at a 60 s decision interval.
func BenchmarkLargeScenario(b *testing.B) {
	sc, err := ParseScenario("large.yaml", []byte(largeScenarioYAML()))
	if err != nil {
		b.Fatal(err)
	}
	benchRun(b, sc)
}

// BenchmarkDefaultScenarioNoMigration is the simulator's own cost: the default scenario
// with the planner that never moves anything.
func BenchmarkDefaultScenarioNoMigration(b *testing.B) {
	sc, err := DefaultScenario()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := RunPlanner(sc, Config{Model: policy.DefaultCostModel()}, NoMigration{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeScenarioNoMigration is the simulator's own cost on the large scenario.
func BenchmarkLargeScenarioNoMigration(b *testing.B) {
	sc, err := ParseScenario("large.yaml", []byte(largeScenarioYAML()))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := RunPlanner(sc, Config{Model: policy.DefaultCostModel()}, NoMigration{}); err != nil {
			b.Fatal(err)
		}
	}
}
