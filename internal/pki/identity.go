package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// Role is what a certificate's holder may be: a server node, a client node or an operator.
type Role string

// The roles. Authorization by role is the callers' business (see the package doc); the
// comments say what each role is for.
const (
	// RoleServer is a node that takes part in the control plane and may order migrations.
	RoleServer Role = "server"
	// RoleClient is a node that runs workloads and acts only as itself.
	RoleClient Role = "client"
	// RoleOperator is a person or script using the CLI; it never serves.
	RoleOperator Role = "operator"
)

// organization is the Subject Organization of every godwit certificate.
const organization = "godwit"

// ParseRole returns the role named s (exactly, case-sensitive).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleServer, RoleClient, RoleOperator:
		return r, nil
	}
	return "", fmt.Errorf("%w %q: want server, client or operator", ErrUnknownRole, s)
}

// isNode reports whether r is the role of a node (server or client).
func (r Role) isNode() bool { return r == RoleServer || r == RoleClient }

// extKeyUsage is what a certificate of role r may be used for: nodes serve and dial,
// operators only dial.
func (r Role) extKeyUsage() []x509.ExtKeyUsage {
	if r.isNode() {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
}

// Identity is who holds a certificate of the cluster: a node name and a role.
type Identity struct {
	Node string
	Role Role
}

// IsNode reports whether the identity is a node's (server or client), not an operator's.
func (i Identity) IsNode() bool { return i.Role.isNode() }

// String returns e.g. `node1 (client)`.
func (i Identity) String() string { return fmt.Sprintf("%s (%s)", i.Node, i.Role) }

// MaxNodeNameLen is the longest node name, that of a DNS label.
const MaxNodeNameLen = 63

// ValidNodeName checks that name can name a node: 1 to 63 characters of letters, digits,
// '.', '_' and '-', not starting with '.' or '-' (so it is a usable DNS name and file name
// and never looks like a flag or a hidden file).
func ValidNodeName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidNodeName)
	case len(name) > MaxNodeNameLen:
		return fmt.Errorf("%w %q: %d characters, at most %d", ErrInvalidNodeName, name, len(name), MaxNodeNameLen)
	case name[0] == '.' || name[0] == '-':
		return fmt.Errorf("%w %q: must not start with %q", ErrInvalidNodeName, name, name[0])
	}
	for i, c := range name {
		if !nameChar(c) {
			return fmt.Errorf("%w %q: character %q at offset %d (allowed: letters, digits, '.', '_', '-')", ErrInvalidNodeName, name, c, i)
		}
	}
	return nil
}

func nameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// IdentityOf reads the identity in c's subject. It does not verify c: callers pass
// certificates that were verified against the CA.
func IdentityOf(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrInvalidIdentity)
	}
	s := c.Subject
	if len(s.Organization) != 1 || s.Organization[0] != organization {
		return Identity{}, fmt.Errorf("%w: certificate %q has Organization %q, want [%q]", ErrInvalidIdentity, s.CommonName, s.Organization, organization)
	}
	if len(s.OrganizationalUnit) != 1 {
		return Identity{}, fmt.Errorf("%w: certificate %q has %d OrganizationalUnits %q, want exactly one role", ErrInvalidIdentity, s.CommonName, len(s.OrganizationalUnit), s.OrganizationalUnit)
	}
	role, err := ParseRole(s.OrganizationalUnit[0])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: certificate %q: %w", ErrInvalidIdentity, s.CommonName, err)
	}
	if err := ValidNodeName(s.CommonName); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidIdentity, err)
	}
	return Identity{Node: s.CommonName, Role: role}, nil
}

// PeerIdentity returns the identity of the peer of a completed handshake. Use it only on
// connections made with ServerConfig or ClientConfig: both verify the peer's certificate
// against the CA, and its identity, before the handshake completes. (A client's connection
// state lists no verified chains, because ClientConfig verifies the server itself; the
// peer's first certificate is then the verified one.)
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if !cs.HandshakeComplete {
		return Identity{}, fmt.Errorf("%w: handshake not complete", ErrNoPeer)
	}
	leaf := peerLeaf(cs)
	if leaf == nil {
		return Identity{}, ErrNoPeer
	}
	return IdentityOf(leaf)
}

// peerLeaf returns the peer's verified certificate when the TLS stack verified it, else its
// first presented certificate, else nil.
func peerLeaf(cs tls.ConnectionState) *x509.Certificate {
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		return cs.VerifiedChains[0][0]
	}
	if len(cs.PeerCertificates) > 0 {
		return cs.PeerCertificates[0]
	}
	return nil
}
