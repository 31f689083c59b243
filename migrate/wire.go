package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The node-to-node protocol, version 2. Every connection is TLS 1.3 with mutual
// authentication against the cluster's CA (internal/pki); there is no plaintext listener. One
// request per connection:
//
//	client: "GWT2" frame(request JSON) [stream]
//	server: frame(response JSON)
//
// Frames and streams are described in transfer.go. Requests are decoded strictly (unknown
// fields are an error) and carry no local path, device or privilege: the target derives
// every path from the migration ID and rebuilds the workload from an allowlist.
const protoMagic = "GWT2"

// maxRequest bounds a request or response frame: specs and reports are small.
const maxRequest = 1 << 20

// Operations.
const (
	opPing      = "ping"      // any cluster identity: who are you
	opMigrate   = "migrate"   // server or operator → source: move one of your workloads
	opStatus    = "status"    // what do you know of migration ID
	opResolve   = "resolve"   // finish (commit) or undo (abort) your part of migration ID
	opPreflight = "preflight" // source → target: can you take this workload
	opHasImage  = "has-image" // source → target: do you have the migration's image
	opImage     = "image"     // source → target: the migration's image (stream)
	opPrepare   = "prepare"   // source → target: create the stopped copy
	opStream    = "stream"    // source → target: the checkpoint (stream)
	opRestore   = "restore"   // source → target: restore and verify
	opPages     = "pages"     // source → target: the post-copy page stream (postcopy.go)
	opPulled    = "pulled"    // source → target: wait until every page arrived (post-copy)
)

// Outcomes of resolve.
const (
	// OutcomeCommit tells a target that the source removed its copy: the migration is
	// complete. Valid only when the target's copy runs.
	OutcomeCommit = "commit"
	// OutcomeAbort tells a node to undo its part: a target removes its copy (refused when
	// that copy already runs: its state is newer than the checkpoint), a source brings its
	// workload back from its checkpoint once the target has no copy.
	OutcomeAbort = "abort"
)

// request is what a client asks of a node.
type request struct {
	Op          string `json:"op"`
	MigrationID string `json:"migrationID,omitempty"`
	Spec        *Spec  `json:"spec,omitempty"`
	Compressed  bool   `json:"compressed,omitempty"`
	// Size is the declared uncompressed length of the stream that follows.
	Size    int64  `json:"size,omitempty"`
	Order   *Order `json:"order,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	// Method is the migration method (pre-flight and restore of a post-copy migration).
	Method string `json:"method,omitempty"`
	// LazyPages is, for a post-copy restore, the number of pages the source's dump left
	// to its page server: the target's transfer is complete only when all of them arrived.
	LazyPages int64 `json:"lazyPages,omitempty"`
}

// Order asks a node to migrate one of its workloads to another node.
type Order struct {
	// ID is the migration ID; a new one when empty.
	ID string `json:"id,omitempty"`
	// Workload names the workload on the source: container ID or name, or its
	// godwit.io/workload identity.
	Workload string `json:"workload"`
	// TargetNode is the target's node name; its certificate must carry it. Empty accepts
	// any cluster node at TargetAddr (the report names the one that answered).
	TargetNode string `json:"targetNode,omitempty"`
	// TargetAddr is the target's migration service, host:port.
	TargetAddr string `json:"targetAddr"`
	Compress   bool   `json:"compress,omitempty"`
	// Method is "stop-and-copy" (or empty, the same) or "post-copy".
	Method string `json:"method,omitempty"`
}

// MethodStopAndCopy is the default migration method: freeze, dump, copy, restore
// (MethodPostCopy is in postcopy.go).
const MethodStopAndCopy = "stop-and-copy"

// response is a node's answer. Kind names the sentinel error so it survives the wire.
type response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Node is the answering node's name.
	Node        string `json:"node,omitempty"`
	Has         bool   `json:"has,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
	// Timings measured on the target, in seconds.
	RestoreSeconds float64    `json:"restoreSeconds,omitempty"`
	VerifySeconds  float64    `json:"verifySeconds,omitempty"`
	Usage          *HostUsage `json:"usage,omitempty"`
	Report         *Report    `json:"report,omitempty"`
	Status         *Status    `json:"status,omitempty"`
	// Lazy is a post-copy target's count of the pages it fetched.
	Lazy *LazyCount `json:"lazy,omitempty"`
	// Steps are sub-steps of the target's restore, in seconds (post-copy).
	Steps map[string]float64 `json:"steps,omitempty"`
}

// Status is what one node knows of one migration: its journal entry and, from its engine,
// whether its copy of the workload exists and runs.
type Status struct {
	ID       string         `json:"id"`
	Node     string         `json:"node"`
	Known    bool           `json:"known"`
	Side     Side           `json:"side,omitempty"`
	Workload string         `json:"workload,omitempty"`
	Source   string         `json:"source,omitempty"`
	Target   string         `json:"target,omitempty"`
	Phase    string         `json:"phase,omitempty"`
	Finished bool           `json:"finished"`
	InDoubt  bool           `json:"inDoubt"`
	Copy     *WorkloadState `json:"copy,omitempty"`
	Error    string         `json:"error,omitempty"`
	Updated  time.Time      `json:"updated,omitempty"`
}

var kinds = []struct {
	kind string
	err  error
}{
	// Outcomes of a whole migration first: they matter more than their cause.
	{"in-doubt", ErrInDoubt},
	{"rollback-failed", ErrRollbackFailed},
	{"rolled-back", ErrRolledBack},
	{"unauthorized", ErrUnauthorized},
	{"unsafe-stream", ErrUnsafeStream},
	{"checksum", ErrChecksum},
	{"shutting-down", ErrShuttingDown},
	{"refused", ErrRefused},
	{"not-checkpointable", ErrNotCheckpointable},
	{"preflight", ErrPreflight},
	{"not-found", ErrNotFound},
}

func errorResponse(err error) response {
	r := response{Error: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			r.Kind = k.kind
			break
		}
	}
	return r
}

// err turns a response's error back into an error wrapping the right sentinel.
func (r response) err(node string) error {
	if r.OK {
		return nil
	}
	if r.Error == "" {
		r.Error = "request failed without a reason"
	}
	for _, k := range kinds {
		if r.Kind == k.kind {
			return &RemoteError{Node: node, Msg: r.Error, kind: k.err}
		}
	}
	return &RemoteError{Node: node, Msg: r.Error}
}

// RemoteError is an error reported by another node: a definite answer, as opposed to a lost
// connection.
type RemoteError struct {
	Node string
	Msg  string
	kind error
}

func (e *RemoteError) Error() string {
	if e.Node == "" {
		return "remote: " + e.Msg
	}
	return e.Node + ": " + e.Msg
}

func (e *RemoteError) Unwrap() error { return e.kind }

// readStrictFrame reads one JSON frame strictly: bounded, unknown fields refused.
func readStrictFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	if n > maxRequest {
		return fmt.Errorf("frame of %d bytes exceeds the %d-byte message limit", n, maxRequest)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	if dec.More() {
		return errors.New("malformed message: trailing data")
	}
	return nil
}
