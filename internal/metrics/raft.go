package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var descRaftLeader = prometheus.NewDesc("godwit_raft_leader",
	"1 when this server is the raft leader, else 0.", nil, nil)

// raftStats are the numeric raft statistics reported as gauges: the key in raft's Stats and
// the metric.
var raftStats = []struct {
	key  string
	desc *prometheus.Desc
}{
	{"term", prometheus.NewDesc("godwit_raft_term",
		"This server's current raft term: it grows by one or more at every election.", nil, nil)},
	{"last_log_index", prometheus.NewDesc("godwit_raft_last_log_index",
		"Index of the last entry in this server's raft log.", nil, nil)},
	{"commit_index", prometheus.NewDesc("godwit_raft_commit_index",
		"Index of the last raft entry this server knows to be committed.", nil, nil)},
	{"applied_index", prometheus.NewDesc("godwit_raft_applied_index",
		"Index of the last raft entry applied to this server's state machine.", nil, nil)},
}

// RaftCollector reports a server's raft node.
type RaftCollector struct{ raft Raft }

// NewRaftCollector returns a collector of r.
func NewRaftCollector(r Raft) *RaftCollector { return &RaftCollector{raft: r} }

// Describe implements prometheus.Collector.
func (c *RaftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRaftLeader
	for _, s := range raftStats {
		ch <- s.desc
	}
}

// Collect implements prometheus.Collector. A statistic raft does not report, or not as a
// number, is left out rather than reported as 0.
func (c *RaftCollector) Collect(ch chan<- prometheus.Metric) {
	leader := 0.0
	if c.raft.IsLeader() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descRaftLeader, prometheus.GaugeValue, leader)
	stats := c.raft.Stats()
	for _, s := range raftStats {
		v, err := strconv.ParseUint(stats[s.key], 10, 64)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, float64(v))
	}
}
