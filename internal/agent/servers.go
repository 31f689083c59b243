package agent

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/scheduler"
)

// serverLoop is a server's part beyond the control plane: it feeds raft its peers from
// gossip (alive members labelled server, with their raft address), and while this server
// leads it puts the configured policy in force and records the drains nodes announce in
// gossip. It runs every ServerInterval and on every gossip membership event.
func (a *Agent) serverLoop(ctx context.Context) {
	defer a.wg.Done()
	sub := a.gossip.Load().Subscribe(64)
	defer sub.Cancel()
	t := time.NewTicker(a.tuning.ServerInterval)
	defer t.Stop()
	var peers []scheduler.Peer
	var lastSrv *serverDuties
	for {
		v := a.view()
		next := serverPeers(v)
		if !slices.Equal(next, peers) {
			if err := a.cp.Server().SetPeers(next); err != nil {
				a.log.Warn("raft peers from gossip", "err", err)
			}
			a.log.Debug("raft peers from gossip", "peers", fmt.Sprint(next))
			peers = next
		}
		if a.cp.Server().IsLeader() {
			if lastSrv == nil {
				lastSrv = &serverDuties{}
			}
			a.leaderDuties(ctx, v, lastSrv)
		} else {
			lastSrv = nil // a new term starts afresh
		}
		if !waitServerTick(ctx, t, sub) {
			return
		}
	}
}

// waitServerTick waits for the next tick or membership event (load changes do not count);
// false when the agent stops.
func waitServerTick(ctx context.Context, t *time.Ticker, sub *gossip.Subscription) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case e, ok := <-sub.C:
			if !ok {
				return false
			}
			if e.Type != gossip.EventLoadChange {
				return true
			}
		}
	}
}

// serverPeers are the raft servers gossip knows alive, sorted by name.
func serverPeers(v gossip.ClusterView) []scheduler.Peer {
	var out []scheduler.Peer
	for _, n := range v.Alive() {
		if n.Labels[LabelRole] == RoleServer && n.Labels[LabelRaftAddr] != "" {
			out = append(out, scheduler.Peer{Name: n.Name, Addr: n.Labels[LabelRaftAddr]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// serverDuties remembers, for one leadership term, what the leader already tried, so that
// a refused command is not proposed again every tick.
type serverDuties struct {
	policyTried bool
	drainTried  map[string]bool
}

// leaderDuties: the configured policy, if it differs from the one in force, is applied once
// per term (two servers with different files would otherwise fight; the last leader's
// wins, and the log says so); a node announcing drain in gossip is recorded drained.
func (a *Agent) leaderDuties(ctx context.Context, v gossip.ClusterView, d *serverDuties) {
	st := a.cp.FSM().State()
	if a.policy != nil && !d.policyTried && (st.Policy == nil || st.Policy.Source != a.policy.source) {
		d.policyTried = true
		res, err := a.propose(ctx, scheduler.TypeApplyPolicy, scheduler.ApplyPolicy{File: a.policy.name, Source: a.policy.source})
		if err != nil {
			a.log.Warn("putting the configured policy in force failed", "file", a.cfg.Server.PolicyFile, "err", err)
		} else {
			a.log.Info("configured policy put in force", "file", a.cfg.Server.PolicyFile, "version", res.PolicyVersion)
		}
	}
	if d.drainTried == nil {
		d.drainTried = map[string]bool{}
	}
	for _, n := range v.Alive() {
		if !n.Drain || d.drainTried[n.Name] {
			continue
		}
		if _, ok := st.Drained[n.Name]; ok {
			continue
		}
		d.drainTried[n.Name] = true
		if _, err := a.propose(ctx, scheduler.TypeDrain, scheduler.Drain{Node: n.Name, Reason: "the node announces drain in gossip"}); err != nil {
			a.log.Warn("recording a drain failed", "drained", n.Name, "err", err)
		} else {
			a.log.Info("node recorded drained", "drained", n.Name)
		}
	}
}

// propose applies one command through raft; a refusal by the state machine is an error.
func (a *Agent) propose(ctx context.Context, t scheduler.CommandType, body any) (*scheduler.ApplyResult, error) {
	cmd, err := scheduler.Encode(t, body, time.Now(), a.cfg.Node)
	if err != nil {
		return nil, err
	}
	resp, err := a.cp.Server().Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var res scheduler.ApplyResult
	switch r := resp.(type) {
	case scheduler.ApplyResult:
		res = r
	case *scheduler.ApplyResult:
		res = *r
	default:
		return nil, fmt.Errorf("agent: unexpected apply response %T", resp)
	}
	return &res, res.Err
}
