package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"time"
)

// TLS is a loaded identity: this process's certificate and key and the cluster CA, from
// which it makes TLS configurations. It is immutable and safe for concurrent use.
type TLS struct {
	cert  tls.Certificate // Leaf set
	roots *x509.CertPool
	id    Identity
}

// Load reads the CA certificate(s), the certificate and the key named by f, and checks that
// the key belongs to the certificate, that the certificate chains to the CA and is valid
// now, and that it carries a valid identity whose role allows what it is used for. Errors
// name the file concerned.
func Load(f Files) (*TLS, error) { return load(f, time.Now()) }

// load is Load checking validity at now (tests load expired certificates with a past now).
func load(f Files, now time.Time) (*TLS, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	cas, err := decodeCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate %s: %w", f.CA, err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("pki: CA certificate %s: %q is not a CA", f.CA, c.Subject.CommonName)
		}
		roots.AddCert(c)
	}
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("pki: certificate %s: %w", f.Cert, err)
		}
	}
	leaf := cert.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("pki: certificate %s is not valid with the CA in %s: %w", f.Cert, f.CA, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %s: %w", f.Cert, err)
	}
	for _, u := range id.Role.extKeyUsage() {
		if !slices.Contains(leaf.ExtKeyUsage, u) {
			return nil, fmt.Errorf("pki: certificate %s: %w: role %s needs extended key usage %s", f.Cert, ErrInvalidIdentity, id.Role, usageName(u))
		}
	}
	return &TLS{cert: cert, roots: roots, id: id}, nil
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "ServerAuth"
	case x509.ExtKeyUsageClientAuth:
		return "ClientAuth"
	}
	return fmt.Sprint(int(u))
}

// Identity is who this process is.
func (t *TLS) Identity() Identity { return t.id }

// ServerConfig is the configuration to serve with: TLS 1.3 only, and every client must
// present a certificate that chains to the CA (ExtKeyUsage ClientAuth, within its validity)
// and carries a valid identity of any role. What each role may ask is the caller's decision,
// from PeerIdentity. Serving with an operator's certificate makes a server no godwit client
// accepts. Each call returns a new Config, which the caller may extend (e.g. NextProtos).
func (t *TLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.roots,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := IdentityOf(peerLeaf(cs))
			return err
		},
	}
}

// ClientConfig is the configuration to dial with: TLS 1.3 only, presenting this process's
// certificate. The server must present a certificate that chains to the CA (ExtKeyUsage
// ServerAuth, within its validity) and carries a node's identity (server or client role);
// when expectNode is not empty, that node's. Host names and IP SANs are not checked: nodes
// are dialled by address and known by the name in their certificate, which is checked
// instead. Errors from the handshake say what was expected and what was presented (with
// ErrUnexpectedPeer or ErrInvalidIdentity, or crypto/x509's error). Each call returns a new
// Config.
func (t *TLS) ClientConfig(expectNode string) *tls.Config {
	cert := t.cert
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Always present our certificate, also to a server that announces other CAs: its
		// refusal then says why, rather than "no certificate".
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		// The standard verification would also require the dialled host name or IP in the
		// certificate; verifyServer does everything else it does, and checks the identity.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.verifyServer(cs, expectNode, time.Now())
		},
	}
}

// verifyServer checks a server's certificate chain against the CA at now, and its identity.
func (t *TLS) verifyServer(cs tls.ConnectionState, expectNode string, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the server presented no certificate", ErrNoPeer)
	}
	leaf := cs.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         t.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, // ServerAuth is checked below, after the role, for a clearer error
	})
	if err != nil {
		return fmt.Errorf("pki: server certificate %q: %w", leaf.Subject.CommonName, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return err
	}
	if !id.IsNode() {
		return fmt.Errorf("%w: want a node (server or client role), the server presented %s", ErrUnexpectedPeer, id)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return fmt.Errorf("%w: server certificate of %s lacks extended key usage ServerAuth", ErrInvalidIdentity, id)
	}
	if expectNode != "" && id.Node != expectNode {
		return fmt.Errorf("%w: want node %q, the server presented %s", ErrUnexpectedPeer, expectNode, id)
	}
	return nil
}
