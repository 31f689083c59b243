package calibrate

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/godwit-io/godwit/policy"
)

// File names written into Config.Out.
const (
	CSVFile       = "calibration.csv"
	JSONFile      = "calibration.json"
	CostModelFile = "costmodel.json"
)

// CSVHeader is the header row of calibration.csv.
var CSVHeader = []string{"method", "size_mib", "repeat", "checkpoint_s", "checkpoint_bytes", "transfer_s",
	"restore_s", "downtime_s", "cpu_peak", "mem_peak_bytes", "memory_bytes", "error"}

// value returns a run's measurement for a phase.
func (r Sample) value(phase string) float64 {
	switch phase {
	case PhaseCheckpoint:
		return r.CheckpointS
	case PhaseCheckpointGiB:
		return float64(r.CheckpointBytes) / policy.GiB
	case PhaseTransfer:
		return r.TransferS
	case PhaseRestore:
		return r.RestoreS
	case PhaseDowntime:
		return r.DowntimeS
	}
	return 0
}

// analyse computes the fits, the per-size summary and the cost model from Runs.
func (res *Result) analyse() {
	res.Fits = map[string]map[string]PhaseFit{}
	for _, m := range Methods {
		var ok []Sample
		for _, r := range res.Runs {
			if r.Method == m && r.OK() {
				ok = append(ok, r)
			}
		}
		if len(ok) == 0 {
			continue
		}
		fits := map[string]PhaseFit{}
		for _, ph := range Phases {
			if m != MethodGodwit && ph == PhaseTransfer {
				continue // the others restore on the same host: nothing is transferred
			}
			if m == MethodFreshMemory && ph != PhaseDowntime {
				continue // one number: the time to fault the memory in
			}
			xs := make([]float64, len(ok))
			ys := make([]float64, len(ok))
			for i, r := range ok {
				xs[i] = float64(r.SizeMiB) / 1024
				ys[i] = r.value(ph)
			}
			fits[ph] = PhaseFit{OLS: OLS(xs, ys), Robust: policy.FitLine(policy.Linear{}, xs, ys)}
		}
		res.Fits[m] = fits
	}

	res.Summary = nil
	for _, size := range res.Sizes {
		s := SizeSummary{SizeMiB: size}
		var gc, gt, gr, gd, dc, dr, dd, cc, cr, cd, fm []float64
		for _, r := range res.Runs {
			if r.SizeMiB != size || !r.OK() {
				continue
			}
			switch r.Method {
			case MethodGodwit:
				gc, gt, gr, gd = append(gc, r.CheckpointS), append(gt, r.TransferS), append(gr, r.RestoreS), append(gd, r.DowntimeS)
			case MethodDocker:
				dc, dr, dd = append(dc, r.CheckpointS), append(dr, r.RestoreS), append(dd, r.DowntimeS)
			case MethodCRIU:
				cc, cr, cd = append(cc, r.CheckpointS), append(cr, r.RestoreS), append(cd, r.DowntimeS)
			case MethodFreshMemory:
				fm = append(fm, r.DowntimeS)
			}
		}
		s.GodwitRuns, s.DockerRuns = len(gd), len(dd)
		s.GodwitCheckpointS, s.GodwitTransferS, s.GodwitRestoreS, s.GodwitDowntimeS = mean(gc), mean(gt), mean(gr), mean(gd)
		s.DockerCheckpointS, s.DockerRestoreS, s.DockerTotalS = mean(dc), mean(dr), mean(dd)
		s.CRIURuns, s.CRIUDumpS, s.CRIURestoreS, s.CRIUTotalS = len(cd), mean(cc), mean(cr), mean(cd)
		s.FreshMemoryRuns, s.FreshMemoryS = len(fm), mean(fm)
		if s.GodwitDowntimeS > 0 && s.DockerTotalS > 0 {
			s.Ratio = s.DockerTotalS / s.GodwitDowntimeS
		}
		res.Summary = append(res.Summary, s)
	}

	var obs []policy.Observation
	for _, r := range res.Runs {
		if r.Method != MethodGodwit || !r.OK() {
			continue
		}
		mem := r.MemoryBytes
		if mem <= 0 {
			mem = int64(r.SizeMiB) << 20
		}
		obs = append(obs, policy.Observation{
			MemoryBytes: mem,
			Checkpoint:  time.Duration(r.CheckpointS * float64(time.Second)),
			Restore:     time.Duration(r.RestoreS * float64(time.Second)),
			ImageBytes:  r.CheckpointBytes,
		})
	}
	res.Model = policy.Fit(policy.DefaultCostModel(), obs, 0)
}

// WriteCSV writes one row per run.
func (res *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	for _, r := range res.Runs {
		if err := cw.Write([]string{
			r.Method, strconv.Itoa(r.SizeMiB), strconv.Itoa(r.Repeat),
			f(r.CheckpointS), strconv.FormatInt(r.CheckpointBytes, 10), f(r.TransferS),
			f(r.RestoreS), f(r.DowntimeS), f(r.CPUPeak), strconv.FormatInt(r.MemPeakBytes, 10),
			strconv.FormatInt(r.MemoryBytes, 10), r.Err,
		}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteFiles writes calibration.csv, calibration.json and costmodel.json into dir.
func (res *Result) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, CSVFile))
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if err := res.WriteCSV(f); err != nil {
		f.Close()
		return fmt.Errorf("calibrate: writing %s: %w", CSVFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, JSONFile), res); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, CostModelFile), res.Model)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	return nil
}

// LoadCostModel reads a costmodel.json as written by WriteFiles.
func LoadCostModel(path string) (policy.CostModel, error) {
	var m policy.CostModel
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteTable prints the per-size comparison and the fitted lines.
func (res *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "Per size (means over successful runs; seconds):")
	fmt.Fprintln(tw, "size_MiB\truns\tgodwit_ckpt\tgodwit_xfer\tgodwit_restore\tgodwit_downtime\tdocker_ckpt\tdocker_restore\tdocker_total\tdocker/godwit\tcriu_dump\tcriu_restore\tcriu_total\tfresh_mem\t")
	for _, s := range res.Summary {
		ratio := "-"
		if s.Ratio > 0 {
			ratio = fmt.Sprintf("%.1fx", s.Ratio)
		}
		fmt.Fprintf(tw, "%d\t%d+%d+%d\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.SizeMiB, s.GodwitRuns, s.DockerRuns, s.CRIURuns,
			s.GodwitCheckpointS, s.GodwitTransferS, s.GodwitRestoreS, s.GodwitDowntimeS,
			orDash(s.DockerCheckpointS, s.DockerRuns), orDash(s.DockerRestoreS, s.DockerRuns), orDash(s.DockerTotalS, s.DockerRuns), ratio,
			orDash(s.CRIUDumpS, s.CRIURuns), orDash(s.CRIURestoreS, s.CRIURuns), orDash(s.CRIUTotalS, s.CRIURuns), orDash(s.FreshMemoryS, s.FreshMemoryRuns))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nFitted lines, y = intercept + slope * size_GiB (OLS with R^2; robust = policy.FitLine):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tphase\tintercept\tslope/GiB\tR^2\tn\trobust_intercept\trobust_slope/GiB\toutliers")
	for _, m := range Methods {
		fits, ok := res.Fits[m]
		if !ok {
			continue
		}
		for _, ph := range Phases {
			f, ok := fits[ph]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%.4f\t%d\t%.4f\t%.4f\t%d\n", m, ph,
				f.OLS.Intercept, f.OLS.Slope, f.OLS.R2, f.OLS.N, f.Robust.Intercept, f.Robust.Slope, f.Robust.Outliers)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nFitted cost model (policy.Fit over godwit's runs, x = memory in use, GiB):")
	return WriteModel(w, res.Model)
}

func orDash(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// WriteModel prints a cost model's lines and what it predicts at the study's sizes.
func WriteModel(w io.Writer, m policy.CostModel) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "line\tintercept\tslope/GiB\trmse\tn\toutliers")
	for _, l := range []struct {
		name string
		l    policy.Linear
	}{{"checkpoint_s", m.Checkpoint}, {"restore_s", m.Restore}, {"image_gib", m.Image}} {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%d\t%d\n", l.name, l.l.Intercept, l.l.Slope, l.l.RMSE, l.l.N, l.l.Outliers)
	}
	fmt.Fprintf(tw, "bandwidth\t%.0f bytes/s\t\t\t\t\n", m.DefaultBandwidthBytesPerSec)
	fmt.Fprintf(tw, "rtt\t%s\t\t\t\t\n", m.DefaultRTT)
	fmt.Fprintf(tw, "overhead\t%s\t\t\t\t\n", m.Overhead)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nPredicted at the default bandwidth and RTT:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "memory_MiB\tcheckpoint\ttransfer\trestore\tdowntime\timage_MiB\t")
	for _, mib := range DefaultSizes {
		p := m.Predict(int64(mib)<<20, 0, -1)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t\n", mib, p.Checkpoint.Round(time.Millisecond), p.Transfer.Round(time.Millisecond),
			p.Restore.Round(time.Millisecond), p.Downtime.Round(time.Millisecond), p.ImageBytes>>20)
	}
	return tw.Flush()
}
