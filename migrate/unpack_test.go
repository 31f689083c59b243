package migrate

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// streamEntry is one tar entry of a test stream.
type streamEntry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
}

func dirEntry(name string, mode int64) streamEntry {
	return streamEntry{name: name, typ: tar.TypeDir, mode: mode}
}

func fileEntry(name, body string, mode int64) streamEntry {
	return streamEntry{name: name, typ: tar.TypeReg, body: body, mode: mode}
}

func linkEntry(name, target string) streamEntry {
	return streamEntry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}

// tarOf writes entries as a tar; without end, the end-of-archive marker is left off.
func tarOf(t testing.TB, entries []streamEntry, end bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar body %q: %v", e.name, err)
		}
	}
	var err error
	if end {
		err = tw.Close()
	} else {
		err = tw.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unpackLayout is where a test unpacks: the roots sit a few levels below parent, so an
// escape of a few ".." lands inside parent, where outside() sees it. parent also holds a
// victim file and directory for hostile links to aim at.
type unpackLayout struct {
	parent     string
	staging    string
	checkpoint string
	volumes    map[string]string
}

func newUnpackLayout(t testing.TB) *unpackLayout {
	t.Helper()
	parent := t.TempDir()
	staging := filepath.Join(parent, "a", "b", "c", "staging")
	l := &unpackLayout{
		parent:     parent,
		staging:    staging,
		checkpoint: filepath.Join(staging, "checkpoint"),
		volumes:    map[string]string{"data": filepath.Join(staging, "volumes", "data")},
	}
	for _, d := range []string{l.checkpoint, l.volumes["data"], filepath.Join(parent, "victimdir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(parent, "victim"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *unpackLayout) volumeDir(name string) (string, error) {
	if d, ok := l.volumes[name]; ok {
		return d, nil
	}
	return "", fmt.Errorf("no volume %q", name)
}

func (l *unpackLayout) roots() []string {
	r := []string{l.checkpoint}
	for _, d := range l.volumes {
		r = append(r, d)
	}
	return r
}

func (l *unpackLayout) unpack(data []byte, lim UnpackLimits) (int64, error) {
	return unpackCheckpoint(bytes.NewReader(data), l.checkpoint, []string{"data"}, l.volumeDir, lim)
}

// outside describes everything under parent that is not a root or inside one: type, mode, owner,
// content digest or link target. Unpacking must never change it.
func (l *unpackLayout) outside(t testing.TB) map[string]string {
	t.Helper()
	roots := l.roots()
	got := map[string]string{}
	err := filepath.WalkDir(l.parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
				return nil
			}
		}
		got[p] = describePath(t, p, true)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// describePath is one path as "type mode [owner] content".
func describePath(t testing.TB, p string, owners bool) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	own := ""
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && owners {
		own = fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		return "link" + own + " -> " + target
	case fi.IsDir():
		return fmt.Sprintf("dir %04o%s", fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), own)
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 32 {
			sum := sha256.Sum256(b)
			b = []byte("sha256:" + hex.EncodeToString(sum[:8]))
		}
		perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		return fmt.Sprintf("file %04o%s %q", perm, own, b)
	default:
		return "other " + fi.Mode().String()
	}
}

// unpackedTree describes everything under root, by name relative to it.
func unpackedTree(t testing.TB, root string, owners bool) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		got[filepath.ToSlash(rel)] = describePath(t, p, owners)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// symlinksStayInside fails when a symlink under a root resolves (or, dangling, points)
// outside that root.
func symlinksStayInside(t testing.TB, l *unpackLayout) {
	t.Helper()
	for _, root := range l.roots() {
		realRoot, err := filepath.EvalSymlinks(root)
		if err != nil {
			t.Fatal(err)
		}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, _ := os.Readlink(p)
			resolved, err := filepath.EvalSymlinks(p)
			within := realRoot
			if err != nil {
				// Dangling: judge where it points, read as written.
				resolved, within = filepath.Join(filepath.Dir(p), target), root
				if filepath.IsAbs(target) {
					resolved = target
				}
			}
			if resolved != within && !strings.HasPrefix(resolved, within+string(filepath.Separator)) {
				t.Errorf("symlink %s -> %q resolves to %s, outside %s", p, target, resolved, root)
			}
			return nil
		})
	}
}

func testUID() (int, int) {
	if os.Getuid() == 0 {
		return 1234, 5678
	}
	return os.Getuid(), os.Getgid()
}

func TestUnpackRefusesHostileStreams(t *testing.T) {
	small := UnpackLimits{MaxBytes: 10, MaxEntries: 3}
	valid := tarOf(t, []streamEntry{
		dirEntry("checkpoint/", 0o700),
		fileEntry("checkpoint/pages-1.img", strings.Repeat("p", 2000), 0o600),
	}, true)
	cases := []struct {
		desc string
		// entries may use the layout for absolute names aimed at the test's own directory.
		entries func(l *unpackLayout) []streamEntry
		raw     []byte // instead of entries
		setup   func(t *testing.T, l *unpackLayout)
		lim     *UnpackLimits
		want    string // in the error
	}{
		{desc: "dot-dot at the top", want: `".." component`,
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("../x", "x", 0o644)} }},
		{desc: "dot-dot inside checkpoint/", want: `".." component`,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("checkpoint/../../x", "x", 0o644)}
			}},
		{desc: "dot-dot inside a volume", want: `".." component`,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("volumes/data/../../../x", "x", 0o644)}
			}},
		{desc: "absolute /etc name", want: "absolute name",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("/etc/godwit-x", "x", 0o644)} }},
		{desc: "absolute name aimed at the test's directory", want: "absolute name",
			entries: func(l *unpackLayout) []streamEntry {
				return []streamEntry{fileEntry(filepath.Join(l.parent, "abs"), "x", 0o644)}
			}},
		{desc: "prefix trick checkpoint../", want: "neither checkpoint nor volumes",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("checkpoint../x", "x", 0o644)} }},
		{desc: "prefix trick checkpointx/", want: "neither checkpoint nor volumes",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("checkpointx/y", "x", 0o644)} }},
		{desc: "checkpoint.img at the top", want: "neither checkpoint nor volumes",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("checkpoint.img", "x", 0o644)} }},
		{desc: "prefix trick volumesx/", want: "neither checkpoint nor volumes",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("volumesx/data/f", "x", 0o644)} }},
		{desc: "a file named checkpoint", want: "root must be a directory",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("checkpoint", "x", 0o644)} }},
		{desc: "a file named volumes", want: "volumes must be a directory",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("volumes", "x", 0o644)} }},
		{desc: "a volume's root as a symlink", want: "root must be a directory",
			entries: func(l *unpackLayout) []streamEntry { return []streamEntry{linkEntry("volumes/data", "x")} }},
		{desc: "unclean name with a . component", want: "not a clean path",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("checkpoint/./x", "x", 0o644)} }},
		{desc: "unclean name with an empty component", want: "not a clean path",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("checkpoint//x", "x", 0o644)} }},
		{desc: "unknown volume", want: `volume "other" is not one of`,
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("volumes/other/f", "x", 0o644)} }},
		{desc: "symlink with an absolute target", want: "absolute symlink target",
			entries: func(l *unpackLayout) []streamEntry {
				return []streamEntry{linkEntry("checkpoint/l", filepath.Join(l.parent, "victimdir"))}
			}},
		{desc: "symlink climbing out with ../../..", want: "leaves its root",
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{linkEntry("checkpoint/d/l", "../../..")} }},
		{desc: "volume symlink climbing into the checkpoint", want: "leaves its root",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{linkEntry("volumes/data/l", "../../../checkpoint")}
			}},
		{desc: "symlink climbing after a named component (a chain could leave the root)", want: `".." after a named component`,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{
					dirEntry("checkpoint/d/", 0o755),
					dirEntry("checkpoint/d/e/", 0o755),
					linkEntry("checkpoint/d/e/s", "../../x"),
					linkEntry("checkpoint/d/e/up", "s/../../.."),
				}
			}},
		{desc: "a symlink, then a file written through it", want: "already wrote",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{
					fileEntry("checkpoint/target", "t", 0o644),
					linkEntry("checkpoint/l", "target"),
					fileEntry("checkpoint/l", "through", 0o644),
				}
			}},
		{desc: "a symlink to a directory, then a file under it", want: "is a file or symlink of this stream",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{
					dirEntry("checkpoint/d/", 0o755),
					linkEntry("checkpoint/l", "d"),
					fileEntry("checkpoint/l/x", "under", 0o644),
				}
			}},
		{desc: "a file under a symlink that was there before", want: `parent "pre" is a symlink`,
			setup: func(t *testing.T, l *unpackLayout) {
				if err := os.Symlink(filepath.Join(l.parent, "victimdir"), filepath.Join(l.volumes["data"], "pre")); err != nil {
					t.Fatal(err)
				}
			},
			entries: func(*unpackLayout) []streamEntry { return []streamEntry{fileEntry("volumes/data/pre/x", "x", 0o644)} }},
		{desc: "a file under a file", want: "is a file or symlink of this stream",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("checkpoint/f", "f", 0o644), fileEntry("checkpoint/f/x", "x", 0o644)}
			}},
		{desc: "the same file twice", want: "already wrote",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("checkpoint/f", "1", 0o644), fileEntry("checkpoint/f", "2", 0o644)}
			}},
		{desc: "hard link", want: "hard link",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{
					fileEntry("checkpoint/f", "f", 0o644),
					{name: "checkpoint/h", typ: tar.TypeLink, link: "checkpoint/f"},
				}
			}},
		{desc: "hard link to a file outside", want: "hard link",
			entries: func(l *unpackLayout) []streamEntry {
				return []streamEntry{{name: "checkpoint/h", typ: tar.TypeLink, link: filepath.Join(l.parent, "victim")}}
			}},
		{desc: "char device", want: "device node",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{{name: "checkpoint/null", typ: tar.TypeChar, mode: 0o666}}
			}},
		{desc: "block device", want: "device node",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{{name: "volumes/data/sda", typ: tar.TypeBlock, mode: 0o660}}
			}},
		{desc: "fifo", want: "fifo",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{{name: "checkpoint/fifo", typ: tar.TypeFifo, mode: 0o644}}
			}},
		{desc: "contiguous file (unknown type)", want: "not a file, directory or symlink",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{{name: "checkpoint/c", typ: tar.TypeCont, mode: 0o644}}
			}},
		{desc: "oversize file", want: "oversize", lim: &small,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("checkpoint/big", strings.Repeat("b", 11), 0o644)}
			}},
		{desc: "oversize in total", want: "oversize", lim: &small,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("checkpoint/a", "123456", 0o644), fileEntry("volumes/data/b", "123456", 0o644)}
			}},
		{desc: "too many entries", want: "more than 3 entries", lim: &small,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{
					dirEntry("checkpoint/", 0o700), dirEntry("checkpoint/a/", 0o700),
					dirEntry("checkpoint/b/", 0o700), dirEntry("checkpoint/c/", 0o700),
				}
			}},
		{desc: "a deep name counts the directories made for it", want: "counting the directories made for them", lim: &small,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{fileEntry("checkpoint/a/b/c/d/f", "f", 0o644)}
			}},
		{desc: "long names past the name budget", want: "names and link targets total more than", lim: &small,
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{
					fileEntry("checkpoint/"+strings.Repeat("n", 250), "", 0o644),
					linkEntry("checkpoint/l", strings.Repeat("m/", 100)+"x"),
				}
			}},
		{desc: "a negative owner in a volume", want: "not a valid uid:gid",
			entries: func(*unpackLayout) []streamEntry {
				return []streamEntry{{name: "volumes/data/f", typ: tar.TypeReg, body: "x", mode: 0o644, uid: -5, gid: 0}}
			}},
		{desc: "truncated inside a file's content", want: "truncated", raw: valid[:2*tarBlockSize+700]},
		{desc: "truncated inside a header", want: "truncated",
			raw: append(tarOf(t, []streamEntry{dirEntry("checkpoint/", 0o700)}, false), tarOf(t, []streamEntry{fileEntry("checkpoint/a", "a", 0o600)}, true)[:100]...)},
		{desc: "truncated between entries (no end marker)", want: "without the tar end marker",
			raw: tarOf(t, []streamEntry{dirEntry("checkpoint/", 0o700), fileEntry("checkpoint/a", "a", 0o600)}, false)},
		{desc: "not a tar", want: "malformed or truncated tar", raw: bytes.Repeat([]byte("not a tar "), 100)},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			l := newUnpackLayout(t)
			if tc.setup != nil {
				tc.setup(t, l)
			}
			data := tc.raw
			if data == nil {
				data = tarOf(t, tc.entries(l), true)
			}
			lim := DefaultUnpackLimits()
			if tc.lim != nil {
				lim = *tc.lim
			}
			before := l.outside(t)
			_, err := l.unpack(data, lim)
			if !errors.Is(err, ErrUnsafeStream) {
				t.Fatalf("err = %v, want ErrUnsafeStream", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
			if diff := cmp.Diff(before, l.outside(t)); diff != "" {
				t.Errorf("outside the roots changed (-before +after):\n%s", diff)
			}
			if tc.setup == nil { // setup may plant links of its own
				symlinksStayInside(t, l)
			}
		})
	}
}

func TestUnpackValidStreams(t *testing.T) {
	uid, gid := testUID()
	owned := func(e streamEntry) streamEntry { e.uid, e.gid = uid, gid; return e }
	own := fmt.Sprintf(" %d:%d", uid, gid)
	big := strings.Repeat("0123456789", 1000)
	cases := []struct {
		desc       string
		setup      func(t *testing.T, l *unpackLayout)
		entries    []streamEntry
		wantBytes  int64
		checkpoint map[string]string
		volume     map[string]string // the data volume, with owners
	}{
		{
			desc: "nested directories, safe relative symlinks, a volume with owners",
			entries: []streamEntry{
				dirEntry("checkpoint/", 0o755),
				fileEntry("checkpoint/inventory.img", "inv", 0o600),
				dirEntry("checkpoint/d/", 0o750),
				dirEntry("checkpoint/d/e/", 0o700),
				fileEntry("checkpoint/d/e/pages-1.img", big, 0o644),
				linkEntry("checkpoint/d/pages", "e/pages-1.img"),
				linkEntry("checkpoint/d/e/inv", "../../inventory.img"),
				linkEntry("checkpoint/d/self", "."),
				linkEntry("checkpoint/d/root", ".."),
				dirEntry("volumes/", 0o755),
				owned(dirEntry("volumes/data/", 0o750)),
				owned(dirEntry("volumes/data/sub/", 0o700)),
				owned(fileEntry("volumes/data/sub/db", "rows", 0o640)),
				owned(linkEntry("volumes/data/sub/up", "../top")),
				owned(fileEntry("volumes/data/top", "t", 0o644)),
			},
			wantBytes: int64(3 + len(big) + 4 + 1),
			checkpoint: map[string]string{
				// The checkpoint directory keeps the mode its creator gave it.
				".":               "dir 0755",
				"inventory.img":   `file 0600 "inv"`,
				"d":               "dir 0750",
				"d/e":             "dir 0700",
				"d/e/pages-1.img": describeContent(0o644, big),
				"d/pages":         "link -> e/pages-1.img",
				"d/e/inv":         "link -> ../../inventory.img",
				"d/self":          "link -> .",
				"d/root":          "link -> ..",
			},
			volume: map[string]string{
				".":      "dir 0750" + own,
				"sub":    "dir 0700" + own,
				"sub/db": `file 0640` + own + ` "rows"`,
				"sub/up": "link" + own + " -> ../top",
				"top":    `file 0644` + own + ` "t"`,
			},
		},
		{
			desc: "setuid, setgid and sticky bits are dropped",
			entries: []streamEntry{
				fileEntry("checkpoint/suid", "s", 0o4755),
				fileEntry("volumes/data/sgid", "g", 0o2755),
				dirEntry("volumes/data/tmp/", 0o1777),
			},
			wantBytes:  2,
			checkpoint: map[string]string{".": "dir 0755", "suid": `file 0755 "s"`},
			volume: map[string]string{
				".":    "dir 0755 0:0",
				"sgid": `file 0755 0:0 "g"`,
				"tmp":  "dir 0777 0:0",
			},
		},
		{
			desc: "a directory entry after its contents, a read-only directory filled, ./ names",
			entries: []streamEntry{
				fileEntry("./checkpoint/a/b", "b", 0o600),
				dirEntry("./checkpoint/a/", 0o750),
				dirEntry("checkpoint/ro/", 0o500),
				fileEntry("checkpoint/ro/f", "f", 0o400),
			},
			wantBytes: 2,
			checkpoint: map[string]string{
				".": "dir 0755", "a": "dir 0750", "a/b": `file 0600 "b"`,
				"ro": "dir 0500", "ro/f": `file 0400 "f"`,
			},
			volume: map[string]string{".": "dir 0755 0:0"},
		},
		{
			desc: "what a volume already holds is replaced, never written through",
			setup: func(t *testing.T, l *unpackLayout) {
				vol := l.volumes["data"]
				// A symlink out of the volume and a hard link to a file outside it: writing
				// through either would change the victim.
				if err := os.Symlink(filepath.Join(l.parent, "victim"), filepath.Join(vol, "sym")); err != nil {
					t.Fatal(err)
				}
				if err := os.Link(filepath.Join(l.parent, "victim"), filepath.Join(vol, "hard")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(l.parent, "victimdir"), filepath.Join(vol, "dirlink")); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(vol, "old"), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			entries: []streamEntry{
				owned(fileEntry("volumes/data/sym", "new", 0o644)),
				owned(fileEntry("volumes/data/hard", "new", 0o644)),
				owned(dirEntry("volumes/data/dirlink/", 0o755)),
				owned(fileEntry("volumes/data/dirlink/x", "x", 0o644)),
				owned(linkEntry("volumes/data/old", "sym")),
			},
			wantBytes:  7,
			checkpoint: map[string]string{".": "dir 0755"},
			volume: map[string]string{
				".":         "dir 0755 0:0",
				"sym":       `file 0644` + own + ` "new"`,
				"hard":      `file 0644` + own + ` "new"`,
				"dirlink":   "dir 0755" + own,
				"dirlink/x": `file 0644` + own + ` "x"`,
				"old":       "link" + own + " -> sym",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			l := newUnpackLayout(t)
			if tc.setup != nil {
				tc.setup(t, l)
			}
			before := l.outside(t)
			n, err := l.unpack(tarOf(t, tc.entries, true), DefaultUnpackLimits())
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.wantBytes {
				t.Errorf("bytes = %d, want %d", n, tc.wantBytes)
			}
			if diff := cmp.Diff(tc.checkpoint, unpackedTree(t, l.checkpoint, false)); diff != "" {
				t.Errorf("checkpoint (-want +got):\n%s", diff)
			}
			if os.Getuid() == 0 {
				if diff := cmp.Diff(tc.volume, unpackedTree(t, l.volumes["data"], true)); diff != "" {
					t.Errorf("volume (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(before, l.outside(t)); diff != "" {
				t.Errorf("outside the roots changed (-before +after):\n%s", diff)
			}
			symlinksStayInside(t, l)
		})
	}
}

func describeContent(perm fs.FileMode, body string) string {
	sum := sha256.Sum256([]byte(body))
	return fmt.Sprintf("file %04o %q", perm, "sha256:"+hex.EncodeToString(sum[:8]))
}

// TestUnpackWhatTheSourceSends unpacks what the source's writer (addTree) produces from a
// real directory, so the two stay compatible.
func TestUnpackWhatTheSourceSends(t *testing.T) {
	src := t.TempDir()
	ck := filepath.Join(src, "ck")
	vol := filepath.Join(src, "vol")
	for _, d := range []string{filepath.Join(ck, "sub"), filepath.Join(vol, "deep", "er")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(ck, "inventory.img"):          "inv",
		filepath.Join(ck, "sub", "pages-1.img"):     strings.Repeat("x", 5000),
		filepath.Join(vol, "deep", "er", "data.db"): "rows",
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("er/data.db", filepath.Join(vol, "deep", "current")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := addTree(tw, ck, "checkpoint"); err != nil {
		t.Fatal(err)
	}
	if err := addTree(tw, vol, "volumes/data"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l := newUnpackLayout(t)
	n, err := l.unpack(buf.Bytes(), DefaultUnpackLimits())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3+5000+4 {
		t.Errorf("bytes = %d, want %d", n, 3+5000+4)
	}
	dropRoot := func(m map[string]string) map[string]string { delete(m, "."); return m }
	if diff := cmp.Diff(dropRoot(unpackedTree(t, ck, false)), dropRoot(unpackedTree(t, l.checkpoint, false))); diff != "" {
		t.Errorf("checkpoint (-sent +unpacked):\n%s", diff)
	}
	if diff := cmp.Diff(unpackedTree(t, vol, true), unpackedTree(t, l.volumes["data"], true)); diff != "" {
		t.Errorf("volume (-sent +unpacked):\n%s", diff)
	}
}

func TestUnpackLimitsValidate(t *testing.T) {
	cases := []struct {
		desc string
		lim  UnpackLimits
		want string // "" for valid
	}{
		{"defaults", DefaultUnpackLimits(), ""},
		{"zero value", UnpackLimits{}, "MaxBytes is 0"},
		{"negative entries", UnpackLimits{MaxBytes: 1, MaxEntries: -1}, "MaxEntries is -1"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.lim.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			l := newUnpackLayout(t)
			if _, err := l.unpack(nil, tc.lim); err == nil {
				t.Fatal("unpack with invalid limits succeeded")
			}
		})
	}
}

func TestCleanEntryName(t *testing.T) {
	cases := []struct {
		desc, raw string
		dir       bool
		want      string // the clean name, or the reason it is refused
	}{
		{"plain", "checkpoint/pages-1.img", false, "checkpoint/pages-1.img"},
		{"leading ./", "./checkpoint/x", false, "checkpoint/x"},
		{"directory with trailing slash", "volumes/data/", true, "volumes/data"},
		{"file with trailing slash", "checkpoint/x/", false, "not a clean path"},
		{"empty", "", false, "empty name"},
		{"only ./", "./", true, "empty name"},
		{"NUL (tar writers cannot encode it; a forged header might)", "checkpoint/a\x00b", false, "NUL in name"},
		{"absolute", "/checkpoint/x", false, "absolute name"},
		{"dot-dot", "checkpoint/../x", false, `".." component`},
		{"over-long component", "checkpoint/" + strings.Repeat("c", 256), false, "component longer than 255 bytes"},
		{"over-long name", strings.Repeat("checkpoint/", 400), true, "name longer than 4095 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			name, reason := cleanEntryName(tc.raw, tc.dir)
			got := name
			if reason != "" {
				got = reason
			}
			if !strings.Contains(got, tc.want) || (reason == "" && got != tc.want) {
				t.Errorf("cleanEntryName(%q) = %q, %q; want %q", tc.raw, name, reason, tc.want)
			}
		})
	}
}
