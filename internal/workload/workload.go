// Package workload builds godwit's state-checking test workload (cmd memhog) into a local
// Docker image (FROM scratch, no registry) and probes a running instance through the
// container's own network namespace, as ENVIRONMENT.md requires (--network none containers,
// no bridge).
package workload

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/godwit-io/godwit/internal/netns"
)

// Image is the tag the workload image is built under.
const Image = "godwit/memhog:test"

// Port is the TCP port memhog answers on inside its container.
const Port = 7070

// ControlPort is memhog's CPU knob inside its container (SetCPU).
const ControlPort = 7071

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary compiles memhog as a static binary once per process and returns its path.
func Binary() (string, error) {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "godwit-memhog-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "memhog")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "github.com/godwit-io/godwit/internal/workload/memhog")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("workload: building memhog: %v\n%s", err, out)
		}
	})
	return binPath, binErr
}

// BuildImage builds the workload image into the engine behind cli (idempotent).
func BuildImage(ctx context.Context, cli client.APIClient) error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	return buildScratchImage(ctx, cli, Image, "memhog", bin)
}

// buildScratchImage builds, into the engine behind cli, an image tagged tag that holds only
// the static program bin as /name, its entrypoint (MPTCP off: CRIU cannot dump it).
func buildScratchImage(ctx context.Context, cli client.APIClient, tag, name, bin string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	dockerfile := "FROM scratch\nCOPY " + name + " /" + name + "\nENV GODEBUG=multipathtcp=0\nENTRYPOINT [\"/" + name + "\"]\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {name, 0o755, exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return fmt.Errorf("workload: image build: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("workload: image build failed: %s", out)
	}
	return nil
}

// Cmd is the container command for a workload of mib MiB.
func Cmd(mib int) []string {
	return []string{"-mib", strconv.Itoa(mib), "-addr", fmt.Sprintf("127.0.0.1:%d", Port)}
}

// NetworkDisabled reports whether a workload container on the engine behind cli must be
// created with networking disabled (Config.NetworkDisabled, its own loopback only) to be
// movable: from Docker 28 (API 1.48) on, an engine cannot restore a checkpoint into a network
// namespace of Docker's, so migrate refuses --network none containers there before freezing.
func NetworkDisabled(ctx context.Context, cli client.APIClient) bool {
	v, err := cli.ServerVersion(ctx)
	return err == nil && versions.GreaterThanOrEqualTo(v.APIVersion, "1.48")
}

// State is one answer of the workload.
type State struct {
	Ticks uint64
	Seed  uint64
	MiB   int
	CRC   string
	// CPU is the cores its CPU knob burns.
	CPU float64
}

func (s State) String() string {
	return fmt.Sprintf("ticks=%d seed=%d mib=%d crc=%s", s.Ticks, s.Seed, s.MiB, s.CRC)
}

// Probe asks the workload in the network namespace of process pid for its state. The
// connection is made from inside that namespace, through its loopback.
func Probe(ctx context.Context, pid int, port int) (State, error) {
	var line string
	err := netns.Do(pid, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		return State{}, fmt.Errorf("workload: probe pid %d: %w", pid, err)
	}
	return ParseState(line)
}

// ParseState parses one answer line.
func ParseState(line string) (State, error) {
	var s State
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "ticks":
			s.Ticks, err = strconv.ParseUint(v, 10, 64)
		case "seed":
			s.Seed, err = strconv.ParseUint(v, 10, 64)
		case "mib":
			s.MiB, err = strconv.Atoi(v)
		case "crc":
			s.CRC = v
		case "cpu":
			s.CPU, err = strconv.ParseFloat(v, 64)
		}
		if err != nil {
			return State{}, fmt.Errorf("workload: bad answer %q: %w", line, err)
		}
	}
	if s.CRC == "" {
		return State{}, fmt.Errorf("workload: bad answer %q", line)
	}
	return s, nil
}

// SetCPU turns the CPU knob of the workload in the network namespace of process pid: it
// burns cores CPU cores (0 to 4; 0 stops) until told otherwise, also after a migration.
func SetCPU(ctx context.Context, pid int, cores float64) error {
	var line string
	err := netns.Do(pid, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", ControlPort))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "cpu %g\n", cores); err != nil {
			return err
		}
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		return fmt.Errorf("workload: CPU knob of pid %d: %w", pid, err)
	}
	if !strings.HasPrefix(line, "ok ") {
		return fmt.Errorf("workload: CPU knob of pid %d: %s", pid, strings.TrimSpace(line))
	}
	return nil
}

// SetCPUOf turns the CPU knob of the workload in the named container of the engine behind
// cli.
func SetCPUOf(ctx context.Context, cli client.APIClient, name string, cores float64) error {
	info, err := cli.ContainerInspect(ctx, name)
	if err != nil {
		return err
	}
	if info.State == nil || !info.State.Running {
		return fmt.Errorf("workload: container %s is not running", name)
	}
	return SetCPU(ctx, info.State.Pid, cores)
}

// WaitState waits up to timeout for the workload in the named container of the engine behind
// cli to run and answer, and returns its state.
func WaitState(ctx context.Context, cli client.APIClient, name string, timeout time.Duration) (State, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		info, err := cli.ContainerInspect(ctx, name)
		switch {
		case err != nil:
			last = err
		case info.State == nil || !info.State.Running:
			last = fmt.Errorf("container %s is not running", name)
		default:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, err := Probe(pctx, info.State.Pid, Port)
			cancel()
			if err == nil {
				return st, nil
			}
			last = err
		}
		if time.Now().After(deadline) {
			return State{}, fmt.Errorf("workload %s does not answer after %s: %w", name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return State{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
