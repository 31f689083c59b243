package gossip

import (
	"fmt"
	"testing"
)

// TestBroadcastQueueSendsEachMessageItsShare: with many equal-length messages arriving
// (everyone refreshing at once), every message is still sent its full number of times;
// the case memberlist's TransmitLimitedQueue gets wrong (see broadcastQueue).
func TestBroadcastQueueSendsEachMessageItsShare(t *testing.T) {
	q := &broadcastQueue{mult: 4, numNodes: func() int { return 40 }} // 8 transmits each
	sent := map[string]int{}
	q.put("own", []byte("own-0000"))
	for round := 0; round < 200; round++ {
		if round < 10 {
			for i := 0; i < 5; i++ {
				q.put(fmt.Sprintf("o%d-%d", round, i), []byte(fmt.Sprintf("m%03d-%02d", round, i)))
			}
		}
		for _, m := range q.get(3, 60) { // room for 5 messages
			sent[string(m)]++
		}
	}
	if len(sent) != 51 {
		t.Fatalf("%d distinct messages sent, want 51", len(sent))
	}
	for m, n := range sent {
		if n != 8 {
			t.Errorf("%s sent %d times, want 8", m, n)
		}
	}
	if q.len() != 0 {
		t.Errorf("%d left queued", q.len())
	}
	q.put("x", []byte("old"))
	q.put("x", []byte("new"))
	if got := q.get(0, 100); len(got) != 1 || string(got[0]) != "new" {
		t.Errorf("newer message did not replace older: %q", got)
	}
}
