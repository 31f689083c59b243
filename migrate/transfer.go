package migrate

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Framing and streams of the node-to-node protocol (wire.go has the requests). A frame is a 4-byte big-endian length and that many bytes. A stream is data frames ended by
// an empty frame, then a trailer frame (JSON: sha256 and length of the uncompressed bytes).
// With compression the data frames carry one zstd stream; the sha256 is always over the
// uncompressed bytes, so corruption is caught whatever the encoding.

const (
	// maxFrame bounds a frame; a larger length means the stream is corrupt.
	maxFrame  = 4 << 20
	chunkSize = 1 << 20
	// maxDrain bounds what a receiver reads past the point where it stopped consuming
	// (to check the sha256 of a stream it could not parse): no more work for a bomb.
	maxDrain = 64 << 20
)

type trailer struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

func writeFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds the %d-byte limit: stream corrupted in transit", ErrChecksum, n, maxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func writeJSONFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(w, b)
}

func readJSONFrame(r io.Reader, v any) error {
	b, err := readFrame(r, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// frameWriter turns writes into data frames.
type frameWriter struct {
	w io.Writer
	n int64 // bytes on the wire, payload only
}

func (f *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunkSize)
		if err := writeFrame(f.w, p[:n]); err != nil {
			return written, err
		}
		f.n += int64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// frameReader reads data frames until the empty frame.
type frameReader struct {
	r    io.Reader
	buf  []byte
	rest []byte
	done bool
	n    int64
}

func (f *frameReader) Read(p []byte) (int, error) {
	for len(f.rest) == 0 {
		if f.done {
			return 0, io.EOF
		}
		b, err := readFrame(f.r, f.buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		f.buf = b[:cap(b)]
		if len(b) == 0 {
			f.done = true
			return 0, io.EOF
		}
		f.n += int64(len(b))
		f.rest = b
	}
	n := copy(p, f.rest)
	f.rest = f.rest[n:]
	return n, nil
}

// Progress reports how far a stream has got.
type Progress struct {
	Phase string
	Bytes int64 // uncompressed bytes sent so far
	Total int64 // expected total, 0 when unknown
}

// countingWriter counts bytes and reports progress about every 16 MiB.
type countingWriter struct {
	w        io.Writer
	n        int64
	total    int64
	phase    string
	progress func(Progress)
	next     int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.progress != nil && c.n >= c.next {
		c.progress(Progress{Phase: c.phase, Bytes: c.n, Total: c.total})
		c.next = c.n + 16<<20
	}
	return n, err
}

// sendStream writes produce's output as a stream: frames (optionally zstd), end frame,
// trailer. It returns the uncompressed and on-the-wire byte counts.
func sendStream(w io.Writer, compress bool, total int64, phase string, progress func(Progress), produce func(io.Writer) error) (raw, wire int64, err error) {
	fw := &frameWriter{w: w}
	var sink io.Writer = fw
	var enc *zstd.Encoder
	if compress {
		enc, err = zstd.NewWriter(fw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2))
		if err != nil {
			return 0, 0, err
		}
		sink = enc
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(sink, h), total: total, phase: phase, progress: progress}
	bw := bufio.NewWriterSize(cw, chunkSize)
	if err := produce(bw); err != nil {
		return cw.n, fw.n, err
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fw.n, err
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return cw.n, fw.n, err
		}
	}
	if progress != nil {
		progress(Progress{Phase: phase, Bytes: cw.n, Total: total})
	}
	if err := writeFrame(w, nil); err != nil {
		return cw.n, fw.n, err
	}
	err = writeJSONFrame(w, trailer{SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: cw.n})
	return cw.n, fw.n, err
}

// receiveStream hands consume the stream's uncompressed bytes, then checks the trailer's
// sha256. consume must read to EOF. A mismatch or any decoding failure is ErrChecksum.
func receiveStream(r io.Reader, compressed bool, consume func(io.Reader) error) (int64, error) {
	fr := &frameReader{r: r}
	var src io.Reader = fr
	var dec *zstd.Decoder
	if compressed {
		var err error
		dec, err = zstd.NewReader(fr, zstd.WithDecoderConcurrency(2))
		if err != nil {
			return 0, err
		}
		defer dec.Close()
		src = dec
	}
	h := sha256.New()
	hr := &hashingReader{r: src, h: h}
	if err := consume(hr); err != nil {
		if errors.Is(err, ErrUnsafeStream) {
			// Refused on content, not corruption: reading on (perhaps a decompression
			// bomb) would only cost more.
			return hr.n, err
		}
		// A corrupt byte usually shows first as a tar or zstd error. Read what is left so
		// the checksum can say so plainly.
		_, _ = io.Copy(io.Discard, io.LimitReader(hr, maxDrain))
		if t, terr := readTrailer(r, fr); terr == nil && t.SHA256 != hex.EncodeToString(h.Sum(nil)) {
			return hr.n, fmt.Errorf("%w: sha256 of the %d bytes received differs from the sender's (%s): stream corrupted in transit (%v)", ErrChecksum, hr.n, short(t.SHA256), err)
		}
		if errors.Is(err, ErrChecksum) {
			return hr.n, err
		}
		return hr.n, fmt.Errorf("%w: checkpoint stream unreadable: %v", ErrChecksum, err)
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(hr, maxDrain+1)); err != nil {
		return hr.n, fmt.Errorf("%w: %v", ErrChecksum, err)
	} else if n > maxDrain {
		return hr.n, fmt.Errorf("%w: more than %d bytes after the end of the archive", ErrUnsafeStream, maxDrain)
	}
	t, err := readTrailer(r, fr)
	if err != nil {
		return hr.n, fmt.Errorf("%w: stream trailer: %v", ErrChecksum, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if t.SHA256 != got || t.Bytes != hr.n {
		return hr.n, fmt.Errorf("%w: received %d bytes with sha256 %s, sender sent %d bytes with sha256 %s: stream corrupted in transit",
			ErrChecksum, hr.n, short(got), t.Bytes, short(t.SHA256))
	}
	return hr.n, nil
}

// short is the start of a hex digest for messages; any string is safe.
func short(digest string) string {
	if len(digest) > 16 {
		return digest[:16]
	}
	return digest
}

func readTrailer(r io.Reader, fr *frameReader) (trailer, error) {
	// Drain to the end frame if the consumer stopped early.
	if !fr.done {
		if _, err := io.Copy(io.Discard, fr); err != nil {
			return trailer{}, err
		}
	}
	var t trailer
	err := readJSONFrame(r, &t)
	return t, err
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// writeTar writes dir's regular files and directories to w, names relative to dir. It does not
// close the tar writer's stream beyond the archive end.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	if err := addTree(tw, dir, ""); err != nil {
		return err
	}
	return tw.Close()
}

// addTree adds dir's contents under prefix to tw.
func addTree(tw *tar.Writer, dir, prefix string) error {
	return filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == "." {
			if prefix == "" {
				return nil
			}
			rel = ""
		}
		name := filepath.ToSlash(filepath.Join(prefix, rel))
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("migrate: %s: %w", path, err)
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
}

// readTar unpacks a tar stream into dir.
func readTar(r io.Reader, dir string) error {
	return extractTar(r, func(name string) (string, bool) { return filepath.Join(dir, name), true })
}

// extractTar unpacks a tar stream, mapping each entry name to a destination path (false:
// skip). Names that escape their destination are refused.
func extractTar(r io.Reader, dest func(name string) (string, bool)) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		clean := filepath.Clean(hdr.Name)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("%w: tar entry %q escapes its directory", ErrChecksum, hdr.Name)
		}
		path, ok := dest(clean)
		if !ok {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return err
			}
			continue
		}
		mode := os.FileMode(hdr.Mode) & os.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, mode|0o700); err != nil {
				return err
			}
			_ = os.Chown(path, hdr.Uid, hdr.Gid)
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			_ = os.Chown(path, hdr.Uid, hdr.Gid)
		case tar.TypeSymlink:
			_ = os.Remove(path)
			if err := os.Symlink(hdr.Linkname, path); err != nil {
				return err
			}
			_ = os.Lchown(path, hdr.Uid, hdr.Gid)
		default:
			// Devices, fifos and hard links do not occur in CRIU images or the volumes we
			// move; skip them rather than fail.
		}
	}
}

// copyDir copies the regular files of src into dst (used when Docker must own a copy).
func copyDir(src, dst string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src)) }()
	err := readTar(pr, dst)
	pr.CloseWithError(err)
	return err
}

// DirSize sums the sizes of the regular files under dir (a checkpoint's size).
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
