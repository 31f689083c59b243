package gossip

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventType says what changed.
type EventType int

const (
	// EventJoin: a node joined (or came back after failing or leaving).
	EventJoin EventType = iota + 1
	// EventLeave: a node left gracefully.
	EventLeave
	// EventFailed: memberlist declared a node dead; its inventory is now stale.
	EventFailed
	// EventLoadChange: a node's CPU or memory fraction moved by at least
	// Config.LoadChangeThreshold since the last EventLoadChange (or first state) for it.
	EventLoadChange
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventFailed:
		return "failed"
	case EventLoadChange:
		return "load-change"
	default:
		return "unknown"
	}
}

// Event is one change seen by an agent.
type Event struct {
	Type EventType
	Node string
	At   time.Time // local clock
	// Load and PrevLoad are set for EventLoadChange: the new load and the one last
	// announced.
	Load     Load
	PrevLoad Load
}

// Subscription receives events on C until Cancel. Delivery never blocks memberlist: when
// C is full the event is dropped and counted in Dropped; read Agent.View to catch up.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	dropped atomic.Uint64
	hub     *eventHub
	once    sync.Once
}

// Dropped is how many events this subscription lost because C was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Cancel stops delivery and closes C. Safe to call more than once.
func (s *Subscription) Cancel() {
	s.once.Do(func() {
		s.hub.mu.Lock()
		delete(s.hub.subs, s)
		s.hub.mu.Unlock()
		close(s.c)
	})
}

// eventHub fans events out to subscriptions without blocking.
type eventHub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func newEventHub() *eventHub { return &eventHub{subs: map[*Subscription]struct{}{}} }

func (h *eventHub) subscribe(buffer int) *Subscription {
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *eventHub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, e := range evs {
			select {
			case s.c <- e:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

func (h *eventHub) closeAll() {
	h.mu.Lock()
	subs := make([]*Subscription, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.Cancel()
	}
}
