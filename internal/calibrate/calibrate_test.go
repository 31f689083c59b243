package calibrate

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/testenv"
)

// TestRunSmall runs the real benchmark at one tiny size: two engines, one godwit live
// migration and one plain Docker checkpoint/restore.
func TestRunSmall(t *testing.T) {
	testenv.RequireDockerd(t)
	testenv.RequireCRIU(t)
	out := t.TempDir()
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Sizes: []int{32}, Repeats: 1, Docker: true, Baselines: true, Out: out, Log: &log})
	t.Logf("log:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())

	f, err := os.Open(filepath.Join(out, CSVFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(Methods) || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv rows: %v", rows)
	}
	for _, r := range res.Runs {
		if !r.OK() || r.DowntimeS <= 0 {
			t.Fatalf("run %+v", r)
		}
		if r.Method != MethodFreshMemory && (r.CheckpointS <= 0 || r.RestoreS <= 0 || r.CheckpointBytes < 32<<20) {
			t.Fatalf("run %+v", r)
		}
	}
	if s := res.Summary[0]; s.CRIURuns != 1 || s.CRIUTotalS <= 0 || s.FreshMemoryS <= 0 {
		t.Fatalf("baselines missing from the summary: %+v", s)
	}
	for _, m := range Methods {
		if _, ok := res.Fits[m][PhaseDowntime]; !ok {
			t.Fatalf("no %s downtime fit: %+v", m, res.Fits)
		}
	}
	if res.Summary[0].Ratio <= 0 {
		t.Fatalf("summary %+v", res.Summary)
	}
	for _, name := range []string{JSONFile, CostModelFile} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	m, err := LoadCostModel(filepath.Join(out, CostModelFile))
	if err != nil || m.Checkpoint.N != 1 {
		t.Fatalf("cost model %+v: %v", m, err)
	}
}
