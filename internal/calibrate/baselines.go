package calibrate

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/godwit-io/godwit/internal/workload"
	"github.com/godwit-io/godwit/migrate"
	"golang.org/x/sys/unix"
)

// The two baselines that say what the hardware and CRIU themselves cost, measured in the
// same run as godwit and plain Docker:
//
//   - criu: the same workload as a plain process, dumped by CRIU (go-criu) into a local
//     directory and restored from it on the same host: no container engine, no transfer.
//     This is "CRIU's own speed".
//   - fresh-memory: faulting in as much new anonymous memory as the workload has. Any
//     restore must do this at least once; on a VM whose host backs guest memory lazily it
//     is the floor under every restore.

// criuRun dumps and restores a plain memhog process of mib MiB with the CRIU runtime.
func (b *bench) criuRun(ctx context.Context, mib, rep int) (Sample, error) {
	r := Sample{Method: MethodCRIU, SizeMiB: mib, Repeat: rep}
	work, err := os.MkdirTemp("", "godwit-calibrate-criu-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(work)
	rt, err := migrate.NewCRIURuntime(migrate.CRIURuntimeConfig{
		WorkDir: work, ProbeHost: "127.0.0.6", ProbeTimeout: 10 * time.Second, MemoryMargin: 64 << 20, LogLevel: 2,
	})
	if err != nil {
		return r, err
	}
	bin, err := workload.Binary()
	if err != nil {
		return r, err
	}
	addr, err := freeAddr("127.0.0.6")
	if err != nil {
		return r, err
	}
	cmd := exec.Command(bin, "-mib", strconv.Itoa(mib), "-addr", addr)
	cmd.Env = append(os.Environ(), "GODEBUG=multipathtcp=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it when CRIU's dump kills it
	id := strconv.Itoa(pid)
	defer rt.Remove(context.WithoutCancel(ctx), id)
	before, err := probeAddr(ctx, addr, b.cfg.ProbeTimeout)
	if err != nil {
		return r, err
	}
	spec, err := rt.Inspect(ctx, id)
	if err != nil {
		return r, err
	}
	r.MemoryBytes = spec.MemoryBytes
	dir := filepath.Join(work, "dump")
	s := migrate.StartHostSampler(50 * time.Millisecond)
	t := time.Now()
	if err := rt.Checkpoint(ctx, id, dir); err != nil {
		s.Stop()
		return r, fmt.Errorf("criu dump: %w", err)
	}
	r.CheckpointS = time.Since(t).Seconds()
	r.CheckpointBytes = migrate.DirSize(dir)
	t2 := time.Now()
	if err := rt.Resume(ctx, spec, dir); err != nil {
		s.Stop()
		return r, fmt.Errorf("criu restore: %w", err)
	}
	r.RestoreS = time.Since(t2).Seconds()
	r.DowntimeS = time.Since(t).Seconds()
	u := s.Stop()
	r.CPUPeak, r.MemPeakBytes = u.CPUPeak, u.MemPeak
	after, err := probeAddr(ctx, addr, b.cfg.ProbeTimeout)
	if err != nil {
		return r, fmt.Errorf("after restore: %w", err)
	}
	return r, sameState(before, after)
}

// freshMemoryRun times faulting in mib MiB of new anonymous memory, one write per page.
func freshMemoryRun(mib, rep int) (Sample, error) {
	r := Sample{Method: MethodFreshMemory, SizeMiB: mib, Repeat: rep}
	size := mib << 20
	t := time.Now()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return r, err
	}
	for off := 0; off < size; off += 4096 {
		mem[off] = 1
	}
	r.DowntimeS = time.Since(t).Seconds()
	return r, unix.Munmap(mem)
}

// freeAddr returns ip:port with a port free right now.
func freeAddr(ip string) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// probeAddr asks a memhog listening on addr (in this network namespace) for its state.
func probeAddr(ctx context.Context, addr string, timeout time.Duration) (workload.State, error) {
	deadline := time.Now().Add(timeout)
	for {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil {
				return workload.ParseState(line)
			}
			err = rerr
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return workload.State{}, fmt.Errorf("memhog on %s does not answer: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
