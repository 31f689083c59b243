package migrate

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/godwit-io/godwit/internal/pki"
)

// deadlineConn sets a fresh deadline before every read and write, so a peer that stops
// answering is noticed within timeout whatever the step, and a long transfer that keeps
// moving is never cut.
type deadlineConn struct {
	net.Conn
	mu      sync.Mutex
	timeout time.Duration
}

func (c *deadlineConn) setTimeout(d time.Duration) {
	c.mu.Lock()
	c.timeout = d
	c.mu.Unlock()
}

func (c *deadlineConn) current() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timeout
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.current())); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.current())); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// Client calls nodes' migration services: the CLI (operator certificate), the leader
// (server certificate) and a source node talking to its target all use it.
type Client struct {
	TLS *pki.TLS
	// DialTimeout bounds connecting plus the TLS handshake. Default 10s.
	DialTimeout time.Duration
	// IOTimeout bounds every read and write. Default 60s.
	IOTimeout time.Duration
	// Handshakes counts connections made and the time spent connecting and in TLS
	// handshakes (the protocol's authentication overhead).
	mu         sync.Mutex
	handshakes int
	handshake  time.Duration
	sessions   tls.ClientSessionCache // TLS 1.3 resumption: later calls skip the full handshake
}

// HandshakeStats returns how many connections c made and the time they took to set up.
func (c *Client) HandshakeStats() (int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.handshakes, c.handshake
}

// call is one request/response exchange with the node at addr. expect is the node name its
// certificate must carry ("" accepts any cluster node). body, when set, streams after the
// request. wait bounds the wait for the answer once the request is sent (0: IOTimeout).
// It returns the answering node's name from its certificate.
func (c *Client) call(ctx context.Context, addr, expect string, req request, body func(io.Writer) error, wait time.Duration) (response, string, error) {
	dialTimeout, ioTimeout := c.DialTimeout, c.IOTimeout
	if dialTimeout == 0 {
		dialTimeout = 10 * time.Second
	}
	if ioTimeout == 0 {
		ioTimeout = 60 * time.Second
	}
	if c.TLS == nil {
		return response{}, "", errors.New("migrate: client without TLS identity")
	}
	start := time.Now()
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return response{}, "", fmt.Errorf("migrate: %s unreachable: %w", addr, err)
	}
	dc := &deadlineConn{Conn: raw, timeout: ioTimeout}
	cfg := c.TLS.ClientConfig(expect)
	c.mu.Lock()
	if c.sessions == nil {
		c.sessions = tls.NewLRUClientSessionCache(64)
	}
	cfg.ClientSessionCache = c.sessions
	c.mu.Unlock()
	conn := tls.Client(dc, cfg)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	err = conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return response{}, "", fmt.Errorf("migrate: TLS handshake with %s: %w", addr, err)
	}
	c.mu.Lock()
	c.handshakes++
	c.handshake += time.Since(start)
	c.mu.Unlock()
	peer, err := pki.PeerIdentity(conn.ConnectionState())
	if err != nil {
		return response{}, "", fmt.Errorf("migrate: %s: %w", addr, err)
	}
	bw := bufio.NewWriterSize(conn, chunkSize+8)
	if _, err := bw.WriteString(protoMagic); err != nil {
		return response{}, peer.Node, err
	}
	if err := writeJSONFrame(bw, req); err != nil {
		return response{}, peer.Node, err
	}
	var sendErr error
	if body != nil {
		sendErr = body(bw)
	}
	if sendErr == nil {
		sendErr = bw.Flush()
	}
	if wait > 0 {
		dc.setTimeout(max(wait, ioTimeout))
	}
	var resp response
	if err := readStrictFrame(bufio.NewReader(conn), &resp); err != nil {
		if sendErr != nil {
			return response{}, peer.Node, fmt.Errorf("migrate: %s to %s: %w", req.Op, peer.Node, sendErr)
		}
		return response{}, peer.Node, fmt.Errorf("migrate: %s to %s: no answer: %w", req.Op, peer.Node, err)
	}
	if err := resp.err(peer.Node); err != nil {
		return resp, peer.Node, err
	}
	if sendErr != nil {
		return resp, peer.Node, fmt.Errorf("migrate: %s to %s: %w", req.Op, peer.Node, sendErr)
	}
	return resp, peer.Node, nil
}

// Ping asks the node at addr who it is.
func (c *Client) Ping(ctx context.Context, addr string) (string, error) {
	_, node, err := c.call(ctx, addr, "", request{Op: opPing}, nil, 0)
	return node, err
}

// Migrate orders the node at addr (expectNode: its name, "" for any) to migrate one of its
// workloads, and waits for the outcome (at most wait; 0 is an hour). The report is returned
// whenever the source produced one, also with an error.
func (c *Client) Migrate(ctx context.Context, addr, expectNode string, o Order, wait time.Duration) (*Report, error) {
	if wait == 0 {
		wait = time.Hour
	}
	resp, _, err := c.call(ctx, addr, expectNode, request{Op: opMigrate, Order: &o}, nil, wait)
	if resp.Report != nil {
		resp.Report.fromWire()
	}
	return resp.Report, err
}

// Status asks the node at addr what it knows of migration id.
func (c *Client) Status(ctx context.Context, addr, expectNode, id string) (*Status, error) {
	resp, _, err := c.call(ctx, addr, expectNode, request{Op: opStatus, MigrationID: id}, nil, 0)
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("migrate: status of %s from %s: answer without a status", id, addr)
	}
	return resp.Status, nil
}

// Resolve tells the node at addr to commit or abort its part of migration id.
func (c *Client) Resolve(ctx context.Context, addr, expectNode, id, outcome string) (*Status, error) {
	resp, _, err := c.call(ctx, addr, expectNode, request{Op: opResolve, MigrationID: id, Outcome: outcome}, nil, 2*time.Minute)
	return resp.Status, err
}
