package sim

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/policy"
)

var (
	suiteDir    = flag.String("suite", "", "TestSuiteReport: run every scenario of this directory (and the default) with the built-in policy and every baseline, and print the table")
	suiteSeeds  = flag.String("suite.seeds", "", "TestSuiteReport: comma-separated seeds (default: each scenario's own)")
	suitePolicy = flag.String("suite.policy", "", "TestSuiteReport: policy file (default: the built-in policy)")
	suiteFixed  = flag.Bool("suite.fixedmodel", false, "TestSuiteReport: do not refit the cost model during runs")
	suitePost   = flag.Bool("suite.postcopy", false, "TestSuiteReport: the modelled clusters offer post-copy as well as stop-and-copy")
)

// TestSuiteReport prints the suite table the README's figures come from:
//
//	go test ./sim/ -run '^TestSuiteReport$' -suite ../configs/scenarios -suite.seeds 1,2,3 -v
func TestSuiteReport(t *testing.T) {
	if *suiteDir == "" {
		t.Skip("no -suite directory")
	}
	scs, err := LoadScenarioDir(*suiteDir)
	if err != nil {
		t.Fatal(err)
	}
	var seeds []uint64
	if *suiteSeeds != "" {
		for _, s := range strings.Split(*suiteSeeds, ",") {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, v)
		}
	}
	pol := SimPolicy()
	if *suitePolicy != "" {
		data, err := os.ReadFile(*suitePolicy)
		if err != nil {
			t.Fatal(err)
		}
		if pol, err = policy.Parse(*suitePolicy, data); err != nil {
			t.Fatal(err)
		}
	}
	model := policy.DefaultCostModel()
	model.PostCopy.Enabled = *suitePost
	rows, err := RunSuite(scs, Config{Policy: pol, Model: model, FixedModel: *suiteFixed}, nil, seeds)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSuiteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	for _, m := range SuiteVerdict(rows, 0.8) {
		t.Log("goal missed: " + m)
	}
}

func TestRunSuiteSmall(t *testing.T) {
	sc := loadSmall(t)
	rows, err := RunSuite([]*Scenario{sc}, Config{Policy: SimPolicy(), Model: policy.DefaultCostModel()}, nil, []uint64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Seed != 1 || rows[1].Seed != 2 || len(rows[0].Arms) != len(DefaultArms) {
		t.Fatalf("rows: %+v", rows)
	}
	if rows[0].Arms[0].SLOViolationUserMinutes == rows[1].Arms[0].SLOViolationUserMinutes {
		t.Error("two seeds gave the same policy summary")
	}
	var b bytes.Buffer
	if err := WriteSuiteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "SLO / best baseline") || strings.Count(b.String(), "\n") != 1+2*len(DefaultArms) {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestBuiltInPolicyIsTheExample keeps the simulator's built-in policy and the example
// configs/policies/cost-benefit.yaml the same policy (the example spells every default out).
func TestBuiltInPolicyIsTheExample(t *testing.T) {
	data, err := os.ReadFile("../configs/policies/cost-benefit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := policy.Parse("cost-benefit.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	in := SimPolicy()
	if !in.CostBenefit.Enabled || in.CostBenefit != ex.CostBenefit || in.Constraints != ex.Constraints ||
		in.Objectives != ex.Objectives || in.Mode != ex.Mode || len(in.Triggers) != len(ex.Triggers) {
		t.Fatalf("built-in policy %+v\ndiffers from the example %+v", in, ex)
	}
	for i := range in.Triggers {
		a, b := in.Triggers[i], ex.Triggers[i]
		if a.Name != b.Name || a.When != b.When || a.Until != b.Until || a.For != b.For || a.Scope != b.Scope {
			t.Errorf("trigger %d: %+v, example %+v", i, a, b)
		}
	}
}

func TestEmbeddedScenarios(t *testing.T) {
	scs, skipped, err := EmbeddedScenarios()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range scs {
		names = append(names, sc.Name)
	}
	for _, want := range []string{"default", "commuter-line", "flash-storm"} {
		if !slices.Contains(names, want) {
			t.Errorf("embedded scenarios %v: %s missing", names, want)
		}
	}
	if !slices.Contains(skipped, "reference.yaml") {
		t.Errorf("skipped %v: want reference.yaml, whose traces are not built in", skipped)
	}
}

func TestWriteSuiteReport(t *testing.T) {
	rows := []SuiteRow{{Scenario: "s", Seed: 1, Arms: []Summary{
		{Arm: ArmPolicy, SLOViolationRate: 0.01, DowntimeS: 50},
		{Arm: ArmNone, SLOViolationRate: 0.4},
		{Arm: ArmThreshold, SLOViolationRate: 0.05, DowntimeS: 100},
	}}}
	var b bytes.Buffer
	if err := WriteSuiteReport(&b, rows, "built-in", 0.8); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`id="suite-table"`, "0.20x", "0.50x", `class="met"`, "Every goal met"} {
		if !strings.Contains(html, want) {
			t.Errorf("suite page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") {
		t.Error("suite page is not self-contained")
	}
}
