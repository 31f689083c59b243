package policy

import (
	"fmt"
	"time"
)

var t0 = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC) // a Monday noon

// node returns a node with 4 cores and 8 GiB, used as given (fractions of capacity).
func node(id, site string, cpu, mem float64) Node {
	return Node{ID: id, Site: site, CPUCores: 4, MemoryBytes: 8 * GiB,
		UsedCPU: cpu * 4, UsedMemoryBytes: int64(mem * 8 * GiB)}
}

// ctr returns a managed container using cpu cores and memGiB of memory.
func ctr(id, on string, cpu, memGiB float64, labels ...string) Container {
	l := map[string]string{LabelManaged: "true"}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return Container{ID: id, Name: id, Node: on, CPU: cpu, MemoryBytes: int64(memGiB * GiB), Labels: l}
}

// cluster builds a view whose node usage is the sum of its containers.
func cluster(nodes []Node, cs ...Container) ClusterView {
	for i := range nodes {
		nodes[i].UsedCPU, nodes[i].UsedMemoryBytes = 0, 0
		for _, c := range cs {
			if c.Node == nodes[i].ID {
				nodes[i].UsedCPU += c.CPU
				nodes[i].UsedMemoryBytes += c.MemoryBytes
			}
		}
	}
	return ClusterView{Nodes: nodes, Containers: cs}
}

func moves(p Plan) []string {
	var out []string
	for _, d := range p.Decisions {
		out = append(out, fmt.Sprintf("%s:%s->%s", d.Container, d.From, d.To))
	}
	return out
}

func explanation(p Plan, id string) Explanation {
	for _, x := range p.Explanations {
		if x.Container == id {
			return x
		}
	}
	return Explanation{}
}
