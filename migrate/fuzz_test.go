package migrate

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fuzz targets for what a node reads off the wire: the stream framing, the checkpoint tar
// and image archives. Plain `go test` runs each seed once; `go test -fuzz FuzzX` explores.
// Every target checks the same safety property as the table tests: nothing outside the
// roots it was given changes, and no symlink under a root leads out of it.

// fuzzUnpackLimits keep each input cheap while leaving room to reach both limits.
var fuzzUnpackLimits = UnpackLimits{MaxBytes: 1 << 20, MaxEntries: 64}

// fuzzSeedParent stands in for a layout's parent in seeds (inputs are fixed bytes).
const fuzzSeedParent = "/tmp/godwit-fuzz"

// unpackSeeds are valid and hostile checkpoint streams.
func unpackSeeds(t testing.TB) [][]byte {
	valid := []streamEntry{
		dirEntry("checkpoint/", 0o700),
		fileEntry("checkpoint/inventory.img", "inv", 0o600),
		dirEntry("checkpoint/d/", 0o750),
		fileEntry("checkpoint/d/pages-1.img", strings.Repeat("p", 600), 0o600),
		linkEntry("checkpoint/d/inv", "../inventory.img"),
		dirEntry("volumes/", 0o755),
		{name: "volumes/data/", typ: tar.TypeDir, mode: 0o750, uid: 1234, gid: 5678},
		{name: "volumes/data/f", typ: tar.TypeReg, body: "rows", mode: 0o640, uid: 1234, gid: 5678},
	}
	hostile := [][]streamEntry{
		{fileEntry("../x", "x", 0o644)},
		{fileEntry("checkpoint/../../x", "x", 0o644)},
		{fileEntry(fuzzSeedParent+"/abs", "x", 0o644)},
		{fileEntry("checkpoint../x", "x", 0o644)},
		{fileEntry("checkpointx/y", "x", 0o644)},
		{fileEntry("volumesx/data/f", "x", 0o644)},
		{fileEntry("volumes/other/f", "x", 0o644)},
		{linkEntry("checkpoint/l", fuzzSeedParent+"/victimdir"), fileEntry("checkpoint/l/x", "x", 0o644)},
		{linkEntry("checkpoint/l", "../../.."), fileEntry("checkpoint/l/x", "x", 0o644)},
		{linkEntry("checkpoint/l", "x"), fileEntry("checkpoint/l", "through", 0o644)},
		{dirEntry("checkpoint/d/", 0o755), linkEntry("checkpoint/l", "d"), fileEntry("checkpoint/l/x", "x", 0o644)},
		{linkEntry("checkpoint/d/e/s", "../../x"), linkEntry("checkpoint/d/e/up", "s/../../..")},
		{linkEntry("volumes/data/l", "../../../checkpoint"), fileEntry("volumes/data/l/x", "x", 0o644)},
		{{name: "checkpoint/h", typ: tar.TypeLink, link: fuzzSeedParent + "/victim"}},
		{{name: "checkpoint/null", typ: tar.TypeChar, mode: 0o666}},
		{{name: "checkpoint/fifo", typ: tar.TypeFifo, mode: 0o644}},
		{fileEntry("checkpoint/big", strings.Repeat("b", 4096), 0o644)},
	}
	seeds := [][]byte{tarOf(t, valid, true), tarOf(t, valid, false), tarOf(t, valid, true)[:1500], nil}
	for _, h := range hostile {
		seeds = append(seeds, tarOf(t, h, true))
	}
	return seeds
}

// checkUnpackConfined fails when unpacking changed anything outside l's roots or left a
// symlink leading out of one.
func checkUnpackConfined(t *testing.T, l *unpackLayout, before map[string]string) {
	t.Helper()
	if diff := cmp.Diff(before, l.outside(t)); diff != "" {
		t.Fatalf("outside the roots changed (-before +after):\n%s", diff)
	}
	symlinksStayInside(t, l)
}

func FuzzUnpackCheckpoint(f *testing.F) {
	for _, s := range unpackSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := newUnpackLayout(t)
		before := l.outside(t)
		n, err := l.unpack(data, fuzzUnpackLimits)
		if err == nil && n > fuzzUnpackLimits.MaxBytes {
			t.Fatalf("wrote %d bytes, over the %d-byte limit", n, fuzzUnpackLimits.MaxBytes)
		}
		checkUnpackConfined(t, l, before)
	})
}

// framedStream is payload as sendStream frames it.
func framedStream(t testing.TB, payload []byte, compress bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, _, err := sendStream(&buf, compress, int64(len(payload)), "test", nil, func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzReceiveStream(f *testing.F) {
	for i, s := range unpackSeeds(f) {
		for _, compress := range []bool{false, true} {
			framed := framedStream(f, s, compress)
			f.Add(framed, compress)
			if i == 0 { // the valid stream, damaged in transit
				f.Add(framed[:len(framed)/2], compress) // cut mid-stream
				f.Add(framed[:len(framed)-4], compress) // trailer cut short
				flipped := slices.Clone(framed)
				flipped[len(flipped)/2] ^= 0x40
				f.Add(flipped, compress)
			}
		}
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, false) // a frame over maxFrame
	f.Add([]byte{0, 0, 0, 0}, true)              // end frame with nothing before, no trailer
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		if _, err := receiveStream(bytes.NewReader(data), compressed, func(r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}); err == nil && len(data) < 8 {
			t.Fatalf("accepted %d bytes as a whole stream", len(data))
		}
		l := newUnpackLayout(t)
		before := l.outside(t)
		_, _ = receiveStream(bytes.NewReader(data), compressed, func(r io.Reader) error {
			_, err := unpackCheckpoint(r, l.checkpoint, []string{"data"}, l.volumeDir, fuzzUnpackLimits)
			return err
		})
		checkUnpackConfined(t, l, before)
	})
}

func FuzzImageArchiveInfo(f *testing.F) {
	a, b := newTestImage("a"), newTestImage("b")
	tags := [][]string{{"alpine:3.19"}}
	for _, entries := range [][]streamEntry{
		legacyArchive(f, []testImage{a}, tags),
		legacyArchive(f, []testImage{a, b}, [][]string{{"a:1"}, {"b:1"}}),
		ociArchive(f, []testImage{a}, tags),
		ociArchive(f, []testImage{a, b}, nil),
		append(legacyArchive(f, []testImage{a}, tags), fileEntry("./manifest.json", `[{"Config":"x.json"}]`, 0o644)),
		append(replaced(legacyArchive(f, []testImage{a}, tags), "manifest.json", "", true), linkEntry("manifest.json", "x")),
		replaced(ociArchive(f, []testImage{a}, tags), "index.json", `{"manifests":[{"digest":"sha256:zz"}]}`, false),
	} {
		f.Add(tarOf(f, entries, true))
	}
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "image.tar")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ids, _, infoErr := imageArchiveInfo(p)
		want := "sha256:" + strings.Repeat("0", 64)
		if len(ids) > 0 {
			want = ids[0]
		}
		_ = checkImageArchive(p, want, nil)
		var out bytes.Buffer
		if err := writeUntaggedArchive(p, &out); err != nil || infoErr != nil {
			return
		}
		// What the untagged copy would load: the same images, and no tags.
		q := filepath.Join(dir, "untagged.tar")
		if err := os.WriteFile(q, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		uids, utags, err := imageArchiveInfo(q)
		if err != nil {
			t.Fatalf("untagged copy of a readable archive unreadable: %v", err)
		}
		if !slices.Equal(ids, uids) || len(utags) != 0 {
			t.Fatalf("untagged copy: ids %q tags %q; original ids %q", uids, utags, ids)
		}
	})
}
