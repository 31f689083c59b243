package migrate

import (
	"context"
	"sort"
	"time"
)

// drainPoll is how often Drain looks at what is still in progress.
const drainPoll = 100 * time.Millisecond

// draining reports whether Drain was called.
func (n *Node) draining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.drain
}

// Drain prepares the node to stop: from now on it refuses to start migrations (an order,
// or a pre-flight from a source) with ErrShuttingDown, while it keeps serving the later
// steps, status and resolve of the migrations already begun. It then waits until none of
// those is in progress here, or ctx ends, and returns the IDs still in progress (sorted):
// what Close cuts short and the journal's recovery settles at the next start.
//
// In progress: an order this node runs as source, and a target part that is neither
// finished nor in doubt (an in-doubt migration waits for its peer, not for this node).
func (n *Node) Drain(ctx context.Context) []string {
	n.RefuseNew()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		busy := n.inProgress()
		if len(busy) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return busy
		case <-t.C:
		}
	}
}

// RefuseNew is Drain's first step alone: from now on the node refuses to start
// migrations (ErrShuttingDown); it returns at once.
func (n *Node) RefuseNew() {
	n.mu.Lock()
	n.drain = true
	n.mu.Unlock()
}

// inProgress lists the migrations Drain waits for.
func (n *Node) inProgress() []string {
	seen := map[string]bool{}
	n.mu.Lock()
	for _, id := range n.moving {
		seen[id] = true
	}
	n.mu.Unlock()
	for _, e := range n.journal.List() {
		if e.Side == SideTarget && !e.Finished() && e.Phase != PhaseInDoubt {
			seen[e.ID] = true
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// InProgress lists (sorted) the migrations Drain would wait for now.
func (n *Node) InProgress() []string { return n.inProgress() }
