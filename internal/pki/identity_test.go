package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPKIParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"server", RoleServer, false},
		{"client", RoleClient, false},
		{"operator", RoleOperator, false},
		{"Server", "", true},
		{"admin", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		got, err := ParseRole(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseRole(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil {
			if !errors.Is(err, ErrUnknownRole) {
				t.Errorf("ParseRole(%q): error %v does not wrap ErrUnknownRole", tc.in, err)
			}
			for _, r := range []string{"server", "client", "operator"} {
				if !strings.Contains(err.Error(), r) {
					t.Errorf("ParseRole(%q): error %q does not list %s", tc.in, err, r)
				}
			}
		}
	}
}

func TestPKIValidNodeName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" for valid
	}{
		{"plain", "node1", ""},
		{"all allowed characters", "Edge-1_a.b", ""},
		{"starts with a digit", "1node", ""},
		{"one character", "n", ""},
		{"63 characters", strings.Repeat("n", 63), ""},
		{"empty", "", "empty"},
		{"64 characters", strings.Repeat("n", 64), "64 characters, at most 63"},
		{"leading dot", ".node", `start with '.'`},
		{"leading dash", "-node", `start with '-'`},
		{"space", "node 1", `' '`},
		{"parent directory", "../etc", `start with '.'`},
		{"path", "a/b", `'/'`},
		{"non-ASCII", "nöde", `'ö'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidNodeName(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidNodeName(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidNodeName) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidNodeName(%q) = %v, want ErrInvalidNodeName saying %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestPKIIdentityString(t *testing.T) {
	tests := []struct {
		id     Identity
		want   string
		isNode bool
	}{
		{Identity{"node1", RoleClient}, "node1 (client)", true},
		{Identity{"node2", RoleServer}, "node2 (server)", true},
		{Identity{"alice", RoleOperator}, "alice (operator)", false},
	}
	for _, tc := range tests {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if got := tc.id.IsNode(); got != tc.isNode {
			t.Errorf("%s: IsNode() = %v, want %v", tc.id, got, tc.isNode)
		}
	}
}

// selfSigned makes a certificate with the given subject; IdentityOf only reads subjects.
func selfSigned(t *testing.T, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: subject, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPKIIdentityOf(t *testing.T) {
	tests := []struct {
		name    string
		subject pkix.Name
		want    Identity
		wantErr string // substring; "" for valid
	}{
		{"node", pkix.Name{CommonName: "node1", Organization: []string{"godwit"}, OrganizationalUnit: []string{"client"}}, Identity{"node1", RoleClient}, ""},
		{"operator", pkix.Name{CommonName: "alice", Organization: []string{"godwit"}, OrganizationalUnit: []string{"operator"}}, Identity{"alice", RoleOperator}, ""},
		{"other organization", pkix.Name{CommonName: "node1", Organization: []string{"acme"}, OrganizationalUnit: []string{"client"}}, Identity{}, `Organization ["acme"]`},
		{"no organization", pkix.Name{CommonName: "node1", OrganizationalUnit: []string{"client"}}, Identity{}, "Organization []"},
		{"no role", pkix.Name{CommonName: "node1", Organization: []string{"godwit"}}, Identity{}, "0 OrganizationalUnits"},
		{"two roles", pkix.Name{CommonName: "node1", Organization: []string{"godwit"}, OrganizationalUnit: []string{"client", "server"}}, Identity{}, "2 OrganizationalUnits"},
		{"unknown role", pkix.Name{CommonName: "node1", Organization: []string{"godwit"}, OrganizationalUnit: []string{"root"}}, Identity{}, `unknown role "root"`},
		{"bad node name", pkix.Name{CommonName: "-x", Organization: []string{"godwit"}, OrganizationalUnit: []string{"client"}}, Identity{}, "invalid node name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IdentityOf(selfSigned(t, tc.subject))
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("IdentityOf = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidIdentity) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("IdentityOf = %v, %v; want ErrInvalidIdentity saying %q", got, err, tc.wantErr)
			}
		})
	}
	if _, err := IdentityOf(nil); !errors.Is(err, ErrInvalidIdentity) {
		t.Errorf("IdentityOf(nil) = %v, want ErrInvalidIdentity", err)
	}
}

func TestPKIPeerIdentityWithoutPeer(t *testing.T) {
	tests := []struct {
		name string
		cs   tls.ConnectionState
	}{
		{"handshake not complete", tls.ConnectionState{}},
		{"no certificate", tls.ConnectionState{HandshakeComplete: true}},
	}
	for _, tc := range tests {
		if _, err := PeerIdentity(tc.cs); !errors.Is(err, ErrNoPeer) {
			t.Errorf("%s: PeerIdentity = %v, want ErrNoPeer", tc.name, err)
		}
	}
}
