package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/policy"
)

// ErrUnknownSite is returned by Leader.SetUsers for a site no node of the cluster is at.
var ErrUnknownSite = errors.New("scheduler: unknown site")

// UsersSource says where the user sites the leader uses for a workload come from.
type UsersSource string

// Sources of user sites, by precedence.
const (
	// UsersFromAPI: recorded through the API (`godwit users set`), in raft. A load
	// balancer, DNS or handover system reports users as they move: newer information than
	// a label, so it wins until it is cleared.
	UsersFromAPI UsersSource = "api"
	// UsersFromLabel: the container's godwit.io/user-sites label, set when it was deployed.
	UsersFromLabel UsersSource = "label"
)

// WorkloadUsers is a workload's user sites as the leader sees them.
type WorkloadUsers struct {
	Workload string `json:"workload"`
	// Name and Node are the workload's container and where it runs ("" when no node
	// reports it: only its recorded sites are left).
	Name string `json:"name,omitempty"`
	Node string `json:"node,omitempty"`
	// Sites are the sites in effect (none: the engine counts its users at its own site).
	Sites  []policy.UserSite `json:"sites,omitempty"`
	Source UsersSource       `json:"source,omitempty"`
	// By and At are who recorded the sites through the API, and when (source api).
	By string    `json:"by,omitempty"`
	At time.Time `json:"at,omitzero"`
	// Label is the container's godwit.io/user-sites label, when it has one, and
	// LabelError why it is not used when it is invalid.
	Label      string `json:"label,omitempty"`
	LabelError string `json:"labelError,omitempty"`
}

// ViewInputs is what the state adds to the gossiped cluster in the leader's view: drains,
// owners and recorded user sites.
func (st *State) ViewInputs() ViewInputs {
	in := ViewInputs{Drained: map[string]bool{}, Owners: st.Owners, Users: recordedUsers(st)}
	for n := range st.Drained {
		in.Drained[n] = true
	}
	return in
}

// recordedUsers is the view's input of recorded user sites.
func recordedUsers(st *State) map[string][]policy.UserSite {
	out := make(map[string][]policy.UserSite, len(st.Users))
	for w, u := range st.Users {
		out[w] = u.Sites
	}
	return out
}

// UsersOf lists the user sites of every workload the view holds (BuildView's containers,
// in its order), then of the workloads with recorded sites that no node reports.
func UsersOf(view policy.ClusterView, st *State) []WorkloadUsers {
	var out []WorkloadUsers
	seen := map[string]bool{}
	for _, c := range view.Containers {
		seen[c.ID] = true
		wu := WorkloadUsers{Workload: c.ID, Name: c.Name, Node: c.Node, Sites: slices.Clone(c.Users)}
		if v, ok := c.Labels[policy.LabelUserSites]; ok {
			wu.Label = v
			if _, err := policy.ParseUserSites(v); err != nil {
				wu.LabelError = err.Error()
			} else {
				wu.Source = UsersFromLabel
			}
		}
		if r, ok := st.Users[c.ID]; ok {
			wu.Source, wu.By, wu.At = UsersFromAPI, r.By, r.At
		}
		if len(wu.Sites) > 0 || wu.Label != "" || wu.Source != "" {
			out = append(out, wu)
		}
	}
	var gone []string
	for w := range st.Users {
		if !seen[w] {
			gone = append(gone, w)
		}
	}
	sort.Strings(gone)
	for _, w := range gone {
		r := st.Users[w]
		out = append(out, WorkloadUsers{Workload: w, Sites: slices.Clone(r.Sites), Source: UsersFromAPI, By: r.By, At: r.At})
	}
	return out
}

// SetUsers records through raft where a workload's users are, in the name of by. workload
// is its identity or its container's name, as the cluster reports it now; every site must
// be a site some node of the cluster is at (a typo would otherwise pull the workload
// toward nowhere). It returns the workload's identity. Nothing is recorded on an error:
// ErrUnknownWorkload, ErrUnknownSite, policy.ErrInvalidUserSites, or the state machine's
// refusal.
func (l *Leader) SetUsers(ctx context.Context, workload string, sites []policy.UserSite, by string) (string, error) {
	if err := policy.CheckUserSites(sites); err != nil {
		return "", err
	}
	g := l.cfg.Gossip()
	known := map[string]bool{}
	var names []string
	for _, n := range g.Nodes {
		if s := n.Labels[gossip.LabelSite]; s != "" && !known[s] {
			known[s] = true
			names = append(names, s)
		}
	}
	sort.Strings(names)
	for _, u := range sites {
		if !known[u.Site] {
			return "", fmt.Errorf("%w %q: the cluster's sites are %v", ErrUnknownSite, u.Site, names)
		}
	}
	st := l.cfg.FSM.State()
	id, ok := findWorkload(BuildView(g, l.viewInputs(st)), workload)
	if !ok {
		return "", fmt.Errorf("%w: %s: no node runs it", ErrUnknownWorkload, workload)
	}
	if _, err := l.proposeAs(ctx, TypeSetUsers, SetUsers{Workload: id, Sites: sites}, by); err != nil {
		return "", err
	}
	return id, nil
}

// ClearUsers drops a workload's recorded user sites (its label counts again). workload is
// its identity (also when no node runs it any more) or its container's name. It returns
// the identity, and false when nothing was recorded.
func (l *Leader) ClearUsers(ctx context.Context, workload, by string) (string, bool, error) {
	st := l.cfg.FSM.State()
	id := workload
	if _, ok := st.Users[id]; !ok {
		var found bool
		if id, found = findWorkload(BuildView(l.cfg.Gossip(), l.viewInputs(st)), workload); !found {
			return "", false, fmt.Errorf("%w: %s: no node runs it and no user sites are recorded for it", ErrUnknownWorkload, workload)
		}
	}
	res, err := l.proposeAs(ctx, TypeClearUsers, ClearUsers{Workload: id}, by)
	if err != nil {
		return "", false, err
	}
	return id, !res.Unchanged, nil
}

// findWorkload finds a workload in the view by identity, else by container name.
func findWorkload(view policy.ClusterView, w string) (string, bool) {
	for _, c := range view.Containers {
		if c.ID == w {
			return c.ID, true
		}
	}
	for _, c := range view.Containers {
		if c.Name == w {
			return c.ID, true
		}
	}
	return "", false
}
