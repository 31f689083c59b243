package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

// DockerPolicy is what a target node allows in the containers it takes. The source's
// container config never reaches the engine as it came off the wire: the target rebuilds it
// from dockerWorkload's allowlisted fields, after refusing what this policy forbids.
type DockerPolicy struct {
	// AllowHostNetwork lets containers with --network host move here.
	AllowHostNetwork bool `json:"allowHostNetwork"`
	// BindRoots are the absolute directories bind-mount sources must lie under; none allows
	// no bind mounts.
	BindRoots []string `json:"bindRoots"`
	// AllowCapabilities lists capabilities a container may add (--cap-add); none allows
	// none.
	AllowCapabilities []string `json:"allowCapabilities"`
}

// dockerWorkload is Spec.Config for docker workloads: the container's settings that travel.
// The Refused* fields are carried only so the target can name them when it refuses.
type dockerWorkload struct {
	Cmd           []string          `json:"cmd,omitempty"`
	Entrypoint    []string          `json:"entrypoint,omitempty"`
	Env           []string          `json:"env,omitempty"`
	WorkingDir    string            `json:"workingDir,omitempty"`
	User          string            `json:"user,omitempty"`
	Hostname      string            `json:"hostname,omitempty"`
	Domainname    string            `json:"domainname,omitempty"`
	StopSignal    string            `json:"stopSignal,omitempty"`
	StopTimeout   *int              `json:"stopTimeout,omitempty"`
	NetworkMode   string            `json:"networkMode"`
	RestartPolicy string            `json:"restartPolicy,omitempty"`
	RestartMax    int               `json:"restartMax,omitempty"`
	Memory        int64             `json:"memory,omitempty"`
	MemorySwap    int64             `json:"memorySwap,omitempty"`
	MemoryReserve int64             `json:"memoryReservation,omitempty"`
	NanoCPUs      int64             `json:"nanoCPUs,omitempty"`
	CPUShares     int64             `json:"cpuShares,omitempty"`
	CPUPeriod     int64             `json:"cpuPeriod,omitempty"`
	CPUQuota      int64             `json:"cpuQuota,omitempty"`
	CpusetCpus    string            `json:"cpusetCpus,omitempty"`
	CpusetMems    string            `json:"cpusetMems,omitempty"`
	PidsLimit     *int64            `json:"pidsLimit,omitempty"`
	OomScoreAdj   int               `json:"oomScoreAdj,omitempty"`
	ReadonlyRoot  bool              `json:"readonlyRootfs,omitempty"`
	Init          *bool             `json:"init,omitempty"`
	ShmSize       int64             `json:"shmSize,omitempty"`
	Tmpfs         map[string]string `json:"tmpfs,omitempty"`
	CapDrop       []string          `json:"capDrop,omitempty"`
	GroupAdd      []string          `json:"groupAdd,omitempty"`
	Mounts        []dockerMount     `json:"mounts,omitempty"`

	Privileged        bool     `json:"privileged,omitempty"`
	PidMode           string   `json:"pidMode,omitempty"`
	IpcMode           string   `json:"ipcMode,omitempty"`
	UTSMode           string   `json:"utsMode,omitempty"`
	UsernsMode        string   `json:"usernsMode,omitempty"`
	CgroupnsMode      string   `json:"cgroupnsMode,omitempty"`
	CapAdd            []string `json:"capAdd,omitempty"`
	Devices           []string `json:"devices,omitempty"`
	DeviceCgroupRules []string `json:"deviceCgroupRules,omitempty"`
	SecurityOpt       []string `json:"securityOpt,omitempty"`
	Sysctls           []string `json:"sysctls,omitempty"`

	// Networks are the container's network attachments, its own network (NetworkMode)
	// first; Ports its published ports; Established its established TCP connections when
	// inspected (network.go).
	Networks    []dockerEndpoint `json:"networks,omitempty"`
	Ports       []dockerPort     `json:"ports,omitempty"`
	Established int              `json:"established,omitempty"`
	// NetworkDisabled: the container has a network namespace of its own that Docker does
	// not manage (Config.NetworkDisabled); its copy gets the same kind.
	NetworkDisabled bool `json:"networkDisabled,omitempty"`
	// EngineAPI is the API version of the source's engine: what the checkpoint was taken
	// under (see dockerEngine.restores).
	EngineAPI string `json:"engineAPI,omitempty"`
}

// dockerMount is one mount: a local named volume (its contents travel in the checkpoint
// stream), a bind mount (the path must exist on the target, under its BindRoots) or tmpfs.
type dockerMount struct {
	Type     string `json:"type"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// workloadFromInspect takes the settings that travel from an inspected container. Settings
// that cannot travel are reported (the source refuses before freezing).
func workloadFromInspect(info container.InspectResponse) (dockerWorkload, []string) {
	c, hc := info.Config, info.HostConfig
	w := dockerWorkload{
		Cmd: c.Cmd, Entrypoint: c.Entrypoint, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		Hostname: c.Hostname, Domainname: c.Domainname, StopSignal: c.StopSignal, StopTimeout: c.StopTimeout,
		NetworkMode: string(hc.NetworkMode), NetworkDisabled: c.NetworkDisabled, RestartPolicy: string(hc.RestartPolicy.Name), RestartMax: hc.RestartPolicy.MaximumRetryCount,
		Memory: hc.Memory, MemorySwap: hc.MemorySwap, MemoryReserve: hc.MemoryReservation, NanoCPUs: hc.NanoCPUs,
		CPUShares: hc.CPUShares, CPUPeriod: hc.CPUPeriod, CPUQuota: hc.CPUQuota, CpusetCpus: hc.CpusetCpus, CpusetMems: hc.CpusetMems,
		PidsLimit: hc.PidsLimit, OomScoreAdj: hc.OomScoreAdj, ReadonlyRoot: hc.ReadonlyRootfs, Init: hc.Init, ShmSize: hc.ShmSize,
		Tmpfs: hc.Tmpfs, CapDrop: hc.CapDrop, GroupAdd: hc.GroupAdd,
		Privileged: hc.Privileged, PidMode: string(hc.PidMode), IpcMode: string(hc.IpcMode), UTSMode: string(hc.UTSMode),
		UsernsMode: string(hc.UsernsMode), CgroupnsMode: string(hc.CgroupnsMode), CapAdd: hc.CapAdd,
		DeviceCgroupRules: hc.DeviceCgroupRules, SecurityOpt: hc.SecurityOpt,
	}
	if w.NetworkMode == "default" || w.NetworkMode == "" {
		w.NetworkMode = "bridge"
	}
	for _, d := range hc.Devices {
		w.Devices = append(w.Devices, d.PathOnHost)
	}
	for k, v := range hc.Sysctls {
		w.Sysctls = append(w.Sysctls, k+"="+v)
	}
	for _, m := range info.Mounts {
		switch m.Type {
		case mount.TypeVolume:
			w.Mounts = append(w.Mounts, dockerMount{Type: "volume", Source: m.Name, Target: m.Destination, ReadOnly: !m.RW})
		case mount.TypeBind:
			w.Mounts = append(w.Mounts, dockerMount{Type: "bind", Source: m.Source, Target: m.Destination, ReadOnly: !m.RW})
		case mount.TypeTmpfs:
			w.Mounts = append(w.Mounts, dockerMount{Type: "tmpfs", Target: m.Destination, ReadOnly: !m.RW})
		}
	}
	var cannot []string
	if len(hc.Links) > 0 {
		cannot = append(cannot, "links")
	}
	if len(hc.VolumesFrom) > 0 {
		cannot = append(cannot, "volumesFrom (shares another container's volumes, which stay behind)")
	}
	if len(hc.Ulimits) > 0 {
		cannot = append(cannot, "ulimits")
	}
	if len(hc.ExtraHosts) > 0 {
		cannot = append(cannot, "extraHosts")
	}
	return w, cannot
}

// decodeDockerWorkload parses Spec.Config strictly: a field this node does not know is
// refused rather than dropped.
func decodeDockerWorkload(raw json.RawMessage) (dockerWorkload, error) {
	var w dockerWorkload
	if len(raw) == 0 {
		return w, fmt.Errorf("%w: workload spec has no docker config", ErrRefused)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, fmt.Errorf("%w: docker config: %v", ErrRefused, err)
	}
	return w, nil
}

var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// check refuses what policy does not allow, naming the field.
func (w *dockerWorkload) check(spec *Spec, p DockerPolicy) error {
	refuse := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrRefused, field, fmt.Sprintf(format, args...))
	}
	if spec.Name != "" && !containerName.MatchString(spec.Name) {
		return refuse("name", "%q is not a container name", spec.Name)
	}
	switch {
	case w.Privileged:
		return refuse("privileged", "privileged containers are not accepted")
	case w.PidMode != "" && w.PidMode != "private":
		return refuse("pidMode", "%q: only a private PID namespace is accepted", w.PidMode)
	case w.IpcMode != "" && w.IpcMode != "private" && w.IpcMode != "shareable" && w.IpcMode != "none":
		return refuse("ipcMode", "%q: only a private IPC namespace is accepted", w.IpcMode)
	case w.UTSMode != "" && w.UTSMode != "private":
		return refuse("utsMode", "%q: only a private UTS namespace is accepted", w.UTSMode)
	case w.UsernsMode != "" && w.UsernsMode != "private":
		return refuse("usernsMode", "%q is not accepted", w.UsernsMode)
	case w.CgroupnsMode != "" && w.CgroupnsMode != "host" && w.CgroupnsMode != "private":
		// host is Docker's default on cgroup v1 hosts; the tree is mounted read-only.
		return refuse("cgroupnsMode", "%q is not a cgroup namespace mode", w.CgroupnsMode)
	case len(w.Devices) > 0:
		return refuse("devices", "host devices are not accepted (%s)", strings.Join(w.Devices, ", "))
	case len(w.DeviceCgroupRules) > 0:
		return refuse("deviceCgroupRules", "device rules are not accepted")
	case len(w.SecurityOpt) > 0:
		return refuse("securityOpt", "security options are not accepted (%s)", strings.Join(w.SecurityOpt, ", "))
	case len(w.Sysctls) > 0:
		return refuse("sysctls", "sysctls are not accepted (%s)", strings.Join(w.Sysctls, ", "))
	}
	for _, c := range w.CapAdd {
		if !containsFold(p.AllowCapabilities, strings.TrimPrefix(strings.ToUpper(c), "CAP_")) {
			return refuse("capAdd", "capability %s is not allowed on this node", c)
		}
	}
	if w.NetworkMode == "host" && !p.AllowHostNetwork {
		return refuse("networkMode", "host networking is not allowed on this node")
	}
	if err := w.checkNetworking(); err != nil {
		return err
	}
	switch w.RestartPolicy {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return refuse("restartPolicy", "%q is not a restart policy", w.RestartPolicy)
	}
	for i, m := range w.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) != m.Target {
			return refuse(field+".target", "%q is not a clean absolute path", m.Target)
		}
		switch m.Type {
		case "volume":
			if !dockerVolumeName(m.Source) {
				return refuse(field+".source", "%q is not a volume name", m.Source)
			}
		case "bind":
			if !filepath.IsAbs(m.Source) || filepath.Clean(m.Source) != m.Source {
				return refuse(field+".source", "%q is not a clean absolute path", m.Source)
			}
			if !underAny(m.Source, p.BindRoots) {
				return refuse(field+".source", "bind mount of %s is outside this node's allowed roots %v", m.Source, p.BindRoots)
			}
		case "tmpfs":
		default:
			return refuse(field+".type", "%q mounts are not accepted", m.Type)
		}
	}
	for target := range w.Tmpfs {
		if !filepath.IsAbs(target) {
			return refuse("tmpfs", "%q is not an absolute path", target)
		}
	}
	return nil
}

var capabilityName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// NormalizeCapabilities turns capability names as operators write them (net_admin,
// CAP_NET_ADMIN) into DockerPolicy.AllowCapabilities' form (NET_ADMIN), without duplicates,
// and refuses ALL: a node that takes every capability should say so one by one.
func NormalizeCapabilities(caps []string) ([]string, error) {
	var out []string
	for _, c := range caps {
		n := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		if n == "ALL" {
			return nil, errors.New("ALL is not accepted: name each capability")
		}
		if !capabilityName.MatchString(n) {
			return nil, fmt.Errorf("%q is not a capability name", c)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)

func dockerVolumeName(s string) bool { return volumeName.MatchString(s) }

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimPrefix(strings.ToUpper(v), "CAP_"), s) {
			return true
		}
	}
	return false
}

// underAny reports whether path is one of roots or inside one.
func underAny(path string, roots []string) bool {
	for _, r := range roots {
		r = filepath.Clean(r)
		if !filepath.IsAbs(r) {
			continue
		}
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) || r == "/" {
			return true
		}
	}
	return false
}

// build makes the engine's create config from the allowlisted settings only.
func (w *dockerWorkload) build(spec *Spec, image string) (*container.Config, *container.HostConfig) {
	c := &container.Config{
		Image: image, Cmd: w.Cmd, Entrypoint: w.Entrypoint, Env: w.Env, WorkingDir: w.WorkingDir, User: w.User,
		Hostname: w.Hostname, Domainname: w.Domainname, StopSignal: w.StopSignal, StopTimeout: w.StopTimeout,
		NetworkDisabled: w.NetworkDisabled, Labels: map[string]string{},
	}
	for k, v := range spec.Labels {
		c.Labels[k] = v
	}
	c.Labels[LabelWorkload] = spec.Workload
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(w.NetworkMode),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(w.RestartPolicy), MaximumRetryCount: w.RestartMax},
		Resources: container.Resources{
			Memory: w.Memory, MemorySwap: w.MemorySwap, MemoryReservation: w.MemoryReserve, NanoCPUs: w.NanoCPUs,
			CPUShares: w.CPUShares, CPUPeriod: w.CPUPeriod, CPUQuota: w.CPUQuota, CpusetCpus: w.CpusetCpus, CpusetMems: w.CpusetMems,
			PidsLimit: w.PidsLimit,
		},
		OomScoreAdj: w.OomScoreAdj, ReadonlyRootfs: w.ReadonlyRoot, Init: w.Init, ShmSize: w.ShmSize,
		Tmpfs: w.Tmpfs, CapDrop: w.CapDrop, CapAdd: w.CapAdd, GroupAdd: w.GroupAdd,
	}
	if w.CgroupnsMode != "" {
		hc.CgroupnsMode = container.CgroupnsMode(w.CgroupnsMode)
	}
	if w.IpcMode == "shareable" || w.IpcMode == "none" {
		hc.IpcMode = container.IpcMode(w.IpcMode)
	}
	for _, m := range w.Mounts {
		switch m.Type {
		case "volume":
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case "bind":
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case "tmpfs":
			if _, dup := w.Tmpfs[m.Target]; !dup {
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: m.Target, ReadOnly: m.ReadOnly})
			}
		}
	}
	return c, hc
}
