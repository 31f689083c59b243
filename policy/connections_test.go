package policy

import (
	"strings"
	"testing"
)

func TestConnectionsExplained(t *testing.T) {
	nodes := []Node{node("a", "s1", 0, 0), node("b", "s1", 0, 0), node("c", "s1", 0, 0)}
	nodes[0].Labels = map[string]string{LabelLayer2: "lab"}
	nodes[1].Labels = map[string]string{LabelLayer2: "other,lab"}
	v := cluster(nodes, ctr("h1", "a", 2, 0.25, LabelLayer2, "lab"), ctr("h2", "a", 1.9, 0.25))
	plan := Evaluate(v, auto(Objectives{RelieveOverload: 1}, nil), DefaultCostModel(), Ledger{}, t0)

	if !KeepsConnections(&v.Containers[0], &v.Nodes[1]) || KeepsConnections(&v.Containers[0], &v.Nodes[2]) {
		t.Fatal("KeepsConnections: want b (in domain lab) and not c")
	}
	if KeepsConnections(&v.Containers[1], &v.Nodes[1]) {
		t.Fatal("a container in no layer-2 domain keeps no connections")
	}
	e := explanation(plan, "h1")
	var sawB, sawC bool
	for _, c := range e.Candidates {
		closes := strings.Contains(c.Detail, "closes its established TCP connections")
		switch c.Node {
		case "b":
			sawB = true
			if closes {
				t.Errorf("candidate b is in the container's domain, explain says: %s", c.Detail)
			}
		case "c":
			sawC = true
			if !closes {
				t.Errorf("candidate c is not in domain lab, explain does not say so: %q", c.Detail)
			}
		}
	}
	if !sawB || !sawC {
		t.Fatalf("candidates %+v: want b and c", e.Candidates)
	}
	for _, c := range explanation(plan, "h2").Candidates {
		if strings.Contains(c.Detail, "TCP") {
			t.Errorf("a container without %s got a connection note: %s", LabelLayer2, c.Detail)
		}
	}
}
