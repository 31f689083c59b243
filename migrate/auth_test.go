package migrate

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// canary is what every refused request must leave alone: a running workload and a file.
type canary struct {
	id   string
	mem  []byte
	file string
}

func plantCanary(t *testing.T, tn *testNode) canary {
	c := canary{mem: memory(t, 4096), file: filepath.Join(tn.state, "victim", "keep.txt")}
	c.id = tn.rt.Add("canary", c.mem, managed)
	if err := os.MkdirAll(filepath.Dir(c.file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c canary) check(t *testing.T, tn *testNode) {
	t.Helper()
	found := false
	for _, w := range tn.rt.Running() {
		if w.ID == c.id && bytes.Equal(w.Memory, c.mem) {
			found = true
		}
	}
	if !found {
		t.Fatal("canary workload is gone or changed")
	}
	if b, err := os.ReadFile(c.file); err != nil || string(b) != "keep" {
		t.Fatalf("canary file: %q %v", b, err)
	}
	if entries := tn.node().Journal().List(); len(entries) != 0 {
		t.Fatalf("refused requests left %d journal entries", len(entries))
	}
}

// rawRequest sends one request with the given TLS config and raw request bytes, and returns
// the answer frame's error text (or the transport error).
func rawRequest(addr string, cfg *tls.Config, magic string, body []byte) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, err := conn.Write(append(append([]byte(magic), hdr[:]...), body...)); err != nil {
		return "", err
	}
	var resp response
	if err := readStrictFrame(bufio.NewReader(conn), &resp); err != nil {
		return "", err
	}
	if resp.OK {
		return "", nil
	}
	return resp.Error, errors.New(resp.Error)
}

func TestAuthentication(t *testing.T) {
	p := newTestPKI(t)
	dst := startTestNode(t, p, "dst", nil)
	c := plantCanary(t, dst)
	// The old protocol's one-line attack: abort an unknown migration, naming any container
	// and directory as its "prepared" workload.
	oldAbort := []byte(`{"op":"abort","migrationID":"m-1","prepared":{"id":"` + c.id + `","checkpointDir":"` + filepath.Dir(c.file) + `"}}`)

	other := newTestPKI(t) // another cluster's CA
	otherTLS := other.tls(t, "src", pki.RoleServer)
	expiredDir := t.TempDir()
	if _, err := pki.CreateCA(pki.CAOptions{Dir: filepath.Join(expiredDir, "ca")}); err != nil {
		t.Fatal(err)
	}
	// An expired certificate of this cluster's CA.
	exp, err := pki.CreateCert(pki.CertOptions{CADir: filepath.Join(p.dir, "ca"), OutDir: expiredDir, Node: "src", Role: pki.RoleServer,
		Lifetime: time.Hour, Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := tls.LoadX509KeyPair(exp.Cert, exp.Key)
	if err != nil {
		t.Fatal(err)
	}
	insecure := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: certs}
	}

	cases := []struct {
		desc string
		send func() error
	}{
		{"plaintext, old JSON protocol", func() error {
			conn, err := net.DialTimeout("tcp", dst.addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], uint32(len(oldAbort)))
			conn.Write(append(append([]byte("GWT1"), hdr[:]...), oldAbort...))
			b, _ := io.ReadAll(conn)
			if bytes.Contains(b, []byte(`"ok":true`)) {
				return nil
			}
			return errors.New("refused")
		}},
		{"TLS without a client certificate", func() error {
			_, err := rawRequest(dst.addr, insecure(), protoMagic, []byte(`{"op":"ping"}`))
			return err
		}},
		{"certificate of another CA", func() error {
			_, err := rawRequest(dst.addr, otherTLS.ClientConfig(""), protoMagic, oldAbort)
			return err
		}},
		{"expired certificate", func() error {
			_, err := rawRequest(dst.addr, insecure(expired), protoMagic, []byte(`{"op":"resolve","migrationID":"m-1","outcome":"abort"}`))
			return err
		}},
		{"old protocol over TLS with a valid certificate", func() error {
			_, err := rawRequest(dst.addr, p.tls(t, "src", pki.RoleServer).ClientConfig(""), "GWT1", oldAbort)
			return err
		}},
		{"unknown fields (the old 'prepared' trick)", func() error {
			_, err := rawRequest(dst.addr, p.tls(t, "src", pki.RoleServer).ClientConfig(""), protoMagic, oldAbort)
			return err
		}},
		{"a client node orders a migration", func() error {
			_, err := (&Client{TLS: p.tls(t, "src", pki.RoleClient)}).Migrate(context.Background(), dst.addr, "dst", Order{Workload: c.id, TargetNode: "x", TargetAddr: "127.0.0.1:1"}, 0)
			if !errors.Is(err, ErrUnauthorized) {
				return nil
			}
			return err
		}},
		{"an operator sends a target step", func() error {
			_, _, err := (&Client{TLS: p.tls(t, "op", pki.RoleOperator)}).call(context.Background(), dst.addr, "dst",
				request{Op: opPreflight, MigrationID: "m-2", Spec: &Spec{Runtime: "fake", Workload: "w", Name: "w"}}, nil, 0)
			if !errors.Is(err, ErrUnauthorized) {
				return nil
			}
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if err := tc.send(); err == nil {
				t.Fatal("accepted")
			} else {
				t.Logf("refused: %v", err)
			}
			c.check(t, dst)
		})
	}
}

// TestOnlyTheSourceDrivesAMigration: a valid node certificate cannot act in another node's
// migration, and the target refuses a second migration of a workload it holds.
func TestOnlyTheSourceDrivesAMigration(t *testing.T) {
	p := newTestPKI(t)
	dst := startTestNode(t, p, "dst", nil)
	ctx := context.Background()
	src := &Client{TLS: p.tls(t, "src", pki.RoleClient)}
	evil := &Client{TLS: p.tls(t, "evil", pki.RoleClient)}
	spec := &Spec{Runtime: "fake", Workload: "w1", Name: "w1", Labels: managed}
	if _, _, err := src.call(ctx, dst.addr, "dst", request{Op: opPreflight, MigrationID: "m-a", Spec: spec}, nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{opPreflight, opHasImage, opPrepare, opRestore, opStatus, opResolve} {
		req := request{Op: op, MigrationID: "m-a", Spec: spec, Outcome: OutcomeAbort}
		if _, _, err := evil.call(ctx, dst.addr, "dst", req, nil, 0); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s by another node: %v, want ErrUnauthorized", op, err)
		}
	}
	if e := dst.entry("m-a"); e.Phase != PhaseAnnounced || e.Source != "src" {
		t.Fatalf("entry changed: %+v", e)
	}
	_, _, err := src.call(ctx, dst.addr, "dst", request{Op: opPreflight, MigrationID: "m-b", Spec: spec}, nil, 0)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "m-a") {
		t.Fatalf("second migration of a held workload: %v", err)
	}
	// A node cannot pose as the target's peer by name: the target checks the certificate.
	if _, err := (&Client{TLS: p.tls(t, "src", pki.RoleClient)}).Ping(ctx, dst.addr); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.call(ctx, dst.addr, "someone-else", request{Op: opPing}, nil, 0); err == nil {
		t.Fatal("a client expecting another node name accepted dst's certificate")
	}
}

// TestHostileStream: the migration's own source sends streams that try to write outside
// the staging directory; all are refused and nothing lands outside.
func TestHostileStream(t *testing.T) {
	p := newTestPKI(t)
	dst := startTestNode(t, p, "dst", nil)
	ctx := context.Background()
	src := &Client{TLS: p.tls(t, "src", pki.RoleClient)}
	outside := filepath.Join(dst.state, "outside")
	cases := []struct{ desc, name, link string }{
		{"traversal", "checkpoint/../../../outside/x", ""},
		{"absolute", outside + "/x", ""},
		{"prefix trick", "checkpoint../outside/x", ""},
		{"escaping symlink", "checkpoint/ln", "../../../../outside"},
		{"unknown top level", "etc/passwd", ""},
	}
	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			id := "m-h" + string(rune('a'+i))
			spec := &Spec{Runtime: "fake", Workload: "wh" + id, Name: "wh" + id, Labels: managed}
			for _, op := range []string{opPreflight, opPrepare} {
				if _, _, err := src.call(ctx, dst.addr, "dst", request{Op: op, MigrationID: id, Spec: spec}, nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if tc.link != "" {
				tw.WriteHeader(&tar.Header{Name: tc.name, Typeflag: tar.TypeSymlink, Linkname: tc.link, Mode: 0o777})
				tw.WriteHeader(&tar.Header{Name: tc.name + "/x", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644})
			} else {
				tw.WriteHeader(&tar.Header{Name: tc.name, Typeflag: tar.TypeReg, Size: 4, Mode: 0o644})
			}
			tw.Write([]byte("evil"))
			tw.Close()
			_, _, err := src.call(ctx, dst.addr, "dst", request{Op: opStream, MigrationID: id, Size: int64(buf.Len())}, func(w io.Writer) error {
				_, _, err := sendStream(w, false, 0, "", nil, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err })
				return err
			}, 0)
			if !errors.Is(err, ErrUnsafeStream) {
				t.Fatalf("hostile stream: %v, want ErrUnsafeStream", err)
			}
			if _, err := os.Lstat(outside); err == nil {
				t.Fatalf("something was written outside: %s", outside)
			}
			if e := dst.entry(id); e.Phase != PhasePrepared {
				t.Fatalf("after a refused stream the target is in %s", e.Phase)
			}
		})
	}
}

// TestOnePerWorkload: a second order for a workload whose migration is in progress is
// refused with the migration that holds it, and steps of one migration never overlap.
func TestOnePerWorkload(t *testing.T) {
	p := newTestPKI(t)
	release := make(chan struct{})
	reached := make(chan struct{})
	src := startTestNode(t, p, "src", func(c *NodeConfig) {
		c.Fault = func(point string) error {
			if point == "source-after-checkpoint" {
				close(reached)
				<-release
			}
			return nil
		}
	})
	dst := startTestNode(t, p, "dst", nil)
	mem := memory(t, 1<<20)
	wid := src.rt.Add("w", mem, managed)
	op := operator(t, p)
	done := make(chan error, 1)
	go func() {
		_, err := op.Migrate(context.Background(), src.addr, "src", Order{ID: "m-first", Workload: "w", TargetNode: "dst", TargetAddr: dst.addr}, 0)
		done <- err
	}()
	<-reached
	_, err := op.Migrate(context.Background(), src.addr, "src", Order{ID: "m-second", Workload: wid, TargetNode: "dst", TargetAddr: dst.addr}, 0)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("second order: %v, want ErrRefused", err)
	}
	t.Logf("refused: %v", err)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if where := copies(t, wid, mem, src, dst); len(where) != 1 || where[0] != "dst" {
		t.Fatalf("copies: %v", where)
	}
}

func TestUnmanagedRefused(t *testing.T) {
	p := newTestPKI(t)
	src, dst := startTestNode(t, p, "src", nil), startTestNode(t, p, "dst", nil)
	src.rt.Add("plain", memory(t, 100), nil)
	_, err := operator(t, p).Migrate(context.Background(), src.addr, "src", Order{Workload: "plain", TargetNode: "dst", TargetAddr: dst.addr}, 0)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), LabelManaged) {
		t.Fatalf("unmanaged: %v", err)
	}
	if len(src.rt.Running()) != 1 || len(dst.rt.Workloads()) != 0 {
		t.Fatal("something moved")
	}
}

func TestCloseWithClientsConnected(t *testing.T) {
	p := newTestPKI(t)
	dst := startTestNode(t, p, "dst", nil)
	// One client that never speaks, one that stops mid-request.
	idle, err := net.Dial("tcp", dst.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	half, err := tls.Dial("tcp", dst.addr, p.tls(t, "src", pki.RoleClient).ClientConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	half.Write([]byte(protoMagic + "\x00\x00\x01\x00{"))
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	dst.node().Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with clients connected", d)
	}
}

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{ID: "m-1", Side: SideSource, Workload: "w", Phase: PhaseOrdered, Spec: &Spec{Name: "w", Labels: map[string]string{"a": "b"}}}
	if err := j.Put(e); err != nil {
		t.Fatal(err)
	}
	e.Phase = PhaseFrozen
	if err := j.Put(e); err != nil {
		t.Fatal(err)
	}
	// A crash during a Put leaves a temporary file; damage after a write leaves a bad file.
	os.WriteFile(filepath.Join(dir, journalTmpPrefix+"m-2-123"), []byte(`{"partial`), 0o600)
	os.WriteFile(filepath.Join(dir, "m-3.json"), []byte(`{"format":1,"crc32c":1,"entry":{"id":"m-3"}}`), 0o600)
	j2, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := j2.Get("m-1")
	if !ok || got.Phase != PhaseFrozen || len(got.History) != 2 || got.Spec.Labels["a"] != "b" {
		t.Fatalf("reloaded: %+v", got)
	}
	if len(j2.Corrupt) != 1 || !strings.HasSuffix(j2.Corrupt[0], "m-3.json") {
		t.Fatalf("corrupt: %v", j2.Corrupt)
	}
	if _, err := os.Stat(filepath.Join(dir, journalTmpPrefix+"m-2-123")); err == nil {
		t.Fatal("temporary file left")
	}
	got.Phase = PhaseCompleted
	j2.Put(got)
	if n := j2.Prune(time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("pruned %d", n)
	}
	if err := j2.Put(Entry{ID: "../x"}); err == nil {
		t.Fatal("journal accepted a path as an ID")
	}
}

func TestKeyedLocksNeverDroppedWhileHeld(t *testing.T) {
	var k keyedLocks
	var inside, max int32
	var mu = make(chan struct{}, 1)
	done := make(chan struct{})
	for i := 0; i < 50; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			unlock := k.lock("m")
			mu <- struct{}{}
			inside++
			if inside > max {
				max = inside
			}
			<-mu
			time.Sleep(time.Millisecond)
			mu <- struct{}{}
			inside--
			<-mu
			unlock()
		}()
	}
	for i := 0; i < 50; i++ {
		<-done
	}
	if max != 1 {
		t.Fatalf("%d holders at once", max)
	}
	if len(k.m) != 0 {
		t.Fatalf("%d locks left", len(k.m))
	}
}
