package pki

import "errors"

var (
	// ErrUnknownRole is returned (wrapped, with the value) by ParseRole and by validation
	// when a role is not one of server, client or operator.
	ErrUnknownRole = errors.New("pki: unknown role")
	// ErrInvalidNodeName is returned (wrapped, with the name and the reason) by
	// ValidNodeName and by validation of certificate options.
	ErrInvalidNodeName = errors.New("pki: invalid node name")
	// ErrInvalidIdentity is returned (wrapped, with the reason) when a certificate does not
	// carry a godwit identity: Organization other than "godwit", not exactly one known role
	// as OrganizationalUnit, or an invalid node name as CommonName. Load, IdentityOf and the
	// handshakes of ServerConfig and ClientConfig return it.
	ErrInvalidIdentity = errors.New("pki: certificate carries no valid godwit identity")
	// ErrNoPeer is returned by PeerIdentity when the connection has no completed handshake
	// or the peer presented no certificate.
	ErrNoPeer = errors.New("pki: no peer certificate")
	// ErrUnexpectedPeer is returned (wrapped, with what was expected and what was presented)
	// by the handshake of ClientConfig when the server is not a node, or not the node the
	// client asked for.
	ErrUnexpectedPeer = errors.New("pki: unexpected peer")
	// ErrCAExists is returned (wrapped, with the file) by CreateCA when its directory already
	// holds a CA certificate or key. A CA is never overwritten: every certificate of the
	// cluster depends on it.
	ErrCAExists = errors.New("pki: a CA already exists")
	// ErrBadCA is returned (wrapped, with the file and the reason) by CreateCert when its CA
	// directory holds no usable CA: a file missing (then fs.ErrNotExist is wrapped too), a
	// file that is not PEM, a certificate that is not a CA, a key that does not match it, or
	// an expired CA.
	ErrBadCA = errors.New("pki: no usable CA")
	// ErrOutlivesCA is returned (wrapped, with both dates) by CreateCert when the requested
	// certificate would stay valid after its CA expires: a shorter lifetime or a new CA is
	// needed.
	ErrOutlivesCA = errors.New("pki: certificate would outlive its CA")
)
