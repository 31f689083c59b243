package migrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ipprotoMPTCP is IPPROTO_MPTCP; Go >= 1.24 opens MPTCP listeners by default.
const ipprotoMPTCP = 262

// SocketProblem is one socket CRIU cannot dump.
type SocketProblem struct {
	PID int `json:"pid"`
	FD  int `json:"fd"`
	// What names the socket: inode, family, type and protocol.
	What string `json:"what"`
	// Reason says why CRIU cannot dump it and, when known, how to avoid it.
	Reason string `json:"reason"`
}

func (p SocketProblem) String() string {
	return fmt.Sprintf("pid %d fd %d (%s): %s", p.PID, p.FD, p.What, p.Reason)
}

// UncheckpointableSockets returns the sockets held by pids that CRIU cannot dump: MPTCP,
// SCTP, DCCP and other IP protocols besides TCP/UDP/UDP-Lite/ICMP/raw, and socket families
// other than unix, inet, inet6, packet and netlink. It reads each socket's SO_DOMAIN,
// SO_TYPE and SO_PROTOCOL from a duplicate taken with pidfd_getfd (so it needs root or
// ptrace rights over the processes) and changes nothing in them. Processes and fds that
// vanish while it looks are skipped.
func UncheckpointableSockets(pids []int) ([]SocketProblem, error) {
	var problems []SocketProblem
	for _, pid := range pids {
		ps, err := pidSocketProblems(pid)
		if err != nil {
			return problems, err
		}
		problems = append(problems, ps...)
	}
	return problems, nil
}

func pidSocketProblems(pid int) ([]SocketProblem, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return nil, nil // exited
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: listing fds of pid %d: %w", pid, err)
	}
	var sockets []int
	links := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		sockets = append(sockets, fd)
		links[fd] = link
	}
	if len(sockets) == 0 {
		return nil, nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: pidfd_open(%d): %w", pid, err)
	}
	defer unix.Close(pidfd)

	var problems []SocketProblem
	for _, fd := range sockets {
		dup, err := unix.PidfdGetfd(pidfd, fd, 0)
		if errors.Is(err, unix.EBADF) || errors.Is(err, unix.ESRCH) {
			continue // closed, or the process exited, since we listed it
		}
		if err != nil {
			return problems, fmt.Errorf("migrate: pidfd_getfd(pid %d, fd %d): %w", pid, fd, err)
		}
		domain, derr := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_DOMAIN)
		typ, terr := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_TYPE)
		proto, perr := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		unix.Close(dup)
		if err := errors.Join(derr, terr, perr); err != nil {
			return problems, fmt.Errorf("migrate: reading socket options of pid %d fd %d: %w", pid, fd, err)
		}
		if reason := criuSocketReason(domain, typ, proto); reason != "" {
			problems = append(problems, SocketProblem{
				PID:    pid,
				FD:     fd,
				What:   fmt.Sprintf("%s %s %s protocol %d", links[fd], familyName(domain), typeName(typ), proto),
				Reason: reason,
			})
		}
	}
	return problems, nil
}

// criuSocketReason returns why CRIU 4.2 cannot dump a socket of this kind, or "" if it can.
// It mirrors CRIU's sockets.c (families it collects) and sk-inet.c (can_dump_ipproto).
func criuSocketReason(domain, typ, proto int) string {
	switch domain {
	case unix.AF_UNIX, unix.AF_PACKET, unix.AF_NETLINK:
		return ""
	case unix.AF_INET, unix.AF_INET6:
	default:
		return fmt.Sprintf("%s socket: CRIU dumps only unix, inet, inet6, packet and netlink sockets", familyName(domain))
	}
	if typ == unix.SOCK_RAW {
		return ""
	}
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		return ""
	case ipprotoMPTCP:
		return "MPTCP socket (protocol 262): CRIU cannot dump MPTCP; for Go >= 1.24 programs set GODEBUG=multipathtcp=0"
	case unix.IPPROTO_SCTP:
		return "SCTP socket (protocol 132): CRIU cannot dump SCTP"
	case unix.IPPROTO_DCCP:
		return "DCCP socket (protocol 33): CRIU cannot dump DCCP"
	default:
		return fmt.Sprintf("IP protocol %d: CRIU dumps only TCP, UDP, UDP-Lite, ICMP and raw IP sockets", proto)
	}
}

func familyName(domain int) string {
	switch domain {
	case unix.AF_UNIX:
		return "unix"
	case unix.AF_INET:
		return "inet"
	case unix.AF_INET6:
		return "inet6"
	case unix.AF_PACKET:
		return "packet"
	case unix.AF_NETLINK:
		return "netlink"
	case unix.AF_VSOCK:
		return "vsock"
	case unix.AF_ALG:
		return "alg"
	case unix.AF_BLUETOOTH:
		return "bluetooth"
	case unix.AF_XDP:
		return "xdp"
	}
	return fmt.Sprintf("family-%d", domain)
}

func typeName(typ int) string {
	switch typ {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "dgram"
	case unix.SOCK_RAW:
		return "raw"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	}
	return fmt.Sprintf("type-%d", typ)
}

// ContainerPIDs returns initPID and all its descendants, parents before children, or nil when
// initPID does not exist. It follows /proc/<pid>/task/<tid>/children (every thread's
// children: a child's parent is the thread that forked it) and falls back to scanning
// /proc/*/stat when the kernel lacks that file. Processes forking while it walks may be
// missed; CRIU's own walk at dump time is the authoritative one.
func ContainerPIDs(initPID int) []int {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", initPID)); err != nil {
		return nil
	}
	out := []int{initPID}
	seen := map[int]bool{initPID: true}
	var byParent map[int][]int // lazily built fallback
	for i := 0; i < len(out); i++ {
		kids, ok := procChildren(out[i])
		if !ok {
			if byParent == nil {
				byParent = procParents()
			}
			kids = byParent[out[i]]
		}
		for _, k := range kids {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// procChildren reads the children of every thread of pid; ok is false if the kernel has no
// children files.
func procChildren(pid int) (kids []int, ok bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, true // exited
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(fmt.Sprintf("/proc/%d/task/%s", pid, t.Name())); serr == nil {
				return nil, false // the thread exists but the file does not
			}
			continue
		}
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	sort.Ints(kids)
	return kids, true
}

// procParents maps each parent PID to its children from /proc/*/stat.
func procParents() map[int][]int {
	m := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue
		}
		m[st.ppid] = append(m[st.ppid], pid)
	}
	return m
}

// procStat is the part of /proc/<pid>/stat godwit reads.
type procStat struct {
	state     byte
	ppid      int
	startTime uint64 // clock ticks after boot; with the PID it names one process
	rssPages  int64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("migrate: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("migrate: short /proc/%d/stat", pid)
	}
	var st procStat
	st.state = f[0][0]
	st.ppid, _ = strconv.Atoi(f[1])
	st.startTime, _ = strconv.ParseUint(f[19], 10, 64)
	st.rssPages, _ = strconv.ParseInt(f[21], 10, 64)
	return st, nil
}
