package gossip

import (
	"math"
	"sort"
	"time"
)

// linkMeter turns transfer observations toward one peer into a throughput estimate:
// total bytes over total seconds, both decayed by age (half-life h), so big transfers
// weigh more than small ones and old ones fade.
type linkMeter struct {
	bytes, seconds float64
	samples        uint32
	at             time.Time
}

func (m *linkMeter) observe(bytes, seconds float64, now time.Time, h time.Duration) {
	if !m.at.IsZero() && now.After(m.at) {
		d := math.Exp2(-float64(now.Sub(m.at)) / float64(h))
		m.bytes *= d
		m.seconds *= d
	}
	m.bytes += bytes
	m.seconds += seconds
	if m.samples < math.MaxUint32 {
		m.samples++
	}
	if now.After(m.at) {
		m.at = now
	}
}

func (m *linkMeter) estimate(peer string) LinkEstimate {
	bps := 0.0
	if m.seconds > 0 {
		bps = m.bytes / m.seconds
	}
	return LinkEstimate{Peer: peer, BytesPerSecond: bps, Samples: m.samples, ObservedAt: m.at}
}

// recentLinks returns the estimates of the max most recently observed links, by peer.
func recentLinks(meters map[string]*linkMeter, max int) []LinkEstimate {
	out := make([]LinkEstimate, 0, len(meters))
	for p, m := range meters {
		out = append(out, m.estimate(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ObservedAt.After(out[j].ObservedAt) })
	if len(out) > max {
		out = out[:max]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}
