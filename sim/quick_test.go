package sim

import (
	"testing"

	"github.com/godwit-io/godwit/policy"
)

func TestQuickRun(t *testing.T) {
	sc, err := DefaultScenario()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, Config{Policy: SimPolicy(), Model: policy.DefaultCostModel()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Logf("%+v", r.Summary)
	}
}
