package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// recordingObserver keeps what the leader tells it.
type recordingObserver struct {
	mu       sync.Mutex
	moves    int // decisions the rounds' plans made
	rounds   int
	finished []*Migration
}

func (o *recordingObserver) DecisionRound(_ time.Duration, plan *policy.Plan, _ []policy.Refusal, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rounds++
	o.moves += len(plan.Decisions)
}

func (o *recordingObserver) MigrationFinished(m *Migration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished = append(o.finished, m)
}

func (o *recordingObserver) Applied(time.Duration, error) {}

// TestLeaderObserver: the leader's decision rounds and the outcome it records reach its
// Observer, through the same path as TestLeaderEvacuatesDrainedNode.
func TestLeaderObserver(t *testing.T) {
	c := newTestCluster(t, "n1", "n2")
	wid := c.rts["n1"].Add("web", []byte("state of web"), managed())
	fsm := NewFSM(FSMConfig{})
	rep := &directReplica{fsm: fsm}
	obs := &recordingObserver{}
	l := NewLeader(LeaderConfig{Name: "leader", Replica: rep, FSM: fsm, Gossip: c.gossip, Directory: c,
		Nodes: &migrate.Client{TLS: c.tls("leader", pki.RoleServer)}, Interval: 100 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, Observer: obs})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, cmd := range []struct {
		t    CommandType
		body any
	}{{TypeApplyPolicy, ApplyPolicy{Source: evacuatePolicy}}, {TypeDrain, Drain{Node: "n1", Reason: "maintenance"}}} {
		if _, err := l.propose(ctx, cmd.t, cmd.body); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	waitFor(t, "the observer told of the completed migration", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.finished) > 0
	})
	cancel()
	<-done
	obs.mu.Lock()
	defer obs.mu.Unlock()
	m := obs.finished[0]
	if len(obs.finished) != 1 || m.Phase != PhaseCompleted || m.Workload != wid || m.Measured.Downtime <= 0 {
		t.Errorf("finished: %d, first %+v", len(obs.finished), m)
	}
	if got := DecisionTriggers(m.Reason); len(got) != 1 || got[0] != "drained" {
		t.Errorf("triggers of %q: %v, want [drained]", m.Reason, got)
	}
	if obs.rounds < 1 || obs.moves < 1 {
		t.Errorf("rounds %d with %d moves; want at least the one that moved web", obs.rounds, obs.moves)
	}
}
