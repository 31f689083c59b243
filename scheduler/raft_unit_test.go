package scheduler

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/godwit-io/godwit/internal/pki"
)

func rawAddr(s string) raft.ServerAddress { return raft.ServerAddress(s) }

func TestServerConfigValidate(t *testing.T) {
	dir := t.TempDir()
	load := func(name string, role pki.Role) *pki.TLS {
		files, err := pki.Quick(filepath.Join(dir, "pki"), name, role)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pki.Load(files)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	server, client := load("s1", pki.RoleServer), load("c1", pki.RoleClient)
	good := func() ServerConfig {
		c := DefaultServerConfig()
		c.Name = "s1"
		c.DataDir = dir
		c.BindAddr = "127.0.0.1:0"
		c.TLS = server
		c.BootstrapExpect = 3
		c.FSM = &listFSM{}
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	cases := []struct {
		desc  string
		edit  func(*ServerConfig)
		field string
	}{
		{"no name", func(c *ServerConfig) { c.Name = "" }, "Name"},
		{"no data dir", func(c *ServerConfig) { c.DataDir = "" }, "DataDir"},
		{"bind without port", func(c *ServerConfig) { c.BindAddr = "127.0.0.1" }, "BindAddr"},
		{"unspecified bind, no advertise", func(c *ServerConfig) { c.BindAddr = "0.0.0.0:7300" }, "AdvertiseAddr"},
		{"advertise a host name", func(c *ServerConfig) { c.AdvertiseAddr = "example.org:7300" }, "AdvertiseAddr"},
		{"advertise port 0", func(c *ServerConfig) { c.AdvertiseAddr = "10.0.0.1:0" }, "AdvertiseAddr"},
		{"no TLS", func(c *ServerConfig) { c.TLS = nil }, "TLS"},
		{"client certificate", func(c *ServerConfig) { c.TLS = client }, "TLS"},
		{"another server's certificate", func(c *ServerConfig) { c.Name = "s2" }, "TLS"},
		{"negative bootstrap expect", func(c *ServerConfig) { c.BootstrapExpect = -1 }, "BootstrapExpect"},
		{"no FSM", func(c *ServerConfig) { c.FSM = nil }, "FSM"},
		{"lease longer than heartbeat", func(c *ServerConfig) { c.LeaderLeaseTimeout = 3 * time.Second }, "LeaderLeaseTimeout"},
		{"election shorter than heartbeat", func(c *ServerConfig) { c.ElectionTimeout = time.Second }, "ElectionTimeout"},
		{"tiny heartbeat", func(c *ServerConfig) { c.HeartbeatTimeout = time.Millisecond; c.LeaderLeaseTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{"no commit timeout", func(c *ServerConfig) { c.CommitTimeout = 0 }, "CommitTimeout"},
		{"no snapshot threshold", func(c *ServerConfig) { c.SnapshotThreshold = 0 }, "SnapshotThreshold"},
		{"no trailing logs", func(c *ServerConfig) { c.TrailingLogs = 0 }, "TrailingLogs"},
		{"no snapshots retained", func(c *ServerConfig) { c.SnapshotsRetained = 0 }, "SnapshotsRetained"},
		{"no pool", func(c *ServerConfig) { c.MaxPool = 0 }, "MaxPool"},
		{"no handshake timeout", func(c *ServerConfig) { c.HandshakeTimeout = 0 }, "HandshakeTimeout"},
		{"no autopilot interval", func(c *ServerConfig) { c.AutopilotUpdateInterval = 0 }, "AutopilotUpdateInterval"},
		{"negative grace", func(c *ServerConfig) { c.DeadServerGrace = -time.Second }, "DeadServerGrace"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidServerConfig) {
				t.Fatalf("Validate: %v, want ErrInvalidServerConfig", err)
			}
			if !strings.Contains(err.Error(), tc.field+": ") {
				t.Fatalf("Validate: %v, want it to name %s", err, tc.field)
			}
			if _, err := NewServer(c); !errors.Is(err, ErrInvalidServerConfig) {
				t.Fatalf("NewServer: %v, want ErrInvalidServerConfig", err)
			}
		})
	}
}

func TestBootstrapConfiguration(t *testing.T) {
	self := Peer{Name: "s2", Addr: "10.0.0.2:7300"}
	servers := func(names ...string) raft.Configuration {
		var c raft.Configuration
		for _, n := range names {
			c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n), Address: raft.ServerAddress("10.0.0." + n[1:] + ":7300")})
		}
		return c
	}
	cases := []struct {
		desc   string
		peers  map[string]string
		expect int
		want   raft.Configuration
		ok     bool
	}{
		{"too few known", map[string]string{"s1": "10.0.0.1:7300"}, 3, raft.Configuration{}, false},
		{"exactly expected, sorted, self included", map[string]string{"s3": "10.0.0.3:7300", "s1": "10.0.0.1:7300"}, 3, servers("s1", "s2", "s3"), true},
		{"self listed among peers counts once", map[string]string{"s2": "10.0.0.2:7300", "s1": "10.0.0.1:7300"}, 3, raft.Configuration{}, false},
		{"more than expected: all known", map[string]string{"s1": "10.0.0.1:7300", "s3": "10.0.0.3:7300", "s4": "10.0.0.4:7300"}, 3, servers("s1", "s2", "s3", "s4"), true},
		{"single server", nil, 1, servers("s2"), true},
		{"never bootstrap", map[string]string{"s1": "10.0.0.1:7300"}, 0, raft.Configuration{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := bootstrapConfiguration(self, tc.peers, tc.expect)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("configuration (-want +got):\n%s", diff)
			}
		})
	}
	// Every server of the set computes the same configuration.
	all := map[string]string{"s1": "10.0.0.1:7300", "s2": "10.0.0.2:7300", "s3": "10.0.0.3:7300"}
	var first raft.Configuration
	for i, name := range []string{"s3", "s1", "s2"} {
		got, ok := bootstrapConfiguration(Peer{Name: name, Addr: all[name]}, all, 3)
		if !ok {
			t.Fatalf("%s does not bootstrap", name)
		}
		if i == 0 {
			first = got
		} else if diff := cmp.Diff(first, got); diff != "" {
			t.Fatalf("%s computes another configuration (-s3 +%s):\n%s", name, name, diff)
		}
	}
}

func TestNotLeaderError(t *testing.T) {
	var err error = fmt.Errorf("forwarding: %w", &NotLeaderError{Leader: "s1", Addr: "10.0.0.1:7300"})
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != "s1" || nl.Addr != "10.0.0.1:7300" {
		t.Fatalf("errors.As: %v", nl)
	}
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("errors.Is(ErrNotLeader) is false")
	}
	if msg := (&NotLeaderError{}).Error(); !strings.Contains(msg, "no leader is known") {
		t.Fatalf("message without a leader: %q", msg)
	}
}

func TestSlogHCLog(t *testing.T) {
	var buf bytes.Buffer
	h := newSlogHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")
	h.Trace("dropped below debug")
	h.Named("autopilot").With("k", "v").Warn("promoting", "id", "s4")
	h.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[ERROR] disk full")
	h.Info("progress", "percent", hclog.Fmt("%0.1f%%", 12.5))
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg=promoting k=v logger=raft.autopilot id=s4`,
		`level=ERROR msg="disk full" logger=raft`,
		`level=INFO msg=progress logger=raft percent=12.5%`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("trace logged at debug:\n%s", out)
	}
	if !h.IsDebug() || h.IsTrace() || h.GetLevel() != hclog.Debug {
		t.Errorf("levels: debug %v trace %v level %v", h.IsDebug(), h.IsTrace(), h.GetLevel())
	}
}
