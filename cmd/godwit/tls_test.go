package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/godwit-io/godwit/internal/pki"
)

// TestTLSCommands runs `godwit tls ...` as a user would: exit codes, messages, files.
func TestTLSCommands(t *testing.T) {
	base := t.TempDir()
	caDir := filepath.Join(base, "ca")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"tls", "ca", "create", "--out", caDir, "--days", "400"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("tls ca create: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	noCA := filepath.Join(base, "empty")
	if err := os.Mkdir(noCA, 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string // OUT is replaced by a new directory
		code int
		want []string // substrings of stdout+stderr
	}{
		{"tls alone", []string{"tls"}, exitUsage, []string{"usage: godwit tls ca create", "godwit tls cert create"}},
		{"unknown subcommand", []string{"tls", "frob"}, exitUsage, []string{`unknown subcommand "frob"`}},
		{"ca without create", []string{"tls", "ca"}, exitUsage, []string{"tls ca: want create, got nothing"}},
		{"cert delete", []string{"tls", "cert", "delete"}, exitUsage, []string{`tls cert: want create, got "delete"`}},
		{"help", []string{"tls", "help"}, exitOK, []string{"usage: godwit tls"}},

		{"ca create", []string{"tls", "ca", "create", "--out", "OUT"}, exitOK, []string{"OUT/ca.pem", "OUT/ca-key.pem", "valid until"}},
		{"ca create over an existing CA", []string{"tls", "ca", "create", "--out", caDir}, exitUsage, []string{caDir + "/ca.pem exists", "never overwritten"}},
		{"ca create without --out", []string{"tls", "ca", "create"}, exitUsage, []string{"--out is required"}},
		{"ca create, zero days", []string{"tls", "ca", "create", "--out", "OUT", "--days", "0"}, exitUsage, []string{"--days must be between 1 and 36500, got 0"}},
		{"ca create, stray argument", []string{"tls", "ca", "create", "--out", "OUT", "now"}, exitUsage, []string{`unexpected argument "now"`}},

		{"server cert", []string{"tls", "cert", "create", "--ca", caDir, "--node", "node1", "--role", "server", "--out", "OUT", "--ip", "127.0.0.2"},
			exitOK, []string{"OUT/server-node1.pem", "OUT/server-node1-key.pem", "node1 (server)", caDir + "/ca.pem"}},
		{"operator cert", []string{"tls", "cert", "create", "-ca", caDir, "-node", "alice", "-role", "operator", "-out", "OUT", "-days", "30"},
			exitOK, []string{"OUT/operator-alice.pem", "alice (operator)"}},
		{"unknown role", []string{"tls", "cert", "create", "--ca", caDir, "--node", "node1", "--role", "admin", "--out", "OUT"},
			exitUsage, []string{`--role: pki: unknown role "admin": want server, client or operator`}},
		{"bad node name", []string{"tls", "cert", "create", "--ca", caDir, "--node", "../etc", "--role", "client", "--out", "OUT"},
			exitUsage, []string{`--node: pki: invalid node name "../etc"`}},
		{"bad IP", []string{"tls", "cert", "create", "--ca", caDir, "--node", "node1", "--role", "client", "--out", "OUT", "--ip", "127.0.0.1,300.1.1.1"},
			exitUsage, []string{`--ip "300.1.1.1" is not an IP address`}},
		{"empty IP in a list", []string{"tls", "cert", "create", "--ca", caDir, "--node", "node1", "--role", "client", "--out", "OUT", "--ip", "127.0.0.1,,::1"},
			exitUsage, []string{"-ip", "empty value"}},
		{"bad DNS name", []string{"tls", "cert", "create", "--ca", caDir, "--node", "node1", "--role", "client", "--out", "OUT", "--dns", "a b"},
			exitUsage, []string{`invalid DNS name "a b"`}},
		{"missing flags", []string{"tls", "cert", "create", "--node", "node1"}, exitUsage, []string{"--ca, --role, --out required"}},
		{"no CA in --ca", []string{"tls", "cert", "create", "--ca", noCA, "--node", "node1", "--role", "client", "--out", "OUT"},
			exitUsage, []string{noCA + "/ca.pem", "godwit tls ca create --out " + noCA}},
		{"outlives the CA", []string{"tls", "cert", "create", "--ca", caDir, "--node", "node1", "--role", "client", "--out", "OUT", "--days", "500"},
			exitUsage, []string{"outlive"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(base, "out", string(rune('a'+i)))
			args := replaceAll(tc.args, "OUT", out)
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			got := stdout.String() + stderr.String()
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, got)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "OUT", out); !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if code != exitOK {
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%s created despite the error", out)
				}
			}
		})
	}
}

// TestTLSCertCreateFiles checks what `tls cert create` writes: files for the owner only, the
// SANs asked for, and a certificate that pki.Load accepts with the right identity.
func TestTLSCertCreateFiles(t *testing.T) {
	base := t.TempDir()
	caDir, out := filepath.Join(base, "ca"), filepath.Join(base, "certs")
	for _, args := range [][]string{
		{"tls", "ca", "create", "--out", caDir},
		{"tls", "cert", "create", "--ca", caDir, "--node", "edge-1", "--role", "client", "--out", out,
			"--ip", "127.0.0.2,::1", "--ip", "10.0.0.7", "--dns", "edge-1.example,localhost", "--dns", "edge-1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
	}
	f := pki.Files{CA: filepath.Join(caDir, "ca.pem"), Cert: filepath.Join(out, "client-edge-1.pem"), Key: filepath.Join(out, "client-edge-1-key.pem")}
	for _, p := range []string{f.CA, filepath.Join(caDir, "ca-key.pem"), f.Cert, f.Key} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	for _, d := range []string{caDir, out} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", d, fi.Mode(), err)
		}
	}
	l, err := pki.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Identity(), (pki.Identity{Node: "edge-1", Role: pki.RoleClient}); got != want {
		t.Errorf("identity %v, want %v", got, want)
	}
	data, err := os.ReadFile(f.Cert)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"127.0.0.2", "::1", "10.0.0.7"}, ips); diff != "" {
		t.Errorf("IP SANs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"edge-1", "edge-1.example", "localhost"}, c.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
}

func replaceAll(args []string, old, new string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, old, new)
	}
	return out
}
