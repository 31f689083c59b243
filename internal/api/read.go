package api

import (
	"net/http"
	"strconv"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/scheduler"
)

// routes registers every endpoint.
func (s *Server) routes() {
	s.handle("GET /v1/status", false, local, s.status)
	s.handle("GET /v1/nodes", false, local, s.nodes)
	s.handle("GET /v1/containers", false, replica, s.containers)
	s.handle("GET /v1/migrations", false, replica, s.migrations)
	s.handle("GET /v1/migrations/{id}", false, replica, s.migration)
	s.handle("GET /v1/policy", false, replica, s.policy)
	s.handle("GET /v1/explain", false, leader, s.explain)
	s.handle("POST /v1/migrate", true, leader, s.migrate)
	s.handle("POST /v1/drain/{node}", true, leader, s.drain)
	s.handle("POST /v1/undrain/{node}", true, leader, s.undrain)
	s.handle("POST /v1/policy", true, leader, s.applyPolicy)
	s.handle("GET /v1/users", false, replica, s.users)
	s.handle("PUT /v1/users/{workload}", true, leader, s.setUsers)
	s.handle("DELETE /v1/users/{workload}", true, leader, s.clearUsers)
	s.handle("POST /v1/acl/tokens", true, leader, s.createToken)
	s.handle("GET /v1/acl/tokens", false, replica, s.listTokens)
	s.handle("DELETE /v1/acl/tokens/{id}", true, leader, s.deleteToken)
	s.handle("POST /v1/acl/resolve", false, replica, s.resolveToken)
	s.viewRoutes()
	if s.cfg.Metrics != nil {
		s.handle("GET /metrics", false, local, s.metrics)
	}
	s.handle("/", false, local, func(c *call) (int, any, error) {
		return 0, nil, errorf(http.StatusNotFound, CodeNotFound, "no endpoint %s %s", c.r.Method, c.r.URL.Path)
	})
}

// metrics serves this agent's own metrics: each agent is scraped for itself, never through
// another, so the route is local.
func (s *Server) metrics(c *call) (int, any, error) {
	w := &statusWriter{ResponseWriter: c.w, status: http.StatusOK}
	s.cfg.Metrics.ServeHTTP(w, c.r)
	c.written = w.status
	return 0, nil, errWritten
}

// statusWriter remembers the status a handler wrote, for the request's log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// state is the replicated state (servers only).
func (s *Server) state() *scheduler.State { return s.cfg.ControlPlane.FSM().State() }

func (s *Server) status(c *call) (int, any, error) {
	v := s.cfg.View()
	st := Status{Node: s.cfg.Node, Role: s.cfg.Role, Site: s.cfg.Site, Members: len(v.Alive())}
	st.APIAddr, _ = s.cfg.APIAddr(s.cfg.Node)
	cp := s.cfg.ControlPlane
	if cp == nil {
		// A client agent has no raft: the servers know the rest.
		for _, p := range s.servers() {
			var remote Status
			if err := s.ask(c.r.Context(), p, "/v1/status", &remote); err == nil {
				st.Leader, st.Term, st.Servers = remote.Leader, remote.Term, remote.Servers
				st.PolicyVersion, st.InFlight = remote.PolicyVersion, remote.InFlight
				break
			}
		}
		return http.StatusOK, st, nil
	}
	name, _ := cp.Server().Leader()
	if name != "" {
		st.Leader = &Peer{Name: name}
		st.Leader.APIAddr, _ = s.cfg.APIAddr(name)
	}
	st.Term, _ = strconv.ParseUint(cp.Server().Stats()["term"], 10, 64)
	if cfg, err := cp.Server().Configuration(); err == nil {
		for _, srv := range cfg {
			st.Servers = append(st.Servers, RaftServer{Name: srv.Name, RaftAddr: srv.Addr, Voter: srv.Voter, Leader: srv.Name == name})
		}
	}
	state := s.state()
	if state.Policy != nil {
		st.PolicyVersion = state.Policy.Version
	}
	for _, m := range state.Migrations {
		if m.Phase.InFlight() {
			st.InFlight++
		}
	}
	return http.StatusOK, st, nil
}

func (s *Server) nodes(c *call) (int, any, error) {
	var drained map[string]scheduler.DrainRecord
	if s.cfg.ControlPlane != nil {
		drained = s.state().Drained
	}
	out := []Node{}
	for _, n := range s.cfg.View().Nodes {
		_, recorded := drained[n.Name]
		nd := Node{Name: n.Name, Site: n.Labels[gossip.LabelSite], Role: s.nodeRole(n), Status: n.Status.String(),
			Drained: n.Drain || recorded, CPUCores: n.Load.CPUCores, CPUCapacity: n.Load.CPUCapacity,
			MemoryBytes: n.Load.MemoryBytes, MemoryCapacity: n.Load.MemoryCapacity, Containers: len(n.Containers), Labels: n.Labels}
		nd.APIAddr, _ = s.cfg.APIAddr(n.Name)
		out = append(out, nd)
	}
	return http.StatusOK, out, nil
}

func (s *Server) containers(c *call) (int, any, error) {
	st := s.state()
	inFlight := map[string]string{}
	for _, m := range st.Migrations {
		if m.Phase.InFlight() {
			inFlight[m.Workload] = m.ID
		}
	}
	out := []Container{}
	for _, n := range s.cfg.View().Nodes {
		if n.Status != gossip.StatusAlive {
			continue
		}
		for _, ct := range n.Containers {
			w := ct.Labels[migrate.LabelWorkload]
			if w == "" {
				w = ct.ID
			}
			cc := Container{Workload: w, Name: ct.Name, ID: ct.ID, Node: n.Name, Image: ct.Image,
				MemoryBytes: ct.MemoryBytes, CPUCores: ct.CPUCores, Owner: st.Owners[w], InFlight: inFlight[w]}
			if mv, ok := st.LastMoves[w]; ok {
				cc.LastMove = &mv
			}
			out = append(out, cc)
		}
	}
	return http.StatusOK, out, nil
}

func (s *Server) migrations(c *call) (int, any, error) {
	ms := s.state().SortedMigrations()
	if ms == nil {
		ms = []*scheduler.Migration{}
	}
	return http.StatusOK, ms, nil
}

func (s *Server) migration(c *call) (int, any, error) {
	id := c.r.PathValue("id")
	m, ok := s.state().Migration(id)
	if !ok && !s.cfg.ControlPlane.Server().IsLeader() {
		// Just recorded by the leader, perhaps not yet applied here: the leader knows.
		if done, status, err := s.toLeader(c, false); done {
			c.written = status
			if err != nil && status == 0 {
				return 0, nil, err
			}
			return 0, nil, errWritten
		}
	}
	if !ok {
		return 0, nil, errorf(http.StatusNotFound, CodeNotFound, "no migration %q in the ledger", id)
	}
	return http.StatusOK, m, nil
}

func (s *Server) policy(c *call) (int, any, error) {
	p := s.state().Policy
	if p == nil {
		return 0, nil, errorf(http.StatusNotFound, CodeNoPolicy, "no policy in force: nothing moves by itself (godwit policy apply FILE)")
	}
	return http.StatusOK, p, nil
}

func (s *Server) explain(c *call) (int, any, error) {
	plan := s.cfg.ControlPlane.Leader().LastPlan()
	if plan == nil {
		return 0, nil, errorf(http.StatusNotFound, CodeNoPlan, "the leader has not decided yet (no policy in force, or its first round is to come)")
	}
	out := Explain{At: plan.At, Mode: plan.Mode, Problems: plan.Problems}
	w := c.r.URL.Query().Get("workload")
	for _, e := range plan.Explanations {
		if w == "" || e.Container == w {
			out.Explanations = append(out.Explanations, e)
		}
	}
	for _, d := range plan.Decisions {
		if w == "" || d.Container == w {
			out.Decisions = append(out.Decisions, d)
		}
	}
	for _, u := range s.cfg.ControlPlane.Leader().LastPlanUsers() {
		if w == "" || u.Workload == w {
			out.Users = append(out.Users, u)
		}
	}
	if w != "" && len(out.Explanations) == 0 {
		return 0, nil, errorf(http.StatusBadRequest, CodeUnknownWorkload, "the leader's last plan has no workload %q", w)
	}
	return http.StatusOK, out, nil
}
