package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
)

// The Docker runtime's side of post-copy (lazy pages). What CRIU 4.2 and runc 1.1 do here,
// as measured on our machines:
//   - `runc checkpoint --lazy-pages --page-server A:P` dumps everything but anonymous private
//     memory, then serves that memory from a page server on A:P until a lazy-pages daemon has
//     taken every page. runc has no flag to keep the dumped tasks: with --leave-running runc
//     keeps the container, and CRIU's `leave-stopped`, from a config file that runc names
//     through the container's org.criu.config annotation, leaves the tasks stopped with their
//     memory instead of resuming them. Resuming them is SIGCONT once CRIU's network-lock
//     iptables chain is gone from their namespace.
//   - `runc restore --lazy-pages` restores everything else and hands each task's
//     userfaultfd to `criu lazy-pages` through lazy-pages.socket in the restore's work
//     directory; the daemon fetches pages on fault and in the background.
//   - A lazy-pages daemon that dies leaves the restored copy running with the missing pages
//     read as zeros, and the dump may still exit 0. So completion is counted: the daemon's
//     per-task "UFFD transferred pages: (copied/total)" and the lazy pages the dump
//     announced, never an exit status.

// PostCopier is implemented by runtimes that can migrate with post-copy. All methods are
// safe for concurrent use by different migrations.
type PostCopier interface {
	// CheckPostCopy says why this host cannot take part in a post-copy migration (the
	// error wraps ErrPreflight), or nil.
	CheckPostCopy(ctx context.Context) error
	// CheckpointLazy freezes workload id, dumps all but its lazily-movable memory into dir
	// and returns once a page server on pageServer (host:port, loopback) serves the rest.
	// The workload stays stopped with its memory whatever happens to the transfer.
	CheckpointLazy(ctx context.Context, id, dir, pageServer string) (*LazyDump, error)
	// RestoreLazy starts the lazy-pages daemon (fetching from pageServer) and the prepared
	// workload from the checkpoint in p.CheckpointDir; it returns once the workload runs.
	RestoreLazy(ctx context.Context, p Prepared, pageServer string) (*LazyRestore, error)
	// ResumeStopped resumes the stopped source copy of a post-copy migration: it ends the
	// page server (a client connects to pageServer and hangs up) if it still runs, lifts
	// CRIU's network lock and continues the tasks. Idempotent.
	ResumeStopped(ctx context.Context, spec *Spec, dir, pageServer string) error
}

var _ PostCopier = (*DockerRuntime)(nil)

// pipeMaxSizeFile and minPipeMaxSize: CRIU's page server grows its pipes to 4 MiB; without
// CAP_SYS_RESOURCE the kernel allows that only up to fs.pipe-max-size.
var pipeMaxSizeFile = "/proc/sys/fs/pipe-max-size"

const minPipeMaxSize = 4 << 20

// checkPipeMaxSize reports ErrPreflight when fs.pipe-max-size is below what CRIU's page
// server needs.
func checkPipeMaxSize() error {
	b, err := os.ReadFile(pipeMaxSizeFile)
	if err != nil {
		return fmt.Errorf("%w: post-copy: reading %s: %v", ErrPreflight, pipeMaxSizeFile, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: post-copy: %s holds %q, not a number", ErrPreflight, pipeMaxSizeFile, strings.TrimSpace(string(b)))
	}
	if v < minPipeMaxSize {
		return fmt.Errorf("%w: post-copy needs fs.pipe-max-size >= %d (CRIU's page server grows its pipes to 4 MiB), this host has %d; scripts/setup-postcopy.sh raises it", ErrPreflight, minPipeMaxSize, v)
	}
	return nil
}

var uffdCheck struct {
	sync.Mutex
	done map[string]error
}

// checkUffd runs `criu check --feature uffd-noncoop` once per CRIU binary.
func checkUffd(ctx context.Context, criu string) error {
	uffdCheck.Lock()
	defer uffdCheck.Unlock()
	if err, ok := uffdCheck.done[criu]; ok {
		return err
	}
	out, err := exec.CommandContext(ctx, criu, "check", "--feature", "uffd-noncoop").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%w: post-copy needs userfaultfd (non-cooperative), and `criu check --feature uffd-noncoop` says: %s", ErrPreflight, strings.TrimSpace(string(out)))
	}
	if uffdCheck.done == nil {
		uffdCheck.done = map[string]error{}
	}
	uffdCheck.done[criu] = err
	return err
}

// CheckPostCopy implements PostCopier.
func (d *DockerRuntime) CheckPostCopy(ctx context.Context) error {
	if err := checkPipeMaxSize(); err != nil {
		return err
	}
	return checkUffd(ctx, d.cfg.CRIUPath)
}

// LazyDump is a post-copy checkpoint whose page server runs.
type LazyDump struct {
	// LazyPages is the number of pages the dump left to the page server.
	LazyPages int64
	// Started is when runc was started: the freeze cannot begin earlier (what comes
	// before, such as switching off the restart policy, leaves the workload running).
	Started time.Time
	// Steps splits the time from runc's start until the page server listened, from
	// CRIU's log: criu-start (CRIU started, probed the kernel, until it froze the
	// container's cgroup), criu-frozen (from that freeze until the page server
	// listened), and runc (the rest: runc and the RPC around CRIU).
	Steps  map[string]float64
	work   string
	done   chan struct{}
	err    error
	output *strings.Builder
}

// Wait waits until the page server (and the dump) ended, at most until ctx ends, and
// returns the dump's error. The error says nothing about the transfer's completeness.
func (l *LazyDump) Wait(ctx context.Context) error {
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exited reports whether the dump process has ended.
func (l *LazyDump) Exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// criuConfigAnnotation names the CRIU config file runc hands to CRIU for a container.
const criuConfigAnnotation = "org.criu.config"

// CheckpointLazy implements PostCopier.
func (d *DockerRuntime) CheckpointLazy(ctx context.Context, id, dir, pageServer string) (*LazyDump, error) {
	info, err := d.cfg.Client.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("migrate: inspect %s: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if !info.HostConfig.RestartPolicy.IsNone() {
		if _, err := d.cfg.Client.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}}); err != nil {
			return nil, fmt.Errorf("migrate: disabling restart policy of %s before checkpoint: %w", id, err)
		}
	}
	work := dir + ".work"
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(work, "criu.conf")
	opts := "leave-stopped\n"
	if info.HostConfig.NetworkMode.IsNone() {
		// A namespace with only loopback: nothing outside the frozen container can send to
		// it, so CRIU's network lock (iptables in the namespace, inside the freeze) is
		// skipped; the stopped copy then needs no unlocking to resume.
		opts += "network-lock skip\n"
	}
	if err := os.WriteFile(conf, []byte(opts), 0o600); err != nil {
		return nil, err
	}
	undo, err := d.annotateCRIUConfig(info.ID, conf)
	if err != nil {
		d.restoreRestartPolicy(context.WithoutCancel(ctx), id, info.HostConfig.RestartPolicy)
		return nil, err
	}
	status, statusW, err := os.Pipe()
	if err != nil {
		undo()
		return nil, err
	}
	// Not cancellable, as Checkpoint: killing runc mid-dump could leave the container
	// frozen. The page server ends when its client hangs up (ResumeStopped makes sure).
	cmd := exec.Command(d.cfg.Runc, "--root", d.cfg.RuncRoot, "checkpoint",
		"--image-path", dir, "--work-path", work, "--leave-running",
		"--lazy-pages", "--page-server", pageServer, "--status-fd", "3", info.ID)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(d.cfg.CRIUPath)+":"+os.Getenv("PATH"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{b: out}, &lockedWriter{b: out}
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		undo()
		status.Close()
		statusW.Close()
		return nil, fmt.Errorf("migrate: runc checkpoint: %w", err)
	}
	statusW.Close()
	l := &LazyDump{Started: started, work: work, done: make(chan struct{}), output: out}
	go func() {
		err := cmd.Wait()
		undo()
		if err != nil {
			l.err = fmt.Errorf("migrate: runc checkpoint --lazy-pages of %s: %v: %s%s", info.Name, err, strings.TrimSpace(out.String()), criuLogTail(filepath.Join(work, "dump.log")))
		}
		close(l.done)
	}()
	// CRIU writes one byte to the status fd once the page server listens; EOF means the
	// dump failed.
	var b [1]byte
	_, rerr := status.Read(b[:])
	status.Close()
	undo() // runc has read the annotation; later checkpoints must not see it
	if rerr != nil {
		<-l.done
		d.restoreRestartPolicy(context.WithoutCancel(ctx), id, info.HostConfig.RestartPolicy)
		if l.err == nil {
			l.err = fmt.Errorf("migrate: runc checkpoint --lazy-pages of %s ended without starting its page server%s", info.Name, criuLogTail(filepath.Join(work, "dump.log")))
		}
		return nil, l.err
	}
	total := time.Since(started).Seconds()
	if freeze, ok := logTime(filepath.Join(work, "dump.log"), "freezing cgroup"); ok {
		if serving, ok := logTime(filepath.Join(work, "dump.log"), "Starting page server"); ok {
			l.Steps = map[string]float64{"criu-start": freeze, "criu-frozen": serving - freeze, "runc": total - serving}
		}
	}
	l.LazyPages, err = dumpLazyPages(filepath.Join(work, "dump.log"))
	if err != nil {
		return l, err
	}
	return l, nil
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 64<<10 {
		return len(p), nil
	}
	return w.b.Write(p)
}

// annotateCRIUConfig makes runc pass conf to CRIU for container id: runc takes the file from
// the org.criu.config annotation in its state, which Docker 20.10 cannot set. undo takes the
// annotation out again (from the state as it is then: runc may have rewritten it).
func (d *DockerRuntime) annotateCRIUConfig(id, conf string) (undo func(), err error) {
	p := filepath.Join(d.cfg.RuncRoot, id, "state.json")
	if err := rewriteRuncLabels(p, conf); err != nil {
		return nil, fmt.Errorf("migrate: post-copy: runc state of %s: %w", id, err)
	}
	return func() { _ = rewriteRuncLabels(p, "") }, nil
}

// rewriteRuncLabels sets the org.criu.config label of the runc state file p to conf, or
// removes it when conf is empty.
func rewriteRuncLabels(p, conf string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(st["config"], &cfg); err != nil {
		return err
	}
	var labels []string
	if raw, ok := cfg["labels"]; ok {
		if err := json.Unmarshal(raw, &labels); err != nil {
			return err
		}
	}
	kept := labels[:0:0]
	for _, l := range labels {
		if !strings.HasPrefix(l, criuConfigAnnotation+"=") {
			kept = append(kept, l)
		}
	}
	if conf == "" && len(kept) == len(labels) {
		return nil
	}
	if conf != "" {
		kept = append(kept, criuConfigAnnotation+"="+conf)
	}
	if cfg["labels"], err = json.Marshal(kept); err != nil {
		return err
	}
	if st["config"], err = json.Marshal(cfg); err != nil {
		return err
	}
	if b, err = json.Marshal(st); err != nil {
		return err
	}
	tmp := p + ".godwit"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

var (
	pagemapLine  = regexp.MustCompile(`Pagemap generated: (\d+) pages \((\d+) lazy\)`)
	uffdFound    = regexp.MustCompile(`uffd: (\d+)-(\d+): Found (\d+) pages to be handled by UFFD`)
	uffdCopied   = regexp.MustCompile(`uffd: (\d+)-(\d+): UFFD transferred pages: \((\d+)/(\d+)\)`)
	pageServerOK = "Lazy pages transfer finished successfully"
)

// logTime returns the timestamp (seconds since CRIU started) of the first line of a CRIU
// log that contains text.
func logTime(log, text string) (float64, bool) {
	f, err := os.Open(log)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, text) || !strings.HasPrefix(line, "(") {
			continue
		}
		end := strings.IndexByte(line, ')')
		if end < 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[1:end]), 64)
		return v, err == nil
	}
	return 0, false
}

// dumpLazyPages sums the lazy pages a dump announced in its log.
func dumpLazyPages(log string) (int64, error) {
	b, err := os.ReadFile(log)
	if err != nil {
		return 0, fmt.Errorf("migrate: post-copy: dump log: %w", err)
	}
	var lazy int64
	found := false
	for _, m := range pagemapLine.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		lazy += n
		found = true
	}
	if !found {
		return 0, errors.New("migrate: post-copy: the dump log does not say how many pages are lazy (CRIU log level too low?)")
	}
	return lazy, nil
}

// LazyCount is what a lazy-pages daemon's log says it did, per task: pages it had to
// fetch and pages it placed.
type LazyCount struct {
	Tasks int   `json:"tasks"`
	Found int64 `json:"found"`
	// Copied and Total from the daemon's closing summary of each task; Summaries counts
	// the tasks that have one.
	Copied    int64 `json:"copied"`
	Total     int64 `json:"total"`
	Summaries int   `json:"summaries"`
}

// Complete reports whether every task the daemon handled got every page it had to fetch.
func (c LazyCount) Complete() bool {
	return c.Tasks > 0 && c.Summaries == c.Tasks && c.Copied == c.Total && c.Total == c.Found
}

func (c LazyCount) String() string {
	return fmt.Sprintf("%d task(s), %d/%d pages placed (%d announced), %d summaries", c.Tasks, c.Copied, c.Total, c.Found, c.Summaries)
}

// parseLazyLog reads a lazy-pages daemon's log.
func parseLazyLog(log string) (LazyCount, error) {
	f, err := os.Open(log)
	if err != nil {
		return LazyCount{}, err
	}
	defer f.Close()
	var c LazyCount
	tasks := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := uffdFound.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[3], 10, 64)
			c.Found += n
			tasks[m[1]+"-"+m[2]] = true
		} else if m := uffdCopied.FindStringSubmatch(line); m != nil {
			a, _ := strconv.ParseInt(m[3], 10, 64)
			b, _ := strconv.ParseInt(m[4], 10, 64)
			c.Copied += a
			c.Total += b
			c.Summaries++
		}
	}
	c.Tasks = len(tasks)
	return c, sc.Err()
}

// LazyRestore is a restored workload whose pages are still arriving.
type LazyRestore struct {
	// Steps splits the restore: docker-start (the Docker API call, which waits for
	// containerd, runc and CRIU) and, from CRIU's log, criu-restore (CRIU's own part).
	Steps map[string]float64
	log   string
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
}

// Wait waits until the lazy-pages daemon ended and returns its count; the transfer is
// complete only when the count says so.
func (l *LazyRestore) Wait(ctx context.Context) (LazyCount, error) {
	select {
	case <-l.done:
	case <-ctx.Done():
		return LazyCount{}, ctx.Err()
	}
	c, err := parseLazyLog(l.log)
	if l.err != nil {
		return c, fmt.Errorf("lazy-pages daemon: %w%s", l.err, criuLogTail(l.log))
	}
	if err != nil {
		return c, fmt.Errorf("lazy-pages daemon log: %w", err)
	}
	return c, nil
}

// Exited reports whether the lazy-pages daemon has ended.
func (l *LazyRestore) Exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Kill ends the lazy-pages daemon (fault injection, and a target giving up).
func (l *LazyRestore) Kill() {
	if l.cmd.Process != nil {
		_ = l.cmd.Process.Kill()
	}
}

// PID is the lazy-pages daemon's process ID.
func (l *LazyRestore) PID() int { return l.cmd.Process.Pid }

// lazyMarker is the line in godwit-runc's marker file that makes it restore with
// --lazy-pages, using the staged checkpoint directory as CRIU's work directory (where the
// lazy-pages daemon's socket is).
const lazyMarker = "lazy-pages"

// RestoreLazy implements PostCopier.
func (d *DockerRuntime) RestoreLazy(ctx context.Context, p Prepared, pageServer string) (*LazyRestore, error) {
	info, err := d.cfg.Client.ContainerInspect(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("migrate: inspect prepared container %s: %w", p.ID, err)
	}
	if info.HostConfig.Runtime != FastRestoreRuntime {
		return nil, fmt.Errorf("%w: post-copy restores through the %s runtime, which this engine lacks", ErrPreflight, FastRestoreRuntime)
	}
	host, port, err := net.SplitHostPort(pageServer)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(p.CheckpointDir)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "lazy-pages.socket")
	_ = os.Remove(sock)
	log := filepath.Join(dir, "lazy-pages.log")
	cmd := exec.Command(d.cfg.CRIUPath, "lazy-pages", "--page-server", "--address", host, "--port", port,
		"--images-dir", dir, "--work-dir", dir, "-o", log, "-v4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("migrate: criu lazy-pages: %w", err)
	}
	l := &LazyRestore{log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		l.err = cmd.Wait()
		close(l.done)
	}()
	fail := func(err error) (*LazyRestore, error) {
		l.Kill()
		<-l.done
		return nil, err
	}
	// The restore hands the tasks' userfaultfds to the daemon through its socket in the
	// work directory; godwit-runc waits for it, so the daemon starts while Docker and
	// containerd prepare the restore.
	name := "godwit-" + shortID(filepath.Base(p.CheckpointDir))
	cpDir := filepath.Join(d.cfg.DataRoot, "containers", info.ID, "checkpoints", name)
	_ = os.RemoveAll(cpDir)
	if err := os.MkdirAll(cpDir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(cpDir, stagedMarker), []byte(dir+"\n"+lazyMarker+"\n"), 0o600); err != nil {
		return fail(err)
	}
	start := time.Now()
	err = d.cfg.Client.ContainerStart(ctx, info.ID, container.StartOptions{CheckpointID: name})
	l.Steps = map[string]float64{"docker-start": time.Since(start).Seconds()}
	if v, ok := logTime(filepath.Join(dir, "restore.log"), "Restore finished"); ok {
		l.Steps["criu-restore"] = v
	}
	_ = os.RemoveAll(cpDir)
	if err != nil {
		if l.Exited() {
			err = fmt.Errorf("%w; the lazy-pages daemon had ended: %v%s", err, l.err, criuLogTail(log))
		}
		return fail(fmt.Errorf("migrate: lazy restore of %s failed: %w%s", strings.TrimPrefix(info.Name, "/"), err, criuLogTail(filepath.Join(dir, "restore.log"))))
	}
	return l, nil
}

// ResumeStopped implements PostCopier.
func (d *DockerRuntime) ResumeStopped(ctx context.Context, spec *Spec, dir, pageServer string) error {
	// A page server nobody fetches from waits for a client forever: hang up on it, then
	// wait for the dump to end (it decides the tasks' final state).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		busy := processMentions(dir)
		if busy == 0 {
			break
		}
		if pageServer != "" {
			if c, err := net.DialTimeout("tcp", pageServer, time.Second); err == nil {
				c.Close()
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("migrate: resume: process %d still works on %s", busy, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	info, err := d.cfg.Client.ContainerInspect(ctx, spec.ID)
	if err != nil {
		return fmt.Errorf("migrate: resume: the source container %s is gone: %w", spec.Name, err)
	}
	w, _ := decodeDockerWorkload(spec.Config)
	policy := container.RestartPolicy{Name: container.RestartPolicyMode(w.RestartPolicy), MaximumRetryCount: w.RestartMax}
	if info.State == nil || !info.State.Running || info.State.Pid == 0 {
		// Not stopped with its memory: the dump failed and runc removed it, or it
		// exited. Nothing left to resume from in memory.
		return fmt.Errorf("migrate: resume: the source container %s no longer runs (status %s); its memory is lost", spec.Name, info.State.Status)
	}
	if err := unlockCRIUNetwork(info.State.Pid); err != nil {
		return fmt.Errorf("migrate: resume: %w", err)
	}
	for _, pid := range ContainerPIDs(info.State.Pid) {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	d.restoreRestartPolicy(ctx, info.ID, policy)
	return nil
}

// unlockCRIUNetwork removes the iptables chain CRIU's network lock leaves in the netns of
// pid after a dump that left its tasks stopped.
func unlockCRIUNetwork(pid int) error {
	ns := strconv.Itoa(pid)
	out, err := exec.Command("nsenter", "-t", ns, "-n", "iptables-save").CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables-save in the workload's namespace: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), ":CRIU ") {
		return nil
	}
	run := func(args ...string) error {
		out, err := exec.Command("nsenter", append([]string{"-t", ns, "-n", "iptables", "-w"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		for run("-D", chain, "-j", "CRIU") == nil {
		}
	}
	if err := run("-F", "CRIU"); err != nil {
		return err
	}
	return run("-X", "CRIU")
}

// processMentions returns the PID of a process whose command line contains path, or 0.
func processMentions(path string) int {
	entries, _ := os.ReadDir("/proc")
	needle := path
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), needle) {
			return pid
		}
	}
	return 0
}
