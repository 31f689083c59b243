package dockerd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// EngineEnv names the environment variable that selects the Docker engine version of every
// engine started without Config.Version: one of Versions. `make test-engines` sets it.
const EngineEnv = "GODWIT_ENGINE"

// EnginesDir is where scripts/install-engines.sh installs the newer engines, one prefix
// each (docker-26.1, docker-28.5), beside the system's docker.io.
const EnginesDir = "/opt/godwit/engines"

// DefaultVersion is the engine used when neither Config.Version nor GODWIT_ENGINE says
// otherwise: Debian's current stable Docker (trixie's 26.1, with containerd 1.7), which
// passes every real-engine test. The system's docker.io 20.10 stays installed as "20.10".
const DefaultVersion = "26.1"

// Versions are the Docker engine versions godwit supports, oldest first.
var Versions = []string{"20.10", "26.1", "28.5"}

// ErrUnknownVersion is returned by Lookup and SelectedVersion for a version not in Versions.
var ErrUnknownVersion = errors.New("dockerd: unknown engine version")

// Install is where one engine version's binaries are.
type Install struct {
	Version string
	// Dockerd is the daemon binary.
	Dockerd string
	// Bin holds the engine's containerd, containerd-shim-runc-v2 and docker-init; it goes
	// first on the daemon's PATH so dockerd starts its own containerd. Empty for the system
	// engine (everything on the system PATH).
	Bin string
}

// SelectedVersion is the version GODWIT_ENGINE names, or DefaultVersion when it is unset.
func SelectedVersion() (string, error) {
	v := strings.TrimSpace(os.Getenv(EngineEnv))
	if v == "" {
		return DefaultVersion, nil
	}
	if !slices.Contains(Versions, v) {
		return "", fmt.Errorf("%w: %s=%q, want one of %s", ErrUnknownVersion, EngineEnv, v, strings.Join(Versions, ", "))
	}
	return v, nil
}

// Lookup finds the installed binaries of an engine version. It returns ErrNoDockerd (wrapped,
// naming what is missing) when the version is known but not installed here.
func Lookup(version string) (Install, error) {
	if !slices.Contains(Versions, version) {
		return Install{}, fmt.Errorf("%w: %q, want one of %s", ErrUnknownVersion, version, strings.Join(Versions, ", "))
	}
	if version == "20.10" {
		bin, err := exec.LookPath("dockerd")
		if err != nil {
			return Install{}, ErrNoDockerd
		}
		return Install{Version: version, Dockerd: bin}, nil
	}
	prefix := filepath.Join(EnginesDir, "docker-"+version)
	in := Install{Version: version, Dockerd: filepath.Join(prefix, "usr/sbin/dockerd"), Bin: filepath.Join(prefix, "usr/bin")}
	for _, f := range []string{in.Dockerd, filepath.Join(in.Bin, "containerd"), filepath.Join(in.Bin, "containerd-shim-runc-v2")} {
		if _, err := os.Stat(f); err != nil {
			return Install{}, fmt.Errorf("%w: Docker %s lacks %s (make deps runs scripts/install-engines.sh)", ErrNoDockerd, version, f)
		}
	}
	return in, nil
}
