package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	criu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// CRIURuntimeName is CRIURuntime's Name() and the Spec.Runtime of the specs it produces.
const CRIURuntimeName = "criu"

// EnvLabels is the environment variable a plain process carries its labels in (it has no
// other place for them): comma-separated key=value pairs, e.g.
// GODWIT_LABELS=godwit.io/probe-port=7070. Inspect and Verify read it from
// /proc/<pid>/environ; CRIU restores the environment with the process's memory.
const EnvLabels = "GODWIT_LABELS"

// criuStagedPrefix starts the Prepared.ID of a workload staged by Prepare; any other ID is a
// root PID in decimal.
const criuStagedPrefix = "staged-"

// Files CRIURuntime keeps next to the CRIU images.
const (
	criuDumpLogName    = "criu-dump.log"
	criuRestoreLogName = "criu-restore.log"
	criuRestoredName   = "godwit-restored.json" // which process the restore created
	criuSpecName       = "godwit-spec.json"     // Prepare's spec, informational
)

// CRIURuntimeConfig configures a CRIURuntime.
type CRIURuntimeConfig struct {
	// CRIUPath is the criu binary; "" means DefaultCRIUPath() at each call.
	CRIUPath string
	// WorkDir holds one staging directory per migration ID (Prepare) and the runtime's
	// records of dumped processes. Required; created if missing.
	WorkDir string
	// ProbeHost is the address Verify connects to for a workload's LabelProbePort. Plain
	// processes share the node's network namespace, so this is the node's own address
	// (a 127.0.0.x per simulated node in tests). Default 127.0.0.1.
	ProbeHost string
	// ProbeTimeout bounds one Verify connection attempt. Default 5 s: a restored listening
	// socket accepts at once (the kernel queues the connection), so a slow answer means
	// a broken restore, not a busy workload.
	ProbeTimeout time.Duration
	// MemoryMargin is the headroom CheckTarget requires on top of the workload's memory:
	// CRIU's restorer and the page cache of the images need some. Default 64 MiB.
	MemoryMargin int64
	// LogLevel is CRIU's log verbosity (0-4) for the logs kept next to the images.
	// Default 4: the log is the only record of why a dump or restore failed, and at 4 it
	// stays small (pages are not logged one by one).
	LogLevel int
}

// DefaultCRIURuntimeConfig returns the defaults documented on CRIURuntimeConfig, with WorkDir
// still to be set.
func DefaultCRIURuntimeConfig() CRIURuntimeConfig {
	return CRIURuntimeConfig{
		ProbeHost:    "127.0.0.1",
		ProbeTimeout: 5 * time.Second,
		MemoryMargin: 64 << 20,
		LogLevel:     4,
	}
}

// Validate reports the first invalid field, by name.
func (c CRIURuntimeConfig) Validate() error {
	switch {
	case c.WorkDir == "":
		return errors.New("migrate: CRIURuntimeConfig.WorkDir is required")
	case !filepath.IsAbs(c.WorkDir):
		return fmt.Errorf("migrate: CRIURuntimeConfig.WorkDir %q must be an absolute path", c.WorkDir)
	case net.ParseIP(c.ProbeHost) == nil:
		return fmt.Errorf("migrate: CRIURuntimeConfig.ProbeHost %q must be an IP address", c.ProbeHost)
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("migrate: CRIURuntimeConfig.ProbeTimeout %v must be > 0", c.ProbeTimeout)
	case c.MemoryMargin < 0:
		return fmt.Errorf("migrate: CRIURuntimeConfig.MemoryMargin %d must be >= 0", c.MemoryMargin)
	case c.LogLevel < 0 || c.LogLevel > 4:
		return fmt.Errorf("migrate: CRIURuntimeConfig.LogLevel %d must be in [0, 4]", c.LogLevel)
	}
	return nil
}

// CRIURuntime migrates plain process trees with CRIU through go-criu, without containers.
// A workload's ID is its root PID in decimal; a workload staged by Prepare has the ID
// "staged-<migrationID>" until and after its restore (PID resolves the process behind it).
//
// Limits, all from CRIU without a PID namespace: a tree is restored with its original PIDs,
// so those PIDs must be free on the target; files the process has open must exist at the same
// paths with the same sizes; the process should lead its own session (setsid), or CRIU's
// shell-job mode ties it to a terminal that may not exist on the target.
//
// Restored trees are children of the calling process (CRIU's rst_sibling mode) and are
// reaped by it, so they neither become zombies nor depend on pid 1 reaping orphans. They
// keep running when the caller exits.
//
// Safe for concurrent use by different migrations.
type CRIURuntime struct {
	cfg   CRIURuntimeConfig
	locks sync.Map // staging or checkpoint dir -> *sync.Mutex: one restore at a time per dir
}

var _ Runtime = (*CRIURuntime)(nil)

// NewCRIURuntime validates cfg and creates its WorkDir.
func NewCRIURuntime(cfg CRIURuntimeConfig) (*CRIURuntime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.WorkDir, "dumped"), 0o700); err != nil {
		return nil, fmt.Errorf("migrate: creating CRIU work dir: %w", err)
	}
	return &CRIURuntime{cfg: cfg}, nil
}

// Name implements Runtime.
func (r *CRIURuntime) Name() string { return CRIURuntimeName }

// procIdentity names one process: a PID alone may be reused, a PID with its start time
// cannot be.
type procIdentity struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	// StagedID, in the record of a dump, is the staged ID the process was known by, so a
	// Resume can point that ID at the resumed process.
	StagedID string `json:"stagedID,omitempty"`
}

func procIdentityOf(pid int) (procIdentity, bool) {
	st, err := readProcStat(pid)
	if err != nil || st.state == 'Z' || st.state == 'X' {
		return procIdentity{}, false
	}
	return procIdentity{PID: pid, StartTime: st.startTime}, true
}

// alive reports whether the process named by id still runs.
func (id procIdentity) alive() bool {
	now, ok := procIdentityOf(id.PID)
	return ok && now.StartTime == id.StartTime
}

// PID returns the root PID behind id: the PID itself, or the process a staged workload was
// restored as. It does not check that the process runs.
func (r *CRIURuntime) PID(id string) (int, error) {
	if mid, ok := strings.CutPrefix(id, criuStagedPrefix); ok {
		ident, err := r.restoredIdentity(mid)
		if err != nil {
			return 0, err
		}
		return ident.PID, nil
	}
	pid, err := strconv.Atoi(id)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%w: %q is neither a PID nor a staged workload", ErrNotFound, id)
	}
	return pid, nil
}

func (r *CRIURuntime) stagingDir(migrationID string) string {
	return filepath.Join(r.cfg.WorkDir, "staged", migrationID)
}

func (r *CRIURuntime) restoredIdentity(migrationID string) (procIdentity, error) {
	if err := criuValidMigrationID(migrationID); err != nil {
		return procIdentity{}, err
	}
	return readProcIdentity(filepath.Join(r.stagingDir(migrationID), criuRestoredName))
}

func readProcIdentity(path string) (procIdentity, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return procIdentity{}, fmt.Errorf("%w: no restored process recorded in %s", ErrNotFound, filepath.Dir(path))
	}
	if err != nil {
		return procIdentity{}, err
	}
	var id procIdentity
	if err := json.Unmarshal(b, &id); err != nil {
		return procIdentity{}, fmt.Errorf("migrate: %s: %w", path, err)
	}
	return id, nil
}

func criuWriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func criuValidMigrationID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("migrate: invalid migration ID %q: must be a non-empty path component", id)
	}
	return nil
}

// criuProcessConfig is Spec.Config for the criu runtime: informational, a restore needs only
// the images.
type criuProcessConfig struct {
	Cmdline []string `json:"cmdline"`
	Cwd     string   `json:"cwd"`
	Exe     string   `json:"exe"`
	PIDs    []int    `json:"pids"`
}

// Inspect implements Runtime: MemoryBytes is the resident memory of the whole tree.
func (r *CRIURuntime) Inspect(ctx context.Context, id string) (*Spec, error) {
	pid, err := r.PID(id)
	if err != nil {
		return nil, err
	}
	if _, ok := procIdentityOf(pid); !ok {
		return nil, fmt.Errorf("%w: process %d (%s) is not running", ErrNotFound, pid, id)
	}
	pids := ContainerPIDs(pid)
	var rss int64
	for _, p := range pids {
		if st, err := readProcStat(p); err == nil {
			rss += st.rssPages * int64(os.Getpagesize())
		}
	}
	cfg := criuProcessConfig{PIDs: pids}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		cfg.Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	cfg.Cwd, _ = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	cfg.Exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	labels := processLabels(pid)
	workload := labels[LabelWorkload]
	if workload == "" {
		workload = "pid-" + strconv.Itoa(pid)
	}
	return &Spec{
		Workload:    workload,
		Runtime:     CRIURuntimeName,
		ID:          strconv.Itoa(pid),
		Name:        strings.TrimSpace(string(comm)),
		MemoryBytes: rss,
		Arch:        runtime.GOARCH,
		Labels:      labels,
		Config:      raw,
	}, nil
}

// processLabels parses EnvLabels from the process's environment; nil when absent.
func processLabels(pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		v, ok := strings.CutPrefix(kv, EnvLabels+"=")
		if !ok {
			continue
		}
		labels := map[string]string{}
		for _, pair := range strings.Split(v, ",") {
			if k, val, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && k != "" {
				labels[k] = val
			}
		}
		return labels
	}
	return nil
}

func (r *CRIURuntime) checkSpec(spec *Spec) error {
	if spec == nil {
		return fmt.Errorf("%w: no spec", ErrPreflight)
	}
	if spec.Runtime != CRIURuntimeName {
		return fmt.Errorf("%w: spec is for runtime %q, this is %q", ErrPreflight, spec.Runtime, CRIURuntimeName)
	}
	return nil
}

// CheckSource implements Runtime: CRIU is usable, the process runs, and none of the tree's
// sockets is one CRIU cannot dump. It only reads /proc and asks CRIU for its version.
func (r *CRIURuntime) CheckSource(ctx context.Context, spec *Spec) error {
	if err := r.checkSpec(spec); err != nil {
		return err
	}
	if _, err := CheckCRIU(ctx, r.cfg.CRIUPath); err != nil {
		return err
	}
	pid, err := r.PID(spec.ID)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPreflight, err)
	}
	if _, ok := procIdentityOf(pid); !ok {
		return fmt.Errorf("%w: process %d is not running", ErrPreflight, pid)
	}
	problems, err := UncheckpointableSockets(ContainerPIDs(pid))
	if err != nil {
		return fmt.Errorf("%w: inspecting sockets of process %d: %v", ErrPreflight, pid, err)
	}
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.String()
		}
		return fmt.Errorf("%w: process %d: %s", ErrNotCheckpointable, pid, strings.Join(msgs, "; "))
	}
	return nil
}

// CheckTarget implements Runtime: CRIU is usable, the architecture matches and
// MemAvailable covers the workload plus MemoryMargin.
func (r *CRIURuntime) CheckTarget(ctx context.Context, spec *Spec) error {
	if err := r.checkSpec(spec); err != nil {
		return err
	}
	if _, err := CheckCRIU(ctx, r.cfg.CRIUPath); err != nil {
		return err
	}
	if spec.Arch != runtime.GOARCH {
		return fmt.Errorf("%w: workload is %s, this node is %s", ErrPreflight, spec.Arch, runtime.GOARCH)
	}
	avail, err := memAvailable()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPreflight, err)
	}
	if need := spec.MemoryBytes + r.cfg.MemoryMargin; avail < need {
		return fmt.Errorf("%w: not enough memory: %d MiB available, workload needs %d MiB plus a %d MiB margin",
			ErrPreflight, avail>>20, spec.MemoryBytes>>20, r.cfg.MemoryMargin>>20)
	}
	return nil
}

// Prepare implements Runtime: it creates the staging directory for migrationID and returns
// its checkpoint directory. Repeating it returns the same Prepared.
func (r *CRIURuntime) Prepare(ctx context.Context, migrationID string, spec *Spec) (Prepared, error) {
	if err := criuValidMigrationID(migrationID); err != nil {
		return Prepared{}, err
	}
	if err := r.checkSpec(spec); err != nil {
		return Prepared{}, err
	}
	dir := r.stagingDir(migrationID)
	cp := filepath.Join(dir, "checkpoint")
	if err := os.MkdirAll(cp, 0o700); err != nil {
		return Prepared{}, fmt.Errorf("migrate: staging %s: %w", migrationID, err)
	}
	if err := criuWriteJSON(filepath.Join(dir, criuSpecName), spec); err != nil {
		return Prepared{}, fmt.Errorf("migrate: staging %s: %w", migrationID, err)
	}
	return Prepared{ID: criuStagedPrefix + migrationID, CheckpointDir: cp}, nil
}

// baseOpts are the CRIU options shared by dump and restore of a plain process tree.
func (r *CRIURuntime) baseOpts(imagesDir *os.File, logName string) *rpc.CriuOpts {
	// CRIU opens the fds through /proc/<our pid>/fd, so they need not be inherited.
	fd := int32(imagesDir.Fd())
	return &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(fd),
		WorkDirFd:   proto.Int32(fd), // the log lands next to the images
		LogFile:     proto.String(logName),
		LogLevel:    proto.Int32(int32(r.cfg.LogLevel)),
		// Connections open at the freeze come back established instead of reset.
		TcpEstablished: proto.Bool(true),
		// Allows a tree whose session or process group leader is outside it (a process
		// started from a shell); a setsid'ed tree does not need it and is unaffected.
		ShellJob:  proto.Bool(true),
		FileLocks: proto.Bool(true),
		// A plain process lives in its starter's cgroup; the target has its own layout.
		ManageCgroups: proto.Bool(false),
	}
}

func (r *CRIURuntime) newCriu() *criu.Criu {
	c := criu.MakeCriu()
	p := r.cfg.CRIUPath
	if p == "" {
		p = DefaultCRIUPath()
	}
	c.SetCriuPath(p)
	return c
}

// criuError wraps a failed CRIU call with the lines of its log that say why.
func criuError(op string, err error, logPath string) error {
	tail := criuLogExcerpt(logPath)
	if tail == "" {
		return fmt.Errorf("migrate: criu %s: %w (no log at %s)", op, err, logPath)
	}
	return fmt.Errorf("migrate: criu %s: %w; log %s ends:\n%s", op, err, logPath, tail)
}

// criuLogExcerpt returns the last error lines and the last lines of a CRIU log: at log
// level 4 the error is often followed by many lines of cleanup.
func criuLogExcerpt(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	const nErr, nTail = 5, 8
	var errLines []int
	for i, l := range lines {
		if strings.Contains(l, "Error") {
			errLines = append(errLines, i)
		}
	}
	if len(errLines) > nErr {
		errLines = errLines[len(errLines)-nErr:]
	}
	tailStart := max(0, len(lines)-nTail)
	var out []string
	for _, i := range errLines {
		if i < tailStart {
			out = append(out, "  "+lines[i])
		}
	}
	if len(out) > 0 {
		out = append(out, "  ...")
	}
	for _, l := range lines[tailStart:] {
		out = append(out, "  "+l)
	}
	return strings.Join(out, "\n")
}

// Checkpoint implements Runtime: it dumps the tree rooted at id into dir (CRIU images plus
// criu-dump.log) and CRIU kills the tree. When the dump fails the tree keeps running and
// the error quotes the CRIU log.
func (r *CRIURuntime) Checkpoint(ctx context.Context, id, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pid, err := r.PID(id)
	if err != nil {
		return err
	}
	ident, ok := procIdentityOf(pid)
	if rec, err := readProcIdentity(r.dumpedRecord(pid)); err == nil && !rec.alive() && fileExists(filepath.Join(dir, "inventory.img")) {
		return nil // dumped into dir already: a repeated call
	}
	if !ok {
		return fmt.Errorf("%w: process %d (%s) is not running", ErrNotFound, pid, id)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("migrate: checkpoint dir: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("migrate: checkpoint dir: %w", err)
	}
	defer d.Close()
	opts := r.baseOpts(d, criuDumpLogName)
	opts.Pid = proto.Int32(int32(pid))
	// go-criu cannot cancel a dump: a half-done dump is undone by CRIU itself, which
	// thaws the tree, so ctx is only honoured before the freeze.
	if err := r.newCriu().Dump(opts, nil); err != nil {
		return criuError("dump of process "+strconv.Itoa(pid), err, filepath.Join(dir, criuDumpLogName))
	}
	// Remember what was dumped: Remove of this ID later must not kill a restored copy that
	// got the same PID on this node.
	ident.StagedID = r.stagedIDOf(ident)
	if err := criuWriteJSON(r.dumpedRecord(pid), ident); err != nil {
		return fmt.Errorf("migrate: recording dump of %d: %w", pid, err)
	}
	waitProcessGone(ident, 5*time.Second)
	return nil
}

// stagedIDOf returns the staged ID whose restore created the process ident, or "".
func (r *CRIURuntime) stagedIDOf(ident procIdentity) string {
	recs, _ := filepath.Glob(filepath.Join(r.cfg.WorkDir, "staged", "*", criuRestoredName))
	for _, rec := range recs {
		if got, err := readProcIdentity(rec); err == nil && got.PID == ident.PID && got.StartTime == ident.StartTime {
			return criuStagedPrefix + filepath.Base(filepath.Dir(rec))
		}
	}
	return ""
}

func (r *CRIURuntime) dumpedRecord(pid int) string {
	return filepath.Join(r.cfg.WorkDir, "dumped", strconv.Itoa(pid)+".json")
}

// criuRestoreNotify learns the restored root PID from CRIU's post-restore notification
// (go-criu's Restore does not return it).
type criuRestoreNotify struct {
	criu.NoNotify
	pid int
}

func (n *criuRestoreNotify) PostRestore(pid int32) error {
	n.pid = int(pid)
	return nil
}

func (r *CRIURuntime) lock(key string) func() {
	m, _ := r.locks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// restoreFrom restores the images in dir, records the restored process in the file rec and
// returns it. When rec already names a running process, it returns that one instead.
func (r *CRIURuntime) restoreFrom(ctx context.Context, dir, rec string) (procIdentity, error) {
	defer r.lock(rec)()
	if prev, err := readProcIdentity(rec); err == nil && prev.alive() {
		return prev, nil
	}
	if err := ctx.Err(); err != nil {
		return procIdentity{}, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return procIdentity{}, fmt.Errorf("migrate: checkpoint dir: %w", err)
	}
	defer d.Close()
	opts := r.baseOpts(d, criuRestoreLogName)
	// The tree becomes our child instead of criu's: criu exits after the restore, and an
	// orphan would be left to pid 1, which in a minimal init reaps late or never (a killed
	// orphan sat as a zombie on our test VM), keeping its PID taken for the next restore.
	opts.RstSibling = proto.Bool(true)
	nfy := &criuRestoreNotify{}
	if err := r.newCriu().Restore(opts, nfy); err != nil {
		return procIdentity{}, criuError("restore from "+dir, err, filepath.Join(dir, criuRestoreLogName))
	}
	if nfy.pid <= 0 {
		return procIdentity{}, fmt.Errorf("migrate: criu restore from %s did not report the restored PID", dir)
	}
	go reapRestored(nfy.pid)
	ident, ok := procIdentityOf(nfy.pid)
	if !ok {
		return procIdentity{}, fmt.Errorf("migrate: restored process %d exited at once; see %s", nfy.pid, filepath.Join(dir, criuRestoreLogName))
	}
	if err := criuWriteJSON(rec, ident); err != nil {
		return ident, fmt.Errorf("migrate: recording restored process %d: %w", ident.PID, err)
	}
	return ident, nil
}

// reapRestored waits for a restored tree's root, our child, so it does not stay a zombie.
func reapRestored(pid int) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// Restore implements Runtime: it restores the images in p.CheckpointDir. The restored root
// PID is recorded in the staging directory, outside the checkpoint directory (which may be
// dropped once the migration is done), so p.ID keeps naming the process for Inspect,
// Verify, Checkpoint and Remove. Repeating it while the restored process runs does nothing.
func (r *CRIURuntime) Restore(ctx context.Context, p Prepared) error {
	mid, ok := strings.CutPrefix(p.ID, criuStagedPrefix)
	if !ok {
		return fmt.Errorf("migrate: %q is not a workload prepared by the criu runtime", p.ID)
	}
	if err := criuValidMigrationID(mid); err != nil {
		return err
	}
	_, err := r.restoreFrom(ctx, p.CheckpointDir, filepath.Join(r.stagingDir(mid), criuRestoredName))
	return err
}

// Resume implements Runtime: it restores the source's own checkpoint in dir. The tree
// comes back with its PIDs, so spec.ID names it again.
func (r *CRIURuntime) Resume(ctx context.Context, spec *Spec, dir string) error {
	pid, err := strconv.Atoi(spec.ID)
	if err != nil {
		return fmt.Errorf("migrate: resume: spec ID %q is not a PID", spec.ID)
	}
	dumped, err := readProcIdentity(r.dumpedRecord(pid))
	if errors.Is(err, ErrNotFound) {
		if _, ok := procIdentityOf(pid); ok {
			// No dump of it completed: CRIU thawed the tree when the dump failed, so it
			// never stopped and there is nothing to restore.
			return nil
		}
	}
	ident, err := r.restoreFrom(ctx, dir, filepath.Join(dir, criuRestoredName))
	if err != nil {
		return err
	}
	if mid, ok := strings.CutPrefix(dumped.StagedID, criuStagedPrefix); ok && pid == ident.PID {
		// The workload was known by a staged ID (it had migrated here): that ID names the
		// resumed process now.
		if err := criuValidMigrationID(mid); err == nil {
			if err := criuWriteJSON(filepath.Join(r.stagingDir(mid), criuRestoredName), procIdentity{PID: ident.PID, StartTime: ident.StartTime}); err != nil {
				return err
			}
		}
	}
	if pid == ident.PID {
		// spec.ID is again the live workload, not a dumped one.
		if err := os.Remove(r.dumpedRecord(pid)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Verify implements Runtime: the process runs and, if its labels carry LabelProbePort,
// accepts a TCP connection on ProbeHost at that port.
func (r *CRIURuntime) Verify(ctx context.Context, id string) error {
	pid, ident, err := r.liveProcess(id)
	if err != nil {
		return err
	}
	if !ident.alive() {
		return fmt.Errorf("migrate: process %d (%s) is not running", pid, id)
	}
	labels := processLabels(pid)
	if mid, ok := strings.CutPrefix(id, criuStagedPrefix); ok {
		// Labels given to Prepare apply too; the process's own win.
		var spec Spec
		if b, err := os.ReadFile(filepath.Join(r.stagingDir(mid), criuSpecName)); err == nil && json.Unmarshal(b, &spec) == nil {
			for k, v := range spec.Labels {
				if _, ok := labels[k]; !ok {
					if labels == nil {
						labels = map[string]string{}
					}
					labels[k] = v
				}
			}
		}
	}
	port, ok := labels[LabelProbePort]
	if !ok {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("migrate: process %d: label %s=%q is not a port", pid, LabelProbePort, port)
	}
	d := net.Dialer{Timeout: r.cfg.ProbeTimeout}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(r.cfg.ProbeHost, port))
	if err != nil {
		return fmt.Errorf("migrate: process %d runs but does not answer on %s: %w", pid, net.JoinHostPort(r.cfg.ProbeHost, port), err)
	}
	return c.Close()
}

// liveProcess resolves id to the identity of the process it names now.
func (r *CRIURuntime) liveProcess(id string) (int, procIdentity, error) {
	if mid, ok := strings.CutPrefix(id, criuStagedPrefix); ok {
		ident, err := r.restoredIdentity(mid)
		return ident.PID, ident, err
	}
	pid, err := r.PID(id)
	if err != nil {
		return 0, procIdentity{}, err
	}
	if rec, err := readProcIdentity(r.dumpedRecord(pid)); err == nil {
		// id was dumped by this runtime: the dumped process is gone for good, and whatever
		// runs under its PID now (a restored copy on this node) is someone else's.
		return pid, rec, nil
	}
	ident, ok := procIdentityOf(pid)
	if !ok {
		return pid, procIdentity{PID: pid}, nil
	}
	return pid, ident, nil
}

// State implements Runtime: a process tree exists only while it runs.
func (r *CRIURuntime) State(ctx context.Context, id string) (WorkloadState, error) {
	_, ident, err := r.liveProcess(id)
	if errors.Is(err, ErrNotFound) {
		return WorkloadState{}, nil
	}
	if err != nil {
		return WorkloadState{}, err
	}
	alive := ident.alive()
	return WorkloadState{Exists: alive, Running: alive}, nil
}

// Remove implements Runtime: it kills the tree named by id and, for a staged workload,
// deletes its staging directory. A missing workload is not an error.
func (r *CRIURuntime) Remove(ctx context.Context, id string) error {
	pid, ident, err := r.liveProcess(id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err == nil && ident.alive() {
		killProcessTree(ident)
		if !waitProcessGone(ident, 10*time.Second) {
			return fmt.Errorf("migrate: process %d (%s) survived SIGKILL", pid, id)
		}
	}
	if mid, ok := strings.CutPrefix(id, criuStagedPrefix); ok {
		if err := criuValidMigrationID(mid); err != nil {
			return err
		}
		return os.RemoveAll(r.stagingDir(mid))
	}
	// The record of a dumped PID stays: it keeps telling Verify and Remove that this ID is
	// gone from this node, whatever later runs under the same PID. Resume clears it.
	return nil
}

// killProcessTree SIGKILLs the root first, so it cannot fork replacements, then its descendants.
func killProcessTree(root procIdentity) {
	pids := ContainerPIDs(root.PID)
	for _, p := range pids {
		if p == root.PID && !root.alive() {
			return // reused PID: not ours
		}
		_ = unix.Kill(p, unix.SIGKILL)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitProcessGone waits until the process has exited (a zombie counts as exited) or timeout.
func waitProcessGone(id procIdentity, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for id.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
