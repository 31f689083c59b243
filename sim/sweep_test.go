package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godwit-io/godwit/policy"
)

func TestSweep(t *testing.T) {
	sc := loadSmall(t)
	sc.Duration /= 2
	params := []Param{
		{Path: "spec.constraints.cooldown", Values: []string{"1m", "30m"}},
		{Path: "spec.objectives.overloadThreshold", Values: []string{"0.7", "0.95"}},
	}
	run := func(workers int) []SweepPoint {
		pts, err := Sweep(sc, SweepConfig{Params: params, Model: policy.DefaultCostModel(), Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		return pts
	}
	one, two := run(1), run(2)
	if diff := cmp.Diff(one, two); diff != "" {
		t.Fatalf("sweep depends on the number of workers:\n%s", diff)
	}
	if len(one) != 4 {
		t.Fatalf("%d points, want 4", len(one))
	}
	if got := one[1].Values; !cmp.Equal(got, []string{"1m", "0.95"}) {
		t.Errorf("point 1 values %v", got)
	}
	var front int
	for _, p := range one {
		if p.Pareto {
			front++
		}
	}
	if front == 0 {
		t.Fatal("empty Pareto front")
	}
	best, err := Best(one, ObjectiveSLO)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range one {
		if p.Summary.SLOViolationUserMinutes < one[best].Summary.SLOViolationUserMinutes {
			t.Errorf("best for slo has %v violations, %v has %v", one[best].Summary.SLOViolationUserMinutes, p.Values, p.Summary.SLOViolationUserMinutes)
		}
	}
	// The best policy file is a valid policy carrying its values.
	pol, err := policy.Parse("best.yaml", one[best].PolicyFile)
	if err != nil {
		t.Fatalf("best policy does not parse: %v\n%s", err, one[best].PolicyFile)
	}
	if want, _ := time.ParseDuration(one[best].Values[0]); pol.Constraints.Cooldown != want {
		t.Errorf("best policy cooldown %v, values %v", pol.Constraints.Cooldown, one[best].Values)
	}
	var csv bytes.Buffer
	if err := WriteSweepCSV(&csv, params, one); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(csv.String(), "\n"); n != 5 {
		t.Errorf("sweep CSV has %d lines, want 5", n)
	}
}

func TestSweepErrors(t *testing.T) {
	if _, err := ParseParam("nothing"); !errorsIs(err, ErrInvalidSweep) {
		t.Errorf("ParseParam: %v", err)
	}
	sc := loadSmall(t)
	_, err := Sweep(sc, SweepConfig{Params: []Param{{Path: "spec.constraints.cooldown", Values: []string{"soon"}}}})
	if !errorsIs(err, ErrInvalidSweep) || !strings.Contains(err.Error(), "cooldown") {
		t.Errorf("bad value: %v", err)
	}
	if _, err := Best([]SweepPoint{{Pareto: true}}, "fastest"); !errorsIs(err, ErrInvalidSweep) {
		t.Errorf("bad objective: %v", err)
	}
}
