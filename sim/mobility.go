package sim

import (
	"math/rand/v2"
	"sort"
	"time"
)

// MobilityModel names how users move between sites.
type MobilityModel string

// Mobility models.
const (
	MobilityStatic         MobilityModel = "static"
	MobilityRandomWaypoint MobilityModel = "randomWaypoint"
	MobilityScripted       MobilityModel = "scripted"
	MobilityTrace          MobilityModel = "trace"
)

// UserGroup is Count users of one container, starting at Site and moving by Mobility.
type UserGroup struct {
	Count int
	// Site is where the users start; "" means the site of the container's first node.
	Site     string
	Mobility Mobility
}

// Mobility is how users move between sites. Users attach to one site at a time.
type Mobility struct {
	Model MobilityModel
	// randomWaypoint: stay a uniform time in [PauseMin, PauseMax], then go to a uniformly
	// chosen site of Sites (default all non-cloud sites).
	Sites              []string
	PauseMin, PauseMax time.Duration
	// scripted: every user of the group goes to Site at At.
	Moves []Move
	// trace: rows (time, user index in the group, site).
	Trace []TraceMove
	File  string
}

// Move is one scripted relocation of a user group.
type Move struct {
	At   time.Duration
	Site string
}

// TraceMove is one row of a mobility trace.
type TraceMove struct {
	At   time.Duration
	User int
	Site string
}

// user is one simulated user; site indexes Scenario.Sites.
type user struct {
	container int
	site      int
	next      time.Duration // next move, for random waypoint and scripted/trace cursor times
	cursor    int           // position in a script or trace
	group     *UserGroup
	index     int // index within its group
	rng       *rand.Rand
	sites     []int // waypoint candidates
}

// advance moves u to where it is at t. Calls come with non-decreasing t.
func (u *user) advance(t time.Duration, siteIndex map[string]int) {
	m := &u.group.Mobility
	switch m.Model {
	case MobilityRandomWaypoint:
		for u.next <= t {
			if len(u.sites) > 0 {
				u.site = u.sites[u.rng.IntN(len(u.sites))]
			}
			u.next += pause(u.rng, m.PauseMin, m.PauseMax)
		}
	case MobilityScripted:
		for u.cursor < len(m.Moves) && m.Moves[u.cursor].At <= t {
			u.site = siteIndex[m.Moves[u.cursor].Site]
			u.cursor++
		}
	case MobilityTrace:
		for u.cursor < len(m.Trace) && m.Trace[u.cursor].At <= t {
			if m.Trace[u.cursor].User == u.index {
				u.site = siteIndex[m.Trace[u.cursor].Site]
			}
			u.cursor++
		}
	}
}

func pause(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	p := lo
	if hi > lo {
		p += time.Duration(rng.Int64N(int64(hi - lo)))
	}
	if p <= 0 {
		p = time.Minute
	}
	return p
}

func sortTrace(tr []TraceMove) {
	sort.SliceStable(tr, func(i, j int) bool { return tr[i].At < tr[j].At })
}
