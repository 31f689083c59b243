package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

// Error codes, the "code" of every error body. Clients test codes, never messages.
const (
	CodeUnauthenticated = "unauthenticated"    // 401: no verified identity
	CodeForbidden       = "forbidden"          // 403: the caller's role may not do this
	CodeNotFound        = "not-found"          // 404: no such endpoint or migration
	CodeMethod          = "method-not-allowed" // 405
	CodeBadRequest      = "bad-request"        // 400: malformed body or parameters
	CodeUnknownNode     = "unknown-node"       // 400: the node is not in the cluster
	CodeUnknownWorkload = "unknown-workload"   // 400: no node runs the workload
	CodeInvalidPolicy   = "invalid-policy"     // 400: the policy does not parse (Problems)
	CodeUnknownSite     = "unknown-site"       // 400: no node of the cluster is at the site
	CodeInvalidUsers    = "invalid-users"      // 400: no sites, a bad weight, a site twice
	CodeTooLarge        = "too-large"          // 413
	CodeConflict        = "conflict"           // 409: the ledger does not allow it now
	CodeNoPolicy        = "no-policy"          // 404: no policy in force
	CodeNoPlan          = "no-plan"            // 404: the leader has not decided yet
	CodeNotLeader       = "not-leader"         // 421: ask the leader (LeaderAddr)
	CodeNoLeader        = "no-leader"          // 503: no leader known now; retry
	CodeUnavailable     = "unavailable"        // 503: no server reachable, shutting down
	CodeForward         = "forward-failed"     // 502: the agent forwarded to could not be asked
	CodeInternal        = "internal"           // 500
)

// Error is the body of every error answer, and what clients decode it into.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Code    string `json:"code"`
	// Problems are a refused policy's errors, each at file:line:col.
	Problems []Problem `json:"problems,omitempty"`
	// Migration is the migration a conflict is with, when there is one.
	Migration string `json:"migration,omitempty"`
	// Leader and LeaderAddr say where to ask instead (not-leader).
	Leader     string `json:"leader,omitempty"`
	LeaderAddr string `json:"leaderAddr,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Problem is one error in a policy file.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// String formats as file:line:col: message (path), as `godwit policy check` does.
func (p Problem) String() string {
	return (&policy.Error{File: p.File, Line: p.Line, Column: p.Column, Path: p.Path, Msg: p.Message}).Error()
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// toError maps what the control plane returns onto an answer.
func toError(err error) *Error {
	var ae *Error
	var rej *scheduler.Rejection
	var nl *scheduler.NotLeaderError
	var pes policy.Errors
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, scheduler.ErrUnknownNode):
		return errorf(http.StatusBadRequest, CodeUnknownNode, "%v", err)
	case errors.Is(err, scheduler.ErrUnknownWorkload):
		return errorf(http.StatusBadRequest, CodeUnknownWorkload, "%v", err)
	case errors.Is(err, scheduler.ErrUnknownSite):
		return errorf(http.StatusBadRequest, CodeUnknownSite, "%v", err)
	case errors.Is(err, policy.ErrInvalidUserSites):
		return errorf(http.StatusBadRequest, CodeInvalidUsers, "%v", err)
	case errors.As(err, &pes):
		e := errorf(http.StatusBadRequest, CodeInvalidPolicy, "the policy is invalid: %d problems", len(pes))
		for _, p := range pes {
			e.Problems = append(e.Problems, Problem{File: p.File, Line: p.Line, Column: p.Column, Path: p.Path, Message: p.Msg})
		}
		return e
	case errors.Is(err, scheduler.ErrConflict):
		e := errorf(http.StatusConflict, CodeConflict, "%v", err)
		if errors.As(err, &rej) {
			e.Migration = rej.Migration
		}
		return e
	case errors.As(err, &rej) && errors.Is(err, scheduler.ErrInvalidCommand):
		return errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	case errors.As(err, &nl):
		return errorf(http.StatusServiceUnavailable, CodeNoLeader, "%v; retry", err)
	case errors.Is(err, scheduler.ErrServerShutdown), errors.Is(err, scheduler.ErrShutdown), errors.Is(err, scheduler.ErrShuttingDown):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "%v", err)
	}
	return errorf(http.StatusInternalServerError, CodeInternal, "%v", err)
}
