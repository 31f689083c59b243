package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// readCert parses the one certificate in path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := decodeCerts(data)
	if err != nil || len(certs) != 1 {
		t.Fatalf("%s: %d certificates, %v", path, len(certs), err)
	}
	return certs[0]
}

// checkMode fails unless path has exactly mode in its permission bits.
func checkMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s: mode %v, want %v", path, got, mode)
	}
}

func TestPKICreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "ca")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := CreateCA(CAOptions{Dir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, CACertFile); f != (Files{CA: want}) {
		t.Errorf("CreateCA = %+v, want only CA = %s", f, want)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, CACertFile), 0o600)
	checkMode(t, filepath.Join(dir, CAKeyFile), 0o600)
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	c := readCert(t, f.CA)
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("not a CA limited to leaf certificates: IsCA %v, MaxPathLenZero %v, KeyUsage %v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if !c.NotAfter.Equal(now.Add(DefaultCALifetime)) || !c.NotBefore.Equal(now.Add(-backdate)) {
		t.Errorf("valid %v to %v, want %v to %v", c.NotBefore, c.NotAfter, now.Add(-backdate), now.Add(DefaultCALifetime))
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key %T, want ECDSA P-256", c.PublicKey)
	}
	if diff := cmp.Diff([]string{"godwit"}, c.Subject.Organization); diff != "" || !strings.HasPrefix(c.Subject.CommonName, "godwit CA ") {
		t.Errorf("subject %v, want O=godwit, CN=godwit CA <tag>", c.Subject)
	}
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 {
		t.Errorf("serial number %v", c.SerialNumber)
	}
	if _, err := loadAuthority(dir); err != nil {
		t.Errorf("the new CA does not load: %v", err)
	}
}

func TestPKICreateCARefusesToOverwrite(t *testing.T) {
	tests := []struct {
		name     string
		existing string // the file present before CreateCA
	}{
		{"certificate exists", CACertFile},
		{"key exists", CAKeyFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.existing)
			if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := CreateCA(CAOptions{Dir: dir})
			if !errors.Is(err, ErrCAExists) || !strings.Contains(err.Error(), path) {
				t.Fatalf("CreateCA = %v, want ErrCAExists naming %s", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != "precious" {
				t.Errorf("%s was overwritten", path)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("CreateCA left files behind: %v", entries)
			}
		})
	}
	t.Run("a whole CA exists", func(t *testing.T) {
		dir := t.TempDir()
		f, err := CreateCA(CAOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(f.CA)
		if _, err := CreateCA(CAOptions{Dir: dir}); !errors.Is(err, ErrCAExists) {
			t.Fatalf("second CreateCA = %v, want ErrCAExists", err)
		}
		if after, _ := os.ReadFile(f.CA); string(after) != string(before) {
			t.Error("the CA was replaced")
		}
	})
}

func TestPKICreateCert(t *testing.T) {
	caDir := t.TempDir()
	if _, err := CreateCA(CAOptions{Dir: caDir}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name      string
		opts      CertOptions // CADir, OutDir and Now are filled in
		wantFiles [2]string   // cert and key file names
		wantUsage []x509.ExtKeyUsage
		wantDNS   []string
		wantIPs   []string
		wantLife  time.Duration
	}{
		{
			name:      "server with addresses",
			opts:      CertOptions{Node: "node1", Role: RoleServer, IPs: []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("::1")}, DNSNames: []string{"node1.edge", "node1", "localhost"}},
			wantFiles: [2]string{"server-node1.pem", "server-node1-key.pem"},
			wantUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			wantDNS:   []string{"node1", "node1.edge", "localhost"},
			wantIPs:   []string{"127.0.0.2", "::1"},
			wantLife:  DefaultCertLifetime,
		},
		{
			name:      "client for 30 days",
			opts:      CertOptions{Node: "edge-7", Role: RoleClient, Lifetime: 30 * 24 * time.Hour},
			wantFiles: [2]string{"client-edge-7.pem", "client-edge-7-key.pem"},
			wantUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			wantDNS:   []string{"edge-7"},
			wantLife:  30 * 24 * time.Hour,
		},
		{
			name:      "operator dials only",
			opts:      CertOptions{Node: "alice", Role: RoleOperator},
			wantFiles: [2]string{"operator-alice.pem", "operator-alice-key.pem"},
			wantUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			wantDNS:   []string{"alice"},
			wantLife:  DefaultCertLifetime,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "certs")
			o := tc.opts
			o.CADir, o.OutDir, o.Now = caDir, out, func() time.Time { return now }
			f, err := CreateCert(o)
			if err != nil {
				t.Fatal(err)
			}
			want := Files{CA: filepath.Join(caDir, CACertFile), Cert: filepath.Join(out, tc.wantFiles[0]), Key: filepath.Join(out, tc.wantFiles[1])}
			if diff := cmp.Diff(want, f); diff != "" {
				t.Errorf("Files (-want +got):\n%s", diff)
			}
			checkMode(t, out, 0o700)
			checkMode(t, f.Cert, 0o600)
			checkMode(t, f.Key, 0o600)

			c := readCert(t, f.Cert)
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			got := struct {
				CN, O, OU []string
				Usage     []x509.ExtKeyUsage
				DNS, IPs  []string
				Life      time.Duration
				IsCA      bool
			}{[]string{c.Subject.CommonName}, c.Subject.Organization, c.Subject.OrganizationalUnit, c.ExtKeyUsage, c.DNSNames, ips, c.NotAfter.Sub(now), c.IsCA}
			wantCert := got
			wantCert.CN, wantCert.O, wantCert.OU = []string{o.Node}, []string{"godwit"}, []string{string(o.Role)}
			wantCert.Usage, wantCert.DNS, wantCert.IPs, wantCert.Life, wantCert.IsCA = tc.wantUsage, tc.wantDNS, tc.wantIPs, tc.wantLife, false
			if diff := cmp.Diff(wantCert, got); diff != "" {
				t.Errorf("certificate (-want +got):\n%s", diff)
			}
			if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
			}

			l, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := l.Identity(), (Identity{o.Node, o.Role}); got != want {
				t.Errorf("Identity() = %v, want %v", got, want)
			}
		})
	}
}

func TestPKICreateCertRenews(t *testing.T) {
	dir := t.TempDir()
	first, err := Quick(dir, "node1", RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	before := readCert(t, first.Cert)
	second, err := Quick(dir, "node1", RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("Quick gave %+v, then %+v", first, second)
	}
	if after := readCert(t, second.Cert); after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Error("the second call did not issue a new certificate")
	}
	if _, err := Load(second); err != nil {
		t.Errorf("Load after renewal: %v", err)
	}
}

func TestPKICreateCertErrors(t *testing.T) {
	caDir := t.TempDir()
	if _, err := CreateCA(CAOptions{Dir: caDir, Lifetime: 90 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	// A directory whose ca.pem is a node certificate, with that node's key as ca-key.pem.
	leafDir := t.TempDir()
	leaf, err := Quick(leafDir, "node1", RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	notCA := t.TempDir()
	copyFile(t, leaf.Cert, filepath.Join(notCA, CACertFile))
	copyFile(t, leaf.Key, filepath.Join(notCA, CAKeyFile))
	// A directory whose key belongs to another CA.
	mismatch := t.TempDir()
	if _, err := CreateCA(CAOptions{Dir: mismatch}); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(caDir, CAKeyFile), filepath.Join(mismatch, CAKeyFile))
	empty := t.TempDir()

	valid := CertOptions{CADir: caDir, Node: "node1", Role: RoleClient}
	with := func(change func(*CertOptions)) CertOptions {
		o := valid
		change(&o)
		return o
	}
	tests := []struct {
		name    string
		opts    CertOptions // OutDir is filled in
		wantIs  []error
		wantMsg []string
	}{
		{"no CA files", with(func(o *CertOptions) { o.CADir = empty }), []error{ErrBadCA, fs.ErrNotExist}, []string{filepath.Join(empty, CACertFile)}},
		{"CA certificate is not a CA", with(func(o *CertOptions) { o.CADir = notCA }), []error{ErrBadCA}, []string{"not a CA certificate"}},
		{"CA key of another CA", with(func(o *CertOptions) { o.CADir = mismatch }), []error{ErrBadCA}, []string{"does not belong"}},
		{"outlives the CA (a year from a 90-day CA)", valid, []error{ErrOutlivesCA}, []string{"shorter time"}},
		{"CA expired", with(func(o *CertOptions) {
			o.Now = func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }
			o.Lifetime = time.Hour
		}), []error{ErrBadCA}, []string{"expired"}},
		{"bad node name", with(func(o *CertOptions) { o.Node = "a b" }), []error{ErrInvalidNodeName}, []string{`"a b"`}},
		{"unknown role", with(func(o *CertOptions) { o.Role = "admin" }), []error{ErrUnknownRole}, []string{`"admin"`}},
		{"bad DNS name", with(func(o *CertOptions) { o.DNSNames = []string{"a..b"} }), nil, []string{`DNS name "a..b"`}},
		{"bad IP", with(func(o *CertOptions) { o.IPs = []net.IP{{1, 2, 3}} }), nil, []string{"invalid IP"}},
		{"every error at once", CertOptions{Role: "root", Lifetime: -1}, []error{ErrUnknownRole, ErrInvalidNodeName}, []string{"CA directory is required", "negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			o := tc.opts
			if o.OutDir == "" && o.CADir != "" {
				o.OutDir = out
			}
			_, err := CreateCert(o)
			if err == nil {
				t.Fatal("CreateCert succeeded")
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("error %q does not wrap %v", err, target)
				}
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("files written despite the error: %v", entries)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
