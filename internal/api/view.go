package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/internal/ui"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// labelUserSites is the container label that says where a workload's users are
// (site:weight,...), shown as is by the web view.
const labelUserSites = "godwit.io/user-sites"

// Whoami is GET /v1/whoami: who the API takes the caller for.
type Whoami struct {
	Name string `json:"name"`
	// Role is operator, viewer (a viewer token), server or client (node certificates).
	Role string `json:"role"`
	// Via is "certificate" or "token".
	Via string `json:"via"`
}

// ViewExtras is GET /v1/view: what the web view shows beyond the other endpoints.
type ViewExtras struct {
	// Now is the answering server's clock, for cooldowns.
	Now time.Time `json:"now"`
	// Cost is the cost model in force and its prediction errors.
	scheduler.CostRecord
	// Policy is the policy in force in brief (nil: none).
	Policy *PolicyBrief `json:"policy,omitempty"`
	// UserSites is where each workload's users are: the sites recorded through the API, else
	// its godwit.io/user-sites label (site:weight,...).
	UserSites map[string]string `json:"userSites,omitempty"`
}

// PolicyBrief is the policy in force as the view needs it.
type PolicyBrief struct {
	Version  uint64        `json:"version"`
	Name     string        `json:"name,omitempty"`
	Mode     string        `json:"mode"`
	Cooldown time.Duration `json:"cooldown"`
	Interval time.Duration `json:"interval"`
}

// viewRoutes registers the web view and the endpoints only it needs.
func (s *Server) viewRoutes() {
	s.mux.Handle("GET /ui/", ui.Handler())
	s.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	s.handle("GET /v1/whoami", false, local, s.whoami)
	s.handle("GET /v1/view", false, replica, s.viewExtras)
}

func (s *Server) whoami(c *call) (int, any, error) {
	w := Whoami{Name: c.caller.Node, Role: string(c.caller.Role), Via: "certificate"}
	if c.viaToken != "" {
		w.Role, w.Via = c.viaToken, "token"
	}
	return http.StatusOK, w, nil
}

func (s *Server) viewExtras(c *call) (int, any, error) {
	st := s.state()
	out := ViewExtras{Now: s.cfg.Now(), CostRecord: st.Cost, UserSites: map[string]string{}}
	if st.Policy != nil {
		b := &PolicyBrief{Version: st.Policy.Version, Name: st.Policy.Name}
		if p, err := st.Policy.Parse(); err == nil {
			b.Mode, b.Cooldown, b.Interval = string(p.Mode), p.Constraints.Cooldown, p.Interval
		}
		out.Policy = b
	}
	for _, n := range s.cfg.View().Nodes {
		if n.Status != gossip.StatusAlive {
			continue
		}
		for _, ct := range n.Containers {
			if v := ct.Labels[labelUserSites]; v != "" {
				w := ct.Labels[migrate.LabelWorkload]
				if w == "" {
					w = ct.ID
				}
				out.UserSites[w] = v
			}
		}
	}
	// Sites recorded through the API (`godwit users set`) take precedence over the label,
	// as they do for the leader; shown in the label's format.
	for w, rec := range st.Users {
		parts := make([]string, 0, len(rec.Sites))
		for _, u := range rec.Sites {
			parts = append(parts, u.Site+":"+strconv.FormatFloat(u.Weight, 'g', -1, 64))
		}
		out.UserSites[w] = strings.Join(parts, ",")
	}
	return http.StatusOK, out, nil
}
