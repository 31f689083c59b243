// Package testenv lets tests that need root, a Docker engine or CRIU say so: they skip with
// a message naming the missing capability, never pass vacuously. `make test` installs all of
// them (make deps), so under make test these tests really run.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// CRIUBinDir is where scripts/install-criu.sh installs the criu wrapper.
const CRIUBinDir = "/opt/godwit/bin"

// RequireRoot skips unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, dockerd, CRIU); run via `make test` as root")
	}
}

// RequireDockerd skips unless root and a dockerd binary are available.
func RequireDockerd(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Skip("needs dockerd (apt package docker.io; `make deps` installs it)")
	}
}

// CRIUPath returns the criu binary to use: the project's install if present, else PATH.
func CRIUPath() string {
	p := CRIUBinDir + "/criu"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("criu"); err == nil {
		return p
	}
	return ""
}

// RequireCRIU skips unless root and a CRIU that passes `criu check` are available.
func RequireCRIU(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	p := CRIUPath()
	if p == "" {
		t.Skip("needs CRIU >= 4.2 (`make deps` installs it to /opt/godwit/bin)")
	}
	out, err := exec.Command(p, "check").CombinedOutput()
	if err != nil {
		t.Skipf("needs a working CRIU: `%s check` failed: %s", p, strings.TrimSpace(string(out)))
	}
}
