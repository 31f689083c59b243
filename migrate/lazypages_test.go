package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The host check is unit-tested on a file standing in for /proc/sys/fs/pipe-max-size: the
// real sysctl is shared by everyone on the machine and is not lowered for a test.
func TestCheckPipeMaxSize(t *testing.T) {
	for _, tc := range []struct {
		desc, content string
		ok            bool
		mention       string
	}{
		{"default 1 MiB is too low", "1048576\n", false, "fs.pipe-max-size >= 4194304"},
		{"exactly 4 MiB", "4194304\n", true, ""},
		{"more than enough", "16777216", true, ""},
		{"not a number", "lots\n", false, "not a number"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "pipe-max-size")
			if err := os.WriteFile(f, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			old := pipeMaxSizeFile
			pipeMaxSizeFile = f
			defer func() { pipeMaxSizeFile = old }()
			err := checkPipeMaxSize()
			if tc.ok {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err = %v, want ErrPreflight mentioning %q", err, tc.mention)
			}
		})
	}
	old := pipeMaxSizeFile
	pipeMaxSizeFile = filepath.Join(t.TempDir(), "missing")
	defer func() { pipeMaxSizeFile = old }()
	if err := checkPipeMaxSize(); !errors.Is(err, ErrPreflight) {
		t.Fatalf("missing file: err = %v, want ErrPreflight", err)
	}
}

// The lazy-pages daemon's log decides completeness; lines as CRIU 4.2 writes them.
func TestParseLazyLog(t *testing.T) {
	const found = "(00.101) uffd: 1-12: Found 33101 pages to be handled by UFFD\n"
	const child = "(00.102) uffd: 1-13: Found 5 pages to be handled by UFFD\n"
	for _, tc := range []struct {
		desc     string
		log      string
		complete bool
	}{
		{"one task, all placed", found + "(01.9) uffd: 1-12: UFFD transferred pages: (33101/33101)\n", true},
		{"two tasks, all placed", found + child + "(01.9) uffd: 1-12: UFFD transferred pages: (33101/33101)\n(01.9) uffd: 1-13: UFFD transferred pages: (5/5)\n", true},
		{"daemon killed: no summary", found + "(00.5) uffd: 1-12: uffd_copy: 0x7f0000/4096\n", false},
		{"one task's summary missing", found + child + "(01.9) uffd: 1-12: UFFD transferred pages: (33101/33101)\n", false},
		{"summary short of the total", found + "(01.9) uffd: 1-12: UFFD transferred pages: (33000/33101)\n", false},
		{"nothing at all", "", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "lazy-pages.log")
			if err := os.WriteFile(f, []byte(tc.log), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := parseLazyLog(f)
			if err != nil {
				t.Fatal(err)
			}
			if c.Complete() != tc.complete {
				t.Fatalf("%v: Complete() = %v, want %v", c, c.Complete(), tc.complete)
			}
		})
	}
}

func TestDumpLazyPages(t *testing.T) {
	f := filepath.Join(t.TempDir(), "dump.log")
	log := "(00.49) Pagemap generated: 4 pages (4 lazy) 0 holes\n(00.50) Pagemap generated: 33097 pages (33097 lazy) 2 holes\n"
	if err := os.WriteFile(f, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := dumpLazyPages(f)
	if err != nil || n != 33101 {
		t.Fatalf("dumpLazyPages = %d, %v; want 33101", n, err)
	}
	if err := os.WriteFile(f, []byte("(00.1) Dumping finished successfully\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dumpLazyPages(f); err == nil {
		t.Fatal("a log without the pagemap summary must be an error, not zero lazy pages")
	}
}

// runc reads the CRIU config file from the org.criu.config label in its state; godwit sets it
// for one checkpoint and takes it out again, leaving the rest of the state as it was.
func TestRewriteRuncLabels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	orig := `{"id":"c1","init_process_pid":42,"config":{"rootfs":"/r","labels":["bundle=/b","org.criu.config=/old"]}}`
	if err := os.WriteFile(p, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewriteRuncLabels(p, "/w/criu.conf"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `"labels":["bundle=/b","org.criu.config=/w/criu.conf"]`) || !strings.Contains(string(b), `"init_process_pid":42`) || !strings.Contains(string(b), `"rootfs":"/r"`) {
		t.Fatalf("annotated state: %s", b)
	}
	if err := rewriteRuncLabels(p, ""); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p)
	if !strings.Contains(string(b), `"labels":["bundle=/b"]`) {
		t.Fatalf("state after undo: %s", b)
	}
}

func TestLogTime(t *testing.T) {
	f := filepath.Join(t.TempDir(), "dump.log")
	log := "(00.000125) Version: 4.2.1\n(00.328695) freezing cgroup /sys/fs/cgroup/freezer/x\n(00.948553) Starting page server on port 38023\n"
	if err := os.WriteFile(f, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, ok := logTime(f, "Starting page server"); !ok || v != 0.948553 {
		t.Fatalf("logTime = %v, %v", v, ok)
	}
	if _, ok := logTime(f, "Restore finished"); ok {
		t.Fatal("found a line that is not there")
	}
}

func TestMethodFor(t *testing.T) {
	for _, tc := range []struct {
		desc, ordered, label, want string
		refused                    bool
	}{
		{"nothing said: stop-and-copy", "", "", "", false},
		{"the label chooses post-copy", "", MethodPostCopy, MethodPostCopy, false},
		{"the order wins over the label", MethodStopAndCopy, MethodPostCopy, MethodStopAndCopy, false},
		{"an unknown label value is refused, naming the label", "", "pre-copy", "", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			spec := &Spec{Name: "w", Labels: map[string]string{}}
			if tc.label != "" {
				spec.Labels[LabelMigrationMethod] = tc.label
			}
			got, err := methodFor(tc.ordered, spec)
			if tc.refused {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), LabelMigrationMethod) {
					t.Fatalf("err = %v, want ErrRefused naming %s", err, LabelMigrationMethod)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("methodFor = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
