package policy

// term is one affinity or anti-affinity term of a placement rule, with the number of
// containers matching its selector on each node and in each site.
type term struct {
	AffinityTerm
	anti    bool
	m       matcher
	perNode []int
	perSite []int
}

// indexPlacement flattens the placement rules' affinity terms and counts the containers
// each term's selector matches, per node and per site. Every container counts, managed
// or not.
func (e *evaluation) indexPlacement() {
	ruleTerms := make([][2][]int, len(e.p.Placement)) // per rule: affinity, anti-affinity term indices
	for ri := range e.p.Placement {
		r := &e.p.Placement[ri]
		for k, list := range [2][]AffinityTerm{r.Affinity, r.AntiAffinity} {
			for _, a := range list {
				ruleTerms[ri][k] = append(ruleTerms[ri][k], len(e.terms))
				e.terms = append(e.terms, term{AffinityTerm: a, anti: k == 1, m: newMatcher(&a.Containers),
					perNode: make([]int, len(e.nodes)), perSite: make([]int, len(e.sites))})
			}
		}
	}
	e.ruleTerms = ruleTerms
	if len(e.terms) == 0 {
		return
	}
	for _, c := range e.containers {
		ni, ok := e.nodeIdx[c.Node]
		if !ok {
			continue
		}
		for ti := range e.terms {
			t := &e.terms[ti]
			if t.m.matches(c.Labels) {
				t.perNode[ni]++
				t.perSite[e.nodes[ni].site]++
			}
		}
	}
}

// others is how many containers other than it match term ti in n's node or site.
func (e *evaluation) others(ti int, it *item, n int) int {
	t, src := &e.terms[ti], it.src
	self := 0
	if it.selfMatch[ti] {
		if t.Topology == TopologySite {
			if e.nodes[src].site == e.nodes[n].site {
				self = 1
			}
		} else if src == n {
			self = 1
		}
	}
	if t.Topology == TopologySite {
		return t.perSite[e.nodes[n].site] - self
	}
	return t.perNode[n] - self
}

// requiredAffinity checks the required terms of the container's rules on target t.
func (e *evaluation) requiredAffinity(it *item, t int) Reason {
	for _, ri := range it.rules {
		for k, terms := range e.ruleTerms[ri] {
			for _, ti := range terms {
				tm := &e.terms[ti]
				if !tm.Required {
					continue
				}
				n := e.others(ti, it, t)
				if k == 0 && n == 0 {
					return ReasonAffinity
				}
				if k == 1 && n > 0 {
					return ReasonAntiAffinity
				}
			}
		}
	}
	return ""
}

// preference is the soft placement score of the container on node n: preferred node
// labels and preferred (anti-)affinity terms.
func (e *evaluation) preference(it *item, n int) float64 {
	var score float64
	for _, ri := range it.rules {
		if np := e.nodePref[ri]; np != nil {
			score += np[n]
		}
		for _, ti := range e.ruleTerms[ri][0] {
			if tm := &e.terms[ti]; !tm.Required && e.others(ti, it, n) > 0 {
				score += tm.Weight
			}
		}
		for _, ti := range e.ruleTerms[ri][1] {
			if tm := &e.terms[ti]; !tm.Required && e.others(ti, it, n) > 0 {
				score -= tm.Weight
			}
		}
	}
	return score
}

// moveTerms updates the term counts after c moves from node a to node b.
func (e *evaluation) moveTerms(c *Container, a, b int) {
	for ti := range e.terms {
		t := &e.terms[ti]
		if t.m.matches(c.Labels) {
			t.perNode[a]--
			t.perNode[b]++
			t.perSite[e.nodes[a].site]--
			t.perSite[e.nodes[b].site]++
		}
	}
}
