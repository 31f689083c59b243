package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"

	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

// by is who a command is recorded as coming from: the caller's name and role.
func by(c *call) string { return c.caller.Node + " (" + string(c.caller.Role) + ")" }

func (s *Server) migrate(c *call) (int, any, error) {
	var req MigrateRequest
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "body: want {\"workload\": ..., \"to\": ...}: %v", err)
	}
	if req.Workload == "" || req.To == "" {
		return 0, nil, errorf(http.StatusBadRequest, CodeBadRequest, "body: workload and to are required")
	}
	id, err := s.cfg.ControlPlane.Request(c.r.Context(), req.Workload, req.To, by(c))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, Accepted{ID: id, Location: "/v1/migrations/" + id}, nil
}

// knownNode refuses a node gossip has never heard of.
func (s *Server) knownNode(name string) error {
	if _, ok := s.cfg.View().Node(name); !ok {
		return errorf(http.StatusBadRequest, CodeUnknownNode, "unknown node %q: not a member of the cluster", name)
	}
	return nil
}

func (s *Server) drain(c *call) (int, any, error) {
	node := c.r.PathValue("node")
	if err := s.knownNode(node); err != nil {
		return 0, nil, err
	}
	if _, err := s.propose(c, scheduler.TypeDrain, scheduler.Drain{Node: node, Reason: "drained by " + by(c)}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, Accepted{Node: node, Message: "drained: nothing moves onto it; an evacuating policy moves its workloads away"}, nil
}

func (s *Server) undrain(c *call) (int, any, error) {
	node := c.r.PathValue("node")
	if err := s.knownNode(node); err != nil {
		return 0, nil, err
	}
	if _, err := s.propose(c, scheduler.TypeUndrain, scheduler.Undrain{Node: node}); err != nil {
		return 0, nil, err
	}
	msg := "undrained"
	if n, _ := s.cfg.View().Node(node); n.Drain {
		msg += "; the node still announces drain in gossip (its config), so the next leader records it drained again"
	}
	return http.StatusOK, Accepted{Node: node, Message: msg}, nil
}

// applyPolicy puts the policy file in the body in force. ?file= names it in errors.
func (s *Server) applyPolicy(c *call) (int, any, error) {
	file := path.Base(c.r.URL.Query().Get("file"))
	if file == "." || file == "/" {
		file = "policy"
	}
	// Parsed here first so that its problems come back with their positions; the state
	// machine parses it again when it applies it.
	if _, err := policy.Parse(file, c.body); err != nil {
		return 0, nil, err
	}
	res, err := s.propose(c, scheduler.TypeApplyPolicy, scheduler.ApplyPolicy{File: file, Source: string(c.body)})
	if err != nil {
		return 0, nil, err
	}
	name := ""
	if p := s.state().Policy; p != nil {
		name = p.Name
	}
	return http.StatusOK, Accepted{PolicyVersion: res.PolicyVersion, Policy: name}, nil
}

// propose applies one command through raft as the caller; a refusal by the state
// machine is an error.
func (s *Server) propose(c *call, t scheduler.CommandType, body any) (*scheduler.ApplyResult, error) {
	return scheduler.Propose(c.r.Context(), s.cfg.ControlPlane.Server(), t, body, s.cfg.Now(), by(c))
}
