package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

// lockedBuffer is a bytes.Buffer safe for a command writing while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEndpointServes runs `godwit endpoint` in this process as the dev cluster and the demo
// run it: it says where it listens, serves TLS with its node certificate, answers an
// operator, journals in its state directory, and stops on SIGTERM with exit 0. No container
// moves, so no dockerd is needed (the Docker client connects lazily); root is, as for the
// real thing.
func TestEndpointServes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the endpoint runs as root")
	}
	isolateCLIEnv(t)
	t.Setenv(envFault, "target-before-restore")
	certs := newCLITestCerts(t)
	state := t.TempDir()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		defer outW.Close()
		done <- run([]string{"endpoint", "--node", "node1", "--listen", "127.0.0.1:0",
			"--tls-ca", certs.node1.CA, "--tls-cert", certs.node1.Cert, "--tls-key", certs.node1.Key,
			"--docker-host", "unix://" + filepath.Join(state, "no-docker.sock"), "--state-dir", state,
			"--allow-host-network", "--bind-root", "/srv", "--allow-cap", "net_admin"}, outW, &stderr)
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("first line %q, %v\nstderr: %s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, outR)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	op, err := pki.Load(certs.operator)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if name, err := (&migrate.Client{TLS: op}).Ping(ctx, addr); err != nil || name != "node1" {
		t.Errorf("ping: %q, %v", name, err)
	}
	for k, v := range certs.operatorEnv("https://" + addr) {
		t.Setenv(k, v)
	}
	if code, out, errOut := runCLI(t, "migration", "status", "m-none"); code != exitOK || !strings.Contains(out, "node1 has no record of migration m-none") {
		t.Errorf("migration status: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(state, "journal")); err != nil {
		t.Errorf("no journal in the state directory: %v", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("endpoint exit %d\nstderr: %s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("endpoint did not stop on SIGTERM\nstderr: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "fault injection armed") {
		t.Errorf("GODWIT_FAULT set and not announced:\n%s", stderr.String())
	}
}

// TestPauseAt checks the fault hook of GODWIT_FAULT: other points pass, its point says so in
// one line and never returns.
func TestPauseAt(t *testing.T) {
	r, w := io.Pipe()
	f := pauseAt("target-streaming", w)
	if err := f("source-streaming"); err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		_ = f("target-streaming") // blocks for good: this goroutine stays parked
		close(returned)
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "fault: paused at target-streaming\n" {
		t.Fatalf("line %q, %v", line, err)
	}
	select {
	case <-returned:
		t.Fatal("the fault hook returned")
	default:
	}
}

func TestParseCapabilities(t *testing.T) {
	got, err := migrate.NormalizeCapabilities([]string{"net_admin", "CAP_NET_ADMIN", "SYS_PTRACE"})
	if err != nil || strings.Join(got, ",") != "NET_ADMIN,SYS_PTRACE" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"ALL", "cap_all", "NET ADMIN", "1CAP", ""} {
		if _, err := migrate.NormalizeCapabilities([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
