package policy

import "slices"

// Matches reports whether labels satisfy the selector.
func (s *Selector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		switch r.Operator {
		case OpIn:
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case OpNotIn:
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpDoesNotExist:
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Empty reports whether the selector matches everything.
func (s *Selector) Empty() bool { return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 }

// matcher is a Selector prepared for matching many label sets: its pairs in a slice, so
// that matching does no map iteration.
type matcher struct {
	keys, values []string
	reqs         []Requirement
}

func newMatcher(s *Selector) matcher {
	var m matcher
	for k := range s.MatchLabels {
		m.keys = append(m.keys, k)
	}
	slices.Sort(m.keys)
	for _, k := range m.keys {
		m.values = append(m.values, s.MatchLabels[k])
	}
	m.reqs = s.MatchExpressions
	return m
}

func (m *matcher) matches(labels map[string]string) bool {
	for i, k := range m.keys {
		if v, ok := labels[k]; !ok || v != m.values[i] {
			return false
		}
	}
	if len(m.reqs) == 0 {
		return true
	}
	s := Selector{MatchExpressions: m.reqs}
	return s.Matches(labels)
}
