package migrate

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testImage is a synthetic image: one layer and a config naming it.
type testImage struct {
	layer  []byte
	config []byte
}

func newTestImage(seed string) testImage {
	layer := []byte("layer of " + seed)
	config := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":[%q]},"rootfs":{"type":"layers","diff_ids":[%q]}}`, seed, digestOf(layer))
	return testImage{layer: layer, config: []byte(config)}
}

func (im testImage) id() string { return digestOf(im.config) }

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// legacyArchive is what docker save wrote before Docker 25: a directory per layer,
// <config hex>.json, manifest.json and, with tags, repositories.
func legacyArchive(t testing.TB, images []testImage, tags [][]string) []streamEntry {
	t.Helper()
	var entries []streamEntry
	type item struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []item
	repos := map[string]map[string]string{}
	for i, im := range images {
		layerID := hexOf(digestOf([]byte(fmt.Sprintf("v1 id %d %s", i, im.layer))))
		entries = append(entries,
			dirEntry(layerID+"/", 0o755),
			fileEntry(layerID+"/VERSION", "1.0", 0o644),
			fileEntry(layerID+"/json", `{}`, 0o644),
			fileEntry(layerID+"/layer.tar", string(im.layer), 0o644),
			fileEntry(hexOf(im.id())+".json", string(im.config), 0o644))
		var repoTags []string
		if i < len(tags) {
			repoTags = tags[i]
		}
		for _, rt := range repoTags {
			repo, tag, _ := strings.Cut(rt, ":")
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			repos[repo][tag] = layerID
		}
		manifest = append(manifest, item{Config: hexOf(im.id()) + ".json", RepoTags: repoTags, Layers: []string{layerID + "/layer.tar"}})
	}
	entries = append(entries, fileEntry("manifest.json", mustJSON(t, manifest), 0o644))
	if len(repos) > 0 {
		entries = append(entries, fileEntry("repositories", mustJSON(t, repos), 0o644))
	}
	return entries
}

// ociImageManifest is an image manifest naming the image's config and layer.
func ociImageManifest(t testing.TB, im testImage, configType string) []byte {
	t.Helper()
	return []byte(mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaOCIManifest,
		"config":        map[string]any{"mediaType": configType, "digest": im.id(), "size": len(im.config)},
		"layers": []map[string]any{{
			"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digestOf(im.layer), "size": len(im.layer),
		}},
	}))
}

// ociArchive is what docker save writes since Docker 25: an OCI layout (index.json naming
// each image's manifest, with the name annotations) plus a manifest.json for older loaders.
func ociArchive(t testing.TB, images []testImage, tags [][]string) []streamEntry {
	t.Helper()
	entries := []streamEntry{
		fileEntry("oci-layout", `{"imageLayoutVersion":"1.0.0"}`, 0o644),
		dirEntry("blobs/", 0o755),
		dirEntry("blobs/sha256/", 0o755),
	}
	type item struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []item
	var descs []map[string]any
	for i, im := range images {
		mf := ociImageManifest(t, im, mediaOCIConfig)
		entries = append(entries,
			fileEntry("blobs/sha256/"+hexOf(digestOf(im.layer)), string(im.layer), 0o644),
			fileEntry("blobs/sha256/"+hexOf(im.id()), string(im.config), 0o644),
			fileEntry("blobs/sha256/"+hexOf(digestOf(mf)), string(mf), 0o644))
		var repoTags []string
		if i < len(tags) {
			repoTags = tags[i]
		}
		manifest = append(manifest, item{Config: "blobs/sha256/" + hexOf(im.id()), RepoTags: repoTags, Layers: []string{"blobs/sha256/" + hexOf(digestOf(im.layer))}})
		d := map[string]any{"mediaType": mediaOCIManifest, "digest": digestOf(mf), "size": len(mf)}
		if len(repoTags) > 0 {
			full, _ := normalizeImageRef(repoTags[0])
			_, tag, _ := strings.Cut(repoTags[0], ":")
			d["annotations"] = map[string]string{annotationImageName: full, annotationOCIRefName: tag}
		}
		descs = append(descs, d)
	}
	entries = append(entries,
		fileEntry("index.json", mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIIndex, "manifests": descs}), 0o644),
		fileEntry("manifest.json", mustJSON(t, manifest), 0o644))
	return entries
}

// archiveFile writes entries as a tar file and returns its path.
func archiveFile(t testing.TB, entries []streamEntry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, tarOf(t, entries, true), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaced returns entries with the named one's body replaced (or dropped, when drop).
func replaced(entries []streamEntry, name, body string, drop bool) []streamEntry {
	var out []streamEntry
	for _, e := range entries {
		if e.name == name {
			if drop {
				continue
			}
			e.body = body
		}
		out = append(out, e)
	}
	return out
}

func TestImageArchiveInfo(t *testing.T) {
	a, b := newTestImage("a"), newTestImage("b")
	cases := []struct {
		desc     string
		entries  []streamEntry
		wantIDs  []string
		wantTags []string
	}{
		{"legacy, two tags", legacyArchive(t, []testImage{a}, [][]string{{"alpine:3.19", "ghcr.io/org/app:1"}}),
			[]string{a.id()}, []string{"docker.io/library/alpine:3.19", "ghcr.io/org/app:1"}},
		{"legacy, untagged", legacyArchive(t, []testImage{a}, nil), []string{a.id()}, nil},
		{"legacy, two images", legacyArchive(t, []testImage{a, b}, [][]string{{"a:1"}, {"b:1"}}),
			[]string{a.id(), b.id()}, []string{"docker.io/library/a:1", "docker.io/library/b:1"}},
		{"OCI layout: manifest.json and index.json name the same image and tag", ociArchive(t, []testImage{a}, [][]string{{"alpine:3.19"}}),
			[]string{a.id()}, []string{"docker.io/library/alpine:3.19"}},
		{"OCI layout, two images", ociArchive(t, []testImage{a, b}, nil), []string{a.id(), b.id()}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			ids, tags, err := imageArchiveInfo(archiveFile(t, tc.entries))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTags, tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckImageArchive(t *testing.T) {
	a, b := newTestImage("a"), newTestImage("b")
	tagged := [][]string{{"alpine:3.19"}}
	legacy := legacyArchive(t, []testImage{a}, tagged)
	oci := ociArchive(t, []testImage{a}, tagged)
	aManifest := ociImageManifest(t, a, mediaOCIConfig)
	allowed := []string{"alpine:3.19"}

	// An index.json with the image and a build attestation (not an image) under one index.
	attestation := newTestImage("attestation")
	attManifest := ociImageManifest(t, attestation, "application/vnd.in-toto+json")
	nested := []byte(mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIIndex, "manifests": []map[string]any{
		{"mediaType": mediaOCIManifest, "digest": digestOf(aManifest), "size": len(aManifest)},
		{"mediaType": mediaOCIManifest, "digest": digestOf(attManifest), "size": len(attManifest),
			"annotations": map[string]string{"vnd.docker.reference.type": "attestation-manifest"}},
		// Another platform, not saved: absent blobs inside a nested index are fine.
		{"mediaType": mediaOCIManifest, "digest": digestOf([]byte("arm64")), "size": 5},
	}}))
	withAttestation := append(replaced(oci, "index.json", mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []map[string]any{
		{"mediaType": mediaOCIIndex, "digest": digestOf(nested), "size": len(nested),
			"annotations": map[string]string{annotationImageName: "docker.io/library/alpine:3.19"}},
	}}), false),
		fileEntry("blobs/sha256/"+hexOf(digestOf(nested)), string(nested), 0o644),
		fileEntry("blobs/sha256/"+hexOf(digestOf(attManifest)), string(attManifest), 0o644),
		fileEntry("blobs/sha256/"+hexOf(attestation.id()), string(attestation.config), 0o644))

	// A legacy archive whose config file is named after image b but holds a's config.
	lying := replaced(legacyArchive(t, []testImage{b}, tagged), hexOf(b.id())+".json", string(a.config), false)

	cases := []struct {
		desc    string
		entries []streamEntry
		want    string
		allowed []string
		refuse  string // "" passes; else in the error
	}{
		{desc: "legacy, right image and tag", entries: legacy, want: a.id(), allowed: allowed},
		{desc: "legacy, tag allowed in full form", entries: legacy, want: a.id(), allowed: []string{"docker.io/library/alpine:3.19"}},
		{desc: "legacy, untagged, no tags allowed", entries: legacyArchive(t, []testImage{a}, nil), want: a.id()},
		{desc: "OCI layout, right image and tag", entries: oci, want: a.id(), allowed: allowed},
		{desc: "OCI layout, wanted by its manifest digest (containerd image store ID)", entries: oci, want: digestOf(aManifest), allowed: allowed},
		{desc: "OCI layout with a build attestation and a platform not saved", entries: withAttestation, want: a.id(), allowed: allowed},
		{desc: "legacy, wrong image", entries: legacy, want: b.id(), allowed: allowed, refuse: "holds image " + a.id()},
		{desc: "OCI layout, wrong image", entries: oci, want: b.id(), allowed: allowed, refuse: "holds image " + a.id()},
		{desc: "a config named after the wanted image holds another", entries: lying, want: b.id(), allowed: allowed, refuse: "holds image " + a.id()},
		{desc: "legacy, two images", entries: legacyArchive(t, []testImage{a, b}, nil), want: a.id(), refuse: "holds 2 images"},
		{desc: "OCI layout, two images", entries: ociArchive(t, []testImage{a, b}, nil), want: a.id(), refuse: "holds 2 images"},
		{desc: "a tag the migration does not name", entries: legacyArchive(t, []testImage{a}, [][]string{{"alpine:3.19", "nginx:latest"}}),
			want: a.id(), allowed: allowed, refuse: "would tag docker.io/library/nginx:latest"},
		{desc: "a tag when none is allowed", entries: legacy, want: a.id(), refuse: "would tag docker.io/library/alpine:3.19"},
		{desc: "a tag only in repositories", want: a.id(), allowed: allowed, refuse: "would tag docker.io/library/redis:7",
			entries: append(replaced(legacy, "repositories", "", true), fileEntry("repositories", `{"redis":{"7":"x"}}`, 0o644))},
		{desc: "a tag only in an index.json annotation", want: a.id(), allowed: allowed, refuse: "would tag docker.io/library/postgres:16",
			entries: replaced(oci, "index.json", mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{
				"mediaType": mediaOCIManifest, "digest": digestOf(aManifest), "size": len(aManifest),
				"annotations": map[string]string{annotationImageName: "postgres:16"},
			}}}), false)},
		{desc: "a tag that is not a reference", entries: legacyArchive(t, []testImage{a}, [][]string{{"UPPER/Case:!"}}),
			want: a.id(), refuse: "not an image reference"},
		{desc: "malformed manifest.json", entries: replaced(legacy, "manifest.json", `[{"Config":`, false), want: a.id(), refuse: "manifest.json"},
		{desc: "malformed index.json", entries: replaced(oci, "index.json", `{"manifests":{}}`, false), want: a.id(), refuse: "index.json"},
		{desc: "a config that is not JSON", entries: replaced(legacy, hexOf(a.id())+".json", "not json", false), want: a.id(), refuse: "not a JSON object"},
		{desc: "legacy, missing config", entries: replaced(legacy, hexOf(a.id())+".json", "", true), want: a.id(), refuse: "is missing"},
		{desc: "OCI layout, missing config", want: a.id(), refuse: "is missing",
			entries: replaced(replaced(oci, "blobs/sha256/"+hexOf(a.id()), "", true), "manifest.json", "[]", false)},
		{desc: "OCI layout, missing manifest", entries: replaced(oci, "blobs/sha256/"+hexOf(digestOf(aManifest)), "", true), want: a.id(), refuse: "does not hold"},
		{desc: "OCI layout, a blob that does not hash to its digest", want: a.id(), refuse: "hashes to",
			entries: replaced(oci, "blobs/sha256/"+hexOf(digestOf(aManifest)), string(ociImageManifest(t, b, mediaOCIConfig)), false)},
		{desc: "neither manifest.json nor index.json", entries: []streamEntry{fileEntry("x", "y", 0o644)}, want: a.id(), refuse: "neither manifest.json nor index.json"},
		{desc: "no image at all", entries: []streamEntry{fileEntry("manifest.json", "[]", 0o644)}, want: a.id(), refuse: "holds no image"},
		{desc: "manifest.json twice (docker would read the last)", want: a.id(), allowed: allowed, refuse: "twice",
			entries: append(slices.Clone(legacy), fileEntry("./manifest.json", `[{"Config":"x.json","RepoTags":["evil:1"]}]`, 0o644))},
		{desc: "manifest.json as a symlink", want: a.id(), refuse: "not a regular file",
			entries: append(replaced(legacy, "manifest.json", "", true), linkEntry("manifest.json", "other.json"))},
		{desc: "a config as a symlink", want: a.id(), allowed: allowed, refuse: "not a regular file",
			entries: append(replaced(legacy, hexOf(a.id())+".json", "", true), linkEntry(hexOf(a.id())+".json", "elsewhere.json"))},
		{desc: "an entry outside the archive", want: a.id(), allowed: allowed, refuse: "not a clean relative name",
			entries: append(slices.Clone(legacy), fileEntry("../escape", "x", 0o644))},
		{desc: "an over-long entry name", want: a.id(), allowed: allowed, refuse: "more than 1024",
			entries: append(slices.Clone(legacy), fileEntry(strings.Repeat("x", 1025), "x", 0o644))},
		{desc: "an oversize manifest.json", want: a.id(), refuse: "more than",
			entries: []streamEntry{fileEntry("manifest.json", "["+strings.Repeat(" ", maxImageMetadata)+"]", 0o644)}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			err := checkImageArchive(archiveFile(t, tc.entries), tc.want, tc.allowed)
			if tc.refuse == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", err)
			}
			if !strings.Contains(err.Error(), tc.refuse) {
				t.Errorf("err = %v, want it to say %q", err, tc.refuse)
			}
		})
	}

	t.Run("not a tar", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "junk")
		if err := os.WriteFile(p, bytes.Repeat([]byte("junk"), 300), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := checkImageArchive(p, a.id(), nil); !errors.Is(err, ErrRefused) {
			t.Fatalf("err = %v, want ErrRefused", err)
		}
	})
}

// tarContents maps each entry's name to its body.
func tarContents(t testing.TB, r io.Reader) map[string]string {
	t.Helper()
	got := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = string(b)
	}
}

func TestWriteUntaggedArchive(t *testing.T) {
	a := newTestImage("a")
	cases := []struct {
		desc    string
		entries []streamEntry
	}{
		{"legacy with repositories", legacyArchive(t, []testImage{a}, [][]string{{"alpine:3.19", "alpine:latest"}})},
		{"OCI layout with name annotations", ociArchive(t, []testImage{a}, [][]string{{"alpine:3.19"}})},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			src := archiveFile(t, tc.entries)
			var out bytes.Buffer
			if err := writeUntaggedArchive(src, &out); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "untagged.tar")
			if err := os.WriteFile(dst, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			ids, tags, err := imageArchiveInfo(dst)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{a.id()}, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if len(tags) != 0 {
				t.Errorf("tags = %q, want none", tags)
			}
			if err := checkImageArchive(dst, a.id(), nil); err != nil {
				t.Errorf("untagged archive refused with no tags allowed: %v", err)
			}
			// Everything but the tag-bearing files is copied byte for byte.
			before, after := tarContents(t, bytes.NewReader(tarOf(t, tc.entries, true))), tarContents(t, &out)
			for _, name := range []string{"manifest.json", "index.json", "repositories"} {
				delete(before, name)
			}
			if _, ok := after["repositories"]; ok {
				t.Error("repositories was copied")
			}
			if strings.Contains(after["index.json"], annotationImageName) || strings.Contains(after["index.json"], annotationOCIRefName) {
				t.Errorf("index.json still names the image: %s", after["index.json"])
			}
			delete(after, "manifest.json")
			delete(after, "index.json")
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("other entries changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNormalizeImageRef(t *testing.T) {
	cases := []struct {
		desc, ref, want string // want "" means invalid
	}{
		{"official image, no tag", "alpine", "docker.io/library/alpine:latest"},
		{"official image with tag", "alpine:3.19", "docker.io/library/alpine:3.19"},
		{"hub user image", "someone/app:1", "docker.io/someone/app:1"},
		{"already full", "docker.io/library/alpine:3.19", "docker.io/library/alpine:3.19"},
		{"index.docker.io", "index.docker.io/library/alpine", "docker.io/library/alpine:latest"},
		{"other registry with port", "registry.local:5000/team/app:v2", "registry.local:5000/team/app:v2"},
		{"localhost", "localhost/app", "localhost/app:latest"},
		{"digest", "alpine@sha256:" + strings.Repeat("a", 64), "docker.io/library/alpine@sha256:" + strings.Repeat("a", 64)},
		{"upper-case repository", "Alpine", ""},
		{"bad tag", "alpine:-x", ""},
		{"bad digest", "alpine@sha256:xyz", ""},
		{"empty", "", ""},
		{"empty component", "a//b", ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := normalizeImageRef(tc.ref)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("normalizeImageRef(%q) = %q, %v; want %q", tc.ref, got, ok, tc.want)
			}
		})
	}
}
