package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/godwit-io/godwit/scheduler"
)

// users lists the user sites of every workload: in effect, from where, and the label.
func (s *Server) users(c *call) (int, any, error) {
	st := s.state()
	out := scheduler.UsersOf(scheduler.BuildView(s.cfg.View(), st.ViewInputs()), st)
	if out == nil {
		out = []scheduler.WorkloadUsers{}
	}
	return http.StatusOK, out, nil
}

// setUsers records where a workload's users are. The leader checks the sites against the
// cluster's and the workload against the nodes' inventories; nothing is recorded on error.
func (s *Server) setUsers(c *call) (int, any, error) {
	var req UsersRequest
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "body: want {\"sites\": [{\"site\": ..., \"weight\": ...}]}: %v", err)
	}
	if dec.More() {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "body: trailing data after the JSON value")
	}
	id, err := s.cfg.ControlPlane.Leader().SetUsers(c.r.Context(), c.r.PathValue("workload"), req.Sites, by(c))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, Accepted{Workload: id, Message: "recorded: the leader's next decision round counts these users (over the container's label)"}, nil
}

// clearUsers drops a workload's recorded user sites.
func (s *Server) clearUsers(c *call) (int, any, error) {
	id, cleared, err := s.cfg.ControlPlane.Leader().ClearUsers(c.r.Context(), c.r.PathValue("workload"), by(c))
	if err != nil {
		return 0, nil, err
	}
	msg := "cleared: the container's godwit.io/user-sites label, if any, counts again"
	if !cleared {
		msg = "nothing was recorded"
	}
	return http.StatusOK, Accepted{Workload: id, Message: msg}, nil
}
