package calibrate

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestOLS(t *testing.T) {
	// Exact line: R^2 = 1, zero residuals.
	l := OLS([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7})
	if !near(l.Intercept, 1) || !near(l.Slope, 2) || !near(l.R2, 1) || !near(l.RMSE, 0) || l.N != 4 {
		t.Fatalf("exact line: %+v", l)
	}

	// Hand-computed: x = 1,2,3, y = 1,2,2 -> slope 0.5, intercept 2/3,
	// residuals 1/6, -1/3, 1/6: SS_res = 1/6, SS_tot = 2/3, R^2 = 0.75.
	l = OLS([]float64{1, 2, 3}, []float64{1, 2, 2})
	if !near(l.Slope, 0.5) || !near(l.Intercept, 2.0/3) || !near(l.R2, 0.75) || !near(l.RMSE, math.Sqrt(1.0/18)) {
		t.Fatalf("hand example: %+v", l)
	}

	// Noisy data explains less than everything, and R^2 stays in [0,1] for OLS.
	xs := []float64{0.0625, 0.25, 0.5, 1, 2, 0.0625, 0.25, 0.5, 1, 2}
	ys := []float64{1.1, 4.2, 7.9, 15.5, 30.8, 0.9, 3.7, 8.3, 14.6, 29.1}
	l = OLS(xs, ys)
	if l.R2 <= 0.99 || l.R2 >= 1 || l.Slope < 14 || l.Slope > 16 {
		t.Fatalf("noisy: %+v", l)
	}

	// Flat y on a flat line: R^2 = 1 by convention (the line explains all there is).
	l = OLS([]float64{1, 2, 3}, []float64{5, 5, 5})
	if !near(l.Slope, 0) || !near(l.Intercept, 5) || l.R2 != 1 {
		t.Fatalf("flat: %+v", l)
	}

	// A single x: no slope, intercept = mean, R^2 = 0.
	l = OLS([]float64{2, 2}, []float64{1, 3})
	if l.Slope != 0 || !near(l.Intercept, 2) || l.R2 != 0 || l.N != 2 {
		t.Fatalf("single x: %+v", l)
	}

	// Empty or mismatched input.
	if l := OLS(nil, nil); l.N != 0 {
		t.Fatalf("empty: %+v", l)
	}
	if l := OLS([]float64{1}, []float64{1, 2}); l.N != 0 {
		t.Fatalf("mismatched: %+v", l)
	}
}

func TestAnalyse(t *testing.T) {
	res := &Result{Sizes: []int{512, 1024}, Repeats: 1, Docker: true}
	res.Runs = []Sample{
		{Method: MethodGodwit, SizeMiB: 512, Repeat: 1, CheckpointS: 0.6, CheckpointBytes: 512 << 20, TransferS: 0.3, RestoreS: 0.5, DowntimeS: 1.4},
		{Method: MethodGodwit, SizeMiB: 1024, Repeat: 1, CheckpointS: 1.1, CheckpointBytes: 1024 << 20, TransferS: 0.6, RestoreS: 0.9, DowntimeS: 2.6},
		{Method: MethodGodwit, SizeMiB: 1024, Repeat: 2, Err: "boom", DowntimeS: 99},
		{Method: MethodDocker, SizeMiB: 512, Repeat: 1, CheckpointS: 8, RestoreS: 7, DowntimeS: 15},
		{Method: MethodDocker, SizeMiB: 1024, Repeat: 1, CheckpointS: 15, RestoreS: 14, DowntimeS: 29},
	}
	res.analyse()
	if len(res.Summary) != 2 || res.Summary[1].GodwitRuns != 1 || !near(res.Summary[1].GodwitDowntimeS, 2.6) {
		t.Fatalf("summary (failed run must be left out): %+v", res.Summary)
	}
	if !near(res.Summary[0].Ratio, 15/1.4) {
		t.Fatalf("ratio %v", res.Summary[0].Ratio)
	}
	f := res.Fits[MethodGodwit][PhaseCheckpointGiB]
	if !near(f.OLS.Slope, 1) || !near(f.OLS.R2, 1) {
		t.Fatalf("checkpoint size fit: %+v", f)
	}
	if _, ok := res.Fits[MethodDocker][PhaseTransfer]; ok {
		t.Fatal("plain Docker has no transfer line")
	}
	if res.Model.Image.N != 2 {
		t.Fatalf("cost model fitted over %d observations, want 2", res.Model.Image.N)
	}
}
