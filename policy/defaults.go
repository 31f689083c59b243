package policy

import "time"

// Defaults, each with its reason. applyDefaults fills only zero values.
const (
	// Recommend-only until an operator opts into acting: a new policy explains first.
	defaultMode = ModeRecommend
	// 30 s: gossip converges in a few seconds on an edge cluster, and a migration of a
	// 1 GiB container takes a few seconds, so faster evaluations would act on stale load.
	defaultInterval = 30 * time.Second
	// Overload at 85%: enough room left for bursts while a migration is prepared.
	defaultOverloadThreshold = 0.85
	// 10 s of downtime: TCP sessions survive it (retransmission) and most clients retry
	// through it; it is what moving a 1 GiB container over 1 Gbit/s costs.
	defaultMaxDowntime = 10 * time.Second
	// One migration per node at a time: checkpoints compete for disk and uplink.
	defaultMaxConcurrentPerNode = 1
	// Two cluster-wide keeps the blast radius of a bad policy small.
	defaultMaxConcurrent = 2
	// Four decisions per evaluation: loads are re-measured before the next batch.
	defaultMaxMovesPerEvaluation = 4
	// 10 min per container: let load settle and the cost be paid back.
	defaultCooldown = 10 * time.Minute
	// 1 h without going back where it came from: the guard against ping-pong.
	defaultPingPongWindow = time.Hour
	// 0.05 in score units is moving 5% of a node's capacity between a full and an empty
	// node; smaller moves are noise.
	defaultMinImprovement = 0.05
	// 0.01 per second of downtime: a 5 s freeze must buy at least 0.05 of gain.
	defaultDowntimeCost = 0.01
	// 10% free on the target after the move, against the next spike.
	defaultHeadroom = 0.10
	// Cost-benefit: 40 ms is a common interactive edge target for RTT plus queueing.
	defaultLatencyTarget = 40 * time.Millisecond
	// 5 ms per request on an idle node: a small web or API handler.
	defaultServiceTime = 5 * time.Millisecond
	// 30 min before any history: long enough that relieving a node pays for a second or
	// two of downtime, short enough that a minutes-long freeze needs a lasting condition.
	defaultHorizon = 30 * time.Minute
	// 2 h: beyond that, the view the decision was made on says little (in the suite, 4 h
	// bought a little SLO for many more migrations; 1 h stopped moves that follow users
	// for a working day).
	defaultMaxHorizon = 2 * time.Hour
	// An outage second counts ten seconds over the latency target: sessions break,
	// requests fail and are retried, and people notice.
	defaultOutageWeight = 10
	// Four users' worth of dependents: a frozen container stalls the services that call
	// it, and user weights undercount back ends (a cache with one user serves many).
	defaultDependents = 4
	// Fifty minutes of one user's service per migration: without a fixed cost, moves of
	// small containers look free and the engine relieves a node by many small moves where
	// one would do (in the suite: 300 doubled the migrations for no better SLO, 10,000
	// held back moves that relieved nodes).
	defaultMoveCost = 3000
	// A minute of one user's service per GiB sent between sites.
	defaultTransferCost = 60
	// The benefit must be half again the cost, and a minute of one user's service more:
	// predictions are rough (downtime within tens of percent, durations much worse).
	defaultMargin     = 0.5
	defaultMinBenefit = 60
	// One unit of score (evacuating a drained node at weight 1) is worth an hour of one
	// user's service: enough to pay for minutes of downtime of a few users.
	defaultScoreValue = 3600
	// Three candidates per explanation is enough to see why the best one won.
	defaultExplainCandidates = 3
)

func applyDefaults(p *Policy) {
	if p.Mode == "" {
		p.Mode = defaultMode
	}
	if p.Interval == 0 {
		p.Interval = defaultInterval
	}
	o := &p.Objectives
	if *o == (Objectives{}) {
		// Nothing said: relieve overload and evacuate drained nodes, the two goals every
		// operator wants.
		o.RelieveOverload = 1
		o.EvacuateDrained = 1
	}
	if o.OverloadThreshold == 0 {
		o.OverloadThreshold = defaultOverloadThreshold
	}
	c := &p.Constraints
	if c.MaxDowntime == 0 {
		c.MaxDowntime = defaultMaxDowntime
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = defaultMaxConcurrent
	}
	if c.MaxConcurrentPerNode == 0 {
		c.MaxConcurrentPerNode = defaultMaxConcurrentPerNode
	}
	if c.MaxMovesPerEvaluation == 0 {
		c.MaxMovesPerEvaluation = defaultMaxMovesPerEvaluation
	}
	if c.Cooldown == 0 {
		c.Cooldown = defaultCooldown
	}
	if c.PingPongWindow == 0 {
		c.PingPongWindow = defaultPingPongWindow
	}
	if c.MinImprovement == 0 {
		c.MinImprovement = defaultMinImprovement
	}
	if c.DowntimeCost == 0 {
		c.DowntimeCost = defaultDowntimeCost
	}
	if c.HeadroomCPU == 0 {
		c.HeadroomCPU = defaultHeadroom
	}
	if c.HeadroomMemory == 0 {
		c.HeadroomMemory = defaultHeadroom
	}
	p.CostBenefit = p.CostBenefit.withDefaults()
	if p.ExplainCandidates == 0 {
		p.ExplainCandidates = defaultExplainCandidates
	}
	if p.Windows.Location == nil {
		p.Windows.Location = time.UTC
	}
	for i := range p.Triggers {
		if p.Triggers[i].Scope == "" {
			p.Triggers[i].Scope = ScopeNode
		}
	}
	for i := range p.Placement {
		for j := range p.Placement[i].Affinity {
			if p.Placement[i].Affinity[j].Topology == "" {
				p.Placement[i].Affinity[j].Topology = TopologyNode
			}
		}
		for j := range p.Placement[i].AntiAffinity {
			if p.Placement[i].AntiAffinity[j].Topology == "" {
				p.Placement[i].AntiAffinity[j].Topology = TopologyNode
			}
		}
	}
}

// withDefaults returns the rule with its zero fields defaulted (when enabled): Parse and
// DefaultPolicy call it, and Evaluate too, for hand-built policies.
func (cb CostBenefit) withDefaults() CostBenefit {
	if !cb.Enabled {
		return cb
	}
	if cb.LatencyTarget == 0 {
		cb.LatencyTarget = defaultLatencyTarget
	}
	if cb.ServiceTime == 0 {
		cb.ServiceTime = min(defaultServiceTime, cb.LatencyTarget/2)
	}
	if cb.Horizon == 0 {
		cb.Horizon = defaultHorizon
	}
	if cb.MaxHorizon == 0 {
		cb.MaxHorizon = max(defaultMaxHorizon, cb.Horizon)
	}
	if cb.OutageWeight == 0 {
		cb.OutageWeight = defaultOutageWeight
	}
	if cb.Dependents == 0 {
		cb.Dependents = defaultDependents
	}
	if cb.MoveCost == 0 {
		cb.MoveCost = defaultMoveCost
	}
	if cb.TransferCost == 0 {
		cb.TransferCost = defaultTransferCost
	}
	if cb.Margin == 0 {
		cb.Margin = defaultMargin
	}
	if cb.MinBenefit == 0 {
		cb.MinBenefit = defaultMinBenefit
	}
	if cb.ScoreValue == 0 {
		cb.ScoreValue = defaultScoreValue
	}
	return cb
}
