package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// shutdownIP is the loopback address of this file's test node i: 127.0.102.0/24.
func shutdownIP(i int) string { return fmt.Sprintf("127.0.102.%d", i) }

// onIP moves every listener of cfg to ip (ports picked at bind).
func onIP(cfg *Config, ip string) *Config {
	cfg.Gossip.Bind, cfg.Migration.Bind, cfg.API.Bind = ip+":0", ip+":0", ip+":0"
	if cfg.Server != nil {
		cfg.Server.Raft.Bind = ip + ":0"
	}
	return cfg
}

// TestShutdownHandsOverLeadership: the leader of three servers is stopped (SIGTERM's
// path). It refuses new migrations from then on, hands leadership to another server
// before it goes, leaves gossip (the others see it left, not failed), and stays in the
// raft configuration, so it can come back as the same member.
func TestShutdownHandsOverLeadership(t *testing.T) {
	c := newTestCluster(t)
	var servers []*Agent
	var seed string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		rt := migrate.NewFakeRuntime(filepath.Join(c.dir, name, "engine"))
		cfg := onIP(c.config(name, RoleServer, 40+i, "server:\n  raft:\n    bind: 127.0.0.1:0\n  bootstrap_expect: 3\n"), shutdownIP(i))
		a := c.start(cfg, seed, rt)
		if seed == "" {
			seed = a.GossipAddr()
		}
		servers = append(servers, a)
	}
	var leader *Agent
	waitFor(t, "a leader with all three servers voting", 30*time.Second, func() bool {
		for _, s := range servers {
			if !s.ControlPlane().Server().IsLeader() {
				continue
			}
			conf, err := s.ControlPlane().Server().Configuration()
			voters := 0
			for _, srv := range conf {
				if srv.Voter {
					voters++
				}
			}
			if err == nil && voters == 3 {
				leader = s
				return true
			}
		}
		return false
	})
	name := leader.Config().Node
	if err := leader.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, line := range []string{"shutting down: refusing new migrations and changes", "leadership handed over",
		"no migration in progress", "api closed", "migration service closed", "left gossip", "raft closed"} {
		if !c.log.has(line) {
			t.Errorf("the stopping leader did not log %q", line)
		}
	}
	if _, err := leader.ControlPlane().Request(context.Background(), "w", "s1", "op"); !errors.Is(err, scheduler.ErrShuttingDown) {
		t.Errorf("request to a stopped server: %v, want ErrShuttingDown", err)
	}
	var rest []*Agent
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	waitFor(t, "a new leader among the others", 20*time.Second, func() bool {
		return rest[0].ControlPlane().Server().IsLeader() || rest[1].ControlPlane().Server().IsLeader()
	})
	for _, s := range rest {
		waitFor(t, s.Config().Node+" to see "+name+" left", 10*time.Second, func() bool {
			n, ok := s.Gossip().View().Node(name)
			return ok && n.Status.String() == "left"
		})
		conf, err := s.ControlPlane().Server().Configuration()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, srv := range conf {
			found = found || srv.Name == name
		}
		if !found {
			t.Errorf("%s's raft configuration lost the stopped server: %+v", s.Config().Node, conf)
		}
	}
}
