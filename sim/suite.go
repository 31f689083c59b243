package sim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/godwit-io/godwit/configs"
)

// SuiteRow is one scenario at one seed of a suite run: every arm's summary, measured in the
// same run on the same load, users and events.
type SuiteRow struct {
	Scenario string    `json:"scenario"`
	Seed     uint64    `json:"seed"`
	Arms     []Summary `json:"arms"`
}

// Arm returns the summary of the named arm, and whether the row has it.
func (r SuiteRow) Arm(name string) (Summary, bool) {
	for _, s := range r.Arms {
		if s.Arm == name {
			return s, true
		}
	}
	return Summary{}, false
}

// LoadScenarioDir loads every scenario file (*.yaml, *.yml) of dir, in name order.
func LoadScenarioDir(dir string) ([]*Scenario, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		sc, err := LoadScenario(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scenario files in %s", ErrInvalidScenario, dir)
	}
	return out, nil
}

// RunSuite runs every scenario with every arm (nil: DefaultArms), once per seed (nil: each
// scenario's own seed), with one policy for all: cfg.Policy, whatever policy a scenario
// names. A policyChange event still switches the policy arm's policy.
func RunSuite(scenarios []*Scenario, cfg Config, arms []string, seeds []uint64) ([]SuiteRow, error) {
	var rows []SuiteRow
	for _, sc := range scenarios {
		ss := seeds
		if len(ss) == 0 {
			ss = []uint64{sc.Seed}
		}
		for _, seed := range ss {
			s := *sc
			s.Seed = seed
			res, err := Run(&s, cfg, arms)
			if err != nil {
				return nil, fmt.Errorf("scenario %s, seed %d: %w", sc.Name, seed, err)
			}
			row := SuiteRow{Scenario: sc.Name, Seed: seed}
			for _, r := range res {
				row.Arms = append(row.Arms, r.Summary)
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// WriteSuiteTable writes one line per scenario, seed and arm, and for the policy arm its
// ratios against the baselines of the same run: SLO-violation rate against the best
// baseline's, total downtime against the threshold rebalancer's. Post-copy's degraded
// time (pages arriving) is not downtime; its users count in the SLO violations.
func WriteSuiteTable(w io.Writer, rows []SuiteRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tseed\tarm\tSLO viol %\toverload node-min\tmigrations\tdowntime s\tmax downtime s\tpost-copy degraded s\tping-pongs\tSLO / best baseline\tdowntime / threshold\t")
	for _, r := range rows {
		pol, hasPol := r.Arm(ArmPolicy)
		bestBase := -1.0
		for _, s := range r.Arms {
			if s.Arm != ArmPolicy && (bestBase < 0 || s.SLOViolationRate < bestBase) {
				bestBase = s.SLOViolationRate
			}
		}
		thr, hasThr := r.Arm(ArmThreshold)
		for _, s := range r.Arms {
			ratios := "\t"
			if s.Arm == ArmPolicy && hasPol {
				ratios = ratio(pol.SLOViolationRate, bestBase) + "\t"
				if hasThr {
					ratios += ratio(pol.DowntimeS, thr.DowntimeS)
				}
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t\n", r.Scenario, r.Seed, s.Arm,
				ff(100*s.SLOViolationRate, 2), ff(s.OverloadedNodeMinutes, 0), s.Migrations,
				ff(s.DowntimeS, 0), ff(s.MaxDowntimeS, 1), ff(s.DegradedS, 0), s.PingPongs, ratios)
		}
	}
	return tw.Flush()
}

func ratio(a, b float64) string {
	if b <= 0 {
		if a <= 0 {
			return "1.00x"
		}
		return "inf"
	}
	return ff(a/b, 2) + "x"
}

// SuiteVerdict checks the goals on every row: the policy's SLO-violation rate at
// most maxSLORatio times the best baseline's, its total downtime no more than the
// threshold rebalancer's, and no ping-pong. It returns one line per row that misses.
func SuiteVerdict(rows []SuiteRow, maxSLORatio float64) []string {
	var out []string
	for _, r := range rows {
		pol, ok := r.Arm(ArmPolicy)
		if !ok {
			continue
		}
		var miss []string
		for _, s := range r.Arms {
			if s.Arm == ArmPolicy {
				continue
			}
			if pol.SLOViolationRate > maxSLORatio*s.SLOViolationRate {
				miss = append(miss, fmt.Sprintf("SLO %.2f%% > %.1fx %s's %.2f%%", 100*pol.SLOViolationRate, maxSLORatio, s.Arm, 100*s.SLOViolationRate))
			}
			if s.Arm == ArmThreshold && pol.DowntimeS > s.DowntimeS {
				miss = append(miss, fmt.Sprintf("downtime %.0fs > threshold's %.0fs", pol.DowntimeS, s.DowntimeS))
			}
		}
		if pol.PingPongs > 0 {
			miss = append(miss, fmt.Sprintf("%d ping-pongs", pol.PingPongs))
		}
		if len(miss) > 0 {
			slices.Sort(miss)
			out = append(out, fmt.Sprintf("%s seed %d: %s", r.Scenario, r.Seed, strings.Join(miss, "; ")))
		}
	}
	return out
}

// EmbeddedScenarios returns the scenarios built into the binary (configs/scenarios), in
// name order, and the names of those it skipped because they read files that are not
// built in (traces): run those from a checkout, with LoadScenarioDir.
func EmbeddedScenarios() ([]*Scenario, []string, error) {
	entries, err := configs.Scenarios.ReadDir("scenarios")
	if err != nil {
		return nil, nil, err
	}
	var out []*Scenario
	var skipped []string
	read := func(name string) ([]byte, error) {
		return configs.Scenarios.ReadFile(path.Join("scenarios", name))
	}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".yaml" {
			continue
		}
		data, err := read(e.Name())
		if err != nil {
			return nil, nil, err
		}
		missing := false
		sc, err := parseScenario("configs/scenarios/"+e.Name(), data, func(name string) ([]byte, error) {
			b, err := read(path.Clean(name))
			missing = missing || errors.Is(err, fs.ErrNotExist)
			return b, err
		})
		if err != nil {
			if missing {
				skipped = append(skipped, e.Name())
				continue
			}
			return nil, nil, err
		}
		out = append(out, sc)
	}
	return out, skipped, nil
}
