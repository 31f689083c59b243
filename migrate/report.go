package migrate

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Phase names of a report's timings, in the order a migration runs them.
const (
	PhasePreflight  = "preflight"
	PhaseImage      = "image"
	PhasePrepare    = "prepare"
	PhaseCheckpoint = "checkpoint"
	PhaseTransfer   = "transfer"
	PhaseRestore    = "restore"
	PhaseVerify     = "verify"
	PhaseCleanup    = "cleanup"
	PhaseRollback   = "rollback"
)

// Results of a migration, as a report states them.
const (
	ResultCompleted      = "completed"       // runs on the target only
	ResultRolledBack     = "rolled-back"     // failed after the freeze; runs on the source again
	ResultFailed         = "failed"          // failed before the freeze; nothing changed
	ResultInDoubt        = "in-doubt"        // not settled yet: the source copy stays stopped
	ResultRollbackFailed = "rollback-failed" // runs nowhere; checkpoint kept for an operator
)

// PhaseTiming is one phase's duration and the bytes it moved.
type PhaseTiming struct {
	Phase    string        `json:"phase"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	Bytes    int64         `json:"bytes,omitempty"`
}

// Report is what one migration attempt did.
type Report struct {
	ID string `json:"id"`
	// Workload is the workload's identity (godwit.io/workload); Container its name on the
	// source.
	Workload   string `json:"workload"`
	Container  string `json:"container"`
	Source     string `json:"source"`
	Target     string `json:"target"`
	TargetAddr string `json:"targetAddr,omitempty"`
	Method     string `json:"method"`
	// TargetID is the workload's ID on the target after a successful migration.
	TargetID    string        `json:"targetID,omitempty"`
	MemoryBytes int64         `json:"memoryBytes"`
	Phases      []PhaseTiming `json:"phases"`
	// Downtime is from the freeze until the workload ran on the target (or, after a
	// rollback, on the source again).
	Downtime        time.Duration `json:"-"`
	DowntimeSeconds float64       `json:"downtimeSeconds"`
	// CheckpointBytes is the checkpoint's size; WireBytes what crossed the network for it
	// (smaller when compressed); ImageBytes the image moved, 0 when the target had it.
	CheckpointBytes int64 `json:"checkpointBytes"`
	WireBytes       int64 `json:"wireBytes"`
	ImageBytes      int64 `json:"imageBytes"`
	// Host CPU and memory sampled during checkpoint (source) and restore (target).
	CheckpointUsage HostUsage `json:"checkpointUsage"`
	RestoreUsage    HostUsage `json:"restoreUsage"`
	// Connections to the target and the time spent opening them (TCP, TLS 1.3 handshake,
	// certificate checks): the protocol's authentication overhead.
	Connections      int     `json:"connections"`
	HandshakeSeconds float64 `json:"handshakeSeconds"`
	// Post-copy: the memory left to the page server, the time from the target's resumption
	// until every page arrived, and the target's count of fetched pages.
	LazyBytes    int64      `json:"lazyBytes,omitempty"`
	PagesSeconds float64    `json:"pagesSeconds,omitempty"`
	Lazy         *LazyCount `json:"lazy,omitempty"`
	// Steps split the freeze of a post-copy migration into its parts, in seconds, so the
	// fixed cost can be attributed: source-criu-start, source-criu-frozen, source-runc
	// (checkpoint); target-docker-start, target-criu-restore (restore).
	Steps      map[string]float64 `json:"steps,omitempty"`
	Result     string             `json:"result"`
	RolledBack bool               `json:"rolledBack"`
	Error      string             `json:"error,omitempty"`
}

// Phase returns the duration of the named phase (0 if it did not run).
func (r *Report) Phase(name string) time.Duration {
	for _, p := range r.Phases {
		if p.Phase == name {
			return p.Duration
		}
	}
	return 0
}

func (r *Report) add(phase string, d time.Duration, bytes int64) {
	r.Phases = append(r.Phases, PhaseTiming{Phase: phase, Duration: d, Seconds: d.Seconds(), Bytes: bytes})
}

func (r *Report) setDowntime(d time.Duration) {
	r.Downtime, r.DowntimeSeconds = d, d.Seconds()
}

// fromWire fills the durations from the seconds a decoded report carries.
func (r *Report) fromWire() {
	r.Downtime = time.Duration(r.DowntimeSeconds * float64(time.Second))
	for i := range r.Phases {
		r.Phases[i].Duration = time.Duration(r.Phases[i].Seconds * float64(time.Second))
	}
}

// NewID returns a fresh migration ID.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "m-" + hex.EncodeToString(b[:])
}

// validID accepts migration IDs that are safe as file names.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return id != "." && id != ".." && id[0] != '.'
}
