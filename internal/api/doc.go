// Package api is the agent's HTTP API: HTTPS only (TLS 1.3; a client certificate of the
// cluster verified through internal/pki, or a bearer token recorded through raft, auth.go),
// JSON in and out, served by every agent on its API address with the web view (internal/ui)
// under /ui/.
//
// One wrapper (handle, in server.go) does for every endpoint what Nomad's agent does in
// its HTTP wrapper: it reads the caller's identity from the verified certificate, decides
// whether that role may call the endpoint (operators and servers may change things, client
// nodes may only read), sends the request where it can be answered (routing below), and
// writes every error as {"error": "...", "code": "..."} with an HTTP status that fits.
// It logs the method, the path, the caller and the status, never a body or a header.
//
// Routing. Read endpoints that need only the local view (status, nodes, and GET /metrics,
// Prometheus' exposition of the agent's own metrics, internal/metrics) are answered by any
// agent. Those that need the replicated state (containers with their owners, migrations,
// policy) are answered by any server; a client agent forwards them to an alive server.
// Explanations (the leader's last plan) and every write are answered by the leader:
//
//   - a server that is not the leader forwards the request to the leader's API address
//     (the gossip label godwit.io/api-addr of the node raft names leader), over the same
//     mutual TLS, with its certificate, and says for whom in the Godwit-Forwarded-For
//     header. The leader believes that header only from a server's certificate.
//   - a client agent forwards reads (explanations) to the leader as itself, but does not
//     act on another's behalf: it answers a write with 421
//     Misdirected Request, code not-leader, and the leader's API address (field
//     leaderAddr and header Godwit-Leader), which callers (the CLI) then ask directly.
//
// A request is forwarded at most twice (header Godwit-Hops). Every answer says which agent
// produced it in the Godwit-Served-By header.
//
// What this package must not do: decide or record anything itself. Writes go through
// scheduler.ControlPlane.Request (migrations) or through raft commands (drain, undrain,
// policy), with the same checks as everything else.
package api
