package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Default lifetimes. A CA outlives many certificates and replacing it means re-issuing all
// of them, so it lasts long; a certificate lasts a year so a lost one does not stay useful
// forever, yet renewal is a yearly chore rather than a weekly one.
const (
	DefaultCALifetime   = 5 * 365 * 24 * time.Hour
	DefaultCertLifetime = 365 * 24 * time.Hour
)

// backdate moves NotBefore into the past so a certificate works at once on nodes whose
// clocks run a little behind the issuer's.
const backdate = 5 * time.Minute

// CAOptions says where and for how long to create a CA.
type CAOptions struct {
	Dir      string           // where ca.pem and ca-key.pem go; created 0700 if missing
	Lifetime time.Duration    // 0: DefaultCALifetime
	Now      func() time.Time // nil: time.Now
}

// Validate reports every invalid field.
func (o CAOptions) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("pki: CA directory is required"))
	}
	if o.Lifetime < 0 {
		errs = append(errs, fmt.Errorf("pki: CA lifetime %v is negative", o.Lifetime))
	}
	return errors.Join(errs...)
}

// CreateCA makes a new cluster CA: an ECDSA P-256 key in Dir/ca-key.pem and a self-signed
// certificate in Dir/ca.pem, both 0600. It never overwrites: if either file exists it
// returns ErrCAExists naming it. The returned Files has only CA set (an absolute path).
func CreateCA(o CAOptions) (Files, error) {
	if err := o.Validate(); err != nil {
		return Files{}, err
	}
	lifetime, now := o.Lifetime, o.Now
	if lifetime == 0 {
		lifetime = DefaultCALifetime
	}
	if now == nil {
		now = time.Now
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return Files{}, err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return Files{}, fmt.Errorf("%w: %s exists (a CA is never overwritten; move it away to make a new one)", ErrCAExists, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Files{}, err
		}
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return Files{}, err
	}

	key, err := generateKey()
	if err != nil {
		return Files{}, err
	}
	// A random tag in the name tells one cluster's CA from another's in error messages.
	tag := make([]byte, 4)
	if _, err := rand.Read(tag); err != nil {
		return Files{}, err
	}
	t := now()
	tmpl := &x509.Certificate{
		// SerialNumber nil: crypto/x509 picks a random one.
		Subject:               pkix.Name{CommonName: "godwit CA " + hex.EncodeToString(tag), Organization: []string{organization}},
		NotBefore:             t.Add(-backdate),
		NotAfter:              t.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // certificates come straight from the CA: no intermediates
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Files{}, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Files{}, err
	}
	// The key first: a ca.pem without its key would look like a CA and sign nothing.
	if err := writeNew(keyPath, keyPEM); err != nil {
		return Files{}, existsErr(keyPath, err)
	}
	if err := writeNew(certPath, encodeCert(der)); err != nil {
		os.Remove(keyPath)
		return Files{}, existsErr(certPath, err)
	}
	return Files{CA: certPath}, nil
}

// existsErr turns an "exists" error from writeNew into ErrCAExists (another CreateCA won
// the race).
func existsErr(path string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s exists (a CA is never overwritten; move it away to make a new one)", ErrCAExists, path)
	}
	return err
}

// authority is a CA loaded to sign certificates.
type authority struct {
	cert     *x509.Certificate
	key      crypto.Signer
	certPath string
}

// loadAuthority reads the CA in dir, checking that it is a CA and that its key belongs to
// its certificate. Every error wraps ErrBadCA.
func loadAuthority(dir string) (*authority, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	certs, err := decodeCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadCA, certPath, err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d certificates; a CA to sign with holds one", ErrBadCA, certPath, len(certs))
	}
	c := certs[0]
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: %s is not a CA certificate", ErrBadCA, certPath)
	}
	key, err := decodeKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadCA, keyPath, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.PublicKey) {
		return nil, fmt.Errorf("%w: the key in %s does not belong to the certificate in %s", ErrBadCA, keyPath, certPath)
	}
	return &authority{cert: c, key: key, certPath: certPath}, nil
}
