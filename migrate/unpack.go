package migrate

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
)

// The target's side of the checkpoint stream. The stream is a tar written by the source;
// the source may be compromised or the bytes forged, so every entry is checked before
// anything is written, and every write goes through an os.Root on the directory it belongs
// to. Nothing in the stream is trusted: not its names, not its types, not its sizes, not
// its links, and not what earlier entries of the same stream put on disk.

// UnpackLimits bound one incoming checkpoint stream. The zero value is invalid (Validate
// says so) rather than unlimited: a target must always be able to say "too big".
type UnpackLimits struct {
	// MaxBytes bounds the total regular-file content, checkpoint and volumes together.
	// More is ErrUnsafeStream ("oversize"), refused before the file that would pass it is
	// written.
	MaxBytes int64
	// MaxEntries bounds the number of tar entries of any type, plus the directories made
	// for entries whose parents the stream did not list. Names and link targets may total
	// 128 bytes per allowed entry.
	MaxEntries int
}

// DefaultUnpackLimits returns limits for a target that knows nothing about the incoming
// migration. An endpoint that knows the workload's memory and volume sizes should lower
// MaxBytes to those plus headroom.
func DefaultUnpackLimits() UnpackLimits {
	return UnpackLimits{
		// A checkpoint is about the size of the workload's memory, and volumes travel
		// after the freeze. At 64 GiB the stop-and-copy alone takes over a minute on a
		// 10 Gbit/s link: no live migration godwit plans is larger, and a stream that is
		// cannot fill a node's disk unnoticed.
		MaxBytes: 64 << 30,
		// CRIU writes a few image files per process and per memory mapping (hundreds to a
		// few thousand for large process trees); volumes with many small files dominate.
		// Half a million entries is far beyond a workload worth moving live, and bounds
		// what the unpacker keeps (one map entry per name, names averaging at most 128
		// bytes) to about 100 MiB.
		MaxEntries: 1 << 19,
	}
}

// Validate reports limits that would refuse every stream or allow any.
func (l UnpackLimits) Validate() error {
	var errs []error
	if l.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("migrate: UnpackLimits.MaxBytes is %d; it must be > 0 (bytes of file content per stream)", l.MaxBytes))
	}
	if l.MaxEntries <= 0 {
		errs = append(errs, fmt.Errorf("migrate: UnpackLimits.MaxEntries is %d; it must be > 0 (tar entries per stream)", l.MaxEntries))
	}
	return errors.Join(errs...)
}

const (
	// tarBlockSize is the unit of a tar stream; its end is marked by zero blocks.
	tarBlockSize = 512
	// maxEntryPath and maxEntryComponent are Linux's PATH_MAX (less its NUL) and NAME_MAX.
	// Longer names cannot be created anyway; refusing them early keeps the per-entry work
	// (one lookup per path component) bounded.
	maxEntryPath      = 4095
	maxEntryComponent = 255
	// avgNameBudget bounds the names (and link targets) of a stream to this many bytes per
	// allowed entry, since they are kept until the end: a stream of MaxEntries names of
	// PATH_MAX bytes would otherwise hold gigabytes. Real names average well under 100.
	avgNameBudget = 128
)

// volumeNameRE is Docker's rule for volume names: it also makes a name one safe path
// component (no "/", never "." or "..").
var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func validVolumeName(name string) bool {
	return len(name) <= maxEntryComponent && volumeNameRE.MatchString(name)
}

// unpackCheckpoint unpacks a checkpoint stream (a tar) whose entries are named
// checkpoint/... (CRIU images, into checkpointDir) and volumes/<name>/... (into
// volumeDir(name), only for names in allowedVolumes). It returns the number of content
// bytes written.
//
// checkpointDir must exist; volumeDir is called at most once per volume, when the stream
// first names it, and must return an existing directory. Those directories are the roots:
// nothing is written outside them, whatever the stream holds or the roots already contain.
//
// Entries may be directories, regular files and symlinks whose targets are relative and
// stay inside their root; anything else, an unsafe name, a name appearing twice, a
// truncated tar or a stream over lim is refused with ErrUnsafeStream, naming the entry.
// Existing files, symlinks and empty directories at an entry's name (a volume may already
// hold the image's files) are replaced, never written through; existing symlinks on the way
// to an entry are refused. File and directory modes keep their permission bits only.
// Volume entries take the header's owner (containers run as other users); checkpoint
// entries stay owned by this process (root), and checkpointDir keeps its own mode.
//
// On error, what was written so far stays inside the roots; the caller removes them.
func unpackCheckpoint(r io.Reader, checkpointDir string, allowedVolumes []string, volumeDir func(name string) (string, error), lim UnpackLimits) (int64, error) {
	if err := lim.Validate(); err != nil {
		return 0, err
	}
	u := &unpacker{lim: lim, volumeDir: volumeDir, allowed: map[string]bool{}, volumes: map[string]*unpackTree{}}
	for _, v := range allowedVolumes {
		if !validVolumeName(v) {
			return 0, fmt.Errorf("migrate: unpack: allowed volume name %q is not a valid volume name", v)
		}
		u.allowed[v] = true
	}
	if len(u.allowed) > 0 && volumeDir == nil {
		return 0, errors.New("migrate: unpack: volumes allowed but no volumeDir given")
	}
	root, err := os.OpenRoot(checkpointDir)
	if err != nil {
		return 0, fmt.Errorf("migrate: unpack: checkpoint directory: %w", err)
	}
	u.checkpoint = newUnpackTree(root, "checkpoint", false)
	defer u.close()
	if err := u.run(r); err != nil {
		return u.bytes, err
	}
	return u.bytes, u.finish()
}

// unpacker is the state of one unpackCheckpoint call.
type unpacker struct {
	lim        UnpackLimits
	allowed    map[string]bool
	volumeDir  func(string) (string, error)
	checkpoint *unpackTree
	volumes    map[string]*unpackTree
	bytes      int64
	entries    int
	nameBytes  int64
}

// unpackTree is one root the stream writes into: the checkpoint directory or one volume.
type unpackTree struct {
	root  *os.Root
	label string // for messages: "checkpoint" or "volume NAME"
	// owned: entries take the tar header's uid and gid.
	owned bool
	// seen holds every name under root that this stream created or checked, so a later
	// entry can neither replace an earlier one nor use it as a parent unless it is a
	// directory.
	seen map[string]seenKind
	// dirModes are applied after the last entry, deepest first, so a read-only directory
	// can still be filled.
	dirModes []dirMode
}

type seenKind uint8

const (
	// seenParent: a directory made for a later entry, or one that was already there.
	seenParent seenKind = iota + 1
	// seenDir: a directory entry of this stream.
	seenDir
	// seenLeaf: a file or symlink entry of this stream.
	seenLeaf
)

type dirMode struct {
	rel  string
	mode fs.FileMode
}

func newUnpackTree(root *os.Root, label string, owned bool) *unpackTree {
	return &unpackTree{root: root, label: label, owned: owned, seen: map[string]seenKind{}}
}

func (u *unpacker) close() {
	u.checkpoint.root.Close()
	for _, t := range u.volumes {
		t.root.Close()
	}
}

// countingReader counts the bytes the tar reader consumed, so the end of the stream can be
// told apart from a stream cut at an entry boundary.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (u *unpacker) run(r io.Reader) error {
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	for {
		// Every entry's content has been read in full (or the entry refused), so what Next
		// consumes from here is padding (< one block) and then a header or the end marker.
		before := cr.n
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// archive/tar also reports a stream that simply stops between entries as EOF;
			// only a zero block marks a complete archive.
			if cr.n-before < tarBlockSize {
				return fmt.Errorf("%w: stream ends after %d entries without the tar end marker: truncated", ErrUnsafeStream, u.entries)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: malformed or truncated tar after %d entries: %v", ErrUnsafeStream, u.entries, err)
		}
		u.entries++
		if u.entries > u.lim.MaxEntries {
			return unsafeEntry(hdr.Name, "more than %d entries", u.lim.MaxEntries)
		}
		u.nameBytes += int64(len(hdr.Name) + len(hdr.Linkname))
		if budget := int64(u.lim.MaxEntries) * avgNameBudget; u.nameBytes > budget {
			return unsafeEntry(hdr.Name, "names and link targets total more than %d bytes (%d entries of %d bytes)", budget, u.lim.MaxEntries, avgNameBudget)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// unsafeEntry is ErrUnsafeStream naming the entry and the reason.
func unsafeEntry(name, format string, args ...any) error {
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	return fmt.Errorf("%w: entry %q: %s", ErrUnsafeStream, name, fmt.Sprintf(format, args...))
}

func (u *unpacker) entry(hdr *tar.Header, content io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
	case tar.TypeLink:
		return unsafeEntry(hdr.Name, "hard link (to %q)", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return unsafeEntry(hdr.Name, "device node")
	case tar.TypeFifo:
		return unsafeEntry(hdr.Name, "fifo")
	default:
		return unsafeEntry(hdr.Name, "entry type %q is not a file, directory or symlink", hdr.Typeflag)
	}
	t, rel, err := u.place(hdr)
	if err != nil || t == nil {
		return err
	}
	if rel == "" && hdr.Typeflag != tar.TypeDir {
		return unsafeEntry(hdr.Name, "the %s root must be a directory", t.label)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(t, hdr, rel)
	case tar.TypeReg:
		return u.file(t, hdr, rel, content)
	default:
		return u.symlink(t, hdr, rel)
	}
}

// place maps an entry to its tree and its name relative to that tree's root ("" for the
// root itself). A nil tree with no error means: nothing to do (the bare volumes/ entry).
func (u *unpacker) place(hdr *tar.Header) (*unpackTree, string, error) {
	name, reason := cleanEntryName(hdr.Name, hdr.Typeflag == tar.TypeDir)
	if reason != "" {
		return nil, "", unsafeEntry(hdr.Name, "%s", reason)
	}
	top, rest, _ := strings.Cut(name, "/")
	switch top {
	case "checkpoint":
		return u.checkpoint, rest, nil
	case "volumes":
		if rest == "" {
			if hdr.Typeflag != tar.TypeDir {
				return nil, "", unsafeEntry(hdr.Name, "volumes must be a directory")
			}
			return nil, "", nil
		}
		vol, sub, _ := strings.Cut(rest, "/")
		if !u.allowed[vol] {
			return nil, "", unsafeEntry(hdr.Name, "volume %q is not one of this migration's volumes", vol)
		}
		t, err := u.volume(vol)
		return t, sub, err
	default:
		return nil, "", unsafeEntry(hdr.Name, "first component %q is neither checkpoint nor volumes", top)
	}
}

// cleanEntryName returns the entry's name without a leading "./" (and, for a directory, a
// trailing "/"), or why it is unsafe: it must be relative, clean, without "..", NUL or
// over-long parts.
func cleanEntryName(raw string, dir bool) (string, string) {
	if strings.IndexByte(raw, 0) >= 0 {
		return "", "NUL in name"
	}
	name := strings.TrimPrefix(raw, "./")
	if dir {
		name = strings.TrimSuffix(name, "/")
	}
	switch {
	case name == "":
		return "", "empty name"
	case len(name) > maxEntryPath:
		return "", fmt.Sprintf("name longer than %d bytes", maxEntryPath)
	case strings.HasPrefix(name, "/"):
		return "", "absolute name"
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == ".." {
			return "", `".." component`
		}
		if len(c) > maxEntryComponent {
			return "", fmt.Sprintf("component longer than %d bytes", maxEntryComponent)
		}
	}
	if path.Clean(name) != name {
		return "", "name is not a clean path (empty or \".\" components, trailing slash)"
	}
	return name, ""
}

// volume returns the tree of an allowed volume, opening its root on first use.
func (u *unpacker) volume(name string) (*unpackTree, error) {
	if t, ok := u.volumes[name]; ok {
		return t, nil
	}
	dir, err := u.volumeDir(name)
	if err != nil {
		return nil, fmt.Errorf("migrate: unpack: volume %s: %w", name, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: unpack: volume %s: %w", name, err)
	}
	t := newUnpackTree(root, "volume "+name, true)
	u.volumes[name] = t
	return t, nil
}

// parents makes sure every directory on the way to rel is a real directory inside the root,
// creating missing ones. A symlink on the way is refused: following it could only lead
// somewhere the stream did not name. Each directory it makes or checks counts as an entry,
// so deep names cannot turn one entry into thousands of directories.
func (u *unpacker) parents(t *unpackTree, hdr *tar.Header, rel string) error {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		dir := rel[:i]
		switch t.seen[dir] {
		case seenParent, seenDir:
			continue
		case seenLeaf:
			return unsafeEntry(hdr.Name, "parent %q is a file or symlink of this stream", dir)
		}
		fi, err := t.root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := t.root.Mkdir(dir, 0o700); err != nil {
				return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
			}
		case err != nil:
			return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
		case fi.Mode().Type() == fs.ModeSymlink:
			return unsafeEntry(hdr.Name, "parent %q is a symlink", dir)
		case !fi.IsDir():
			return unsafeEntry(hdr.Name, "parent %q is not a directory", dir)
		}
		t.seen[dir] = seenParent
		u.entries++
		if u.entries > u.lim.MaxEntries {
			return unsafeEntry(hdr.Name, "more than %d entries, counting the directories made for them", u.lim.MaxEntries)
		}
	}
	return nil
}

// clear makes room for a new file or symlink at rel. What this stream wrote is never
// replaced (a well-formed stream names each path once); what was there before is removed,
// not written through.
func (t *unpackTree) clear(hdr *tar.Header, rel string) error {
	if t.seen[rel] != 0 {
		return unsafeEntry(hdr.Name, "names a path this stream already wrote")
	}
	_, err := t.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = t.root.Remove(rel)
	}
	if err != nil {
		return fmt.Errorf("migrate: unpack %s: replacing %s: %w", t.label, rel, err)
	}
	return nil
}

func (u *unpacker) dir(t *unpackTree, hdr *tar.Header, rel string) error {
	switch t.seen[rel] {
	case seenDir, seenLeaf:
		return unsafeEntry(hdr.Name, "names a path this stream already wrote")
	case seenParent:
		// Made (or found) as a parent of an earlier entry: now it gets its owner and mode.
	default:
		if rel != "" {
			if err := u.parents(t, hdr, rel); err != nil {
				return err
			}
			fi, err := t.root.Lstat(rel)
			if err == nil && !fi.IsDir() {
				if err := t.clear(hdr, rel); err != nil {
					return err
				}
				err = fs.ErrNotExist
			}
			if errors.Is(err, fs.ErrNotExist) {
				err = t.root.Mkdir(rel, 0o700)
			}
			if err != nil {
				return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
			}
		}
	}
	t.seen[rel] = seenDir
	if !t.owned {
		if rel != "" {
			t.dirModes = append(t.dirModes, dirMode{rel, permBits(hdr)})
		}
		return nil
	}
	uid, gid, err := owner(hdr)
	if err != nil {
		return err
	}
	if err := t.root.Lchown(rootName(rel), uid, gid); err != nil {
		return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
	}
	t.dirModes = append(t.dirModes, dirMode{rootName(rel), permBits(hdr)})
	return nil
}

func (u *unpacker) file(t *unpackTree, hdr *tar.Header, rel string, content io.Reader) error {
	if hdr.Size > u.lim.MaxBytes-u.bytes {
		return unsafeEntry(hdr.Name, "oversize: its %d bytes would pass the stream's limit of %d bytes of content", hdr.Size, u.lim.MaxBytes)
	}
	uid, gid, err := owner(hdr)
	if err != nil && t.owned {
		return err
	}
	if err := u.parents(t, hdr, rel); err != nil {
		return err
	}
	if err := t.clear(hdr, rel); err != nil {
		return err
	}
	// O_EXCL: the name was just cleared, so this creates a new file and never opens an
	// existing one or follows a symlink (os.Root adds O_NOFOLLOW, and O_CREATE|O_EXCL never
	// follows one).
	f, err := t.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
	}
	t.seen[rel] = seenLeaf
	src := &readErrReader{r: content}
	n, err := io.Copy(f, src)
	u.bytes += n
	if err == nil && t.owned {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		// After Chown, which may clear mode bits; on the open file, so no name is resolved.
		err = f.Chmod(permBits(hdr))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if src.err != nil {
		return unsafeEntry(hdr.Name, "content: %v (truncated stream)", src.err)
	}
	if err != nil {
		return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
	}
	return nil
}

// readErrReader remembers a read error, so a truncated stream is told apart from a failed
// write.
type readErrReader struct {
	r   io.Reader
	err error
}

func (r *readErrReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

func (u *unpacker) symlink(t *unpackTree, hdr *tar.Header, rel string) error {
	if reason := symlinkTargetProblem(rel, hdr.Linkname); reason != "" {
		return unsafeEntry(hdr.Name, "%s", reason)
	}
	uid, gid, err := owner(hdr)
	if err != nil && t.owned {
		return err
	}
	if err := u.parents(t, hdr, rel); err != nil {
		return err
	}
	if err := t.clear(hdr, rel); err != nil {
		return err
	}
	if err := t.root.Symlink(hdr.Linkname, rel); err != nil {
		return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
	}
	t.seen[rel] = seenLeaf
	if t.owned {
		if err := t.root.Lchown(rel, uid, gid); err != nil {
			return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
		}
	}
	return nil
}

// symlinkTargetProblem says why a symlink at rel (relative to its root) pointing at target
// is unsafe, or "". The target must be relative, and it may climb ("..") only at its start,
// no higher than the root: the kernel resolves ".." after a component that is itself a
// symlink from wherever that symlink led, so "a/../.." is not where it looks, and a chain of
// such links could climb out of a root that every link, read lexically, stays inside. With
// ".." only at the start, and no symlink among a link's parents (parents refuses them), each
// link the stream makes resolves to where it reads, inside the root (through links the
// root held before the stream, which the stream did not make, it may lead wherever those
// do; nothing here writes through any link).
func symlinkTargetProblem(rel, target string) string {
	switch {
	case target == "":
		return "empty symlink target"
	case strings.IndexByte(target, 0) >= 0:
		return "NUL in symlink target"
	case len(target) > maxEntryPath:
		return fmt.Sprintf("symlink target longer than %d bytes", maxEntryPath)
	case strings.HasPrefix(target, "/"):
		return fmt.Sprintf("absolute symlink target %q", target)
	}
	depth := strings.Count(rel, "/") // of the link's directory below the root
	ups, named := 0, false
	for c := range strings.SplitSeq(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if named {
				return fmt.Sprintf("symlink target %q has \"..\" after a named component", target)
			}
			ups++
		default:
			named = true
		}
	}
	if ups > depth {
		return fmt.Sprintf("symlink target %q leaves its root", target)
	}
	return ""
}

// permBits keeps a header's permission bits: no setuid, setgid or sticky bit comes off the
// wire.
func permBits(hdr *tar.Header) fs.FileMode {
	return fs.FileMode(hdr.Mode) & fs.ModePerm
}

// owner returns a header's uid and gid, refusing values that are not a Linux id (-1 would
// mean "leave unchanged").
func owner(hdr *tar.Header) (int, int, error) {
	const maxID = 1<<32 - 2
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return 0, 0, unsafeEntry(hdr.Name, "owner %d:%d is not a valid uid:gid", hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid, nil
}

// rootName is rel as an os.Root name: "" (the root itself) is ".".
func rootName(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// finish applies directory modes, deepest first.
func (u *unpacker) finish() error {
	trees := []*unpackTree{u.checkpoint}
	for _, t := range u.volumes {
		trees = append(trees, t)
	}
	for _, t := range trees {
		for i := len(t.dirModes) - 1; i >= 0; i-- {
			d := t.dirModes[i]
			// Chmod follows a symlink; the name was a directory this stream made or kept,
			// and nothing replaced it, but check rather than trust that.
			fi, err := t.root.Lstat(d.rel)
			if err != nil {
				return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("migrate: unpack %s: %s is no longer a directory", t.label, d.rel)
			}
			if err := t.root.Chmod(d.rel, d.mode); err != nil {
				return fmt.Errorf("migrate: unpack %s: %w", t.label, err)
			}
		}
	}
	return nil
}
