package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/scheduler"
)

// Raft is what the raft collector reads: *scheduler.Server.
type Raft interface {
	// IsLeader reports whether this server is the leader now.
	IsLeader() bool
	// Stats is raft's statistics (term, last_log_index, commit_index, applied_index).
	Stats() map[string]string
}

var _ Raft = (*scheduler.Server)(nil)

// Config says where the collectors read from. Ledger, Raft and Events are a server's and nil
// on a client agent, whose metrics then come from gossip and the process only.
type Config struct {
	// Node is this agent's node name (its own load is read from the view).
	Node string
	// View is the agent's gossip view.
	View func() gossip.ClusterView
	// GossipStats is the gossip agent's counters (gossip.Agent.Stats); nil leaves out the
	// metrics made from them.
	GossipStats func() gossip.Stats
	// Ledger reads the replicated state: scheduler.FSM.Read.
	Ledger func(func(*scheduler.State))
	// Raft is the server's raft node.
	Raft Raft
	// Events are the server's event counters (its scheduler.Observer).
	Events *Events
}

// NewRegistry returns a registry of its own (not prometheus.DefaultRegisterer, so that two
// agents in one test process do not collide) with the collectors cfg allows, and the Go and
// process collectors.
func NewRegistry(cfg Config) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.View != nil {
		c := NewGossipCollector(cfg.Node, cfg.View)
		c.stats = cfg.GossipStats
		reg.MustRegister(c)
	}
	if cfg.Ledger != nil {
		reg.MustRegister(NewLedgerCollector(cfg.Ledger))
	}
	if cfg.Raft != nil {
		reg.MustRegister(NewRaftCollector(cfg.Raft))
	}
	if cfg.Events != nil {
		reg.MustRegister(cfg.Events)
	}
	return reg
}

// Handler serves reg in Prometheus' text (or negotiated) format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
