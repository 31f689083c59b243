package migrate

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// A target accepts an image only for the migration that needs it. The incoming `docker
// save` archive is spooled to a file, checked here (one image, the right ID, no tag the
// migration does not name), and handed to `docker load` without any tags, so loading it
// cannot repoint a tag that already exists on this node.
//
// Two layouts are read: the legacy one (manifest.json whose Config is "<hex>.json",
// optionally a "repositories" file) and the OCI image layout Docker 25+ writes (index.json,
// oci-layout, blobs/sha256/<hex>, plus a manifest.json naming the same blobs). Image IDs
// are computed from the config bytes, never taken from names.

const (
	// maxImageMetadata bounds each JSON file read from an archive: manifest.json,
	// index.json, repositories, OCI manifests and image configs are a few KiB.
	maxImageMetadata = 4 << 20
	// maxImageMetadataTotal bounds all the JSON read from one archive together.
	maxImageMetadataTotal = 32 << 20
	// maxImageArchiveEntries bounds an archive's entries: docker save writes a few per
	// layer and images have at most 127 layers; a multi-platform image repeats that per
	// platform.
	maxImageArchiveEntries = 10_000
	// maxImageEntryName bounds an entry's name: docker writes "blobs/sha256/<64 hex>" and
	// "<64 hex>/layer.tar".
	maxImageEntryName = 1024
	// maxIndexDepth bounds nested OCI indexes: Docker writes one level, a multi-platform
	// image two.
	maxIndexDepth = 4
)

// Media types that say what a descriptor or blob is.
const (
	mediaOCIIndex          = "application/vnd.oci.image.index.v1+json"
	mediaDockerList        = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest       = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerManifest    = "application/vnd.docker.distribution.manifest.v2+json"
	mediaOCIConfig         = "application/vnd.oci.image.config.v1+json"
	mediaDockerConfig      = "application/vnd.docker.container.image.v1+json"
	annotationImageName    = "io.containerd.image.name"
	annotationOCIRefName   = "org.opencontainers.image.ref.name"
	imageArchiveManifest   = "manifest.json"
	imageArchiveIndex      = "index.json"
	imageArchiveRepository = "repositories"
)

var sha256DigestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// imageArchiveContent is what loading an archive would create.
type imageArchiveContent struct {
	// ids are the distinct image IDs (sha256 of each image config), in archive order.
	ids []string
	// tags are the distinct references loading would apply, in full form
	// (docker.io/library/alpine:latest), sorted.
	tags []string
	// indexTargets maps each digest named by index.json to the image IDs under it: the
	// containerd image store uses that digest as the image's ID.
	indexTargets map[string][]string
}

// imageArchiveInfo reads a `docker save` archive and returns the image IDs (sha256:<hex> of
// each image config, computed from its bytes) and the repo tags loading it would apply, in
// full form (docker.io/library/alpine:latest).
func imageArchiveInfo(path string) (ids []string, tags []string, err error) {
	c, err := readImageArchive(path)
	if err != nil {
		return nil, nil, err
	}
	return c.ids, c.tags, nil
}

// checkImageArchive returns nil when the archive holds exactly one image whose ID is wantID
// and whose tags are a subset of allowedTags (compared in full form, so "alpine" allows
// "docker.io/library/alpine:latest"); otherwise ErrRefused wrapped with what it found.
// wantID may also be the digest index.json names for that one image, which is the image
// ID under Docker's containerd image store.
func checkImageArchive(path, wantID string, allowedTags []string) error {
	c, err := readImageArchive(path)
	if err != nil {
		return fmt.Errorf("%w: image archive: %w", ErrRefused, err)
	}
	switch len(c.ids) {
	case 0:
		return fmt.Errorf("%w: image archive holds no image; the migration needs %s", ErrRefused, wantID)
	case 1:
	default:
		return fmt.Errorf("%w: image archive holds %d images (%s); the migration needs only %s", ErrRefused, len(c.ids), strings.Join(c.ids, ", "), wantID)
	}
	if c.ids[0] != wantID && !slices.Equal(c.indexTargets[wantID], c.ids) {
		return fmt.Errorf("%w: image archive holds image %s; the migration needs %s", ErrRefused, c.ids[0], wantID)
	}
	allowed := map[string]bool{}
	for _, t := range allowedTags {
		if full, ok := normalizeImageRef(t); ok {
			allowed[full] = true
		}
	}
	var extra []string
	for _, t := range c.tags {
		if !allowed[t] {
			extra = append(extra, t)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w: image archive would tag %s, which the migration does not name", ErrRefused, strings.Join(extra, ", "))
	}
	return nil
}

// writeUntaggedArchive copies the archive at path to w without any repo tags: manifest.json
// keeps its entries with RepoTags emptied, the legacy "repositories" file is dropped, and
// index.json loses the annotations that name images. Blobs are copied byte for byte, so the
// image IDs do not change.
func writeUntaggedArchive(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("migrate: image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: image archive: malformed tar: %v", ErrUnsafeStream, err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		var rewrite func([]byte) ([]byte, error)
		switch {
		case name == imageArchiveRepository:
			continue
		case name == imageArchiveManifest && hdr.Typeflag == tar.TypeReg:
			rewrite = untagManifest
		case name == imageArchiveIndex && hdr.Typeflag == tar.TypeReg:
			rewrite = untagIndex
		}
		if rewrite == nil {
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("migrate: image archive: %w", err)
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return fmt.Errorf("migrate: image archive: %s: %w", name, err)
			}
			continue
		}
		b, err := readBounded(tr, name, hdr.Size)
		if err != nil {
			return err
		}
		if b, err = rewrite(b); err != nil {
			return fmt.Errorf("migrate: image archive: %s: %w", name, err)
		}
		hdr.Size = int64(len(b))
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("migrate: image archive: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("migrate: image archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("migrate: image archive: %w", err)
	}
	return nil
}

// untagManifest empties RepoTags of every manifest.json entry, keeping all other fields.
func untagManifest(b []byte) ([]byte, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, err
	}
	for _, it := range items {
		it["RepoTags"] = json.RawMessage("[]")
	}
	return json.Marshal(items)
}

// untagIndex drops the annotations that name images from index.json's descriptors.
func untagIndex(b []byte) ([]byte, error) {
	var idx map[string]json.RawMessage
	err := json.Unmarshal(b, &idx)
	if err != nil {
		return nil, err
	}
	raw, ok := idx["manifests"]
	if !ok {
		return b, nil
	}
	var descs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &descs); err != nil {
		return nil, err
	}
	for _, d := range descs {
		raw, ok := d["annotations"]
		if !ok {
			continue
		}
		var ann map[string]string
		if err := json.Unmarshal(raw, &ann); err != nil {
			return nil, err
		}
		delete(ann, annotationImageName)
		delete(ann, annotationOCIRefName)
		if len(ann) == 0 {
			delete(d, "annotations")
			continue
		}
		if d["annotations"], err = json.Marshal(ann); err != nil {
			return nil, err
		}
	}
	if idx["manifests"], err = json.Marshal(descs); err != nil {
		return nil, err
	}
	return json.Marshal(idx)
}

// archiveEntry is what the first pass learns of one entry.
type archiveEntry struct {
	typ  byte
	size int64
}

// imageArchiveReader reads one archive file in passes: the first lists entries and reads the
// top-level metadata, later ones read the blobs the metadata names (tar has no index; the
// file is seekable, so passing over layers is cheap).
type imageArchiveReader struct {
	path    string
	entries map[string]archiveEntry
	// budget is what is left of maxImageMetadataTotal.
	budget int64
}

// readImageArchive works out what loading the archive at path would create.
func readImageArchive(path string) (*imageArchiveContent, error) {
	ar := &imageArchiveReader{path: path, budget: maxImageMetadataTotal}
	meta, err := ar.scan()
	if err != nil {
		return nil, err
	}
	if meta[imageArchiveManifest] == nil && meta[imageArchiveIndex] == nil {
		return nil, errors.New("migrate: image archive: neither manifest.json nor index.json found")
	}
	c := &imageArchiveContent{indexTargets: map[string][]string{}}
	tags := map[string]bool{}
	addTag := func(ref, from string) error {
		full, ok := normalizeImageRef(ref)
		if !ok {
			return fmt.Errorf("migrate: image archive: %s names %q, which is not an image reference", from, ref)
		}
		tags[full] = true
		return nil
	}
	// configs maps each config blob's entry name to the image ID it must hash to ("" when
	// only its bytes say: legacy manifest.json entries).
	var configs []archiveConfig

	if b := meta[imageArchiveManifest]; b != nil {
		var items []struct {
			Config   string
			RepoTags []string
		}
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, fmt.Errorf("migrate: image archive: manifest.json: %w", err)
		}
		for i, it := range items {
			name, err := ar.regularFile(it.Config, fmt.Sprintf("manifest.json entry %d config", i))
			if err != nil {
				return nil, err
			}
			configs = append(configs, archiveConfig{name: name})
			for _, t := range it.RepoTags {
				if err := addTag(t, "manifest.json RepoTags"); err != nil {
					return nil, err
				}
			}
		}
	}
	if b := meta[imageArchiveRepository]; b != nil {
		var repos map[string]map[string]string
		if err := json.Unmarshal(b, &repos); err != nil {
			return nil, fmt.Errorf("migrate: image archive: repositories: %w", err)
		}
		for repo, byTag := range repos {
			for tag := range byTag {
				if err := addTag(repo+":"+tag, "repositories"); err != nil {
					return nil, err
				}
			}
		}
	}
	if b := meta[imageArchiveIndex]; b != nil {
		var idx ociIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("migrate: image archive: index.json: %w", err)
		}
		for _, d := range idx.Manifests {
			if name := d.Annotations[annotationImageName]; name != "" {
				if err := addTag(name, "index.json "+annotationImageName); err != nil {
					return nil, err
				}
			}
			// ref.name is usually a bare tag ("latest") completing io.containerd.image.name;
			// only a full reference names an image on its own.
			if ref := d.Annotations[annotationOCIRefName]; strings.ContainsAny(ref, "/:@") {
				if err := addTag(ref, "index.json "+annotationOCIRefName); err != nil {
					return nil, err
				}
			}
		}
		found, err := ar.resolveIndex(idx.Manifests)
		if err != nil {
			return nil, err
		}
		configs = append(configs, found...)
	}

	ids, err := ar.hashConfigs(configs)
	if err != nil {
		return nil, err
	}
	for i, cfg := range configs {
		if !slices.Contains(c.ids, ids[i]) {
			c.ids = append(c.ids, ids[i])
		}
		if cfg.indexTarget != "" && !slices.Contains(c.indexTargets[cfg.indexTarget], ids[i]) {
			c.indexTargets[cfg.indexTarget] = append(c.indexTargets[cfg.indexTarget], ids[i])
		}
	}
	for t := range tags {
		c.tags = append(c.tags, t)
	}
	slices.Sort(c.tags)
	return c, nil
}

// archiveConfig is an image config blob to hash.
type archiveConfig struct {
	name string
	// digest is what the OCI descriptor says it hashes to ("" for legacy entries).
	digest string
	// indexTarget is the index.json descriptor it was reached from.
	indexTarget string
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
}

// ociBlob is a manifest or an index; which one, its media type (or its fields) says.
type ociBlob struct {
	MediaType string          `json:"mediaType"`
	Config    *ociDescriptor  `json:"config"`
	Manifests []ociDescriptor `json:"manifests"`
}

// resolveIndex follows index.json's descriptors through nested indexes to image manifests
// and returns their image configs. A descriptor that index.json names directly must be in
// the archive; one inside a nested index may be absent (platforms that were not saved).
// Manifests whose config is not an image config (build attestations) are not images.
func (ar *imageArchiveReader) resolveIndex(top []ociDescriptor) ([]archiveConfig, error) {
	type pending struct {
		desc   ociDescriptor
		target string
	}
	// Each level holds a (blob, index.json descriptor) pair once: an index naming one blob
	// many times, at each of a few levels, must not multiply the work.
	var level []pending
	queued := map[[2]string]bool{}
	enqueue := func(into *[]pending, d ociDescriptor, target string) {
		if key := [2]string{d.Digest, target}; !queued[key] {
			queued[key] = true
			*into = append(*into, pending{d, target})
		}
	}
	for _, d := range top {
		enqueue(&level, d, d.Digest)
	}
	var configs []archiveConfig
	for depth := 0; len(level) > 0; depth++ {
		if depth > maxIndexDepth {
			return nil, fmt.Errorf("migrate: image archive: indexes nested deeper than %d", maxIndexDepth)
		}
		want := map[string]bool{}
		for _, p := range level {
			name, err := blobName(p.desc.Digest)
			if err != nil {
				return nil, err
			}
			if _, ok := ar.entries[name]; ok {
				want[name] = true
			} else if depth == 0 {
				return nil, fmt.Errorf("migrate: image archive: index.json names %s, which the archive does not hold", p.desc.Digest)
			}
		}
		blobs, err := ar.read(want)
		if err != nil {
			return nil, err
		}
		var next []pending
		for _, p := range level {
			name, _ := blobName(p.desc.Digest)
			b, ok := blobs[name]
			if !ok {
				continue
			}
			if got := digestOf(b); got != p.desc.Digest {
				return nil, fmt.Errorf("migrate: image archive: blob %s hashes to %s", p.desc.Digest, got)
			}
			var blob ociBlob
			if err := json.Unmarshal(b, &blob); err != nil {
				return nil, fmt.Errorf("migrate: image archive: blob %s: %w", p.desc.Digest, err)
			}
			mediaType := p.desc.MediaType
			if mediaType == "" {
				mediaType = blob.MediaType
			}
			switch {
			case mediaType == mediaOCIIndex || mediaType == mediaDockerList || (mediaType == "" && blob.Manifests != nil):
				for _, d := range blob.Manifests {
					enqueue(&next, d, p.target)
				}
			case mediaType == mediaOCIManifest || mediaType == mediaDockerManifest || (mediaType == "" && blob.Config != nil):
				if blob.Config == nil {
					return nil, fmt.Errorf("migrate: image archive: manifest %s has no config", p.desc.Digest)
				}
				if blob.Config.MediaType != mediaOCIConfig && blob.Config.MediaType != mediaDockerConfig {
					continue
				}
				name, err := blobName(blob.Config.Digest)
				if err != nil {
					return nil, err
				}
				if name, err = ar.regularFile(name, "manifest "+p.desc.Digest+" config"); err != nil {
					return nil, err
				}
				configs = append(configs, archiveConfig{name: name, digest: blob.Config.Digest, indexTarget: p.target})
			default:
				return nil, fmt.Errorf("migrate: image archive: blob %s has media type %q, neither an index nor a manifest", p.desc.Digest, mediaType)
			}
		}
		level = next
	}
	return configs, nil
}

// hashConfigs reads the config blobs and returns their image IDs, refusing a config that is
// not a JSON object or does not hash to the digest its manifest names.
func (ar *imageArchiveReader) hashConfigs(configs []archiveConfig) ([]string, error) {
	want := map[string]bool{}
	for _, c := range configs {
		want[c.name] = true
	}
	blobs, err := ar.read(want)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(configs))
	for i, c := range configs {
		b := blobs[c.name]
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("migrate: image archive: config %s is not a JSON object", c.name)
		}
		ids[i] = digestOf(b)
		if c.digest != "" && ids[i] != c.digest {
			return nil, fmt.Errorf("migrate: image archive: config %s hashes to %s", c.digest, ids[i])
		}
	}
	return ids, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blobName is the OCI layout's entry name for a digest.
func blobName(digest string) (string, error) {
	if !sha256DigestRE.MatchString(digest) {
		return "", fmt.Errorf("migrate: image archive: digest %q is not sha256:<64 hex>", digest)
	}
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:"), nil
}

// regularFile checks that the metadata names a regular file of the archive and returns its
// entry name. A symlink is refused: docker would follow it to content not checked here.
func (ar *imageArchiveReader) regularFile(ref, what string) (string, error) {
	name, err := archiveEntryName(ref)
	if err != nil {
		return "", fmt.Errorf("migrate: image archive: %s: %w", what, err)
	}
	e, ok := ar.entries[name]
	switch {
	case !ok:
		return "", fmt.Errorf("migrate: image archive: %s %q is missing", what, ref)
	case e.typ != tar.TypeReg:
		return "", fmt.Errorf("%w: image archive: %s %q is not a regular file", ErrUnsafeStream, what, ref)
	case e.size > maxImageMetadata:
		return "", fmt.Errorf("%w: image archive: %s %q is %d bytes, more than %d", ErrUnsafeStream, what, ref, e.size, maxImageMetadata)
	}
	return name, nil
}

// archiveEntryName is an entry's name without a leading "./" or trailing "/", or an error
// when it is not a clean relative path: docker extracts the archive before loading it, and
// a name that could land elsewhere, or two names for one file, would make what it loads
// differ from what was checked.
func archiveEntryName(raw string) (string, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(raw, "./"), "/")
	switch {
	case name == "" || name == ".":
		return ".", nil
	case len(name) > maxImageEntryName:
		return "", fmt.Errorf("%w: image archive entry name of %d bytes, more than %d", ErrUnsafeStream, len(name), maxImageEntryName)
	case strings.IndexByte(name, 0) >= 0, strings.HasPrefix(name, "/"), path.Clean(name) != name,
		name == "..", strings.HasPrefix(name, "../"):
		return "", fmt.Errorf("%w: image archive entry %q is not a clean relative name", ErrUnsafeStream, raw)
	}
	return name, nil
}

// scan lists the archive's entries, refusing unsafe or repeated names, and returns the
// top-level metadata files' contents.
func (ar *imageArchiveReader) scan() (map[string][]byte, error) {
	f, err := os.Open(ar.path)
	if err != nil {
		return nil, fmt.Errorf("migrate: image archive: %w", err)
	}
	defer f.Close()
	ar.entries = map[string]archiveEntry{}
	meta := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return meta, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: image archive: malformed tar: %v", ErrUnsafeStream, err)
		}
		if len(ar.entries) >= maxImageArchiveEntries {
			return nil, fmt.Errorf("%w: image archive has more than %d entries", ErrUnsafeStream, maxImageArchiveEntries)
		}
		name, err := archiveEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if _, dup := ar.entries[name]; dup {
			return nil, fmt.Errorf("%w: image archive names %q twice", ErrUnsafeStream, name)
		}
		ar.entries[name] = archiveEntry{typ: hdr.Typeflag, size: hdr.Size}
		switch name {
		case imageArchiveManifest, imageArchiveIndex, imageArchiveRepository:
			if hdr.Typeflag != tar.TypeReg {
				return nil, fmt.Errorf("%w: image archive: %s is not a regular file", ErrUnsafeStream, name)
			}
			if meta[name], err = ar.readEntry(tr, name, hdr.Size); err != nil {
				return nil, err
			}
		}
	}
}

// read returns the contents of the wanted regular entries (all of them: scan listed them).
func (ar *imageArchiveReader) read(want map[string]bool) (map[string][]byte, error) {
	got := map[string][]byte{}
	if len(want) == 0 {
		return got, nil
	}
	f, err := os.Open(ar.path)
	if err != nil {
		return nil, fmt.Errorf("migrate: image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for len(got) < len(want) {
		hdr, err := tr.Next()
		if err != nil {
			// The file changed since scan, or a wanted name was not a regular file.
			return nil, fmt.Errorf("%w: image archive: reading blobs: %v", ErrUnsafeStream, err)
		}
		name, err := archiveEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if !want[name] {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: image archive: %s is not a regular file", ErrUnsafeStream, name)
		}
		if got[name], err = ar.readEntry(tr, name, hdr.Size); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// readEntry reads one metadata entry within what is left of the archive's budget.
func (ar *imageArchiveReader) readEntry(r io.Reader, name string, size int64) ([]byte, error) {
	if size > ar.budget {
		return nil, fmt.Errorf("%w: image archive: its metadata totals more than %d bytes", ErrUnsafeStream, maxImageMetadataTotal)
	}
	b, err := readBounded(r, name, size)
	ar.budget -= int64(len(b))
	return b, err
}

// readBounded reads one metadata entry, refusing one larger than maxImageMetadata.
func readBounded(r io.Reader, name string, size int64) ([]byte, error) {
	if size > maxImageMetadata {
		return nil, fmt.Errorf("%w: image archive: %s is %d bytes, more than %d", ErrUnsafeStream, name, size, maxImageMetadata)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, maxImageMetadata+1)); err != nil {
		return nil, fmt.Errorf("%w: image archive: %s: %v", ErrUnsafeStream, name, err)
	}
	if buf.Len() > maxImageMetadata {
		return nil, fmt.Errorf("%w: image archive: %s is more than %d bytes", ErrUnsafeStream, name, maxImageMetadata)
	}
	return buf.Bytes(), nil
}

var (
	imageDomainRE   = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$`)
	imagePathPartRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	imageTagRE      = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$`)
)

// maxImageRefBytes bounds a reference read from an archive; real ones are under 256.
const maxImageRefBytes = 4096

// normalizeImageRef returns a reference as Docker accepts it ("alpine", "alpine:3.19",
// "ghcr.io/org/app:1") in full form ("docker.io/library/alpine:latest"), so the same tag
// written two ways compares equal; false when it is not a valid reference.
func normalizeImageRef(ref string) (string, bool) {
	if ref == "" || len(ref) > maxImageRefBytes {
		return "", false
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest && !sha256DigestRE.MatchString(digest) {
		return "", false
	}
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
		if !imageTagRE.MatchString(tag) {
			return "", false
		}
	}
	domain, rest := "docker.io", name
	if first, after, ok := strings.Cut(name, "/"); ok &&
		(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		domain, rest = first, after
	}
	if !imageDomainRE.MatchString(domain) {
		return "", false
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	for part := range strings.SplitSeq(rest, "/") {
		if !imagePathPartRE.MatchString(part) {
			return "", false
		}
	}
	if tag == "" && !hasDigest {
		tag = "latest"
	}
	full := domain + "/" + rest
	if tag != "" {
		full += ":" + tag
	}
	if hasDigest {
		full += "@" + digest
	}
	return full, true
}
