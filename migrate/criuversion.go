package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	criu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// MinCRIUVersion is the oldest CRIU godwit accepts, as major*10000+minor*100+sublevel.
// Older releases fail here: 3.17 cannot parse this kernel's vDSO, 4.1 cannot dump a process
// holding a TCP socket (see ENVIRONMENT.md).
const MinCRIUVersion = 40200

// defaultCRIUPath is where scripts/install-criu.sh installs the criu wrapper.
const defaultCRIUPath = "/opt/godwit/bin/criu"

// CRIUInfo is what CheckCRIU found out about one CRIU binary on this kernel.
type CRIUInfo struct {
	// Path is the binary that was asked.
	Path string `json:"path"`
	// Version is major*10000+minor*100+sublevel, e.g. 40201.
	Version int `json:"version"`
	// MemTrack reports soft-dirty memory tracking, needed for pre-dump (iterative
	// pre-copy). Kernels built without CONFIG_MEM_SOFT_DIRTY lack it.
	MemTrack bool `json:"memTrack"`
	// LazyPages reports userfaultfd support, needed for lazy restore (post-copy).
	LazyPages bool `json:"lazyPages"`
}

// VersionString formats Version as "4.2.1".
func (i CRIUInfo) VersionString() string {
	return FormatCRIUVersion(i.Version)
}

// FormatCRIUVersion formats a go-criu version number (40201) as "4.2.1".
func FormatCRIUVersion(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// DefaultCRIUPath is the project's own CRIU install when present, else "criu" from PATH
// (the bare name when PATH has none, so the error names what was looked for).
func DefaultCRIUPath() string {
	if _, err := os.Stat(defaultCRIUPath); err == nil {
		return defaultCRIUPath
	}
	if p, err := exec.LookPath("criu"); err == nil {
		return p
	}
	return "criu"
}

// CheckCRIU asks the CRIU at criuPath ("" means DefaultCRIUPath) for its version and for the
// kernel-dependent features godwit can use. It errors, wrapping ErrPreflight, when CRIU is
// missing, does not answer, or is older than MinCRIUVersion. Nothing is cached: it costs
// two short-lived `criu swrk` processes (tens of milliseconds), cheap enough per migration.
func CheckCRIU(ctx context.Context, criuPath string) (CRIUInfo, error) {
	if criuPath == "" {
		criuPath = DefaultCRIUPath()
	}
	info := CRIUInfo{Path: criuPath}
	if _, err := exec.LookPath(criuPath); err != nil {
		return info, fmt.Errorf("%w: CRIU not found at %q (install CRIU >= %s, e.g. scripts/install-criu.sh): %v",
			ErrPreflight, criuPath, FormatCRIUVersion(MinCRIUVersion), err)
	}
	if err := ctx.Err(); err != nil {
		return info, err
	}
	c := criu.MakeCriu()
	c.SetCriuPath(criuPath)
	v, err := c.GetCriuVersion()
	if err != nil {
		return info, fmt.Errorf("%w: asking CRIU %q for its version: %v", ErrPreflight, criuPath, err)
	}
	info.Version = v
	if v < MinCRIUVersion {
		return info, fmt.Errorf("%w: CRIU %s at %q is too old: godwit needs >= %s (older releases fail on this kernel's vDSO or on TCP sockets)",
			ErrPreflight, FormatCRIUVersion(v), criuPath, FormatCRIUVersion(MinCRIUVersion))
	}
	feats, err := criuFeatures(ctx, criuPath)
	if err != nil {
		return info, fmt.Errorf("%w: asking CRIU %q for its features: %v", ErrPreflight, criuPath, err)
	}
	info.MemTrack = feats.GetMemTrack()
	info.LazyPages = feats.GetLazyPages()
	return info, nil
}

// criuFeatures runs CRIU's FEATURE_CHECK RPC. go-criu v7.2.0's Criu.FeatureCheck returns
// the request instead of CRIU's answer (every feature asked for reads as available), so
// this speaks the same swrk protocol with go-criu's message types and reads the response.
func criuFeatures(ctx context.Context, criuPath string) (*rpc.CriuFeatures, error) {
	fds, err := syscall.Socketpair(syscall.AF_LOCAL, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	cln := os.NewFile(uintptr(fds[0]), "criu-rpc-client")
	srv := os.NewFile(uintptr(fds[1]), "criu-rpc-server")
	defer cln.Close()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// ExtraFiles[0] is fd 3 in the child.
	cmd := exec.CommandContext(ctx, criuPath, "swrk", "3")
	cmd.ExtraFiles = []*os.File{srv}
	err = cmd.Start()
	srv.Close()
	if err != nil {
		return nil, err
	}
	defer func() {
		cln.Close()
		_ = cmd.Wait()
	}()
	// A cancelled ctx kills criu, which makes the read below fail.
	typ := rpc.CriuReqType_FEATURE_CHECK
	req, err := proto.Marshal(&rpc.CriuReq{
		Type:     &typ,
		Features: &rpc.CriuFeatures{MemTrack: proto.Bool(true), LazyPages: proto.Bool(true)},
	})
	if err != nil {
		return nil, err
	}
	if _, err := cln.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 8192)
	n, err := cln.Read(buf)
	if err != nil {
		return nil, err
	}
	var resp rpc.CriuResp
	if err := proto.Unmarshal(buf[:n], &resp); err != nil {
		return nil, err
	}
	if !resp.GetSuccess() || resp.GetType() != typ {
		return nil, errors.New("feature check failed (errno " + strconv.Itoa(int(resp.GetCrErrno())) + ")")
	}
	return resp.GetFeatures(), nil
}
