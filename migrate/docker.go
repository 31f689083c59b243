package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// FastRestoreRuntime is the OCI runtime name under which scripts/godwit-runc is registered in
// dockerd's daemon.json. Containers created with it restore straight from godwit's staged
// checkpoint instead of having Docker copy the checkpoint through containerd's content store.
const FastRestoreRuntime = "godwit-runc"

// stagedMarker is the file godwit-runc looks for in a checkpoint directory.
const stagedMarker = "godwit-staged"

// DockerConfig configures a DockerRuntime for one node's engine.
type DockerConfig struct {
	// Client talks to the node's dockerd. Required.
	Client *client.Client
	// DataRoot is the engine's --data-root (Docker 20.10 restores only from
	// <data-root>/containers/<id>/checkpoints/<name>). Required.
	DataRoot string
	// RuncRoot is runc's state directory for the engine's containers:
	// <exec-root>/runtime-runc/<containerd namespace>. Required.
	RuncRoot string
	// StateDir holds godwit's local checkpoints and staged incoming ones. It should be on
	// the same filesystem as DataRoot. Required.
	StateDir string
	// CRIUPath is the criu binary runc must use; its directory goes first on runc's PATH.
	// Default DefaultCRIUPath().
	CRIUPath string
	// Runc is the runc binary. Default "runc" from PATH.
	Runc string
	// MemoryCapacity, when > 0, is the memory this node offers to workloads (several
	// simulated nodes share one host); the target's headroom check uses the smaller of it
	// minus what the engine's containers use and the host's MemAvailable.
	MemoryCapacity int64
	// HeadroomMargin is kept free on the target after a restore. Default 64 MiB.
	HeadroomMargin int64
	// VerifyTimeout bounds Verify's wait for a restored workload to answer. Default 30s.
	VerifyTimeout time.Duration
	// Policy is what this node accepts in containers migrating here.
	Policy DockerPolicy
	// PublishAddress is this node's address: ports of containers migrating here are
	// published on it when they were published on a specific address on the source, and
	// networks created for them bind their ports to it. Empty keeps the engine's default.
	PublishAddress string
}

// DockerRuntime implements Runtime for Docker containers: checkpoints with runc and CRIU
// directly (Docker's own checkpoint copies the images through containerd several times),
// and restores through the Docker API so the engine keeps managing the container.
type DockerRuntime struct {
	cfg DockerConfig
}

var (
	_ Runtime     = (*DockerRuntime)(nil)
	_ ImageMover  = (*DockerRuntime)(nil)
	_ VolumeMover = (*DockerRuntime)(nil)
)

// NewDockerRuntime checks cfg and returns the runtime.
func NewDockerRuntime(cfg DockerConfig) (*DockerRuntime, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("migrate: DockerConfig.Client is required")
	case cfg.DataRoot == "":
		return nil, errors.New("migrate: DockerConfig.DataRoot is required")
	case cfg.RuncRoot == "":
		return nil, errors.New("migrate: DockerConfig.RuncRoot is required")
	case cfg.StateDir == "":
		return nil, errors.New("migrate: DockerConfig.StateDir is required")
	}
	if cfg.CRIUPath == "" {
		cfg.CRIUPath = DefaultCRIUPath()
	}
	if cfg.Runc == "" {
		cfg.Runc = "runc"
	}
	if cfg.HeadroomMargin == 0 {
		cfg.HeadroomMargin = 64 << 20
	}
	if cfg.VerifyTimeout == 0 {
		cfg.VerifyTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("migrate: state dir: %w", err)
	}
	return &DockerRuntime{cfg: cfg}, nil
}

// Name implements Runtime.
func (d *DockerRuntime) Name() string { return "docker" }

// Inspect implements Runtime. id is a container ID or name, or a workload identity
// (LabelWorkload) of a container on this engine.
func (d *DockerRuntime) Inspect(ctx context.Context, id string) (*Spec, error) {
	info, err := d.cfg.Client.ContainerInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		if found, ferr := d.findByLabel(ctx, LabelWorkload, id); ferr == nil && found != "" {
			info, err = d.cfg.Client.ContainerInspect(ctx, found)
		}
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: container %s", ErrNotFound, id)
		}
		return nil, fmt.Errorf("migrate: inspect %s: %w", id, err)
	}
	spec := &Spec{
		Runtime:     d.Name(),
		ID:          info.ID,
		Name:        strings.TrimPrefix(info.Name, "/"),
		Workload:    info.Config.Labels[LabelWorkload],
		Image:       info.Config.Image,
		ImageID:     info.Image,
		MemoryLimit: info.HostConfig.Memory,
		Labels:      info.Config.Labels,
	}
	if spec.Workload == "" {
		spec.Workload = info.ID
	}
	if img, err := d.cfg.Client.ImageInspect(ctx, info.Image); err == nil {
		spec.Arch = img.Architecture
	}
	for _, m := range info.Mounts {
		if m.Type == mount.TypeVolume {
			spec.Volumes = append(spec.Volumes, Volume{Name: m.Name, Destination: m.Destination})
		}
	}
	if info.State != nil && info.State.Running {
		spec.MemoryBytes, _ = d.memoryInUse(ctx, info.ID)
	}
	w, _ := workloadFromInspect(info)
	if eng, err := d.engine(ctx); err == nil {
		w.EngineAPI = eng.APIVersion
	}
	if err := d.inspectNetworks(ctx, info, &w); err != nil {
		return nil, err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	spec.Config = b
	return spec, nil
}

// findByLabel returns the ID of a container carrying label=value, or "".
func (d *DockerRuntime) findByLabel(ctx context.Context, label, value string) (string, error) {
	list, err := d.cfg.Client.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", label+"="+value)),
	})
	if err != nil {
		return "", fmt.Errorf("migrate: list containers: %w", err)
	}
	for _, c := range list {
		if c.State == "running" {
			return c.ID, nil
		}
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0].ID, nil
}

// State implements Runtime.
func (d *DockerRuntime) State(ctx context.Context, id string) (WorkloadState, error) {
	info, err := d.cfg.Client.ContainerInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		return WorkloadState{}, nil
	}
	if err != nil {
		return WorkloadState{}, fmt.Errorf("migrate: inspect %s: %w", id, err)
	}
	return WorkloadState{Exists: true, Running: info.State != nil && info.State.Running}, nil
}

// memoryInUse is the container's memory usage without reclaimable page cache, as `docker
// stats` reports it.
func (d *DockerRuntime) memoryInUse(ctx context.Context, id string) (int64, error) {
	resp, err := d.cfg.Client.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, err
	}
	used := s.MemoryStats.Usage
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && v < used {
			used -= v
			break
		}
	}
	return int64(used), nil
}

// CheckSource implements Runtime.
func (d *DockerRuntime) CheckSource(ctx context.Context, spec *Spec) error {
	info, err := d.cfg.Client.ContainerInspect(ctx, spec.ID)
	if err != nil {
		return fmt.Errorf("%w: inspect %s: %v", ErrPreflight, spec.ID, err)
	}
	if info.State == nil || !info.State.Running || info.State.Pid == 0 {
		return fmt.Errorf("%w: container %s is not running", ErrNotCheckpointable, spec.Name)
	}
	if info.State.Paused {
		return fmt.Errorf("%w: container %s is paused", ErrNotCheckpointable, spec.Name)
	}
	if _, err := CheckCRIU(ctx, d.cfg.CRIUPath); err != nil {
		return err
	}
	if _, err := exec.LookPath(d.cfg.Runc); err != nil {
		return fmt.Errorf("%w: runc not found: %v", ErrPreflight, err)
	}
	eng, err := d.engine(ctx)
	if err != nil {
		return fmt.Errorf("%w: source engine: %v", ErrPreflight, err)
	}
	if err := eng.supported(); err != nil {
		return err
	}
	if eng.restoresOnlyOwnNetns() && dockerNetns(info.Config, info.HostConfig) {
		// Should the migration fail, this engine could not restore the container here.
		return fmt.Errorf("%w: container %s runs in a network namespace of Docker's (network %q) on %s, which cannot restore such a container from a checkpoint, so a failed migration could not roll back; containers with networking disabled or on the host network can move",
			ErrNotCheckpointable, spec.Name, info.HostConfig.NetworkMode, eng)
	}
	if _, cannot := workloadFromInspect(info); len(cannot) > 0 {
		return fmt.Errorf("%w: container %s uses settings that cannot move with it: %s", ErrNotCheckpointable, spec.Name, strings.Join(cannot, ", "))
	}
	if info.HostConfig.AutoRemove {
		return fmt.Errorf("%w: container %s runs with --rm: Docker would delete it when it is checkpointed, leaving nothing to roll back to", ErrNotCheckpointable, spec.Name)
	}
	if info.Config.Tty || info.Config.OpenStdin {
		return fmt.Errorf("%w: container %s has a terminal or open stdin attached; CRIU cannot move its client end", ErrNotCheckpointable, spec.Name)
	}
	if nm := info.HostConfig.NetworkMode; nm.IsContainer() {
		// container:<id> shares a namespace that stays behind. Bridge and user networks
		// move (network.go).
		return fmt.Errorf("%w: container %s uses network %q, another container's namespace, which stays behind", ErrNotCheckpointable, spec.Name, nm)
	}
	for _, m := range info.Mounts {
		if m.Type == mount.TypeVolume && m.Driver != "" && m.Driver != "local" {
			return fmt.Errorf("%w: volume %q uses driver %q; only local volumes can be copied", ErrNotCheckpointable, m.Name, m.Driver)
		}
	}
	problems, err := UncheckpointableSockets(ContainerPIDs(info.State.Pid))
	if err != nil {
		return fmt.Errorf("%w: inspecting sockets of %s: %v", ErrPreflight, spec.Name, err)
	}
	if len(problems) > 0 {
		reasons := make([]string, 0, len(problems))
		for _, p := range problems {
			reasons = append(reasons, p.String())
		}
		return fmt.Errorf("%w: container %s: %s", ErrNotCheckpointable, spec.Name, strings.Join(reasons, "; "))
	}
	return nil
}

// CheckTarget implements Runtime.
func (d *DockerRuntime) CheckTarget(ctx context.Context, spec *Spec) error {
	if spec.Runtime != d.Name() {
		return fmt.Errorf("%w: workload is a %q workload, this node runs %q", ErrPreflight, spec.Runtime, d.Name())
	}
	if _, err := CheckCRIU(ctx, d.cfg.CRIUPath); err != nil {
		return err
	}
	info, err := d.cfg.Client.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: target engine: %v", ErrPreflight, err)
	}
	if spec.Arch != "" && normArch(spec.Arch) != normArch(info.Architecture) {
		return fmt.Errorf("%w: workload is %s, target is %s", ErrPreflight, spec.Arch, info.Architecture)
	}
	eng, err := d.engine(ctx)
	if err != nil {
		return fmt.Errorf("%w: target engine: %v", ErrPreflight, err)
	}
	if err := eng.supported(); err != nil {
		return err
	}
	w, err := decodeDockerWorkload(spec.Config)
	if err != nil {
		return err
	}
	if err := w.check(spec, d.cfg.Policy); err != nil {
		return err
	}
	if _, err := d.planNetworks(ctx, &w); err != nil {
		return err
	}
	if err := eng.restores(w); err != nil {
		return err
	}
	volumes := map[string]bool{}
	for i, m := range w.Mounts {
		switch m.Type {
		case "bind":
			if _, err := os.Stat(m.Source); err != nil {
				return fmt.Errorf("%w: mounts[%d].source: bind mount source %s does not exist on the target", ErrPreflight, i, m.Source)
			}
			// The allowed roots hold for where the path really leads, not only its spelling.
			real, err := filepath.EvalSymlinks(m.Source)
			if err != nil {
				return fmt.Errorf("%w: mounts[%d].source: %v", ErrPreflight, i, err)
			}
			if !underAny(real, resolvedRoots(d.cfg.Policy.BindRoots)) {
				return fmt.Errorf("%w: mounts[%d].source: bind mount of %s leads to %s, outside this node's allowed roots %v", ErrRefused, i, m.Source, real, d.cfg.Policy.BindRoots)
			}
		case "volume":
			volumes[m.Source] = true
		}
	}
	for i, v := range spec.Volumes {
		// Only the workload's own volumes take contents from the stream, and none that
		// another container here uses: a migration cannot overwrite someone else's data.
		if !volumes[v.Name] {
			return fmt.Errorf("%w: volumes[%d]: %q is not one of the workload's volume mounts", ErrRefused, i, v.Name)
		}
		users, err := d.cfg.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("volume", v.Name))})
		if err != nil {
			return fmt.Errorf("%w: volume %s: %v", ErrPreflight, v.Name, err)
		}
		for _, u := range users {
			if u.Labels[LabelWorkload] != spec.Workload && u.ID != spec.Workload {
				return fmt.Errorf("%w: volumes[%d]: volume %s is in use by container %s on this node", ErrRefused, i, v.Name, strings.TrimPrefix(firstName(u.Names), "/"))
			}
		}
	}
	if spec.Name != "" {
		if c, err := d.cfg.Client.ContainerInspect(ctx, spec.Name); err == nil && c.Config.Labels[LabelMigrationID] == "" {
			return fmt.Errorf("%w: a container named %s already exists on the target", ErrPreflight, spec.Name)
		}
	}
	free, err := d.headroom(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPreflight, err)
	}
	if need := spec.MemoryBytes + d.cfg.HeadroomMargin; need > free {
		return fmt.Errorf("%w: target has %d MiB free for workloads, the container needs %d MiB (plus %d MiB margin)",
			ErrPreflight, free>>20, spec.MemoryBytes>>20, d.cfg.HeadroomMargin>>20)
	}
	return nil
}

func normArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

// headroom is the memory still free for workloads on this node.
func (d *DockerRuntime) headroom(ctx context.Context) (int64, error) {
	free, err := memAvailable()
	if err != nil {
		return 0, err
	}
	if d.cfg.MemoryCapacity > 0 {
		list, err := d.cfg.Client.ContainerList(ctx, container.ListOptions{})
		if err != nil {
			return 0, err
		}
		used := int64(0)
		for _, c := range list {
			m, err := d.memoryInUse(ctx, c.ID)
			if err == nil {
				used += m
			}
		}
		if capFree := d.cfg.MemoryCapacity - used; capFree < free {
			free = capFree
		}
	}
	return free, nil
}

// fastRestore reports whether the engine has godwit-runc registered.
func (d *DockerRuntime) fastRestore(ctx context.Context) bool {
	info, err := d.cfg.Client.Info(ctx)
	if err != nil {
		return false
	}
	_, ok := info.Runtimes[FastRestoreRuntime]
	return ok
}

// Prepare implements Runtime: it creates the container, stopped, with the source's config.
func (d *DockerRuntime) Prepare(ctx context.Context, migrationID string, spec *Spec) (Prepared, error) {
	staged := filepath.Join(d.cfg.StateDir, "staged", migrationID)
	if existing, err := d.findMigrated(ctx, migrationID); err != nil {
		return Prepared{}, err
	} else if existing != "" {
		return Prepared{ID: existing, CheckpointDir: staged}, nil
	}
	w, err := decodeDockerWorkload(spec.Config)
	if err != nil {
		return Prepared{}, err
	}
	if err := w.check(spec, d.cfg.Policy); err != nil {
		return Prepared{}, err
	}
	plans, err := d.planNetworks(ctx, &w)
	if err != nil {
		return Prepared{}, err
	}
	if err := d.ensureNetworks(ctx, plans); err != nil {
		return Prepared{}, err
	}
	image := spec.Image
	if spec.ImageID != "" {
		img, err := d.cfg.Client.ImageInspect(ctx, spec.Image)
		switch {
		case err == nil && img.ID == spec.ImageID:
		case errdefs.IsNotFound(err) && spec.Image != "" && !strings.HasPrefix(spec.Image, "sha256:"):
			// Images arrive untagged; the tag is free here, so it names this image.
			if terr := d.cfg.Client.ImageTag(ctx, spec.ImageID, spec.Image); terr != nil {
				image = spec.ImageID
			}
		default:
			// The tag names another image here: use the exact image.
			image = spec.ImageID
		}
	}
	cfg, hc := w.build(spec, image)
	cfg.Labels[LabelMigrationID] = migrationID
	if d.fastRestore(ctx) {
		hc.Runtime = FastRestoreRuntime
	}
	netcfg := d.buildNetworking(&w, cfg, hc)
	created, err := d.cfg.Client.ContainerCreate(ctx, cfg, hc, netcfg, nil, spec.Name)
	if err != nil {
		return Prepared{}, fmt.Errorf("migrate: create container on target: %w", err)
	}
	if err := d.connectRest(ctx, created.ID, &w); err != nil {
		_ = d.Remove(context.WithoutCancel(ctx), created.ID)
		return Prepared{}, err
	}
	if err := os.MkdirAll(staged, 0o700); err != nil {
		// A failed Prepare leaves nothing behind: the source never learns this ID.
		_ = d.Remove(context.WithoutCancel(ctx), created.ID)
		return Prepared{}, err
	}
	return Prepared{ID: created.ID, CheckpointDir: staged}, nil
}

// findMigrated returns the ID of the container a migration created here, or "".
func (d *DockerRuntime) findMigrated(ctx context.Context, migrationID string) (string, error) {
	list, err := d.cfg.Client.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelMigrationID+"="+migrationID)),
	})
	if err != nil {
		return "", fmt.Errorf("migrate: list containers: %w", err)
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0].ID, nil
}

// Checkpoint implements Runtime: runc checkpoint, which freezes the container, dumps it with
// CRIU into dir and stops it. The restart policy is switched off first so Docker does not
// restart the stopped container from scratch; Resume puts it back.
func (d *DockerRuntime) Checkpoint(ctx context.Context, id, dir string) error {
	info, err := d.cfg.Client.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("migrate: inspect %s: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !info.HostConfig.RestartPolicy.IsNone() {
		if _, err := d.cfg.Client.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}}); err != nil {
			return fmt.Errorf("migrate: disabling restart policy of %s before checkpoint: %w", id, err)
		}
	}
	work := dir + ".work"
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	netArgs, netEnv, undoNet, err := d.checkpointNetworking(ctx, info, work)
	if err != nil {
		d.restoreRestartPolicy(context.WithoutCancel(ctx), id, info.HostConfig.RestartPolicy)
		return err
	}
	// Not cancellable: killing runc mid-dump could leave the container frozen. Once the
	// freeze starts, the dump finishes (or fails) on its own.
	cmd := exec.Command(d.cfg.Runc, append(append([]string{"--root", d.cfg.RuncRoot, "checkpoint",
		"--image-path", dir, "--work-path", work}, netArgs...), info.ID)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(d.cfg.CRIUPath)+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, netEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		undoNet()
		d.restoreRestartPolicy(context.WithoutCancel(ctx), id, info.HostConfig.RestartPolicy)
		return fmt.Errorf("migrate: runc checkpoint of %s failed: %v: %s%s", info.Name, err, strings.TrimSpace(string(out)), criuLogTail(filepath.Join(work, "dump.log")))
	}
	// runc has killed the dumped process; Docker notices a little later. Nothing here
	// waits for that (it would be downtime): Resume does, the one step that needs it.
	return nil
}

// waitStopped waits until Docker reports the container not running.
func (d *DockerRuntime) waitStopped(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitC, errC := d.cfg.Client.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
		return nil
	case err := <-errC:
		return fmt.Errorf("migrate: waiting for %s to stop after checkpoint: %w", id, err)
	}
}

func (d *DockerRuntime) restoreRestartPolicy(ctx context.Context, id string, p container.RestartPolicy) {
	if p.IsNone() {
		return
	}
	_, _ = d.cfg.Client.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: p})
}

// criuLogTail quotes the end of a CRIU log for an error message.
func criuLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "\nCRIU log " + path + ":\n" + strings.Join(lines, "\n")
}

// Restore implements Runtime.
func (d *DockerRuntime) Restore(ctx context.Context, p Prepared) error {
	info, err := d.cfg.Client.ContainerInspect(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("migrate: inspect prepared container %s: %w", p.ID, err)
	}
	if info.State != nil && info.State.Running {
		return nil // already restored by an earlier attempt
	}
	name := "godwit-" + shortID(filepath.Base(p.CheckpointDir))
	if err := d.placeCheckpoint(info.ID, info.HostConfig.Runtime == FastRestoreRuntime, p.CheckpointDir, name); err != nil {
		return err
	}
	if err := d.placeTCPMode(info, name, keepsAddresses(info)); err != nil {
		return err
	}
	err = d.cfg.Client.ContainerStart(ctx, info.ID, container.StartOptions{CheckpointID: name})
	_ = d.cfg.Client.CheckpointDelete(context.WithoutCancel(ctx), info.ID, checkpoint.DeleteOptions{CheckpointID: name})
	_ = os.RemoveAll(filepath.Join(d.cfg.DataRoot, "containers", info.ID, "checkpoints", name))
	if err != nil {
		return fmt.Errorf("migrate: restore of %s from checkpoint failed: %w", strings.TrimPrefix(info.Name, "/"), err)
	}
	return d.afterRestore(ctx, info.ID)
}

// placeCheckpoint makes the checkpoint in dir available to Docker as checkpoint name of
// container id: a marker for godwit-runc when the container runs under it, otherwise the
// images themselves (moved when on the same filesystem, else copied).
func (d *DockerRuntime) placeCheckpoint(id string, fast bool, dir, name string) error {
	cpDir := filepath.Join(d.cfg.DataRoot, "containers", id, "checkpoints", name)
	_ = os.RemoveAll(cpDir)
	if err := os.MkdirAll(cpDir, 0o700); err != nil {
		return err
	}
	if fast {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(cpDir, stagedMarker), []byte(abs+"\n"), 0o600)
	}
	return copyDir(dir, cpDir)
}

// Resume implements Runtime: the rollback path on the source. After a crash of the godwit
// process during a checkpoint, the runc that dumps may still run (it is not killed with
// godwit: killing it mid-dump could leave the container frozen); Resume waits for it, so it
// decides on the dump's real outcome.
func (d *DockerRuntime) Resume(ctx context.Context, spec *Spec, dir string) error {
	if err := waitNoProcessMentions(ctx, dir, 10*time.Minute); err != nil {
		return fmt.Errorf("migrate: rollback: %w", err)
	}
	info, err := d.cfg.Client.ContainerInspect(ctx, spec.ID)
	if err != nil {
		return fmt.Errorf("migrate: rollback: the source container %s is gone: %w", spec.Name, err)
	}
	w, _ := decodeDockerWorkload(spec.Config)
	policy := container.RestartPolicy{Name: container.RestartPolicyMode(w.RestartPolicy), MaximumRetryCount: w.RestartMax}
	if info.State != nil && info.State.Running && dumpExists(dir) {
		// Dumped, but Docker has not noticed the exit yet.
		if err := d.waitStopped(ctx, info.ID); err != nil {
			return err
		}
		if info, err = d.cfg.Client.ContainerInspect(ctx, spec.ID); err != nil {
			return fmt.Errorf("migrate: rollback: %w", err)
		}
	}
	if info.State != nil && info.State.Running {
		d.restoreRestartPolicy(ctx, info.ID, policy)
		return nil
	}
	name := "godwit-rollback"
	if err := d.placeCheckpoint(info.ID, info.HostConfig.Runtime == FastRestoreRuntime, dir, name); err != nil {
		return fmt.Errorf("migrate: rollback: %w", err)
	}
	// The source's new namespace may get another address: connections are closed.
	if err := d.placeTCPMode(info, name, false); err != nil {
		return fmt.Errorf("migrate: rollback: %w", err)
	}
	err = d.cfg.Client.ContainerStart(ctx, info.ID, container.StartOptions{CheckpointID: name})
	_ = d.cfg.Client.CheckpointDelete(context.WithoutCancel(ctx), info.ID, checkpoint.DeleteOptions{CheckpointID: name})
	_ = os.RemoveAll(filepath.Join(d.cfg.DataRoot, "containers", info.ID, "checkpoints", name))
	if err != nil {
		return fmt.Errorf("migrate: rollback: restore of %s on the source failed: %w", spec.Name, err)
	}
	if err := d.afterRestore(ctx, info.ID); err != nil {
		return fmt.Errorf("migrate: rollback: %w", err)
	}
	d.restoreRestartPolicy(ctx, info.ID, policy)
	return nil
}

// Verify implements Runtime.
func (d *DockerRuntime) Verify(ctx context.Context, id string) error {
	deadline := time.Now().Add(d.cfg.VerifyTimeout)
	var last error
	for {
		var final bool
		final, last = d.verifyOnce(ctx, id)
		if last == nil || final || time.Now().After(deadline) || ctx.Err() != nil {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyOnce checks once; final reports a failure waiting will not cure (the container is
// gone, or was never started or has exited: Docker does not start it by itself).
func (d *DockerRuntime) verifyOnce(ctx context.Context, id string) (final bool, err error) {
	info, err := d.cfg.Client.ContainerInspect(ctx, id)
	if err != nil {
		return errdefs.IsNotFound(err), fmt.Errorf("migrate: verify: %w", err)
	}
	if info.State == nil || !info.State.Running {
		status := ""
		if info.State != nil {
			status = info.State.Status
		}
		final := status == "created" || status == "exited" || status == "dead"
		return final, fmt.Errorf("migrate: verify: container %s is not running (status %s)", strings.TrimPrefix(info.Name, "/"), status)
	}
	portLabel := info.Config.Labels[LabelProbePort]
	if portLabel == "" {
		return false, nil
	}
	port, err := strconv.Atoi(portLabel)
	if err != nil || port <= 0 || port > 65535 {
		return true, fmt.Errorf("migrate: verify: label %s=%q is not a port", LabelProbePort, portLabel)
	}
	return false, ProbeTCPInNetns(ctx, info.State.Pid, port)
}

// Remove implements Runtime. Named volumes are left in place: they may hold data an
// operator wants, and their contents already travelled with the checkpoint.
func (d *DockerRuntime) Remove(ctx context.Context, id string) error {
	err := d.cfg.Client.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("migrate: remove %s: %w", id, err)
	}
	return nil
}

// HasImage implements ImageMover.
func (d *DockerRuntime) HasImage(ctx context.Context, imageID string) (bool, error) {
	_, err := d.cfg.Client.ImageInspect(ctx, imageID)
	if err == nil {
		return true, nil
	}
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

// SaveImage implements ImageMover.
func (d *DockerRuntime) SaveImage(ctx context.Context, spec *Spec, w io.Writer) error {
	ref := spec.ImageID
	if img, err := d.cfg.Client.ImageInspect(ctx, spec.Image); err == nil && img.ID == spec.ImageID {
		ref = spec.Image
	}
	rc, err := d.cfg.Client.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("migrate: image save %s: %w", ref, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// LoadImage implements ImageMover.
func (d *DockerRuntime) LoadImage(ctx context.Context, r io.Reader) error {
	resp, err := d.cfg.Client.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("migrate: image load: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(out), `"errorDetail"`) {
		return fmt.Errorf("migrate: image load: %s", out)
	}
	return nil
}

// VolumePath implements VolumeMover.
func (d *DockerRuntime) VolumePath(ctx context.Context, name string) (string, error) {
	v, err := d.cfg.Client.VolumeInspect(ctx, name)
	if err != nil {
		return "", fmt.Errorf("migrate: volume %s: %w", name, err)
	}
	if v.Driver != "local" {
		return "", fmt.Errorf("%w: volume %s uses driver %q", ErrNotCheckpointable, name, v.Driver)
	}
	return v.Mountpoint, nil
}

// waitNoProcessMentions waits until no process has path in its command line (a runc
// checkpoint writing its images there).
func waitNoProcessMentions(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	needle := []byte(path)
	for {
		busy := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && bytes.Contains(b, needle) {
				busy, _ = strconv.Atoi(e.Name())
				break
			}
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("process %d still works on %s", busy, path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// resolvedRoots returns roots with symlinks resolved (a root that does not resolve is kept
// as written).
func resolvedRoots(roots []string) []string {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		if real, err := filepath.EvalSymlinks(r); err == nil {
			out = append(out, real)
		} else {
			out = append(out, r)
		}
	}
	return out
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func shortID(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// dumpExists reports whether dir holds a CRIU dump (CRIU writes inventory.img when a dump
// succeeds).
func dumpExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "inventory.img"))
	return err == nil
}
