package policy

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Points from a known line plus Gaussian noise and a few gross outliers: the fit recovers
// the line.
func TestFitRecoversNoisyLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const a, b = 0.3, 1.2 // seconds, seconds per GiB
	var obs []Observation
	for i := range 300 {
		gib := 0.05 + rng.Float64()*4
		y := a + b*gib + rng.NormFloat64()*0.05
		if i%37 == 0 {
			y += 5 + rng.Float64()*10 // a migration that hit a busy disk
		}
		obs = append(obs, Observation{
			MemoryBytes: int64(gib * GiB),
			Checkpoint:  time.Duration(y * float64(time.Second)),
			ImageBytes:  int64((0.01 + 0.98*gib) * GiB),
		})
	}
	m := Fit(DefaultCostModel(), obs, 0)
	c := m.Checkpoint
	if math.Abs(c.Intercept-a) > 0.03 || math.Abs(c.Slope-b) > 0.02 {
		t.Errorf("checkpoint fit = %+v, want intercept %v slope %v", c, a, b)
	}
	if c.N != DefaultFitWindow {
		t.Errorf("fit used %d points, want the window of %d", c.N, DefaultFitWindow)
	}
	if c.Outliers < 3 || c.RMSE > 0.07 || c.RMSE < 0.03 {
		t.Errorf("fit error: rmse %v outliers %d, want ~0.05 and the planted outliers", c.RMSE, c.Outliers)
	}
	if math.Abs(m.Image.Slope-0.98) > 0.01 {
		t.Errorf("image fit = %+v", m.Image)
	}
	// Restore was never measured: the default stays.
	if m.Restore != DefaultCostModel().Restore {
		t.Errorf("restore changed without observations: %+v", m.Restore)
	}
}

func TestFitLineDegenerate(t *testing.T) {
	prior := Linear{Intercept: 0.2, Slope: 1}
	if got := FitLine(prior, nil, nil); got != prior {
		t.Errorf("no points: %+v", got)
	}
	// One memory size: only the intercept moves.
	got := FitLine(prior, []float64{1, 1, 1}, []float64{2, 2, 2})
	if math.Abs(got.Slope-1) > 1e-9 || math.Abs(got.Intercept-1) > 1e-9 {
		t.Errorf("single x: %+v", got)
	}
}

func TestCostModelJSON(t *testing.T) {
	m := Fit(DefaultCostModel(), []Observation{
		{MemoryBytes: GiB, Checkpoint: time.Second}, {MemoryBytes: 2 * GiB, Checkpoint: 2 * time.Second},
		{MemoryBytes: 3 * GiB, Checkpoint: 3 * time.Second},
	}, 10)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back CostModel
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestPredict(t *testing.T) {
	m := DefaultCostModel()
	p := m.Predict(GiB, 125e6, 10*time.Millisecond)
	// checkpoint 1.2s, restore 1.1s, image 1.01 GiB over 125 MB/s ≈ 8.68s, + 10ms.
	if p.Checkpoint != 1200*time.Millisecond || p.Restore != 1100*time.Millisecond {
		t.Errorf("prediction = %+v", p)
	}
	if p.Transfer < 8600*time.Millisecond || p.Transfer > 8800*time.Millisecond {
		t.Errorf("transfer = %v", p.Transfer)
	}
	if p.Downtime != p.Checkpoint+p.Transfer+p.Restore || p.Total != p.Downtime+m.Overhead {
		t.Errorf("sums: %+v", p)
	}
}

func TestLedgerPrune(t *testing.T) {
	p := DefaultPolicy() // cooldown 10m, ping-pong 1h
	l := Ledger{Migrations: []MigrationRecord{
		{ID: "old", State: StateCompleted, Start: t0.Add(-3 * time.Hour), End: t0.Add(-3 * time.Hour)},
		{ID: "recent", State: StateCompleted, Start: t0.Add(-30 * time.Minute), End: t0.Add(-30 * time.Minute)},
		{ID: "stuck", State: StateTransferring, Start: t0.Add(-5 * time.Hour)},
	}}
	var ids []string
	for _, m := range l.Prune(&p, 0, t0).Migrations {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]string{"recent", "stuck"}, ids); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
}
