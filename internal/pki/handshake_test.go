package pki

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cluster is a CA with certificates issued from it, for handshake tests.
type cluster struct {
	t     *testing.T
	dir   string
	caDir string
}

// newCluster makes a CA that was created three years ago, so that certificates that expired
// a year ago can still be issued from it.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, caDir: filepath.Join(dir, "ca")}
	past := time.Now().Add(-3 * 365 * 24 * time.Hour)
	if _, err := CreateCA(CAOptions{Dir: c.caDir, Now: func() time.Time { return past }}); err != nil {
		t.Fatal(err)
	}
	return c
}

// load issues and loads a certificate valid now.
func (c *cluster) load(node string, role Role, ips ...net.IP) *TLS {
	c.t.Helper()
	f, err := CreateCert(CertOptions{CADir: c.caDir, OutDir: c.dir, Node: node, Role: role, IPs: ips})
	if err != nil {
		c.t.Fatal(err)
	}
	l, err := Load(f)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

// loadExpired issues a certificate that expired a year ago and loads it as of its lifetime.
func (c *cluster) loadExpired(node string, role Role) *TLS {
	c.t.Helper()
	issued := time.Now().Add(-2 * DefaultCertLifetime)
	f, err := CreateCert(CertOptions{CADir: c.caDir, OutDir: filepath.Join(c.dir, "expired"), Node: node, Role: role, Now: func() time.Time { return issued }})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), "expired") {
		c.t.Fatalf("Load of an expired certificate = %v, want an error saying expired", err)
	}
	l, err := load(f, issued)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

// loadRaw signs a certificate with the given subject and usages with the cluster's CA,
// bypassing CreateCert's checks, and loads it without Load's checks.
func (c *cluster) loadRaw(subject pkix.Name, usage []x509.ExtKeyUsage) *TLS {
	c.t.Helper()
	ca, err := loadAuthority(c.caDir)
	if err != nil {
		c.t.Fatal(err)
	}
	key, err := generateKey()
	if err != nil {
		c.t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: usage, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		c.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		c.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &TLS{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots: roots}
}

// withRoots returns t's certificate trusting the CA of trust.
func withRoots(t, trust *TLS) *TLS {
	return &TLS{cert: t.cert, roots: trust.roots, id: t.id}
}

// seen is what one side of a connection saw: the peer's identity, or why it failed.
type seen struct {
	peer Identity
	err  error
}

// exchange serves one connection on a loopback socket with server, lets client talk over
// it, and returns what each side saw. A server that accepts the peer writes "ok".
func exchange(t *testing.T, server *tls.Config, client func(net.Conn) seen) (srv, cli seen) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan seen, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- seen{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- seen{err: err}
			return
		}
		id, err := PeerIdentity(tc.ConnectionState())
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		done <- seen{peer: id, err: err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cli = client(conn)
	conn.Close()
	return <-done, cli
}

// dialTLS returns a client that handshakes with cfg and waits for the server's "ok".
func dialTLS(cfg *tls.Config) func(net.Conn) seen {
	return func(conn net.Conn) seen {
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return seen{err: err}
		}
		id, err := PeerIdentity(tc.ConnectionState())
		if err != nil {
			return seen{err: err}
		}
		// In TLS 1.3 a client completes its handshake before the server has checked the
		// client's certificate; the server's verdict comes with the first read.
		buf := make([]byte, 2)
		if _, err := io.ReadFull(tc, buf); err != nil {
			return seen{err: err}
		}
		return seen{peer: id}
	}
}

// sendPlaintext returns a client that writes data unencrypted; it always reports an error,
// saying what came back.
func sendPlaintext(data string) func(net.Conn) seen {
	return func(conn net.Conn) seen {
		if _, err := io.WriteString(conn, data); err != nil {
			return seen{err: err}
		}
		back, err := io.ReadAll(conn)
		return seen{err: fmt.Errorf("plaintext client read %q, %v", back, err)}
	}
}

func TestTLSHandshake(t *testing.T) {
	c := newCluster(t)
	other := newCluster(t)
	nodeA := c.load("a", RoleServer)
	nodeB := c.load("b", RoleServer)
	nodeC := c.load("c", RoleClient)
	alice := c.load("alice", RoleOperator)
	// Certificates of another CA, held by processes that trust our CA: the refusal must come
	// from the side that checks the foreign certificate.
	foreignA := withRoots(other.load("a", RoleServer), nodeA)
	foreignC := withRoots(other.load("c", RoleClient), nodeA)
	expiredA := c.loadExpired("a", RoleServer)
	expiredC := c.loadExpired("c", RoleClient)
	noRole := c.loadRaw(pkix.Name{CommonName: "c", Organization: []string{"godwit"}}, RoleClient.extKeyUsage())
	withIP := c.load("d", RoleServer, net.ParseIP("127.0.0.1"))
	// What curl does: the standard verification, host name (here the IP) included.
	standard := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: nodeA.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{alice.cert}}
	tls12 := nodeC.ClientConfig("a")
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	tests := []struct {
		name             string
		server           *tls.Config
		client           func(net.Conn) seen
		wantSrv, wantCli Identity // what each side sees of the other, when accepted
		refusedBy        string   // "server" or "client"; "" when accepted
		wantIs           error    // the refusing side's error wraps it, if set
		wantErr          string   // the refusing side's error says it
	}{
		{name: "server and client node", server: nodeA.ServerConfig(), client: dialTLS(nodeC.ClientConfig("a")),
			wantSrv: Identity{"c", RoleClient}, wantCli: Identity{"a", RoleServer}},
		{name: "two server nodes, any node expected", server: nodeB.ServerConfig(), client: dialTLS(nodeA.ClientConfig("")),
			wantSrv: Identity{"a", RoleServer}, wantCli: Identity{"b", RoleServer}},
		{name: "client node serves", server: nodeC.ServerConfig(), client: dialTLS(nodeA.ClientConfig("c")),
			wantSrv: Identity{"a", RoleServer}, wantCli: Identity{"c", RoleClient}},
		{name: "operator dials a node", server: nodeA.ServerConfig(), client: dialTLS(alice.ClientConfig("a")),
			wantSrv: Identity{"alice", RoleOperator}, wantCli: Identity{"a", RoleServer}},
		{name: "standard client verifies the IP SAN", server: withIP.ServerConfig(), client: dialTLS(standard),
			wantSrv: Identity{"alice", RoleOperator}, wantCli: Identity{"d", RoleServer}},

		{name: "standard client, no IP SAN (why ClientConfig checks names instead)", server: nodeA.ServerConfig(), client: dialTLS(standard),
			refusedBy: "client", wantErr: "doesn't contain any IP SANs"},
		{name: "no client certificate", server: nodeA.ServerConfig(),
			client:    dialTLS(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}),
			refusedBy: "server", wantErr: "didn't provide a certificate"},
		{name: "client certificate of another CA", server: nodeA.ServerConfig(), client: dialTLS(foreignC.ClientConfig("a")),
			refusedBy: "server", wantErr: "certificate signed by unknown authority"},
		{name: "server certificate of another CA", server: foreignA.ServerConfig(), client: dialTLS(nodeC.ClientConfig("a")),
			refusedBy: "client", wantErr: "certificate signed by unknown authority"},
		{name: "expired client certificate", server: nodeA.ServerConfig(), client: dialTLS(expiredC.ClientConfig("a")),
			refusedBy: "server", wantErr: "expired"},
		{name: "expired server certificate", server: expiredA.ServerConfig(), client: dialTLS(nodeC.ClientConfig("a")),
			refusedBy: "client", wantErr: "expired"},
		{name: "client expecting a reaches b", server: nodeB.ServerConfig(), client: dialTLS(nodeC.ClientConfig("a")),
			refusedBy: "client", wantIs: ErrUnexpectedPeer, wantErr: `want node "a", the server presented b (server)`},
		{name: "operator certificate as a server", server: alice.ServerConfig(), client: dialTLS(nodeC.ClientConfig("")),
			refusedBy: "client", wantIs: ErrUnexpectedPeer, wantErr: "want a node (server or client role), the server presented alice (operator)"},
		{name: "client certificate of the CA without a role", server: nodeA.ServerConfig(), client: dialTLS(noRole.ClientConfig("a")),
			refusedBy: "server", wantIs: ErrInvalidIdentity, wantErr: "0 OrganizationalUnits"},
		{name: "TLS 1.2 only client", server: nodeA.ServerConfig(), client: dialTLS(tls12),
			refusedBy: "server", wantErr: "unsupported versions"},
		{name: "plaintext (the old JSON protocol)", server: nodeA.ServerConfig(), client: sendPlaintext(`{"op":"abort","id":"m1"}` + "\n"),
			refusedBy: "server", wantErr: "does not look like a TLS handshake"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := exchange(t, tc.server, tc.client)
			if tc.refusedBy == "" {
				if srv.err != nil || cli.err != nil {
					t.Fatalf("refused: server %v, client %v", srv.err, cli.err)
				}
				if srv.peer != tc.wantSrv || cli.peer != tc.wantCli {
					t.Errorf("server saw %v, client saw %v; want %v and %v", srv.peer, cli.peer, tc.wantSrv, tc.wantCli)
				}
				return
			}
			// Both sides fail; the refusing one says why, the other hears an alert.
			if srv.err == nil || cli.err == nil {
				t.Fatalf("accepted: server %v (saw %v), client %v (saw %v)", srv.err, srv.peer, cli.err, cli.peer)
			}
			refusal := srv.err
			if tc.refusedBy == "client" {
				refusal = cli.err
			}
			t.Logf("%s refused: %v", tc.refusedBy, refusal)
			if !strings.Contains(refusal.Error(), tc.wantErr) {
				t.Errorf("%s error %q does not say %q (other side: %v)", tc.refusedBy, refusal, tc.wantErr, map[string]error{"server": cli.err, "client": srv.err}[tc.refusedBy])
			}
			if tc.wantIs != nil && !errors.Is(refusal, tc.wantIs) {
				t.Errorf("%s error %q does not wrap %v", tc.refusedBy, refusal, tc.wantIs)
			}
		})
	}
}

func TestTLSConfigVersions(t *testing.T) {
	c := newCluster(t)
	n := c.load("a", RoleServer)
	for name, cfg := range map[string]*tls.Config{"server": n.ServerConfig(), "client": n.ClientConfig("")} {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("%s config: MinVersion %x, want TLS 1.3", name, cfg.MinVersion)
		}
	}
	if s := n.ServerConfig(); s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil {
		t.Errorf("server config: ClientAuth %v, ClientCAs %v", s.ClientAuth, s.ClientCAs)
	}
}

func TestTLSLoadErrors(t *testing.T) {
	c := newCluster(t)
	other := newCluster(t)
	good, err := CreateCert(CertOptions{CADir: c.caDir, OutDir: c.dir, Node: "a", Role: RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := CreateCert(CertOptions{CADir: other.caDir, OutDir: other.dir, Node: "b", Role: RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(c.dir, "nope.pem")
	tests := []struct {
		name    string
		files   Files
		wantErr []string
	}{
		{"certificate of another CA", Files{CA: good.CA, Cert: foreign.Cert, Key: foreign.Key}, []string{foreign.Cert, good.CA, "unknown authority"}},
		{"key of another certificate", Files{CA: good.CA, Cert: good.Cert, Key: foreign.Key}, []string{good.Cert, foreign.Key, "does not match"}},
		{"missing CA", Files{CA: missing, Cert: good.Cert, Key: good.Key}, []string{missing, "CA certificate"}},
		{"missing certificate", Files{CA: good.CA, Cert: missing, Key: good.Key}, []string{missing}},
		{"missing key", Files{CA: good.CA, Cert: good.Cert, Key: missing}, []string{missing}},
		{"key file as CA", Files{CA: good.Key, Cert: good.Cert, Key: good.Key}, []string{good.Key, "not a certificate"}},
		{"node certificate as CA", Files{CA: good.Cert, Cert: good.Cert, Key: good.Key}, []string{good.Cert, "not a CA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.files)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
