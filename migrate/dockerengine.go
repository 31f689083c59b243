package migrate

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/versions"
	"golang.org/x/sys/unix"

	"github.com/godwit-io/godwit/internal/netns"
)

// Docker engines differ in what godwit relies on. Each difference is read from the engine
// itself (its API version and info), never assumed from a version string of godwit's own.
const (
	// minEngineAPI is Docker 20.10's API, the oldest engine godwit is tested against.
	minEngineAPI = "1.41"
	// netnsByPIDAPI is Docker 28.0's API. From it on, starting a container whose network
	// namespace the runtime creates (network none or bridge) bind-mounts that namespace
	// from the task's PID right after creating the task. A task created from a checkpoint
	// has no PID until it starts, so such a restore fails ("bind-mount /proc/0/ns/net").
	// Containers created with networking disabled (Config.NetworkDisabled) or on the host
	// network have no namespace of Docker's and restore.
	netnsByPIDAPI = "1.48"
)

// dockerEngine is what godwit knows about one node's engine.
type dockerEngine struct {
	Version      string // the engine's version, "28.5.2+dfsg4"
	APIVersion   string // the engine's own API version, "1.51"
	Experimental bool
}

// engine reads the engine's version and API version.
func (d *DockerRuntime) engine(ctx context.Context) (dockerEngine, error) {
	v, err := d.cfg.Client.ServerVersion(ctx)
	if err != nil {
		return dockerEngine{}, err
	}
	return dockerEngine{Version: v.Version, APIVersion: v.APIVersion, Experimental: v.Experimental}, nil
}

// String names the engine in messages.
func (e dockerEngine) String() string {
	return fmt.Sprintf("Docker %s (API %s)", e.Version, e.APIVersion)
}

// supported says what the engine lacks for godwit, or nil.
func (e dockerEngine) supported() error {
	if versions.LessThan(e.APIVersion, minEngineAPI) {
		return fmt.Errorf("%w: %s is older than Docker 20.10 (API %s), the oldest engine godwit supports", ErrPreflight, e, minEngineAPI)
	}
	if !e.Experimental {
		return fmt.Errorf("%w: %s runs without \"experimental\": true in daemon.json; checkpoint restore needs it", ErrPreflight, e)
	}
	return nil
}

// restoresOnlyOwnNetns reports whether the engine can restore a checkpoint only into a
// container without a network namespace of Docker's (see netnsByPIDAPI).
func (e dockerEngine) restoresOnlyOwnNetns() bool {
	return versions.GreaterThanOrEqualTo(e.APIVersion, netnsByPIDAPI)
}

// restores says why this engine cannot restore a checkpoint of w, or nil.
func (e dockerEngine) restores(w dockerWorkload) error {
	if !e.restoresOnlyOwnNetns() {
		return nil
	}
	if w.EngineAPI == "" || versions.LessThan(w.EngineAPI, netnsByPIDAPI) {
		// Engines before Docker 28 give a container its network namespace and its
		// /etc/hosts, /etc/hostname and /etc/resolv.conf mounts before the task starts,
		// even with networking disabled; Docker 28 gives neither to a container it can
		// restore. CRIU needs the same namespaces and mounts back, so such a checkpoint
		// does not restore here, whatever the container's network.
		src := "an engine before Docker 28"
		if w.EngineAPI != "" {
			src = "API " + w.EngineAPI
		}
		return fmt.Errorf("%w: the checkpoint would come from %s, and this node's %s cannot restore it (a container's network namespace and /etc mounts differ from Docker 28 on); move it to a node with an engine before Docker 28",
			ErrPreflight, src, e)
	}
	if w.NetworkMode != "host" && !w.NetworkDisabled {
		return fmt.Errorf("%w: the workload runs in a network namespace of Docker's (network %q); this node's %s restores checkpoints only into containers with networking disabled or on the host network",
			ErrPreflight, w.NetworkMode, e)
	}
	return nil
}

// dockerNetns reports whether the container runs in a network namespace that Docker made
// and keeps (network none or bridge, networking not disabled), as opposed to the host's,
// another container's, or one the runtime made on its own (networking disabled).
func dockerNetns(c *container.Config, hc *container.HostConfig) bool {
	if c.NetworkDisabled {
		return false
	}
	nm := hc.NetworkMode
	return !nm.IsHost() && !nm.IsContainer()
}

// LoopbackUp brings up the loopback interface in pid's network namespace. runc restores a
// namespace it created itself (networking disabled) empty, as it never restores network
// devices, so the restored workload would find its loopback down; Docker-made namespaces
// are not restored but joined, with their loopback up.
func LoopbackUp(pid int) error {
	return netns.Do(pid, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("reading lo flags: %w", err)
		}
		flags := ifr.Uint16()
		if flags&unix.IFF_UP != 0 {
			return nil
		}
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("bringing lo up: %w", err)
		}
		return nil
	})
}

// afterRestore finishes a restore Docker reported as started: a container in a namespace
// the runtime made gets its loopback back.
func (d *DockerRuntime) afterRestore(ctx context.Context, id string) error {
	info, err := d.cfg.Client.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("migrate: inspect restored container %s: %w", id, err)
	}
	if !info.Config.NetworkDisabled || info.HostConfig.NetworkMode.IsContainer() || info.State == nil || info.State.Pid == 0 {
		return nil
	}
	if err := LoopbackUp(info.State.Pid); err != nil {
		return fmt.Errorf("migrate: restored container %s: %w", info.Name, err)
	}
	return nil
}
