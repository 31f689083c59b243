package api

import (
	"time"

	"github.com/godwit-io/godwit/policy"
	"github.com/godwit-io/godwit/scheduler"
)

// The JSON bodies of the API, shared by the server and its clients (the CLI).

// Status is GET /v1/status: this agent, the leader and the raft servers.
type Status struct {
	Node    string `json:"node"`
	Role    string `json:"role"`
	Site    string `json:"site,omitempty"`
	APIAddr string `json:"apiAddr,omitempty"`
	// Leader is the raft leader as this agent knows it (a client agent asks a server);
	// nil while none is known.
	Leader *Peer `json:"leader,omitempty"`
	// Term is the raft term (0 when not known here).
	Term uint64 `json:"term,omitempty"`
	// Servers is the raft configuration (servers only; a client agent asks a server).
	Servers []RaftServer `json:"servers,omitempty"`
	// Members counts the gossip members alive, as this agent sees them.
	Members int `json:"members"`
	// PolicyVersion is the version of the policy in force (0: none; servers only).
	PolicyVersion uint64 `json:"policyVersion,omitempty"`
	// InFlight counts migrations in flight or in doubt in the ledger.
	InFlight int `json:"inFlight"`
}

// Peer is an agent and its API address.
type Peer struct {
	Name    string `json:"name"`
	APIAddr string `json:"apiAddr,omitempty"`
}

// RaftServer is one member of the raft configuration.
type RaftServer struct {
	Name     string `json:"name"`
	RaftAddr string `json:"raftAddr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Node is one node of GET /v1/nodes, from the gossip view.
type Node struct {
	Name   string `json:"name"`
	Site   string `json:"site,omitempty"`
	Role   string `json:"role,omitempty"`
	Status string `json:"status"`
	// Drained: the node announces drain in gossip, or (as a server knows) the ledger
	// records it drained.
	Drained        bool              `json:"drained"`
	CPUCores       float64           `json:"cpuCores"`
	CPUCapacity    float64           `json:"cpuCapacity"`
	MemoryBytes    uint64            `json:"memoryBytes"`
	MemoryCapacity uint64            `json:"memoryCapacity"`
	Containers     int               `json:"containers"`
	APIAddr        string            `json:"apiAddr,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// Container is one workload of GET /v1/containers: a container in a node's gossiped
// inventory, with its owner and last move from the ledger.
type Container struct {
	// Workload is the identity that survives moves (godwit.io/workload, else the ID).
	Workload    string  `json:"workload"`
	Name        string  `json:"name"`
	ID          string  `json:"id"`
	Node        string  `json:"node"`
	Image       string  `json:"image,omitempty"`
	MemoryBytes uint64  `json:"memoryBytes"`
	CPUCores    float64 `json:"cpuCores"`
	// Owner is the node the ledger says owns the workload ("" when it records none).
	Owner    string          `json:"owner,omitempty"`
	LastMove *scheduler.Move `json:"lastMove,omitempty"`
	// InFlight is the migration holding the workload, if any.
	InFlight string `json:"inFlight,omitempty"`
}

// Explain is GET /v1/explain: the leader's last plan, its explanations filtered to one
// workload when asked.
type Explain struct {
	At           time.Time            `json:"at"`
	Mode         policy.Mode          `json:"mode"`
	Decisions    []policy.Decision    `json:"decisions,omitempty"`
	Explanations []policy.Explanation `json:"explanations"`
	Problems     []string             `json:"problems,omitempty"`
	// Users are the user sites the plan was evaluated with, per workload, and where they
	// came from (the API or the container's label).
	Users []scheduler.WorkloadUsers `json:"users,omitempty"`
}

// UsersRequest is the body of PUT /v1/users/{workload}: where the workload's users are,
// as sites with relative weights.
type UsersRequest struct {
	Sites []policy.UserSite `json:"sites"`
}

// MigrateRequest is the body of POST /v1/migrate.
type MigrateRequest struct {
	// Workload is the workload's identity or its container's name.
	Workload string `json:"workload"`
	// To is the target node's name.
	To string `json:"to"`
}

// Accepted answers a write that was recorded: POST /v1/migrate (ID, Location), drain,
// undrain (Node), policy (PolicyVersion), users (Workload).
type Accepted struct {
	ID            string `json:"id,omitempty"`
	Location      string `json:"location,omitempty"`
	Node          string `json:"node,omitempty"`
	PolicyVersion uint64 `json:"policyVersion,omitempty"`
	Policy        string `json:"policy,omitempty"`
	Workload      string `json:"workload,omitempty"`
	Message       string `json:"message,omitempty"`
}
