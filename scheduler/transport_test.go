package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// TestServerTransportRefusesNonServers connects to a real server's raft port with every kind
// of identity: only a server certificate speaking a raft protocol gets through, every
// refusal is logged, and dialling checks the name of the server reached.
func TestServerTransportRefusesNonServers(t *testing.T) {
	if testing.Short() {
		t.Skip("real TLS sockets; skipped with -short")
	}
	c := newRaftCluster(t)
	s := c.start("t1", 21, 1)
	c.setPeers()
	c.leader()
	c.apply("x", 1) // a single server bootstraps alone and works

	load := func(name string, role pki.Role) *pki.TLS {
		files, err := pki.Quick(filepath.Join(c.dir, "pki"), name, role)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pki.Load(files)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// talk dials the raft port with conf and reports whether the server spoke to it: it
	// sends a status query's worth of nothing and reads; a refused peer reads an error.
	talk := func(conf *tls.Config) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr(), conf)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1)
		if _, err := conn.Read(buf); err != nil {
			return err
		}
		return nil
	}
	cases := []struct {
		desc    string
		conf    func() *tls.Config
		refused bool
		logged  []string
	}{
		{"client-role certificate on the raft protocol", func() *tls.Config {
			conf := load("c1", pki.RoleClient).ClientConfig("t1")
			conf.NextProtos = []string{alpnRaft}
			return conf
		}, true, []string{"refused a connection", "c1 (client)"}},
		{"operator certificate on the status protocol", func() *tls.Config {
			conf := load("op", pki.RoleOperator).ClientConfig("t1")
			conf.NextProtos = []string{alpnStatus}
			return conf
		}, true, []string{"refused a connection", "op (operator)"}},
		{"server certificate without a protocol", func() *tls.Config {
			return load("t9", pki.RoleServer).ClientConfig("t1")
		}, true, []string{"refused a connection", "t9 (server)", "no application protocol"}},
		{"server certificate on the status protocol", func() *tls.Config {
			conf := load("t8", pki.RoleServer).ClientConfig("t1")
			conf.NextProtos = []string{alpnStatus}
			return conf
		}, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			err := talk(tc.conf())
			if tc.refused && err == nil {
				t.Fatalf("the server answered")
			}
			if !tc.refused && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.logged != nil {
				raftEventually(t, 5*time.Second, "the refusal logged", func() bool { return c.log.has(tc.logged...) })
			}
		})
	}

	t.Run("dial checks the server name", func(t *testing.T) {
		other := load("t7", pki.RoleServer)
		layer, err := newTLSStreamLayer(net.JoinHostPort(raftTestIP(22), "0"), nil, other, 2*time.Second, c.log.logger(), func() raftStatus { return raftStatus{Name: "t7"} })
		if err != nil {
			t.Fatal(err)
		}
		defer layer.Close()
		if _, err := layer.Dial(dialAddress("t2", s.Addr()), 2*time.Second); !errors.Is(err, pki.ErrUnexpectedPeer) {
			t.Fatalf("Dial of t1's address as t2: %v, want pki.ErrUnexpectedPeer", err)
		}
		if _, err := layer.Dial("127.0.89.21:1", time.Second); !errors.Is(err, errNoServerName) {
			t.Fatalf("Dial of an address without a name: %v, want errNoServerName", err)
		}
		conn, err := layer.Dial(dialAddress("t1", s.Addr()), 2*time.Second)
		if err != nil {
			t.Fatalf("Dial of t1 as t1: %v", err)
		}
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := layer.queryStatus(ctx, "t1", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if st.Name != "t1" || !st.HasState || st.LastIndex == 0 || st.LastContactNS != 0 {
			t.Fatalf("status of the single leader: %+v", st)
		}
	})

	t.Run("client certificate dialled as a raft server", func(t *testing.T) {
		// A client node listening on a raft port (as a server would) is not a server.
		client := load("c2", pki.RoleClient)
		ln, err := tls.Listen("tcp", net.JoinHostPort(raftTestIP(23), "0"), func() *tls.Config {
			conf := client.ServerConfig()
			conf.NextProtos = []string{alpnRaft}
			return conf
		}())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					_ = conn.(*tls.Conn).Handshake()
					conn.Close()
				}()
			}
		}()
		if _, err := s.stream.Dial(dialAddress("c2", ln.Addr().String()), 2*time.Second); !errors.Is(err, errPeerNotServer) {
			t.Fatalf("Dial of a client node: %v, want errPeerNotServer", err)
		}
	})
}

func TestServerDialAddress(t *testing.T) {
	for _, tc := range []struct {
		in         string
		name, addr string
		ok         bool
	}{
		{"s1@127.0.0.1:7300", "s1", "127.0.0.1:7300", true},
		{"127.0.0.1:7300", "", "", false},
		{"@127.0.0.1:7300", "", "", false},
		{"s1@", "", "", false},
	} {
		name, addr, ok := splitDialAddress(rawAddr(tc.in))
		if ok != tc.ok || (ok && (name != tc.name || addr != tc.addr)) {
			t.Errorf("splitDialAddress(%q) = %q, %q, %v; want %q, %q, %v", tc.in, name, addr, ok, tc.name, tc.addr, tc.ok)
		}
	}
	if got := dialAddress("s2", "10.0.0.2:7300"); got != "s2@10.0.0.2:7300" {
		t.Errorf("dialAddress = %q", got)
	}
}
