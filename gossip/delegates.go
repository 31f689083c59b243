package gossip

import (
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegates receives memberlist's callbacks. memberlist calls them from its own
// goroutines, some while holding its node lock: they must not block and must not call
// back into memberlist. They take Agent.mu briefly and deliver events without blocking.
type delegates struct{ a *Agent }

var (
	_ memberlist.Delegate      = (*delegates)(nil)
	_ memberlist.EventDelegate = (*delegates)(nil)
	_ memberlist.PingDelegate  = (*delegates)(nil)
)

// NodeMeta is the drain flag and site; far below memberlist.MetaMaxSize (512 bytes)
// since Validate caps the site at maxMetaSite bytes.
func (d *delegates) NodeMeta(limit int) []byte {
	a := d.a
	a.mu.Lock()
	m := nodeMeta{Drain: a.local.drain, Site: a.local.labels[LabelSite]}
	a.mu.Unlock()
	b := encodeMeta(m)
	if len(b) > limit {
		m.Site = ""
		b = encodeMeta(m)
	}
	return b
}

// NotifyMsg gets broadcasts and reliable sends. buf is memberlist's: copy what we keep.
func (d *delegates) NotifyMsg(buf []byte) {
	st, err := decodeState(buf)
	if err != nil {
		d.a.malformed.Add(1)
		d.a.log.Warn("dropping malformed gossip message", "bytes", len(buf), "error", err)
		return
	}
	d.a.received(st, append([]byte(nil), buf...))
}

func (d *delegates) GetBroadcasts(overhead, limit int) [][]byte {
	return d.a.queue.get(overhead, limit)
}

// LocalState sends every alive node's state for push-pull.
func (d *delegates) LocalState(join bool) []byte {
	a := d.a
	a.mu.Lock()
	defer a.mu.Unlock()
	return encodePushPull(a.store.pushPullStates())
}

func (d *delegates) MergeRemoteState(buf []byte, join bool) {
	states, err := decodePushPull(buf)
	if err != nil {
		d.a.malformed.Add(1)
		d.a.log.Warn("dropping malformed push-pull state", "bytes", len(buf), "error", err)
		return
	}
	for _, st := range states {
		d.a.received(st, nil)
	}
}

func (d *delegates) NotifyJoin(n *memberlist.Node) { d.status(n, StatusAlive) }

// NotifyLeave: a failure or a leave; see store.setStatus for how they are told apart.
func (d *delegates) NotifyLeave(n *memberlist.Node) {
	d.status(n, StatusFailed)
	if n.Name != d.a.cfg.Name {
		d.a.coord.ForgetNode(n.Name)
	}
}

func (d *delegates) NotifyUpdate(n *memberlist.Node) { d.status(n, StatusAlive) }

func (d *delegates) status(n *memberlist.Node, st Status) {
	a := d.a
	m, err := decodeMeta(n.Meta)
	addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	a.mu.Lock()
	if err == nil {
		a.store.setMeta(n.Name, m)
	}
	evs := a.store.setStatus(n.Name, addr, st, a.now())
	a.alive.Store(int64(a.store.aliveCount()))
	a.mu.Unlock()
	if err != nil && len(n.Meta) > 0 {
		a.malformed.Add(1)
		a.log.Warn("ignoring malformed node meta", "peer", n.Name, "error", err)
	}
	if st != StatusAlive && n.Name != a.cfg.Name {
		a.log.Info("member "+st.String(), "peer", n.Name, "addr", addr)
	}
	a.events.publish(evs)
}

// AckPayload carries our coordinate in ping acks, as Serf does.
func (d *delegates) AckPayload() []byte { return encodePing(d.a.coord.GetCoordinate()) }

// NotifyPingComplete feeds a measured RTT and the peer's coordinate to Vivaldi.
func (d *delegates) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	a := d.a
	if len(payload) == 0 {
		return
	}
	c, err := decodePing(payload)
	if err != nil {
		a.malformed.Add(1)
		a.log.Warn("dropping malformed ping payload", "peer", other.Name, "error", err)
		return
	}
	if _, err := a.coord.Update(other.Name, c, rtt); err != nil {
		a.log.Debug("coordinate update rejected", "peer", other.Name, "rtt", rtt, "error", err)
		return
	}
	a.mu.Lock()
	a.store.setCoord(other.Name, c, a.now())
	a.mu.Unlock()
}
