package agent

import (
	"context"
	"errors"
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
		if a.policyFileChanged() {
			_ = a.ReloadPolicy() // an invalid file is logged and the old one kept
		}
		if a.cp.Server().IsLeader() {
			if lastSrv == nil {
				lastSrv = &serverDuties{}
			}
			a.leaderDuties(ctx, v, lastSrv)
		} else {
			lastSrv = nil // a new term starts afresh
		}
		if !waitServerTick(ctx, t, sub, a.kickSrv) {
			return
		}
	}
}

// waitServerTick waits for the next tick or membership event (load changes do not count);
// false when the agent stops.
func waitServerTick(ctx context.Context, t *time.Ticker, sub *gossip.Subscription, kick <-chan struct{}) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-kick:
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
// a command the state machine refused is not proposed again every tick. A command that
// failed for another reason (no quorum for a moment, a timeout) is tried again.
type serverDuties struct {
	policyTried uint64 // the policy file generation tried
	drainTried  map[string]bool
}

// settled reports whether err ends the attempt: success or a refusal by the state machine.
func settled(err error) bool {
	var r *scheduler.Rejection
	return err == nil || errors.As(err, &r)
}

// leaderDuties: the configured policy, if it differs from the one in force, is applied once
// per term and file version (two servers with different files would otherwise fight: the
// last leader's wins, and the log says so); a node announcing drain in gossip is recorded
// drained, once per term (an operator's undrain through raft holds until the node's flag
// and a new term meet again).
func (a *Agent) leaderDuties(ctx context.Context, v gossip.ClusterView, d *serverDuties) {
	st := a.cp.FSM().State()
	if p := a.currentPolicy(); p != nil && d.policyTried < p.gen && (st.Policy == nil || st.Policy.Source != p.source) {
		res, err := a.propose(ctx, scheduler.TypeApplyPolicy, scheduler.ApplyPolicy{File: p.name, Source: p.source})
		if settled(err) {
			d.policyTried = p.gen
		}
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
		_, err := a.propose(ctx, scheduler.TypeDrain, scheduler.Drain{Node: n.Name, Reason: "the node announces drain in gossip"})
		d.drainTried[n.Name] = settled(err)
		if err != nil {
			a.log.Warn("recording a drain failed", "drained", n.Name, "err", err)
		} else {
			a.log.Info("node recorded drained", "drained", n.Name)
		}
	}
}

// propose applies one command through raft; a refusal by the state machine is an error.
func (a *Agent) propose(ctx context.Context, t scheduler.CommandType, body any) (*scheduler.ApplyResult, error) {
	return scheduler.Propose(ctx, a.cp.Server(), t, body, time.Now(), a.cfg.Node)
}
