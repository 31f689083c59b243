package migrate

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/godwit-io/godwit/internal/pki"
)

// BenchmarkRequestTLS is one status request as the protocol makes it: TCP connect, TLS 1.3
// handshake with both certificates checked, authorization, journal lookup, answer. Compare
// with BenchmarkRequestPlain, the same framing over plain TCP with nothing checked (what
// protocol v1 did), to get the authentication overhead per connection:
//
//	go test -run '^$' -bench 'Request(TLS|Plain)' -benchtime 2s ./migrate/
func BenchmarkRequestTLS(b *testing.B) {
	p := &testPKI{dir: b.TempDir()}
	n, err := NewNode(NodeConfig{Name: "dst", Runtime: NewFakeRuntime(b.TempDir()), StateDir: b.TempDir(), TLS: p.tls(b, "dst", pki.RoleClient)})
	if err != nil {
		b.Fatal(err)
	}
	addr, err := n.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	c := &Client{TLS: p.tls(b, "op", pki.RoleOperator)}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Status(ctx, addr, "dst", "m-1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestPlain(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				magic := make([]byte, len(protoMagic))
				if _, err := io.ReadFull(br, magic); err != nil {
					return
				}
				var req request
				if err := readStrictFrame(br, &req); err != nil {
					return
				}
				st := Status{ID: req.MigrationID, Node: "dst"}
				bw := bufio.NewWriter(conn)
				writeJSONFrame(bw, response{OK: true, Status: &st})
				bw.Flush()
			}()
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriter(conn)
		bw.WriteString(protoMagic)
		writeJSONFrame(bw, request{Op: opStatus, MigrationID: "m-1"})
		bw.Flush()
		var resp response
		if err := readStrictFrame(bufio.NewReader(conn), &resp); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// BenchmarkJournalPut is one durable journal write (file, fsync, rename, directory fsync):
// a migration makes about seven of them inside its downtime (source: frozen, streamed,
// restoring; target: receiving, staged, restoring, running).
func BenchmarkJournalPut(b *testing.B) {
	j, err := OpenJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	e := Entry{ID: "m-bench", Side: SideSource, Workload: "w", Spec: &Spec{Name: "w", Config: []byte(`{"networkMode":"none"}`)}}
	phases := []string{PhaseFrozen, PhaseStreamed, PhaseRestoring}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.ID = "m-bench-" + strconv.Itoa(i/len(phases)) // an entry's usual few steps
		e.Phase = phases[i%len(phases)]
		if err := j.Put(e); err != nil {
			b.Fatal(err)
		}
	}
}
