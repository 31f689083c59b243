package migrate

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godwit-io/godwit/internal/testenv"
)

// envListenChild makes the test binary, re-executed, a tiny listener instead of running
// tests: "mptcp ADDR" or "tcp ADDR". It prints its address and answers every connection
// with "ok". An init func rather than TestMain, so the package keeps its TestMain free.
const envListenChild = "GODWIT_TEST_LISTEN_CHILD"

func init() {
	spec := os.Getenv(envListenChild)
	if spec == "" {
		return
	}
	kind, addr, _ := strings.Cut(spec, " ")
	var lc net.ListenConfig
	lc.SetMultipathTCP(kind == "mptcp")
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		fmt.Fprintln(c, "ok")
		c.Close()
	}
}

// listenerChild starts the test binary as a listener of the given kind on ip (port chosen by
// the kernel) and returns its process and address. It is killed when the test ends.
func listenerChild(t *testing.T, kind, ip string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envListenChild+"="+kind+" "+ip+":0", EnvLabels+"="+LabelManaged+"=true")
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatalf("%s listener child exited without listening", kind)
		}
		return cmd, addr
	case <-time.After(30 * time.Second):
		t.Fatalf("%s listener child did not start", kind)
	}
	return nil, ""
}

func TestUncheckpointableSocketsMPTCP(t *testing.T) {
	testenv.RequireRoot(t)
	if b, err := os.ReadFile("/proc/sys/net/mptcp/enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("kernel has MPTCP disabled (net.mptcp.enabled != 1): Go falls back to TCP, nothing to detect")
	}
	mp, mpAddr := listenerChild(t, "mptcp", "127.0.0.21")
	tcp, _ := listenerChild(t, "tcp", "127.0.0.21")

	problems, err := UncheckpointableSockets([]int{mp.Process.Pid, tcp.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("problems: %v", problems)
	if len(problems) != 1 {
		t.Fatalf("got %d problems, want exactly the MPTCP listener's: %v", len(problems), problems)
	}
	p := problems[0]
	if p.PID != mp.Process.Pid || !strings.Contains(p.Reason, "MPTCP") || !strings.Contains(p.Reason, "GODEBUG=multipathtcp=0") {
		t.Errorf("problem = %+v, want pid %d with an MPTCP reason naming GODEBUG", p, mp.Process.Pid)
	}
	if !strings.Contains(p.What, "socket:[") {
		t.Errorf("What = %q, want the socket inode", p.What)
	}
	// Looking changed nothing: the listener still answers.
	c, err := net.DialTimeout("tcp", mpAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("MPTCP listener no longer answers: %v", err)
	}
	c.Close()
}

func TestUncheckpointableSocketsGoneProcess(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	problems, err := UncheckpointableSockets([]int{cmd.Process.Pid})
	if err != nil || len(problems) != 0 {
		t.Fatalf("exited process: problems %v, err %v; want none", problems, err)
	}
}

func TestCRIUSocketReason(t *testing.T) {
	for _, tc := range []struct {
		desc               string
		domain, typ, proto int
		wantSubstr         string // "" means dumpable
	}{
		{"tcp4", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, ""},
		{"udp6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP, ""},
		{"unix stream", unix.AF_UNIX, unix.SOCK_STREAM, 0, ""},
		{"netlink", unix.AF_NETLINK, unix.SOCK_RAW, 0, ""},
		{"raw ip", unix.AF_INET, unix.SOCK_RAW, 253, ""},
		{"mptcp4", unix.AF_INET, unix.SOCK_STREAM, 262, "MPTCP"},
		{"mptcp6", unix.AF_INET6, unix.SOCK_STREAM, 262, "GODEBUG=multipathtcp=0"},
		{"sctp", unix.AF_INET, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP, "SCTP"},
		{"vsock", unix.AF_VSOCK, unix.SOCK_STREAM, 0, "vsock"},
	} {
		got := criuSocketReason(tc.domain, tc.typ, tc.proto)
		if tc.wantSubstr == "" && got != "" || !strings.Contains(got, tc.wantSubstr) {
			t.Errorf("%s: reason %q, want containing %q", tc.desc, got, tc.wantSubstr)
		}
	}
}

func TestSocketsContainerPIDs(t *testing.T) {
	// sh forks two sleeps, one of which forks nothing: the tree is sh, sleep, sleep.
	cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range ContainerPIDs(cmd.Process.Pid)[1:] {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pids = ContainerPIDs(cmd.Process.Pid); len(pids) == 3 {
			break
		}
	}
	if len(pids) != 3 || pids[0] != cmd.Process.Pid {
		t.Fatalf("ContainerPIDs = %v, want sh (%d) then its two sleeps", pids, cmd.Process.Pid)
	}
	for _, p := range pids[1:] {
		st, err := readProcStat(p)
		if err != nil || st.ppid != cmd.Process.Pid {
			t.Errorf("pid %d: ppid %d, err %v; want child of %d", p, st.ppid, err, cmd.Process.Pid)
		}
	}
	if slices.Contains(pids, os.Getpid()) {
		t.Errorf("ContainerPIDs includes the test itself")
	}
	if got := ContainerPIDs(1 << 30); got != nil {
		t.Errorf("ContainerPIDs(missing) = %v, want nil", got)
	}
}
