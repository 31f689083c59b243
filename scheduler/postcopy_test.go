package scheduler

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// orderLog is the real migration client, recording every order the leader sends.
type orderLog struct {
	*migrate.Client
	mu     sync.Mutex
	orders []migrate.Order
}

func (o *orderLog) Migrate(ctx context.Context, addr, expectNode string, ord migrate.Order, wait time.Duration) (*migrate.Report, error) {
	o.mu.Lock()
	o.orders = append(o.orders, ord)
	o.mu.Unlock()
	return o.Client.Migrate(ctx, addr, expectNode, ord, wait)
}

func (o *orderLog) first() (migrate.Order, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.orders) == 0 {
		return migrate.Order{}, false
	}
	return o.orders[0], true
}

// TestLeaderPostCopyOrders: the engine's choice of method reaches the order and the ledger,
// and a move between two nodes of which one did not gossip LabelPostCopy=true is never by
// post-copy, even when the policy asks for it.
func TestLeaderPostCopyOrders(t *testing.T) {
	tests := []struct {
		desc     string
		postCopy map[string]bool // nodes gossiping LabelPostCopy=true
		method   string          // the policy's constraints.method
		want     string          // the order's and the ledger's method
	}{
		{"both nodes can, the policy asks for post-copy", map[string]bool{"n1": true, "n2": true}, "post-copy", migrate.MethodPostCopy},
		{"the target cannot", map[string]bool{"n1": true}, "post-copy", migrate.MethodStopAndCopy},
		{"the source cannot", map[string]bool{"n2": true}, "post-copy", migrate.MethodStopAndCopy},
		{"both can, the policy asks for stop-and-copy", map[string]bool{"n1": true, "n2": true}, "stop-and-copy", migrate.MethodStopAndCopy},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := newTestCluster(t, "n1", "n2")
			wid := c.rts["n1"].Add("web", []byte("state of web"), managed())
			view := func() gossip.ClusterView {
				g := c.gossip()
				for i := range g.Nodes {
					if tc.postCopy[g.Nodes[i].Name] {
						g.Nodes[i].Labels[LabelPostCopy] = "true"
					}
				}
				return g
			}
			fsm := NewFSM(FSMConfig{})
			rep := &directReplica{fsm: fsm}
			nodes := &orderLog{Client: &migrate.Client{TLS: c.tls("leader", pki.RoleServer)}}
			l := NewLeader(LeaderConfig{Name: "leader", Replica: rep, FSM: fsm, Gossip: view, Directory: c,
				Nodes: nodes, Interval: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pol := evacuatePolicy + "    method: " + tc.method + "\n"
			for _, cmd := range []struct {
				t    CommandType
				body any
			}{{TypeApplyPolicy, ApplyPolicy{Source: pol}}, {TypeDrain, Drain{Node: "n1", Reason: "maintenance"}}} {
				if _, err := l.propose(ctx, cmd.t, cmd.body); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan struct{})
			go func() { l.Run(ctx); close(done) }()
			var m *Migration
			waitFor(t, "the first migration to end", func() bool {
				ms := fsm.State().SortedMigrations()
				if len(ms) == 0 || !ms[0].Phase.Terminal() {
					return false
				}
				m = ms[0]
				return true
			})
			cancel()
			<-done
			o, ok := nodes.first()
			if !ok {
				t.Fatal("no order sent")
			}
			if o.Method != tc.want || m.Method != tc.want || o.ID != m.ID {
				t.Fatalf("order %s method %q, ledger %s method %q: want %q", o.ID, o.Method, m.ID, m.Method, tc.want)
			}
			if post := strings.Contains(m.Reason, "by post-copy"); post != (tc.want == migrate.MethodPostCopy) {
				t.Errorf("ledger reason %q: says post-copy %v, want %v", m.Reason, post, !post)
			}
			if rec := fsm.State().Ledger().Migrations[0]; (rec.Method == policy.MethodPostCopy) != (tc.want == migrate.MethodPostCopy) {
				t.Errorf("engine's ledger record method %q for a %s migration", rec.Method, tc.want)
			}
			w := c.where(wid)
			switch tc.want {
			case migrate.MethodStopAndCopy:
				if m.Phase != PhaseCompleted || len(w) != 1 || w[0] != "n2" {
					t.Errorf("stop-and-copy: phase %s (%s), workload on %v; want completed, on n2", m.Phase, m.Failure, w)
				}
			case migrate.MethodPostCopy:
				// The in-memory runtime cannot do post-copy: the source refuses it before
				// any freeze, and the one copy stays where it was.
				if m.Phase != PhaseFailed || !strings.Contains(m.Failure, "post-copy") || len(w) != 1 || w[0] != "n1" {
					t.Errorf("post-copy on the fake runtime: phase %s (%s), workload on %v; want failed, on n1", m.Phase, m.Failure, w)
				}
			}
		})
	}
}

// TestRefitKeepsMethodsApart: a post-copy migration refits only the post-copy freeze, a
// stop-and-copy one only the stop-and-copy lines, and prediction errors of checkpoint and
// restore come from stop-and-copy migrations alone.
func TestRefitKeepsMethodsApart(t *testing.T) {
	sc := &Migration{Method: migrate.MethodStopAndCopy, MemoryBytes: 1 << 30,
		Predicted: Costs{Checkpoint: time.Second, Restore: time.Second, Downtime: 3 * time.Second},
		Measured:  Costs{Checkpoint: 2 * time.Second, Restore: 2 * time.Second, Downtime: 5 * time.Second, CheckpointBytes: 1 << 30}}
	pc := &Migration{Method: migrate.MethodPostCopy, MemoryBytes: 1 << 30,
		Predicted: Costs{Downtime: time.Second},
		Measured:  Costs{Checkpoint: 100 * time.Millisecond, Restore: 200 * time.Millisecond, Downtime: 400 * time.Millisecond, CheckpointBytes: 1 << 20}}
	o, ok := observation(sc)
	if want := (policy.Observation{MemoryBytes: 1 << 30, Checkpoint: 2 * time.Second, Restore: 2 * time.Second, ImageBytes: 1 << 30}); !ok || o != want {
		t.Errorf("stop-and-copy observation %+v, want %+v", o, want)
	}
	o, ok = observation(pc)
	if want := (policy.Observation{MemoryBytes: 1 << 30, Freeze: 400 * time.Millisecond}); !ok || o != want {
		t.Errorf("post-copy observation %+v, want %+v", o, want)
	}
	e := predictionErrors([]*Migration{sc, pc})
	if e.Checkpoint.N != 1 || e.Restore.N != 1 || e.CheckpointBytes.N != 1 || e.Downtime.N != 2 {
		t.Errorf("errors counted %+v: want checkpoint, restore and bytes from stop-and-copy only, downtime from both", e)
	}
}
