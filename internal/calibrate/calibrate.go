// Package calibrate runs godwit's calibration benchmark, the experiment of arXiv 2307.12113
// (issue 2): a memory-filling workload at several sizes is live-migrated between two real
// Docker engines on this machine by godwit's migration service (mutual TLS between the
// nodes, as on a real network), and, for comparison, checkpointed and restored by plain
// `docker checkpoint create` + `docker start --checkpoint`. It writes one
// CSV row per run, a fitted line per phase (ordinary least squares with R^2, and the robust
// fit the cost model uses), and a policy.CostModel fitted from godwit's own runs, which can
// seed the cluster's model.
//
// It needs root, dockerd and a working CRIU, and (through internal/workload) the Go
// toolchain and the godwit source tree to build the workload image.
package calibrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// DefaultSizes are the workload sizes of the study, MiB.
var DefaultSizes = []int{64, 256, 512, 1024, 2048}

// DefaultRepeats is how often each size runs per method.
const DefaultRepeats = 3

// Methods measured.
const (
	MethodGodwit = "godwit"
	MethodDocker = "docker"
	// MethodCRIU is CRIU alone on a plain process (dump and restore on one host), and
	// MethodFreshMemory faulting in new memory of the workload's size: the baselines that
	// say what CRIU and this machine cost by themselves (baselines.go).
	MethodCRIU        = "criu"
	MethodFreshMemory = "fresh-memory"
)

// Methods lists every method in print order.
var Methods = []string{MethodGodwit, MethodDocker, MethodCRIU, MethodFreshMemory}

// Phase names of the fitted lines (the y of each line; x is the workload size in GiB).
const (
	PhaseCheckpoint    = "checkpoint_s"
	PhaseCheckpointGiB = "checkpoint_gib"
	PhaseTransfer      = "transfer_s"
	PhaseRestore       = "restore_s"
	PhaseDowntime      = "downtime_s"
)

// Phases lists the phases in print order.
var Phases = []string{PhaseCheckpoint, PhaseCheckpointGiB, PhaseTransfer, PhaseRestore, PhaseDowntime}

// ErrNotRoot is returned when the benchmark is not run as root.
var ErrNotRoot = errors.New("calibrate: needs root (it starts dockerd engines and checkpoints containers with CRIU); run it with sudo or as root")

// Config is one calibration run.
type Config struct {
	// Sizes are the workload sizes, MiB. Default DefaultSizes.
	Sizes []int
	// Repeats per size and method. Default DefaultRepeats.
	Repeats int
	// Docker also measures plain `docker checkpoint create` + `docker start --checkpoint` on
	// the same engine. DefaultConfig sets it; the zero Config measures godwit only.
	Docker bool
	// Baselines also measures CRIU alone on a plain process and the cost of faulting in
	// fresh memory (baselines.go). DefaultConfig sets it.
	Baselines bool
	// Out, when set, is the directory calibration.csv, calibration.json and costmodel.json
	// are written to (created if missing).
	Out string
	// Log receives progress lines. Default io.Discard.
	Log io.Writer
	// ProbeTimeout bounds each wait for a workload to answer. Default 3 minutes.
	ProbeTimeout time.Duration
}

// DefaultConfig is the study's experiment: all default sizes, three repeats, plain Docker
// measured too.
func DefaultConfig() Config {
	return Config{Sizes: slices.Clone(DefaultSizes), Repeats: DefaultRepeats, Docker: true, Baselines: true}
}

// Sample is one measured run. Times are seconds. For plain Docker, transfer is 0 (it has no
// transfer: same engine) and downtime runs from the checkpoint request until
// `docker start --checkpoint` returned.
type Sample struct {
	Method          string  `json:"method"`
	SizeMiB         int     `json:"sizeMiB"`
	Repeat          int     `json:"repeat"`
	CheckpointS     float64 `json:"checkpointS"`
	CheckpointBytes int64   `json:"checkpointBytes"`
	TransferS       float64 `json:"transferS"`
	RestoreS        float64 `json:"restoreS"`
	DowntimeS       float64 `json:"downtimeS"`
	// CPUPeak is the host's peak busy fraction of all cores (0..1) during checkpoint and
	// restore; MemPeakBytes the host's peak memory in use (both engines share the host).
	CPUPeak      float64 `json:"cpuPeak"`
	MemPeakBytes int64   `json:"memPeakBytes"`
	// MemoryBytes is the container's memory in use as godwit's runtime measured it before
	// the migration (what the cost model is fitted against); 0 for plain Docker.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// Err is why the run failed; failed runs are left out of all fits.
	Err string `json:"error,omitempty"`
}

// OK reports whether the run succeeded.
func (r Sample) OK() bool { return r.Err == "" }

// PhaseFit is one phase's line against the workload size in GiB.
type PhaseFit struct {
	OLS OLSLine `json:"ols"`
	// Robust is policy.FitLine's Huber fit, the one the cost model uses.
	Robust policy.Linear `json:"robust"`
}

// SizeSummary is the mean of each method's successful runs at one size.
type SizeSummary struct {
	SizeMiB           int     `json:"sizeMiB"`
	GodwitRuns        int     `json:"godwitRuns"`
	GodwitCheckpointS float64 `json:"godwitCheckpointS"`
	GodwitTransferS   float64 `json:"godwitTransferS"`
	GodwitRestoreS    float64 `json:"godwitRestoreS"`
	GodwitDowntimeS   float64 `json:"godwitDowntimeS"`
	DockerRuns        int     `json:"dockerRuns"`
	DockerCheckpointS float64 `json:"dockerCheckpointS"`
	DockerRestoreS    float64 `json:"dockerRestoreS"`
	// DockerTotalS is plain Docker's checkpoint + restore time (its downtime).
	DockerTotalS float64 `json:"dockerTotalS"`
	// Ratio is DockerTotalS / GodwitDowntimeS: how many times longer plain Docker keeps the
	// workload down (0 when either was not measured).
	Ratio float64 `json:"ratio"`
	// CRIU alone on a plain process (dump, restore, both) and faulting in fresh memory of
	// the same size: the baselines.
	CRIURuns        int     `json:"criuRuns"`
	CRIUDumpS       float64 `json:"criuDumpS"`
	CRIURestoreS    float64 `json:"criuRestoreS"`
	CRIUTotalS      float64 `json:"criuTotalS"`
	FreshMemoryRuns int     `json:"freshMemoryRuns"`
	FreshMemoryS    float64 `json:"freshMemoryS"`
}

// Result is a whole calibration.
type Result struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Sizes    []int         `json:"sizesMiB"`
	Repeats  int           `json:"repeats"`
	Docker   bool          `json:"docker"`
	Runs     []Sample      `json:"runs"`
	Failures int           `json:"failures"`
	// Fits maps method, then phase, to its lines (x = workload size, GiB).
	Fits    map[string]map[string]PhaseFit `json:"fits"`
	Summary []SizeSummary                  `json:"summary"`
	// Model is policy.Fit over godwit's runs from policy.DefaultCostModel() (x = memory in
	// use, GiB; transfer settings kept from the default: loopback says nothing about links).
	Model policy.CostModel `json:"costModel"`
}

// node is one simulated node of the benchmark: an engine and godwit's migration service for
// it, served over TLS 1.3 with a certificate of the benchmark's own CA.
type node struct {
	name    string
	engine  *dockerd.Engine
	cli     *client.Client
	service *migrate.Node
	addr    string
}

// startNode starts an engine and a migration node named name on ip, with a certificate of
// the CA in tlsDir (pki.Quick makes it on first use).
func startNode(ctx context.Context, name, ip, tlsDir string) (*node, error) {
	certs, err := pki.Quick(tlsDir, name, pki.RoleClient, net.ParseIP(ip))
	if err != nil {
		return nil, err
	}
	id, err := pki.Load(certs)
	if err != nil {
		return nil, err
	}
	e, err := dockerd.Start(ctx, dockerd.Config{Name: name})
	if err != nil {
		return nil, err
	}
	n := &node{name: name, engine: e}
	cli, err := e.Client()
	if err != nil {
		n.close()
		return nil, err
	}
	n.cli = cli
	state := filepath.Join(e.Dir, "godwit")
	rt, err := migrate.NewDockerRuntime(migrate.DockerConfig{
		Client: cli, DataRoot: e.DataRoot, RuncRoot: e.RuncRoot(), StateDir: state,
		VerifyTimeout: time.Minute,
	})
	if err != nil {
		n.close()
		return nil, err
	}
	if n.service, err = migrate.NewNode(migrate.NodeConfig{Name: name, Runtime: rt, StateDir: state, TLS: id}); err != nil {
		n.close()
		return nil, err
	}
	if n.addr, err = n.service.Listen(ip + ":0"); err != nil {
		n.close()
		return nil, err
	}
	n.service.Start(ctx)
	return n, nil
}

// close stops everything the node started; safe on a partly started node.
func (n *node) close() {
	if n == nil {
		return
	}
	if n.service != nil {
		n.service.Close()
	}
	if n.cli != nil {
		n.cli.Close()
	}
	if n.engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_ = n.engine.Stop(ctx)
		cancel()
	}
}

type bench struct {
	cfg    Config
	n1, n2 *node
	// operator orders the migrations, as `godwit migrate` does.
	operator *migrate.Client
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Run runs the calibration. Failed runs are recorded and the benchmark goes on; the result
// and files are written either way, and the error then says how many runs failed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.Sizes) == 0 {
		cfg.Sizes = slices.Clone(DefaultSizes)
	}
	for _, s := range cfg.Sizes {
		if s <= 0 {
			return nil, fmt.Errorf("calibrate: size %d MiB is not positive", s)
		}
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = DefaultRepeats
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 3 * time.Minute
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if cfg.Out != "" {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
	}
	res := &Result{Started: time.Now(), Sizes: cfg.Sizes, Repeats: cfg.Repeats, Docker: cfg.Docker}
	b := &bench{cfg: cfg}
	// A throwaway CA: the nodes' certificates and the operator's.
	tlsDir, err := os.MkdirTemp("", "godwit-calibrate-tls-")
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	defer os.RemoveAll(tlsDir)
	opFiles, err := pki.Quick(tlsDir, "calibrate", pki.RoleOperator)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	op, err := pki.Load(opFiles)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	b.operator = &migrate.Client{TLS: op}
	b.logf("starting engines cal1 and cal2")
	if b.n1, err = startNode(ctx, "cal1", "127.0.0.2", tlsDir); err != nil {
		return nil, fmt.Errorf("calibrate: node cal1: %w", err)
	}
	defer b.n1.close()
	if b.n2, err = startNode(ctx, "cal2", "127.0.0.3", tlsDir); err != nil {
		return nil, fmt.Errorf("calibrate: node cal2: %w", err)
	}
	defer b.n2.close()
	defer b.logf("stopping engines")
	b.logf("building the workload image on both engines")
	for _, n := range []*node{b.n1, b.n2} {
		if err := workload.BuildImage(ctx, n.cli); err != nil {
			return nil, fmt.Errorf("calibrate: %w (building the workload needs the Go toolchain and the godwit source tree: run from the repository)", err)
		}
	}

	methods := []string{MethodGodwit}
	if cfg.Docker {
		methods = append(methods, MethodDocker)
	}
	if cfg.Baselines {
		methods = append(methods, MethodCRIU, MethodFreshMemory)
	}
	total := len(cfg.Sizes) * cfg.Repeats * len(methods)
	done := 0
	for _, mib := range cfg.Sizes {
		for rep := 1; rep <= cfg.Repeats; rep++ {
			for _, m := range methods {
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("calibrate: interrupted after %d of %d runs: %w", done, total, err)
				}
				var r Sample
				var err error
				switch m {
				case MethodGodwit:
					r, err = b.godwitRun(ctx, mib, rep)
				case MethodDocker:
					r, err = b.dockerRun(ctx, mib, rep)
				case MethodCRIU:
					r, err = b.criuRun(ctx, mib, rep)
				case MethodFreshMemory:
					r, err = freshMemoryRun(mib, rep)
				}
				done++
				if err != nil {
					r.Err = err.Error()
					res.Failures++
					b.logf("[%d/%d] %s %d MiB #%d FAILED: %v", done, total, m, mib, rep, err)
				} else {
					b.logf("[%d/%d] %s %d MiB #%d: checkpoint %.2fs (%d MiB) transfer %.2fs restore %.2fs downtime %.2fs",
						done, total, m, mib, rep, r.CheckpointS, r.CheckpointBytes>>20, r.TransferS, r.RestoreS, r.DowntimeS)
				}
				res.Runs = append(res.Runs, r)
			}
		}
	}
	res.Duration = time.Since(res.Started)
	res.analyse()
	if cfg.Out != "" {
		if err := res.WriteFiles(cfg.Out); err != nil {
			return res, err
		}
		b.logf("wrote %s", cfg.Out)
	}
	if res.Failures > 0 {
		return res, fmt.Errorf("calibrate: %d of %d runs failed (see the error column of calibration.csv)", res.Failures, len(res.Runs))
	}
	return res, nil
}

// godwitRun live-migrates a fresh workload of mib MiB from cal1 to cal2 and checks that its
// state survived.
func (b *bench) godwitRun(ctx context.Context, mib, rep int) (Sample, error) {
	r := Sample{Method: MethodGodwit, SizeMiB: mib, Repeat: rep}
	name := fmt.Sprintf("cal-godwit-%d-%d", mib, rep)
	defer removeQuiet(b.n1.cli, name)
	defer removeQuiet(b.n2.cli, name)
	if _, err := runWorkload(ctx, b.n1.cli, name, mib, container.RestartPolicy{Name: "unless-stopped"}); err != nil {
		return r, err
	}
	before, err := workload.WaitState(ctx, b.n1.cli, name, b.cfg.ProbeTimeout)
	if err != nil {
		return r, err
	}
	rep2, err := b.operator.Migrate(ctx, b.n1.addr, b.n1.name, migrate.Order{
		Workload: name, TargetNode: b.n2.name, TargetAddr: b.n2.addr,
	}, 0)
	if err != nil {
		return r, fmt.Errorf("migrate: %w", err)
	}
	after, err := workload.WaitState(ctx, b.n2.cli, name, b.cfg.ProbeTimeout)
	if err != nil {
		return r, fmt.Errorf("after migration: %w", err)
	}
	if err := sameState(before, after); err != nil {
		return r, err
	}
	r.CheckpointS = rep2.Phase(migrate.PhaseCheckpoint).Seconds()
	r.CheckpointBytes = rep2.CheckpointBytes
	r.TransferS = rep2.Phase(migrate.PhaseTransfer).Seconds()
	r.RestoreS = rep2.Phase(migrate.PhaseRestore).Seconds()
	r.DowntimeS = rep2.Downtime.Seconds()
	r.CPUPeak = max(rep2.CheckpointUsage.CPUPeak, rep2.RestoreUsage.CPUPeak)
	r.MemPeakBytes = max(rep2.CheckpointUsage.MemPeak, rep2.RestoreUsage.MemPeak)
	r.MemoryBytes = rep2.MemoryBytes
	return r, nil
}

// dockerRun checkpoints a fresh workload of mib MiB with plain Docker and restores it on the
// same engine, checking that its state survived.
func (b *bench) dockerRun(ctx context.Context, mib, rep int) (Sample, error) {
	r := Sample{Method: MethodDocker, SizeMiB: mib, Repeat: rep}
	name := fmt.Sprintf("cal-docker-%d-%d", mib, rep)
	cli := b.n1.cli
	defer removeQuiet(cli, name)
	id, err := runWorkload(ctx, cli, name, mib, container.RestartPolicy{})
	if err != nil {
		return r, err
	}
	before, err := workload.WaitState(ctx, cli, name, b.cfg.ProbeTimeout)
	if err != nil {
		return r, err
	}
	s := migrate.StartHostSampler(50 * time.Millisecond)
	frozen := time.Now()
	err = cli.CheckpointCreate(ctx, id, checkpoint.CreateOptions{CheckpointID: "c1", Exit: true})
	r.CheckpointS = time.Since(frozen).Seconds()
	if err != nil {
		s.Stop()
		return r, fmt.Errorf("docker checkpoint create: %w", err)
	}
	// Exit: true stops the container; Docker must see it stopped before it can start it.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	waitC, errC := cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err = <-errC:
	}
	cancel()
	if err != nil {
		s.Stop()
		return r, fmt.Errorf("waiting for the checkpointed container to stop: %w", err)
	}
	cpDir := filepath.Join(b.n1.engine.DataRoot, "containers", id, "checkpoints", "c1")
	r.CheckpointBytes = migrate.DirSize(cpDir)
	// Docker 20.10 bug worked around: checkpoint create leaves the checkpoint's tar in
	// containerd's content store until containerd's garbage collector runs, and the copy it
	// unpacks keeps the files' times, so start --checkpoint re-uploads a byte-identical tar
	// and fails with "commit failed: content sha256:...: already exists". New file times
	// (contents untouched) give the upload a new digest. Takes microseconds; not timed.
	if err := touchTree(cpDir, time.Now()); err != nil {
		s.Stop()
		return r, err
	}
	t := time.Now()
	err = cli.ContainerStart(ctx, id, container.StartOptions{CheckpointID: "c1"})
	r.RestoreS = time.Since(t).Seconds()
	r.DowntimeS = time.Since(frozen).Seconds()
	p := s.Stop()
	r.CPUPeak, r.MemPeakBytes = p.CPUPeak, p.MemPeak
	if err != nil {
		return r, fmt.Errorf("docker start --checkpoint: %w", err)
	}
	// A container with networking disabled (what moves on Docker 28) comes back from
	// Docker's own restore with its loopback down (runc restores such a namespace empty);
	// godwit's restore brings it up, and so must this baseline before probing. Not timed.
	if info, err := cli.ContainerInspect(ctx, id); err == nil && info.Config.NetworkDisabled && info.State != nil {
		if err := migrate.LoopbackUp(info.State.Pid); err != nil {
			return r, fmt.Errorf("after restore: %w", err)
		}
	}
	after, err := workload.WaitState(ctx, cli, name, b.cfg.ProbeTimeout)
	if err != nil {
		return r, fmt.Errorf("after restore: %w", err)
	}
	if err := sameState(before, after); err != nil {
		return r, err
	}
	return r, nil
}

// runWorkload creates and starts memhog of mib MiB, with no network and the probe-port label
// godwit's verify step uses.
func runWorkload(ctx context.Context, cli *client.Client, name string, mib int, restart container.RestartPolicy) (string, error) {
	removeQuiet(cli, name) // a leftover of an interrupted run
	c, err := cli.ContainerCreate(ctx, &container.Config{
		Image:           workload.Image,
		Cmd:             workload.Cmd(mib),
		NetworkDisabled: workload.NetworkDisabled(ctx, cli), // what can move on this engine
		Labels: map[string]string{
			migrate.LabelManaged:   "true",
			migrate.LabelProbePort: strconv.Itoa(workload.Port),
		},
	}, &container.HostConfig{NetworkMode: "none", RestartPolicy: restart}, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("start %s: %w", name, err)
	}
	return c.ID, nil
}

// sameState checks that after is before's process continued: same seed and memory
// checksum, ticks not reset.
func sameState(before, after workload.State) error {
	if after.Seed != before.Seed || after.CRC != before.CRC || after.MiB != before.MiB {
		return fmt.Errorf("state lost: before %v, after %v", before, after)
	}
	if after.Ticks < before.Ticks {
		return fmt.Errorf("tick count went back: before %v, after %v", before, after)
	}
	return nil
}

// removeQuiet force-removes a container, ignoring errors (not found is the usual one;
// Engine.Stop removes whatever is left at the end).
func removeQuiet(cli *client.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
}

// touchTree sets the modification time of every file and directory under dir to t.
func touchTree(dir string, t time.Time) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
}
