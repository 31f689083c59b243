package sim

import (
	"math"
	"time"
)

// network is the modelled network between sites: RTT and bandwidth for every pair.
type network struct {
	rtt  [][]time.Duration
	bw   [][]float64 // bytes per second
	rttM [][]float64 // RTT in milliseconds, for the latency model
}

func newNetwork(sc *Scenario, siteIndex map[string]int) *network {
	n := len(sc.Sites)
	nw := &network{rtt: make([][]time.Duration, n), bw: make([][]float64, n), rttM: make([][]float64, n)}
	for i := range n {
		nw.rtt[i] = make([]time.Duration, n)
		nw.bw[i] = make([]float64, n)
		nw.rttM[i] = make([]float64, n)
		for j := range n {
			var l LinkSpec
			switch {
			case i == j:
				l = sc.IntraSite
			case sc.Sites[i].Coordinates != nil && sc.Sites[j].Coordinates != nil:
				a, b := sc.Sites[i].Coordinates, sc.Sites[j].Coordinates
				dist := math.Hypot(a[0]-b[0], a[1]-b[1])
				l = LinkSpec{RTT: time.Duration(dist * float64(time.Millisecond)), BandwidthMbps: 1000}
				if sc.DefaultLink != nil {
					l.BandwidthMbps = sc.DefaultLink.BandwidthMbps
				}
			case sc.DefaultLink != nil:
				l = *sc.DefaultLink
			}
			nw.set(i, j, l)
		}
	}
	for _, l := range sc.Links {
		a, b := siteIndex[l.A], siteIndex[l.B]
		nw.set(a, b, l.LinkSpec)
		nw.set(b, a, l.LinkSpec)
	}
	return nw
}

func (nw *network) set(i, j int, l LinkSpec) {
	nw.rtt[i][j] = l.RTT
	nw.bw[i][j] = l.BandwidthMbps * 1e6 / 8
	nw.rttM[i][j] = float64(l.RTT) / float64(time.Millisecond)
}
