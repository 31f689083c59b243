package gossip

import (
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// DelayFunc returns the one-way delay to add to a packet from one IP address to another.
type DelayFunc func(fromIP, toIP string) time.Duration

// DelayTransport wraps memberlist's real UDP/TCP transport, delaying each outgoing UDP
// packet by a per-peer-pair one-way delay and counting the bytes that pass.
//
// This is EMULATION, for tests and dev clusters on one machine (the kernel here has no
// netem): delays are added in user space with a timer per packet, so they are accurate
// to a timer tick and scheduling noise, and TCP streams (push-pull, reliable sends) are
// counted but not delayed. Production agents use memberlist's transport, and their RTTs
// come from real probes. Byte counts are memberlist's payloads (after encryption),
// without IP/UDP/TCP headers.
type DelayTransport struct {
	inner *memberlist.NetTransport
	self  string
	delay DelayFunc

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	stop     chan struct{}
	closed   chan struct{} // inner transport shut down
	once     sync.Once
	wg       sync.WaitGroup

	stats transportCounters
}

// TransportStats are the bytes and packets a DelayTransport has carried.
type TransportStats struct {
	PacketsSent, PacketsReceived         uint64
	PacketBytesSent, PacketBytesReceived uint64
	StreamBytesSent, StreamBytesReceived uint64
}

// BytesTotal is every byte sent and received.
func (s TransportStats) BytesTotal() uint64 {
	return s.PacketBytesSent + s.PacketBytesReceived + s.StreamBytesSent + s.StreamBytesReceived
}

type transportCounters struct {
	pSent, pRecv, pbSent, pbRecv, sbSent, sbRecv atomic.Uint64
}

var _ memberlist.NodeAwareTransport = (*DelayTransport)(nil)

// NewDelayTransport binds UDP and TCP on bindAddr:bindPort (0: a free port, the same for
// both) and delays packets by delay (nil: no delay, only counting). logger may be nil.
func NewDelayTransport(bindAddr string, bindPort int, delay DelayFunc, logger *log.Logger) (*DelayTransport, error) {
	if logger == nil {
		logger = log.New(discard{}, "", 0)
	}
	var (
		inner *memberlist.NetTransport
		err   error
	)
	// With port 0 the kernel picks a TCP port that may be taken for UDP: retry, as
	// memberlist does.
	for range 10 {
		inner, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{bindAddr}, BindPort: bindPort, Logger: logger,
		})
		if err == nil || bindPort != 0 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: delay transport on %s:%d: %w", bindAddr, bindPort, err)
	}
	t := &DelayTransport{
		inner:    inner,
		self:     bindAddr,
		delay:    delay,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		stop:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Port is the bound port.
func (t *DelayTransport) Port() int { return t.inner.GetAutoBindPort() }

// Stats returns the counters so far.
func (t *DelayTransport) Stats() TransportStats {
	c := &t.stats
	return TransportStats{
		PacketsSent: c.pSent.Load(), PacketsReceived: c.pRecv.Load(),
		PacketBytesSent: c.pbSent.Load(), PacketBytesReceived: c.pbRecv.Load(),
		StreamBytesSent: c.sbSent.Load(), StreamBytesReceived: c.sbRecv.Load(),
	}
}

func (t *DelayTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *DelayTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *DelayTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	t.stats.pSent.Add(1)
	t.stats.pbSent.Add(uint64(len(b)))
	var d time.Duration
	if t.delay != nil {
		if host, _, err := net.SplitHostPort(addr.Addr); err == nil {
			d = t.delay(t.self, host)
		}
	}
	if d <= 0 {
		return t.inner.WriteToAddress(b, addr)
	}
	buf := append([]byte(nil), b...)
	time.AfterFunc(d, func() {
		select {
		case <-t.stop:
			return
		default:
		}
		_, _ = t.inner.WriteToAddress(buf, addr) // a lost packet is what UDP may do
	})
	return time.Now(), nil
}

func (t *DelayTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *DelayTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *DelayTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.inner.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, sent: &t.stats.sbSent, recv: &t.stats.sbRecv}, nil
}

func (t *DelayTransport) StreamCh() <-chan net.Conn { return t.streamCh }

func (t *DelayTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		// The inner listeners block handing over a packet or stream until someone takes
		// it: the forwarders keep draining until the inner transport is down.
		err = t.inner.Shutdown()
		close(t.closed)
		t.wg.Wait()
	})
	return err
}

func (t *DelayTransport) forwardPackets() {
	defer t.wg.Done()
	for {
		select {
		case <-t.stop:
			t.drain()
			return
		case p := <-t.inner.PacketCh():
			t.stats.pRecv.Add(1)
			t.stats.pbRecv.Add(uint64(len(p.Buf)))
			select {
			case t.packetCh <- p:
			case <-t.stop:
				t.drain()
				return
			}
		}
	}
}

func (t *DelayTransport) forwardStreams() {
	defer t.wg.Done()
	for {
		select {
		case <-t.stop:
			t.drain()
			return
		case c := <-t.inner.StreamCh():
			cc := &countingConn{Conn: c, sent: &t.stats.sbSent, recv: &t.stats.sbRecv}
			select {
			case t.streamCh <- cc:
			case <-t.stop:
				_ = c.Close()
				t.drain()
				return
			}
		}
	}
}

// drain discards what the inner transport still hands over until it is shut down.
func (t *DelayTransport) drain() {
	for {
		select {
		case <-t.closed:
			return
		case <-t.inner.PacketCh():
		case c := <-t.inner.StreamCh():
			_ = c.Close()
		}
	}
}

// countingConn counts a stream's bytes.
type countingConn struct {
	net.Conn
	sent, recv *atomic.Uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.recv.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(uint64(n))
	return n, err
}

// SiteDelays is a DelayFunc for emulated sites: each IP belongs to a site, packets
// within a site take intra, between sites inter (one-way each; the RTT is twice).
// Unknown IPs get no delay.
func SiteDelays(siteOf map[string]string, intra, inter time.Duration) DelayFunc {
	return func(from, to string) time.Duration {
		a, ok1 := siteOf[from]
		b, ok2 := siteOf[to]
		switch {
		case !ok1 || !ok2:
			return 0
		case a == b:
			return intra
		default:
			return inter
		}
	}
}
