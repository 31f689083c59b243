package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit-io/godwit/gossip"
)

// memberStatuses are the values of the status label, every one reported (0 included) so
// that a status that empties shows as 0 rather than disappearing.
var memberStatuses = []gossip.Status{gossip.StatusAlive, gossip.StatusFailed, gossip.StatusLeft, gossip.StatusUnknown}

var (
	descMembers = prometheus.NewDesc("godwit_cluster_members",
		"Cluster members in this agent's gossip view, by status.", []string{"status"}, nil)
	descCPULoad = prometheus.NewDesc("godwit_node_cpu_load_ratio",
		"This node's CPU in use by its containers as a fraction of the capacity it offers (0 when unknown).", nil, nil)
	descStateAge = prometheus.NewDesc("godwit_gossip_state_age_seconds",
		"Age of the oldest state this agent holds from another alive member (its view's convergence: a member whose updates stop reaching this agent makes it grow).", nil, nil)
	descQueued = prometheus.NewDesc("godwit_gossip_queued_broadcasts",
		"Gossip broadcasts this agent has queued and not yet sent: above 0 for long, its news is not reaching the others.", nil, nil)
	descMalformed = prometheus.NewDesc("godwit_gossip_malformed_total",
		"Gossip payloads this agent dropped because they did not decode.", nil, nil)
	descMemoryLoad = prometheus.NewDesc("godwit_node_memory_load_ratio",
		"This node's memory in use by its containers as a fraction of the capacity it offers (0 when unknown).", nil, nil)
)

// GossipCollector reports the gossip view: members by status, how old its news of the other
// members is, and this node's load.
type GossipCollector struct {
	node  string
	view  func() gossip.ClusterView
	stats func() gossip.Stats // nil: no queue or malformed metrics
}

// NewGossipCollector returns a collector of view as seen by node.
func NewGossipCollector(node string, view func() gossip.ClusterView) *GossipCollector {
	return &GossipCollector{node: node, view: view}
}

// Describe implements prometheus.Collector.
func (c *GossipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMembers
	ch <- descCPULoad
	ch <- descMemoryLoad
	ch <- descStateAge
	ch <- descQueued
	ch <- descMalformed
}

// Collect implements prometheus.Collector.
func (c *GossipCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.view()
	counts := map[gossip.Status]int{}
	var age float64
	for _, n := range v.Nodes {
		if n.Status == gossip.StatusAlive && n.Name != c.node && !n.UpdatedAt.IsZero() {
			age = max(age, v.Taken.Sub(n.UpdatedAt).Seconds())
		}
		s := n.Status
		if s != gossip.StatusAlive && s != gossip.StatusFailed && s != gossip.StatusLeft {
			s = gossip.StatusUnknown
		}
		counts[s]++
	}
	for _, s := range memberStatuses {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(counts[s]), s.String())
	}
	ch <- prometheus.MustNewConstMetric(descStateAge, prometheus.GaugeValue, age)
	if c.stats != nil {
		st := c.stats()
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(st.Queued))
		ch <- prometheus.MustNewConstMetric(descMalformed, prometheus.CounterValue, float64(st.Malformed))
	}
	// A scan rather than ClusterView.Node, whose index only views made by gossip have.
	for _, n := range v.Nodes {
		if n.Name == c.node {
			ch <- prometheus.MustNewConstMetric(descCPULoad, prometheus.GaugeValue, n.Load.CPUFraction())
			ch <- prometheus.MustNewConstMetric(descMemoryLoad, prometheus.GaugeValue, n.Load.MemoryFraction())
			break
		}
	}
}
