// Package testenv lets tests that need root, a Docker engine or CRIU say so: they skip with
// a message naming the missing capability, never pass vacuously. `make test` installs all of
// them (make deps), so under make test these tests really run.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/internal/dockerd"
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

// RequireDockerd skips unless root and the Docker engine this run selects (GODWIT_ENGINE,
// see internal/dockerd) are available. An unknown GODWIT_ENGINE fails the test: a typo must
// not turn a run into skips.
func RequireDockerd(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	v, err := dockerd.SelectedVersion()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dockerd.Lookup(v); err != nil {
		t.Skipf("needs Docker %s (`make deps` installs it): %v", v, err)
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
