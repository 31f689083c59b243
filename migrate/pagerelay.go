package migrate

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// The page stream of a post-copy migration. CRIU's page server speaks plain TCP without
// authentication, so it listens on the source's loopback only, and the target's lazy-pages
// daemon fetches from a loopback listener of its own node; the bytes between the two nodes
// travel over the cluster's mutual TLS as one "pages" request:
//
//	source → target: "GWT2" frame(request{op: pages}), then frames of page-server output
//	                 ended by an empty frame
//	target → source: frames of the lazy-pages daemon's requests ended by an empty frame,
//	                 then frame(response) with the bytes the target received
//
// Both ends count the page bytes; the commit compares them with the pages the dump left.

// relayTimeout bounds how long one side of the page stream waits for the other to show up.
const relayTimeout = 2 * time.Minute

// pageStream is the source's TLS connection of a post-copy migration, seen by the target.
type pageStream struct {
	r    io.Reader // buffered: the request frame was read through it
	w    io.Writer
	done chan struct{}
}

// pageRelay is the target's end: a loopback listener for the lazy-pages daemon, joined to
// the source's page stream.
type pageRelay struct {
	ln      net.Listener
	streams chan *pageStream
	// In counts page-server bytes received from the source; Out the daemon's requests.
	In, Out atomic.Int64
	done    chan struct{}
	err     error
}

// postcopyState is a node's post-copy bookkeeping that does not outlive the process: the
// relays and the lazy restores in progress. A restart loses it, and recovery treats a
// transfer it cannot see as failed.
type postcopyState struct {
	mu       sync.Mutex
	relays   map[string]*pageRelay
	restores map[string]*lazyTransfer
}

// relay returns migration id's relay, creating it (and its listener on addr) if needed.
func (p *postcopyState) relay(id, addr string) (*pageRelay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.relays[id]; ok {
		return r, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return nil, fmt.Errorf("migrate: post-copy relay: %w", err)
	}
	r := &pageRelay{ln: ln, streams: make(chan *pageStream, 1), done: make(chan struct{})}
	if p.relays == nil {
		p.relays = map[string]*pageRelay{}
	}
	p.relays[id] = r
	go r.run()
	return r, nil
}

func (p *postcopyState) dropRelay(id string) {
	p.mu.Lock()
	r := p.relays[id]
	delete(p.relays, id)
	p.mu.Unlock()
	if r != nil {
		r.ln.Close()
	}
}

// Addr is where the lazy-pages daemon fetches pages.
func (r *pageRelay) Addr() string { return r.ln.Addr().String() }

// run joins the daemon's connection with the source's stream and copies until both ends
// are done.
func (r *pageRelay) run() {
	defer close(r.done)
	defer r.ln.Close()
	if tl, ok := r.ln.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(relayTimeout))
	}
	daemon, err := r.ln.Accept()
	if err != nil {
		r.err = fmt.Errorf("the lazy-pages daemon did not connect: %w", err)
		r.drainStream()
		return
	}
	defer daemon.Close()
	var s *pageStream
	select {
	case s = <-r.streams:
	case <-time.After(relayTimeout):
		r.err = errors.New("the source's page stream did not arrive")
		return
	}
	defer close(s.done)
	r.err = pipeFramed(daemon, s.r, s.w, &r.In, &r.Out)
}

// drainStream releases a stream that arrives for a relay that failed.
func (r *pageRelay) drainStream() {
	select {
	case s := <-r.streams:
		close(s.done)
	case <-time.After(time.Second):
	}
}

// pipeFramed copies between a local plain connection and a framed peer stream: local
// output goes out as frames (counted in out), frames from the peer go to local (counted in
// in). Each direction ends with an empty frame; a local connection that ends sends it, an
// empty frame from the peer closes local's write side.
func pipeFramed(local net.Conn, peerR io.Reader, peerW io.Writer, in, out *atomic.Int64) error {
	errc := make(chan error, 2)
	go func() {
		buf := make([]byte, 256<<10)
		var err error
		for {
			n, rerr := local.Read(buf)
			if n > 0 {
				if err = writeFrameOnce(peerW, buf[:n]); err != nil {
					break
				}
				out.Add(int64(n))
			}
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, net.ErrClosed) {
					err = rerr
				}
				break
			}
		}
		if werr := writeFrameOnce(peerW, nil); err == nil {
			err = werr
		}
		errc <- err
	}()
	go func() {
		fr := &frameReader{r: peerR}
		_, err := io.Copy(writerFunc(func(p []byte) (int, error) {
			n, err := local.Write(p)
			in.Add(int64(n))
			return n, err
		}), fr)
		if tc, ok := local.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		if err != nil {
			local.Close() // the other direction must not wait for a peer that is gone
		}
		errc <- err
	}()
	err1, err2 := <-errc, <-errc
	if err1 != nil {
		return err1
	}
	return err2
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// writeFrameOnce writes one frame with a single Write (one TLS record for small frames).
func writeFrameOnce(w io.Writer, b []byte) error {
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err := w.Write(buf)
	return err
}

// servePages is the target's handling of a pages request: the stream joins the relay and
// the answer says how many page bytes arrived.
func (n *Node) servePages(ctx context.Context, peer pki.Identity, req *request, body io.Reader, dc *deadlineConn, w io.Writer) (response, error) {
	if !peer.IsNode() {
		return response{}, fmt.Errorf("%w: %s is not a node", ErrUnauthorized, peer)
	}
	e, ok := n.journal.Get(req.MigrationID)
	if !ok {
		return response{}, fmt.Errorf("%w: migration %s is unknown here", ErrNotFound, req.MigrationID)
	}
	if e.Side != SideTarget || e.Source != peer.Node {
		return response{}, fmt.Errorf("%w: %s is not the source of migration %s", ErrUnauthorized, peer, req.MigrationID)
	}
	switch e.Phase {
	case PhaseStaged, PhaseRestoring:
	default:
		return response{}, fmt.Errorf("%w: page stream for migration %s in phase %s", ErrRefused, e.ID, e.Phase)
	}
	r, err := n.pc.relay(e.ID, n.loopback())
	if err != nil {
		return response{}, err
	}
	dc.setTimeout(n.cfg.RestoreTimeout)
	s := &pageStream{r: body, w: w, done: make(chan struct{})}
	select {
	case r.streams <- s:
	default:
		return response{}, fmt.Errorf("%w: migration %s already has a page stream", ErrRefused, e.ID)
	}
	select {
	case <-s.done:
	case <-r.done:
		select {
		case <-s.done:
		default:
			return response{}, fmt.Errorf("migrate: page relay of %s: %v", e.ID, r.err)
		}
	}
	<-r.done
	if r.err != nil {
		return response{Bytes: r.In.Load()}, fmt.Errorf("migrate: page relay of %s: %w", e.ID, r.err)
	}
	return response{Bytes: r.In.Load()}, nil
}

// loopback is the address local page servers and relays listen on: LoopbackAddr, else the
// node's own listening address when that is a loopback one (several nodes on one host),
// else 127.0.0.1.
func (n *Node) loopback() string {
	if n.cfg.LoopbackAddr != "" {
		return n.cfg.LoopbackAddr
	}
	n.mu.Lock()
	ln := n.ln
	n.mu.Unlock()
	if ln != nil {
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			return a.IP.String()
		}
	}
	return "127.0.0.1"
}

// sourcePages is the source's end of the page stream: it connects the target's relay (over
// TLS) with the local page server until both are done.
type sourcePages struct {
	Out, In atomic.Int64 // page bytes sent to the target, request bytes from it
	// TargetBytes is what the target reported receiving.
	TargetBytes int64
	done        chan struct{}
	err         error
}

func (s *sourcePages) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startPages opens the page stream of migration e to its target and joins it with the page
// server at pageServer.
// c is the migration's client: its TLS session cache spares a full handshake in the freeze.
func (n *Node) startPages(ctx context.Context, c *Client, e *Entry, pageServer string) (*sourcePages, error) {
	conn, err := c.dialNode(ctx, e.TargetAddr, e.Target, n.cfg.RestoreTimeout)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(conn)
	if _, err := bw.WriteString(protoMagic); err == nil {
		err = writeJSONFrame(bw, request{Op: opPages, MigrationID: e.ID})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("migrate: page stream to %s: %w", e.Target, err)
	}
	ps, err := net.DialTimeout("tcp", pageServer, 10*time.Second)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("migrate: local page server %s: %w", pageServer, err)
	}
	s := &sourcePages{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer conn.Close()
		defer ps.Close()
		br := bufio.NewReader(conn)
		s.err = pipeFramed(ps, br, conn, &s.In, &s.Out)
		var resp response
		if err := readStrictFrame(br, &resp); err != nil {
			if s.err == nil {
				s.err = fmt.Errorf("migrate: page stream: no answer from %s: %w", e.Target, err)
			}
			return
		}
		s.TargetBytes = resp.Bytes
		if err := resp.err(e.Target); err != nil && s.err == nil {
			s.err = err
		}
	}()
	return s, nil
}

// dialNode connects to the node at addr and completes the TLS handshake, expecting the
// node name expect in its certificate; ioTimeout bounds each read and write afterwards.
func (c *Client) dialNode(ctx context.Context, addr, expect string, ioTimeout time.Duration) (*tls.Conn, error) {
	dialTimeout := c.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 10 * time.Second
	}
	if ioTimeout == 0 {
		ioTimeout = 60 * time.Second
	}
	if c.TLS == nil {
		return nil, errors.New("migrate: client without TLS identity")
	}
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("migrate: %s unreachable: %w", addr, err)
	}
	cfg := c.TLS.ClientConfig(expect)
	c.mu.Lock()
	if c.sessions == nil {
		c.sessions = tls.NewLRUClientSessionCache(64)
	}
	cfg.ClientSessionCache = c.sessions
	c.mu.Unlock()
	conn := tls.Client(&deadlineConn{Conn: raw, timeout: ioTimeout}, cfg)
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	err = conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("migrate: TLS handshake with %s: %w", addr, err)
	}
	return conn, nil
}
