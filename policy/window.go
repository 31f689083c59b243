package policy

import (
	"slices"
	"time"
)

// Allowed reports whether a move may start at t: inside an allow window (or no allow
// windows at all) and outside every forbid window.
func (w *Windows) Allowed(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	for _, f := range w.Forbid {
		if f.Contains(t) {
			return false
		}
	}
	if len(w.Allow) == 0 {
		return true
	}
	for _, a := range w.Allow {
		if a.Contains(t) {
			return true
		}
	}
	return false
}

// Contains reports whether t (already in the windows' time zone) falls in the window.
func (w Window) Contains(t time.Time) bool {
	tod := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
		time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
	day := t.Weekday()
	on := func(d time.Weekday) bool { return len(w.Days) == 0 || slices.Contains(w.Days, d) }
	if w.Start == w.End {
		return on(day) // a whole day
	}
	if w.Start < w.End {
		return on(day) && tod >= w.Start && tod < w.End
	}
	// Wraps past midnight: the evening part belongs to today, the morning part to the
	// window that started yesterday.
	if tod >= w.Start {
		return on(day)
	}
	return tod < w.End && on((day+6)%7)
}
