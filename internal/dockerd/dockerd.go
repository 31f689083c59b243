// Package dockerd starts and stops isolated Docker engines, one per simulated node, on one
// machine: each with its own data-root, exec-root, socket, pidfile and containerd, with
// experimental features on (checkpoint/restore), no iptables rules, and no bridge unless
// Config.Bridge names one (network.go). Tests, the
// demo and `godwit dev` use it. It always cleans up what it started.
//
// It never touches a system-wide dockerd: every path it uses lives under the engine's own
// directories.
package dockerd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// Config describes one engine to start.
type Config struct {
	// Name identifies the node ("n1"); it names the engine's directories and its containerd
	// namespace and cgroup parent, so two engines on one host never share state.
	Name string
	// Dir holds the data-root and log. Default: a new directory under os.TempDir().
	Dir string
	// RunDir holds the exec-root and the socket. Unix socket paths are limited to 108 bytes,
	// so this must be short. Default: /run/godwit.
	RunDir string
	// Version is the engine version to start, one of Versions. Default: GODWIT_ENGINE, else
	// DefaultVersion.
	Version string
	// Dockerd is the dockerd binary. Default: the one of Version (see Lookup).
	Dockerd string
	// PathPrepend is put first on the daemon's PATH, so runc finds the right criu.
	// Default: /opt/godwit/bin (where scripts/install-criu.sh puts CRIU).
	PathPrepend string
	// FastRestoreRuntime is the path of scripts/godwit-runc, registered as OCI runtime
	// "godwit-runc" so migrated containers restore without Docker copying their checkpoint.
	// Default /opt/godwit/bin/godwit-runc when it exists; "none" leaves it out.
	FastRestoreRuntime string
	// ReadyTimeout bounds the wait for the daemon to answer /_ping. Default 60s.
	ReadyTimeout time.Duration

	// Bridge, when set, is the Linux bridge of the engine's default "bridge" network (none
	// otherwise). Start creates it with BridgeAddress when it is missing and Stop deletes
	// it if Start created it. Engines on one host need their own names (never docker0);
	// engines meant to share a layer-2 segment name the same bridge.
	Bridge string
	// BridgeAddress is the bridge's gateway address with its prefix, e.g. 10.103.1.1/24
	// (what --bip would set; dockerd refuses --bip together with --bridge).
	BridgeAddress string
	// FixedCIDR limits the default bridge's container addresses (--fixed-cidr): engines
	// sharing one bridge take non-overlapping ranges.
	FixedCIDR string
	// PublishIP is the host address ports published on the default bridge bind to (--ip):
	// the node's own address. User-defined networks take theirs from the network option
	// com.docker.network.bridge.host_binding_ipv4.
	PublishIP string
	// AddressPools are dockerd --default-address-pool values ("base=10.103.16.0/20,size=24"):
	// where user-defined networks take their subnets from. Engines on one host need
	// disjoint pools.
	AddressPools []string
}

// Engine is one running dockerd.
type Engine struct {
	Name     string
	Version  string // the engine version started, one of Versions
	Host     string // "unix:///run/godwit/n1-xxxx/docker.sock"
	DataRoot string
	ExecRoot string
	Dir      string
	LogPath  string

	ownDir bool
	runDir string
	cmd    *exec.Cmd
	done   chan error

	ownBridge string // the bridge Start created, deleted on Stop
}

// ErrNoDockerd is returned by Start when no dockerd binary is installed.
var ErrNoDockerd = errors.New("dockerd: dockerd binary not found (make deps installs docker.io)")

// Start launches a dockerd and waits until it answers.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Name == "" {
		return nil, errors.New("dockerd: Config.Name is required")
	}
	var engineBin string
	if cfg.Version == "" {
		v, err := SelectedVersion()
		if err != nil {
			return nil, err
		}
		cfg.Version = v
	}
	if cfg.Dockerd == "" {
		in, err := Lookup(cfg.Version)
		if err != nil {
			return nil, err
		}
		cfg.Dockerd, engineBin = in.Dockerd, in.Bin
	}
	if err := cfg.checkNetwork(); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(cfg.Dockerd)
	if err != nil {
		return nil, ErrNoDockerd
	}
	if cfg.RunDir == "" {
		cfg.RunDir = "/run/godwit"
	}
	if cfg.PathPrepend == "" {
		cfg.PathPrepend = "/opt/godwit/bin"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	e := &Engine{Name: cfg.Name, Version: cfg.Version, done: make(chan error, 1)}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "godwit-engine-"+cfg.Name+"-")
		if err != nil {
			return nil, fmt.Errorf("dockerd: %w", err)
		}
		cfg.Dir, e.ownDir = d, true
	}
	e.Dir = cfg.Dir
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	run, err := os.MkdirTemp(cfg.RunDir, cfg.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	e.runDir = run
	e.DataRoot = filepath.Join(cfg.Dir, "data")
	e.ExecRoot = filepath.Join(run, "x")
	sock := filepath.Join(run, "docker.sock")
	e.Host = "unix://" + sock
	e.LogPath = filepath.Join(cfg.Dir, "dockerd.log")

	conf := filepath.Join(cfg.Dir, "daemon.json")
	daemon := map[string]any{"experimental": true}
	if cfg.FastRestoreRuntime == "" {
		if _, err := os.Stat("/opt/godwit/bin/godwit-runc"); err == nil {
			cfg.FastRestoreRuntime = "/opt/godwit/bin/godwit-runc"
		}
	}
	if cfg.FastRestoreRuntime != "" && cfg.FastRestoreRuntime != "none" {
		daemon["runtimes"] = map[string]any{"godwit-runc": map[string]string{"path": cfg.FastRestoreRuntime}}
		// Every container runs under it, so a rollback (restoring the original container on
		// the source) is as fast as a restore on the target.
		daemon["default-runtime"] = "godwit-runc"
	}
	b, _ := json.Marshal(daemon)
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		e.cleanupDirs()
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	if cfg.Bridge != "" {
		created, err := ensureBridge(cfg.Bridge, cfg.BridgeAddress)
		if err != nil {
			e.cleanupDirs()
			return nil, err
		}
		if created {
			e.ownBridge = cfg.Bridge
		}
	}
	logf, err := os.Create(e.LogPath)
	if err != nil {
		e.cleanupDirs()
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	args := []string{
		"--config-file", conf,
		"--data-root", e.DataRoot,
		"--exec-root", e.ExecRoot,
		"--pidfile", filepath.Join(run, "docker.pid"),
		"-H", e.Host,
		"--bridge", cfg.bridgeName(),
		"--iptables=false",
		"--ip-masq=false",
		// Own namespaces and cgroup parent: engines on one host never see each other's
		// containers, and each node's load can be read from its own cgroup subtree.
		"--containerd-namespace", "godwit-" + cfg.Name,
		"--containerd-plugins-namespace", "godwit-" + cfg.Name + "-plugins",
		"--cgroup-parent", "/godwit-" + cfg.Name,
	}
	args = append(args, cfg.networkArgs()...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	path := cfg.PathPrepend + ":" + os.Getenv("PATH")
	if engineBin != "" {
		// The engine's own containerd, shim and docker-init come before the system's.
		path = cfg.PathPrepend + ":" + engineBin + ":" + os.Getenv("PATH")
	}
	cmd.Env = append(os.Environ(), "PATH="+path)
	// Own process group: a test's Ctrl-C does not kill the daemon before cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		e.cleanupDirs()
		return nil, fmt.Errorf("dockerd: start %s: %w", bin, err)
	}
	e.cmd = cmd
	go func() { e.done <- cmd.Wait(); logf.Close() }()

	if err := e.waitReady(ctx, cfg.ReadyTimeout); err != nil {
		_ = e.Stop(context.Background())
		return nil, err
	}
	return e, nil
}

func (e *Engine) waitReady(ctx context.Context, timeout time.Duration) error {
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-e.done:
			e.done <- werr
			return fmt.Errorf("dockerd %s exited during start-up (%v); last log lines:\n%s", e.Name, werr, e.tailLog(15))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("dockerd %s not ready after %s: %v; last log lines:\n%s", e.Name, timeout, err, e.tailLog(15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns a new Docker API client for this engine, with API version negotiation (the
// engines speak API 1.41 to 1.51).
func (e *Engine) Client() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
}

// RuncRoot is the runc state directory of this engine's containers.
func (e *Engine) RuncRoot() string {
	return filepath.Join(e.ExecRoot, "runtime-runc", "godwit-"+e.Name)
}

// Stop removes all containers, stops the daemon (SIGTERM, then SIGKILL after 20 s), unmounts
// anything left under its directories and removes them. Safe to call twice.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cmd == nil {
		return nil
	}
	if cli, err := e.Client(); err == nil {
		removeAllContainers(ctx, cli)
		removeNetworks(ctx, cli)
		cli.Close()
	}
	_ = syscall.Kill(e.cmd.Process.Pid, syscall.SIGTERM)
	pid := e.cmd.Process.Pid
	var err error
	select {
	case err = <-e.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-e.done
	}
	e.cmd = nil
	// Whatever is left of the daemon's process group (its containerd) goes too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	e.cleanupDirs()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fmt.Errorf("dockerd %s: %w", e.Name, err)
	}
	return nil
}

func (e *Engine) cleanupDirs() {
	deleteBridge(e.ownBridge)
	e.ownBridge = ""
	for _, d := range []string{e.runDir, e.Dir} {
		if d == "" {
			continue
		}
		unmountUnder(d)
	}
	if e.runDir != "" {
		os.RemoveAll(e.runDir)
	}
	if e.ownDir && e.Dir != "" {
		os.RemoveAll(e.Dir)
	}
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

func (e *Engine) tailLog(n int) string {
	b, err := os.ReadFile(e.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func removeAllContainers(ctx context.Context, cli *client.Client) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return
	}
	for _, c := range list {
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// State is what another process needs to find and stop an engine this process started
// (`godwit dev up` starts engines, `godwit dev down` stops them).
type State struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	DataRoot string `json:"dataRoot"`
	ExecRoot string `json:"execRoot"`
	Dir      string `json:"dir"`
	RunDir   string `json:"runDir"`
	OwnDir   bool   `json:"ownDir"`
	PID      int    `json:"pid"`
	// Bridge is the bridge Start created (removed by StopState).
	Bridge string `json:"bridge,omitempty"`
}

// State describes the running engine.
func (e *Engine) State() State {
	st := State{Name: e.Name, Host: e.Host, DataRoot: e.DataRoot, ExecRoot: e.ExecRoot,
		Dir: e.Dir, RunDir: e.runDir, OwnDir: e.ownDir, Bridge: e.ownBridge}
	if e.cmd != nil && e.cmd.Process != nil {
		st.PID = e.cmd.Process.Pid
	}
	return st
}

// RuncRoot is the runc state directory of the engine's containers.
func (st State) RuncRoot() string {
	return filepath.Join(st.ExecRoot, "runtime-runc", "godwit-"+st.Name)
}

// StopState stops an engine started by another process, as Stop does.
func StopState(ctx context.Context, st State) error {
	e := &Engine{Name: st.Name, Host: st.Host, DataRoot: st.DataRoot, ExecRoot: st.ExecRoot,
		Dir: st.Dir, runDir: st.RunDir, ownDir: st.OwnDir, ownBridge: st.Bridge}
	if cli, err := e.Client(); err == nil {
		removeAllContainers(ctx, cli)
		removeNetworks(ctx, cli)
		cli.Close()
	}
	if st.PID > 0 && processAlive(st.PID) {
		_ = syscall.Kill(st.PID, syscall.SIGTERM)
		deadline := time.Now().Add(20 * time.Second)
		for processAlive(st.PID) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-st.PID, syscall.SIGKILL)
		_ = syscall.Kill(st.PID, syscall.SIGKILL)
	}
	e.cleanupDirs()
	return nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
