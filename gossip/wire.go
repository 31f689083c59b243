package gossip

import (
	"encoding/binary"
	"math"
	"sort"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

// The wire formats: a hand-written, length-checked binary encoding (uvarints, fixed
// little-endian float64s, length-prefixed strings). Every decoder bounds every count by
// both a hard limit and the bytes left, so a hostile or truncated payload costs at most
// its own size and returns ErrMalformed; nothing panics.

// Message kinds (first byte of a user message, a push-pull state or the node meta).
const (
	msgState     byte = 1 // one nodeState, broadcast or sent reliably
	msgPushPull  byte = 2 // many nodeStates, push-pull
	msgMeta      byte = 3 // node meta
	msgPing      byte = 4 // ping ack payload: a coordinate
	wireRevision byte = 1 // bumped on incompatible changes; decoders reject others
)

// Limits, enforced by Validate on the way out and by the decoders on the way in.
const (
	maxNameLen    = 128
	maxLabels     = 64
	maxLabelLen   = 256
	maxMetaSite   = 64
	maxStringLen  = 1024
	maxContainers = 1024
	maxUserSites  = 64
	maxLinks      = 64
	maxDims       = 32
	maxStates     = 1 << 14
)

// minStateBytes is the smallest encoded state: flags, a 1-byte name, four 1-byte
// versions, three floats, two 1-byte sizes, time, and empty labels and links.
const minStateBytes = 1 + 2 + 4 + 3*8 + 2 + 1 + 1 + 1

// state flags
const (
	flagDrain        = 1 << 0
	flagHasInventory = 1 << 1
	flagHasCoord     = 1 << 2
	flagLeaving      = 1 << 3
)

// nodeState is what one node publishes about itself.
type nodeState struct {
	Name             string
	Version          Version
	InventoryVersion Version // the version of the node's current inventory
	Drain            bool
	Leaving          bool // the node's last words before a graceful leave
	Load             Load
	PublishedAt      time.Time // origin clock
	Labels           map[string]string
	Coordinate       *coordinate.Coordinate
	Links            []LinkEstimate
	HasInventory     bool // Containers is present (it may be left out to fit a packet)
	Containers       []Container
}

// writer appends to a byte slice.
type writer struct{ b []byte }

func (w *writer) byte(v byte)      { w.b = append(w.b, v) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) float(v float64)  { w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v)) }
func (w *writer) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) time(t time.Time) {
	if t.IsZero() {
		w.varint(0)
		return
	}
	w.varint(t.UnixNano())
}
func (w *writer) labels(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic bytes
	w.uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(m[k])
	}
}
func (w *writer) coord(c *coordinate.Coordinate) {
	w.uvarint(uint64(len(c.Vec)))
	for _, x := range c.Vec {
		w.float(x)
	}
	w.float(c.Error)
	w.float(c.Adjustment)
	w.float(c.Height)
}

// reader consumes a byte slice; the first error sticks and later reads return zero
// values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = malformed(format, args...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// float reads a finite float64.
func (r *reader) float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("truncated float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.fail("non-finite number")
		return 0
	}
	return v
}

// count reads a count of items of at least minSize bytes each, at most limit.
func (r *reader) count(limit, minSize int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(limit) || n*uint64(minSize) > uint64(len(r.b)) {
		r.fail("count %d over limit %d or payload", n, limit)
		return 0
	}
	return int(n)
}

func (r *reader) str(limit int) string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(limit) || n > uint64(len(r.b)) {
		r.fail("string of %d bytes over limit %d or payload", n, limit)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time() time.Time {
	ns := r.varint()
	if ns == 0 || r.err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (r *reader) labels() map[string]string {
	n := r.count(maxLabels, 2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str(maxLabelLen)
		v := r.str(maxLabelLen)
		if k == "" {
			r.fail("empty label key")
		}
		m[k] = v
	}
	return m
}

func (r *reader) coord() *coordinate.Coordinate {
	n := r.count(maxDims, 8)
	if n == 0 {
		r.fail("coordinate without dimensions")
		return nil
	}
	c := &coordinate.Coordinate{Vec: make([]float64, n)}
	for i := range c.Vec {
		c.Vec[i] = r.float()
	}
	c.Error = r.float()
	c.Adjustment = r.float()
	c.Height = r.float()
	if r.err == nil && !c.IsValid() {
		r.fail("invalid coordinate")
	}
	return c
}

func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
}

func (w *writer) state(s *nodeState) {
	var flags byte
	if s.Drain {
		flags |= flagDrain
	}
	if s.HasInventory {
		flags |= flagHasInventory
	}
	if s.Coordinate != nil {
		flags |= flagHasCoord
	}
	if s.Leaving {
		flags |= flagLeaving
	}
	w.byte(flags)
	w.str(s.Name)
	w.uvarint(s.Version.Epoch)
	w.uvarint(s.Version.Seq)
	w.uvarint(s.InventoryVersion.Epoch)
	w.uvarint(s.InventoryVersion.Seq)
	w.float(s.Load.CPUCores)
	w.float(s.Load.CPUCapacity)
	w.uvarint(s.Load.MemoryBytes)
	w.uvarint(s.Load.MemoryCapacity)
	w.float(s.Load.MemoryPressure)
	w.time(s.PublishedAt)
	w.labels(s.Labels)
	if s.Coordinate != nil {
		w.coord(s.Coordinate)
	}
	w.uvarint(uint64(len(s.Links)))
	for _, l := range s.Links {
		w.str(l.Peer)
		w.float(l.BytesPerSecond)
		w.uvarint(uint64(l.Samples))
		w.time(l.ObservedAt)
	}
	if s.HasInventory {
		w.uvarint(uint64(len(s.Containers)))
		for _, c := range s.Containers {
			w.str(c.ID)
			w.str(c.Name)
			w.str(c.Image)
			w.uvarint(c.MemoryBytes)
			w.float(c.CPUCores)
			w.labels(c.Labels)
			w.uvarint(uint64(len(c.UserSites)))
			for _, s := range c.UserSites {
				w.str(s)
			}
		}
	}
}

func (r *reader) state() *nodeState {
	s := &nodeState{}
	flags := r.byte()
	if flags&^(flagDrain|flagHasInventory|flagHasCoord|flagLeaving) != 0 {
		r.fail("unknown state flags %#x", flags)
	}
	s.Drain = flags&flagDrain != 0
	s.Leaving = flags&flagLeaving != 0
	s.HasInventory = flags&flagHasInventory != 0
	s.Name = r.str(maxNameLen)
	if r.err == nil && s.Name == "" {
		r.fail("empty node name")
	}
	s.Version = Version{r.uvarint(), r.uvarint()}
	s.InventoryVersion = Version{r.uvarint(), r.uvarint()}
	s.Load.CPUCores = r.float()
	s.Load.CPUCapacity = r.float()
	s.Load.MemoryBytes = r.uvarint()
	s.Load.MemoryCapacity = r.uvarint()
	s.Load.MemoryPressure = r.float()
	s.PublishedAt = r.time()
	s.Labels = r.labels()
	if flags&flagHasCoord != 0 {
		s.Coordinate = r.coord()
	}
	nl := r.count(maxLinks, 11)
	for i := 0; i < nl && r.err == nil; i++ {
		var l LinkEstimate
		l.Peer = r.str(maxNameLen)
		l.BytesPerSecond = r.float()
		sm := r.uvarint()
		if sm > math.MaxUint32 {
			r.fail("link samples out of range")
		}
		l.Samples = uint32(sm)
		l.ObservedAt = r.time()
		s.Links = append(s.Links, l)
	}
	if s.HasInventory {
		nc := r.count(maxContainers, 14)
		if nc > 0 {
			s.Containers = make([]Container, 0, nc)
		}
		for i := 0; i < nc && r.err == nil; i++ {
			var c Container
			c.ID = r.str(maxStringLen)
			c.Name = r.str(maxStringLen)
			c.Image = r.str(maxStringLen)
			c.MemoryBytes = r.uvarint()
			c.CPUCores = r.float()
			c.Labels = r.labels()
			ns := r.count(maxUserSites, 1)
			for j := 0; j < ns && r.err == nil; j++ {
				c.UserSites = append(c.UserSites, r.str(maxStringLen))
			}
			s.Containers = append(s.Containers, c)
		}
	}
	if r.err != nil {
		return nil
	}
	return s
}

// encodeState encodes one state as a user message.
func encodeState(s *nodeState) []byte {
	w := writer{b: make([]byte, 0, 256)}
	w.byte(msgState)
	w.byte(wireRevision)
	w.state(s)
	return w.b
}

// decodeState decodes a user message made by encodeState.
func decodeState(b []byte) (*nodeState, error) {
	r := reader{b: b}
	if k := r.byte(); r.err == nil && k != msgState {
		return nil, malformed("not a state message (kind %d)", k)
	}
	if v := r.byte(); r.err == nil && v != wireRevision {
		return nil, malformed("unsupported revision %d", v)
	}
	s := r.state()
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

// encodePushPull encodes the states for push-pull.
func encodePushPull(states []*nodeState) []byte {
	w := writer{b: make([]byte, 0, 256*len(states)+8)}
	w.byte(msgPushPull)
	w.byte(wireRevision)
	w.uvarint(uint64(len(states)))
	for _, s := range states {
		w.state(s)
	}
	return w.b
}

func decodePushPull(b []byte) ([]*nodeState, error) {
	r := reader{b: b}
	if k := r.byte(); r.err == nil && k != msgPushPull {
		return nil, malformed("not a push-pull message (kind %d)", k)
	}
	if v := r.byte(); r.err == nil && v != wireRevision {
		return nil, malformed("unsupported revision %d", v)
	}
	n := r.count(maxStates, minStateBytes)
	out := make([]*nodeState, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		if s := r.state(); s != nil {
			out = append(out, s)
		}
	}
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// nodeMeta is the little that travels in memberlist's alive messages.
type nodeMeta struct {
	Drain bool
	Site  string
}

func encodeMeta(m nodeMeta) []byte {
	w := writer{b: make([]byte, 0, 8+len(m.Site))}
	w.byte(msgMeta)
	w.byte(wireRevision)
	var flags byte
	if m.Drain {
		flags |= flagDrain
	}
	w.byte(flags)
	w.str(m.Site)
	return w.b
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	r := reader{b: b}
	if k := r.byte(); r.err == nil && k != msgMeta {
		return m, malformed("not a meta message (kind %d)", k)
	}
	if v := r.byte(); r.err == nil && v != wireRevision {
		return m, malformed("unsupported revision %d", v)
	}
	flags := r.byte()
	if flags&^flagDrain != 0 {
		r.fail("unknown meta flags %#x", flags)
	}
	m.Drain = flags&flagDrain != 0
	m.Site = r.str(maxMetaSite)
	r.end()
	if r.err != nil {
		return nodeMeta{}, r.err
	}
	return m, nil
}

// encodePing encodes the coordinate carried in ping acks, as Serf does (a version byte,
// then the coordinate).
func encodePing(c *coordinate.Coordinate) []byte {
	w := writer{b: make([]byte, 0, 2+8*(len(c.Vec)+3)+2)}
	w.byte(msgPing)
	w.byte(wireRevision)
	w.coord(c)
	return w.b
}

func decodePing(b []byte) (*coordinate.Coordinate, error) {
	r := reader{b: b}
	if k := r.byte(); r.err == nil && k != msgPing {
		return nil, malformed("not a ping payload (kind %d)", k)
	}
	if v := r.byte(); r.err == nil && v != wireRevision {
		return nil, malformed("unsupported revision %d", v)
	}
	c := r.coord()
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}
