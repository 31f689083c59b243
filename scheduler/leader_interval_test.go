package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/godwit-io/godwit/gossip"
)

// TestRoundInterval: the decision period is the policy's interval (its default without
// one), never below MinInterval, and a configured Interval replaces it.
func TestRoundInterval(t *testing.T) {
	pol := func(version uint64, interval string) *PolicyRecord {
		src := "apiVersion: godwit.io/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n  mode: auto\n"
		if interval != "" {
			src += "  interval: " + interval + "\n"
		}
		return &PolicyRecord{Version: version, Source: src}
	}
	cases := []struct {
		desc        string
		cfg         LeaderConfig
		p           *PolicyRecord
		wantVersion uint64
		want        time.Duration
	}{
		{"no policy: the default policy's period", LeaderConfig{}, nil, 0, 30 * time.Second},
		{"the policy's interval", LeaderConfig{}, pol(3, "7s"), 3, 7 * time.Second},
		{"a policy without one: its default", LeaderConfig{}, pol(1, ""), 1, 30 * time.Second},
		{"below the minimum: the minimum", LeaderConfig{MinInterval: 5 * time.Second}, pol(2, "2s"), 2, 5 * time.Second},
		{"a configured interval wins", LeaderConfig{Interval: 100 * time.Millisecond}, pol(4, "7s"), 4, 100 * time.Millisecond},
		{"a policy that does not parse: the default", LeaderConfig{}, &PolicyRecord{Version: 5, Source: "spec: ["}, 5, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			l := NewLeader(tc.cfg)
			v, iv := l.roundInterval(tc.p)
			if v != tc.wantVersion || iv != tc.want {
				t.Fatalf("roundInterval = %d, %v; want %d, %v", v, iv, tc.wantVersion, tc.want)
			}
		})
	}
}

// TestLeaderDecidesOnNewPolicy: under a policy deciding once an hour, putting a new policy
// in force makes the leader decide at once (the round's plan changes), not an hour later.
func TestLeaderDecidesOnNewPolicy(t *testing.T) {
	fsm := NewFSM(FSMConfig{})
	l := NewLeader(LeaderConfig{Name: "leader", Replica: &directReplica{fsm: fsm}, FSM: fsm,
		Gossip: func() gossip.ClusterView { return gossip.ClusterView{Self: "leader"} }, PollInterval: 10 * time.Millisecond})
	hourly := func(name string) string {
		return "apiVersion: godwit.io/v1\nkind: Policy\nmetadata:\n  name: " + name + "\nspec:\n  mode: recommend\n  interval: 1h\n"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := l.propose(ctx, TypeApplyPolicy, ApplyPolicy{Source: hourly("first")}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	waitFor(t, "the first round's plan", func() bool { return l.LastPlan() != nil })
	first := l.LastPlan()
	if _, err := l.propose(ctx, TypeApplyPolicy, ApplyPolicy{Source: hourly("second")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a round under the new policy", func() bool { return l.LastPlan() != first })
	cancel()
	<-done
}
