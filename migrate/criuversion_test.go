package migrate

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/internal/testenv"
)

func TestFormatCRIUVersion(t *testing.T) {
	for _, tc := range []struct {
		v    int
		want string
	}{
		{40201, "4.2.1"},
		{40200, "4.2.0"},
		{31700, "3.17.0"},
		{41000, "4.10.0"},
	} {
		if got := FormatCRIUVersion(tc.v); got != tc.want {
			t.Errorf("FormatCRIUVersion(%d) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestCheckCRIUMissing(t *testing.T) {
	_, err := CheckCRIU(context.Background(), filepath.Join(t.TempDir(), "no-criu"))
	if !errors.Is(err, ErrPreflight) {
		t.Fatalf("err = %v, want ErrPreflight", err)
	}
	if !strings.Contains(err.Error(), "not found") {
		t.Errorf("err = %v, want it to say CRIU was not found", err)
	}
}

// A binary that is not CRIU does not answer the RPC: pre-flight fails, it does not hang.
func TestCheckCRIUNotCRIU(t *testing.T) {
	p := filepath.Join(t.TempDir(), "criu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := CheckCRIU(context.Background(), p)
	if !errors.Is(err, ErrPreflight) {
		t.Fatalf("err = %v, want ErrPreflight", err)
	}
}

func TestCheckCRIUInstalled(t *testing.T) {
	testenv.RequireCRIU(t)
	info, err := CheckCRIU(context.Background(), testenv.CRIUPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CRIU %s at %s: memtrack=%v lazy-pages=%v", info.VersionString(), info.Path, info.MemTrack, info.LazyPages)
	if info.Version < MinCRIUVersion {
		t.Errorf("version %d < %d", info.Version, MinCRIUVersion)
	}
	// ENVIRONMENT.md: this kernel has userfaultfd but no soft-dirty tracking. Compare with
	// `criu check --feature`, the CLI's view, rather than hard-coding the machine.
	if want := criuCLIFeature(t, "uffd-noncoop"); info.LazyPages != want {
		t.Errorf("LazyPages = %v, criu check --feature uffd-noncoop says %v", info.LazyPages, want)
	}
	if want := criuCLIFeature(t, "mem_dirty_track"); info.MemTrack != want {
		t.Errorf("MemTrack = %v, criu check --feature mem_dirty_track says %v", info.MemTrack, want)
	}
}

func TestDefaultCRIUPath(t *testing.T) {
	if p := DefaultCRIUPath(); p == "" {
		t.Fatal("empty path")
	}
}

func criuCLIFeature(t *testing.T, name string) bool {
	t.Helper()
	return exec.Command(testenv.CRIUPath(), "check", "--feature", name).Run() == nil
}
