package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// CertOptions says which certificate to issue, with which CA, and where to write it.
type CertOptions struct {
	CADir    string           // holds ca.pem and ca-key.pem (CreateCA's Dir)
	OutDir   string           // where <role>-<node>.pem and <role>-<node>-key.pem go; created 0700 if missing
	Node     string           // the holder's node name (ValidNodeName)
	Role     Role             // server, client or operator
	IPs      []net.IP         // IP SANs, so that tools such as curl can verify https://IP:port
	DNSNames []string         // DNS SANs besides the node name, which is always the first
	Lifetime time.Duration    // 0: DefaultCertLifetime
	Now      func() time.Time // nil: time.Now
}

// Validate reports every invalid field.
func (o CertOptions) Validate() error {
	var errs []error
	if o.CADir == "" {
		errs = append(errs, errors.New("pki: CA directory is required"))
	}
	if o.OutDir == "" {
		errs = append(errs, errors.New("pki: output directory is required"))
	}
	if err := ValidNodeName(o.Node); err != nil {
		errs = append(errs, err)
	}
	if _, err := ParseRole(string(o.Role)); err != nil {
		errs = append(errs, err)
	}
	for _, ip := range o.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			errs = append(errs, fmt.Errorf("pki: invalid IP address %v", []byte(ip)))
		}
	}
	for _, n := range o.DNSNames {
		if err := validDNSName(n); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Lifetime < 0 {
		errs = append(errs, fmt.Errorf("pki: certificate lifetime %v is negative", o.Lifetime))
	}
	return errors.Join(errs...)
}

// validDNSName accepts host names and wildcards such as *.edge.example: labels of 1 to 63
// letters, digits, '-' or '_', at most 253 characters in all, the first label may be '*'.
func validDNSName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("pki: invalid DNS name %q: must have 1 to 253 characters", name)
	}
	for i, label := range strings.Split(name, ".") {
		if i == 0 && label == "*" {
			continue
		}
		if label == "" || len(label) > 63 {
			return fmt.Errorf("pki: invalid DNS name %q: each dot-separated label must have 1 to 63 characters", name)
		}
		for _, c := range label {
			if !nameChar(c) || c == '.' {
				return fmt.Errorf("pki: invalid DNS name %q: character %q (allowed: letters, digits, '-', '_', and '*' as the first label)", name, c)
			}
		}
	}
	return nil
}

// CreateCert issues a certificate for o.Node in o.Role from the CA in o.CADir: a new ECDSA
// P-256 key in OutDir/<role>-<node>-key.pem and the certificate in OutDir/<role>-<node>.pem,
// both 0600, replacing earlier ones (renewal). The returned Files are absolute and their CA
// is the CA's ca.pem.
//
// Errors: validation errors (see Validate), ErrBadCA when CADir holds no usable CA,
// ErrOutlivesCA when the certificate would expire after its CA.
func CreateCert(o CertOptions) (Files, error) {
	if err := o.Validate(); err != nil {
		return Files{}, err
	}
	lifetime, now := o.Lifetime, o.Now
	if lifetime == 0 {
		lifetime = DefaultCertLifetime
	}
	if now == nil {
		now = time.Now
	}
	caDir, err := filepath.Abs(o.CADir)
	if err != nil {
		return Files{}, err
	}
	outDir, err := filepath.Abs(o.OutDir)
	if err != nil {
		return Files{}, err
	}
	ca, err := loadAuthority(caDir)
	if err != nil {
		return Files{}, err
	}
	t := now()
	notAfter := t.Add(lifetime)
	if t.After(ca.cert.NotAfter) {
		return Files{}, fmt.Errorf("%w: %s expired on %s", ErrBadCA, ca.certPath, ca.cert.NotAfter.UTC().Format(time.DateOnly))
	}
	if notAfter.After(ca.cert.NotAfter) {
		return Files{}, fmt.Errorf("%w: it would be valid until %s, its CA %s only until %s; issue it for a shorter time or make a new CA",
			ErrOutlivesCA, notAfter.UTC().Format(time.DateOnly), ca.certPath, ca.cert.NotAfter.UTC().Format(time.DateOnly))
	}

	key, err := generateKey()
	if err != nil {
		return Files{}, err
	}
	dns := []string{o.Node}
	for _, n := range o.DNSNames {
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	tmpl := &x509.Certificate{
		// SerialNumber nil: crypto/x509 picks a random one.
		Subject: pkix.Name{
			CommonName:         o.Node,
			Organization:       []string{organization},
			OrganizationalUnit: []string{string(o.Role)},
		},
		NotBefore:             t.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           o.Role.extKeyUsage(),
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           o.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return Files{}, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(outDir, dirMode); err != nil {
		return Files{}, err
	}
	certName, keyName := certFileNames(o.Node, o.Role)
	f := Files{CA: ca.certPath, Cert: filepath.Join(outDir, certName), Key: filepath.Join(outDir, keyName)}
	if err := writeReplace(f.Key, keyPEM); err != nil {
		return Files{}, err
	}
	if err := writeReplace(f.Cert, encodeCert(der)); err != nil {
		return Files{}, err
	}
	return f, nil
}

// Quick makes a CA in dir/ca unless one is there, and a certificate for node in role in
// dir, and returns its Files. It is for tests, `godwit dev up` and `godwit demo`; it is not
// safe for concurrent calls on the same dir.
func Quick(dir, node string, role Role, ips ...net.IP) (Files, error) {
	caDir := filepath.Join(dir, "ca")
	if _, err := os.Stat(filepath.Join(caDir, CACertFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := CreateCA(CAOptions{Dir: caDir}); err != nil {
			return Files{}, err
		}
	} else if err != nil {
		return Files{}, err
	}
	return CreateCert(CertOptions{CADir: caDir, OutDir: dir, Node: node, Role: role, IPs: ips})
}
