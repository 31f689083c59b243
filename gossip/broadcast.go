package gossip

import (
	"math"
	"sort"
	"sync"
)

// broadcastQueue holds the newest state message per node and hands them to memberlist's
// gossip, each up to RetransmitMult * ceil(log10(N+1)) times, least-sent first (newest
// first among equals), as memberlist's TransmitLimitedQueue does.
//
// Why not TransmitLimitedQueue (memberlist v0.6.0): it resets its id counter whenever it
// is momentarily empty, including in the middle of GetBroadcasts, and keys items by
// (transmits, length, id). Our state messages often have equal lengths, so a new item
// could take the key of an old one and silently replace it: a node's own state then
// never left it. Measured here: with 40 agents refreshing at once, about half the
// states reached nobody.
type broadcastQueue struct {
	mu       sync.Mutex
	mult     int
	numNodes func() int
	items    map[string]*queued
	seq      uint64
}

type queued struct {
	name      string
	msg       []byte
	transmits int
	seq       uint64
}

// put queues msg for name, replacing any older message for name.
func (q *broadcastQueue) put(name string, msg []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.items == nil {
		q.items = map[string]*queued{}
	}
	q.seq++
	q.items[name] = &queued{name: name, msg: msg, seq: q.seq}
}

// get returns messages fitting in limit bytes, each costing overhead more.
func (q *broadcastQueue) get(overhead, limit int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	maxTransmits := q.mult * int(math.Ceil(math.Log10(float64(q.numNodes()+1))))
	list := make([]*queued, 0, len(q.items))
	for _, it := range q.items {
		list = append(list, it)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].transmits != list[j].transmits {
			return list[i].transmits < list[j].transmits
		}
		return list[i].seq > list[j].seq
	})
	var out [][]byte
	used := 0
	for _, it := range list {
		if used+overhead+len(it.msg) > limit {
			continue
		}
		used += overhead + len(it.msg)
		out = append(out, it.msg)
		it.transmits++
		if it.transmits >= maxTransmits {
			delete(q.items, it.name)
		}
	}
	return out
}

func (q *broadcastQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
