package workload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

// NetKVImage is the tag of the networked test workload (cmd netkv): a TCP key-value server
// that keeps connections open, for tests of bridge networks and published ports.
const NetKVImage = "godwit/netkv:test"

// NetKVPort is the port netkv listens on inside its container.
const NetKVPort = 8080

var (
	netkvOnce sync.Once
	netkvPath string
	netkvErr  error
)

// BuildNetKVImage builds the netkv image into the engine behind cli (idempotent).
func BuildNetKVImage(ctx context.Context, cli client.APIClient) error {
	netkvOnce.Do(func() {
		dir, err := os.MkdirTemp("", "godwit-netkv-")
		if err != nil {
			netkvErr = err
			return
		}
		netkvPath = filepath.Join(dir, "netkv")
		cmd := exec.Command("go", "build", "-trimpath", "-o", netkvPath, "github.com/godwit-io/godwit/internal/workload/netkv")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			netkvErr = fmt.Errorf("workload: building netkv: %v\n%s", err, out)
		}
	})
	if netkvErr != nil {
		return netkvErr
	}
	return buildScratchImage(ctx, cli, NetKVImage, "netkv", netkvPath)
}

// NetKVConn is a client connection to netkv: one request line, one answer line.
type NetKVConn struct {
	c net.Conn
	r *bufio.Reader
}

// DialNetKV connects to netkv at addr, retrying until timeout (a published port appears
// only when its container runs).
func DialNetKV(ctx context.Context, addr string, timeout time.Duration) (*NetKVConn, error) {
	deadline := time.Now().Add(timeout)
	for {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			k := &NetKVConn{c: c, r: bufio.NewReader(c)}
			// The proxy of a published port accepts before the container answers: ask once.
			if _, err = k.Do("PING hello", 30*time.Second); err == nil {
				return k, nil
			}
			c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("workload: netkv at %s does not answer after %s: %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Do sends one request and returns the answer, waiting at most wait.
func (k *NetKVConn) Do(req string, wait time.Duration) (string, error) {
	_ = k.c.SetDeadline(time.Now().Add(wait))
	if _, err := fmt.Fprintln(k.c, req); err != nil {
		return "", err
	}
	line, err := k.r.ReadString('\n')
	return strings.TrimSpace(line), err
}

// WaitClosed reads until the server closes the connection (or wait passes) and returns
// the read error: io.EOF or a reset when the server closed it.
func (k *NetKVConn) WaitClosed(wait time.Duration) error {
	_ = k.c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, k.r)
	if err == nil {
		return io.EOF
	}
	return err
}

// Close closes the connection.
func (k *NetKVConn) Close() error { return k.c.Close() }
