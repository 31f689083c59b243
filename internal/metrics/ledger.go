package metrics

import (
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit-io/godwit/scheduler"
)

// DowntimeWindow is how many of the ledger's most recent measured downtimes the downtime
// summary covers.
const DowntimeWindow = 100

// downtimeQuantiles are the quantiles of the downtime summary.
var downtimeQuantiles = []float64{0.5, 0.9, 0.99}

var (
	descMigrations = prometheus.NewDesc("godwit_migrations",
		"Migrations in the replicated ledger, by phase (terminal phases count those the ledger still holds: it is pruned).",
		[]string{"phase"}, nil)
	descFinished = prometheus.NewDesc("godwit_migrations_finished",
		"Finished migrations the replicated ledger holds, by result. A gauge, not a counter: pruning the ledger lowers it.",
		[]string{"result"}, nil)
	descDowntime = prometheus.NewDesc("godwit_migration_downtime_seconds",
		"Measured downtime of the ledger's most recent migrations that froze their workload (at most 100). "+
			"Count and sum cover that window, so they may go down.",
		nil, nil)
	descCostError = prometheus.NewDesc("godwit_cost_model_error_seconds",
		"Mean absolute error of the cost model's prediction, by phase, as the leader last computed it.",
		[]string{"phase"}, nil)
	descCostSamples = prometheus.NewDesc("godwit_cost_model_error_samples",
		"Migrations the cost model's error per phase was computed over.", []string{"phase"}, nil)
	descCostBytes = prometheus.NewDesc("godwit_cost_model_checkpoint_error_bytes",
		"Mean absolute error of the cost model's predicted checkpoint size.", nil, nil)
	descInDoubt = prometheus.NewDesc("godwit_workloads_in_doubt",
		"Workloads with a migration in doubt in the replicated ledger: nothing moves them until an operator or the nodes settle it.", nil, nil)
	descPolicyVersion = prometheus.NewDesc("godwit_policy_version",
		"Version of the policy in force in the replicated state (0 before any policy is applied).", nil, nil)
)

// LedgerCollector reports the replicated state a server holds: the migration ledger, the
// cost model's error and the policy version.
type LedgerCollector struct {
	read func(func(*scheduler.State))
}

// NewLedgerCollector returns a collector of the state read gives (scheduler.FSM.Read).
func NewLedgerCollector(read func(func(*scheduler.State))) *LedgerCollector {
	return &LedgerCollector{read: read}
}

// Describe implements prometheus.Collector.
func (c *LedgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMigrations, descFinished, descDowntime, descCostError, descCostSamples, descCostBytes, descInDoubt, descPolicyVersion} {
		ch <- d
	}
}

// ledgerFigures is what one read of the state yields; metrics are made after the read lock
// is released.
type ledgerFigures struct {
	phases        map[scheduler.Phase]int
	downtimes     []downtime
	cost          scheduler.CostErrors
	policyVersion uint64
	inDoubt       map[string]bool // workloads
}

type downtime struct {
	end time.Time
	id  string
	dur time.Duration
}

// Collect implements prometheus.Collector.
func (c *LedgerCollector) Collect(ch chan<- prometheus.Metric) {
	f := ledgerFigures{phases: map[scheduler.Phase]int{}, inDoubt: map[string]bool{}}
	c.read(func(s *scheduler.State) {
		for id, m := range s.Migrations {
			f.phases[m.Phase]++
			if m.Phase == scheduler.PhaseInDoubt {
				f.inDoubt[m.Workload] = true
			}
			if m.Measured.Downtime > 0 {
				f.downtimes = append(f.downtimes, downtime{end: m.End(), id: id, dur: m.Measured.Downtime})
			}
		}
		f.cost = s.Cost.Errors
		if s.Policy != nil {
			f.policyVersion = s.Policy.Version
		}
	})
	for _, p := range scheduler.Phases {
		ch <- prometheus.MustNewConstMetric(descMigrations, prometheus.GaugeValue, float64(f.phases[p]), string(p))
		if p.Terminal() {
			ch <- prometheus.MustNewConstMetric(descFinished, prometheus.GaugeValue, float64(f.phases[p]), string(p))
		}
	}
	ch <- downtimeSummary(f.downtimes)
	for _, e := range []struct {
		phase string
		stat  scheduler.ErrorStat
	}{
		{"checkpoint", f.cost.Checkpoint},
		{"transfer", f.cost.Transfer},
		{"restore", f.cost.Restore},
		{"downtime", f.cost.Downtime},
	} {
		ch <- prometheus.MustNewConstMetric(descCostError, prometheus.GaugeValue, e.stat.MeanAbs, e.phase)
		ch <- prometheus.MustNewConstMetric(descCostSamples, prometheus.GaugeValue, float64(e.stat.N), e.phase)
	}
	ch <- prometheus.MustNewConstMetric(descCostBytes, prometheus.GaugeValue, f.cost.CheckpointBytes.MeanAbs)
	ch <- prometheus.MustNewConstMetric(descInDoubt, prometheus.GaugeValue, float64(len(f.inDoubt)))
	ch <- prometheus.MustNewConstMetric(descPolicyVersion, prometheus.GaugeValue, float64(f.policyVersion))
}

// downtimeSummary summarises the DowntimeWindow most recent downtimes (by end, then ID so
// that ties order the same on every server).
func downtimeSummary(ds []downtime) prometheus.Metric {
	slices.SortFunc(ds, func(a, b downtime) int {
		if c := a.end.Compare(b.end); c != 0 {
			return c
		}
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	if len(ds) > DowntimeWindow {
		ds = ds[len(ds)-DowntimeWindow:]
	}
	values := make([]float64, len(ds))
	// Summed in nanoseconds, exactly, then converted once.
	var sum time.Duration
	for i, d := range ds {
		values[i] = d.dur.Seconds()
		sum += d.dur
	}
	slices.Sort(values)
	quantiles := map[float64]float64{}
	if len(values) > 0 {
		for _, q := range downtimeQuantiles {
			quantiles[q] = quantile(values, q)
		}
	}
	return prometheus.MustNewConstSummary(descDowntime, uint64(len(values)), sum.Seconds(), quantiles)
}

// quantile is the nearest-rank q-quantile of sorted, which is not empty: the smallest value
// with at least q of the values at or below it.
func quantile(sorted []float64, q float64) float64 {
	// The small margin keeps a product such as 0.9*10 = 9.000000000000002 at rank 9.
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
