package policy

import (
	"fmt"
	"slices"
	"strings"
)

// LabelLayer2 on a container names the layer-2 domain its network addresses live in (the
// migrate package's label of the same name on a Docker network); on a node it lists,
// comma-separated, the domains the node's engine is attached to. A move between nodes
// attached to the container's domain keeps its address and its established TCP
// connections; any other move of a networked container closes them (listening sockets
// keep listening, clients reconnect to the new node).
const LabelLayer2 = "godwit.io/layer2"

// KeepsConnections reports whether moving c onto to keeps c's established TCP connections:
// c names a layer-2 domain and to is attached to it.
func KeepsConnections(c *Container, to *Node) bool {
	domain := c.Labels[LabelLayer2]
	if domain == "" || to == nil {
		return false
	}
	return slices.Contains(strings.Split(to.Labels[LabelLayer2], ","), domain)
}

// connectionNote is what explain says about a move of c onto node to, for a container in a
// layer-2 domain; "" when its connections survive.
func connectionNote(c *Container, to *Node) string {
	if c.Labels[LabelLayer2] == "" || to == nil || KeepsConnections(c, to) {
		return ""
	}
	return fmt.Sprintf("moving to %s closes its established TCP connections (node not in layer-2 domain %s)", to.ID, c.Labels[LabelLayer2])
}

// annotateConnections adds to the explanations of containers in a layer-2 domain which
// moves and candidate targets would close their established connections. It changes no
// decision: it only says what a move costs the container's clients.
func annotateConnections(plan *Plan, view *ClusterView) {
	containers := map[string]*Container{}
	for i := range view.Containers {
		if view.Containers[i].Labels[LabelLayer2] != "" {
			containers[view.Containers[i].ID] = &view.Containers[i]
		}
	}
	if len(containers) == 0 {
		return
	}
	nodes := map[string]*Node{}
	for i := range view.Nodes {
		nodes[view.Nodes[i].ID] = &view.Nodes[i]
	}
	appendNote := func(detail *string, note string) {
		if note == "" {
			return
		}
		if *detail != "" {
			*detail += "; "
		}
		*detail += note
	}
	moveTo := map[string]string{}
	for _, d := range plan.Decisions {
		moveTo[d.Container] = d.To
	}
	for i := range plan.Explanations {
		e := &plan.Explanations[i]
		c := containers[e.Container]
		if c == nil {
			continue
		}
		if to, ok := moveTo[e.Container]; ok && e.Moved {
			appendNote(&e.Detail, connectionNote(c, nodes[to]))
		}
		for j := range e.Candidates {
			appendNote(&e.Candidates[j].Detail, connectionNote(c, nodes[e.Candidates[j].Node]))
		}
	}
}
