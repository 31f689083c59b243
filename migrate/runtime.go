package migrate

import (
	"context"
	"encoding/json"
	"io"
)

// Spec describes a workload well enough to recreate it on another node. It crosses the wire
// from source to target, so it is plain JSON-serialisable data.
type Spec struct {
	// Runtime is the Runtime.Name() of the runtime that produced it ("docker", "criu").
	Runtime string `json:"runtime"`
	// ID is the workload's ID on the source (container ID, or the root PID for criu).
	ID   string `json:"id"`
	Name string `json:"name"`
	// Workload is the identity that survives moves: the LabelWorkload label, or the
	// original container's ID when absent. Every copy carries it as that label.
	Workload string `json:"workload"`
	// Image is the image reference and ImageID its content ID (docker only).
	Image   string `json:"image,omitempty"`
	ImageID string `json:"imageID,omitempty"`
	// MemoryBytes is memory in use now; the checkpoint is about this size.
	MemoryBytes int64 `json:"memoryBytes"`
	// MemoryLimit is the workload's configured memory limit, 0 when unlimited.
	MemoryLimit int64  `json:"memoryLimit,omitempty"`
	Arch        string `json:"arch"`
	// Labels are the workload's labels; godwit.io/... labels carry per-workload settings.
	Labels map[string]string `json:"labels,omitempty"`
	// Volumes are local named volumes whose contents travel with the checkpoint.
	Volumes []Volume `json:"volumes,omitempty"`
	// Config is the runtime's own creation config (for docker: container and host config).
	Config json.RawMessage `json:"config,omitempty"`
}

func (s *Spec) clone() Spec {
	c := *s
	if s.Labels != nil {
		c.Labels = make(map[string]string, len(s.Labels))
		for k, v := range s.Labels {
			c.Labels[k] = v
		}
	}
	c.Volumes = append([]Volume(nil), s.Volumes...)
	c.Config = append(json.RawMessage(nil), s.Config...)
	return c
}

// Managed reports whether the workload carries LabelManaged=true.
func (s *Spec) Managed() bool { return s.Labels[LabelManaged] == "true" }

// WorkloadState is what a runtime knows of one workload on this node.
type WorkloadState struct {
	Exists  bool `json:"exists"`
	Running bool `json:"running"`
}

// Volume is a local named volume mounted into the workload.
type Volume struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
}

// Prepared is a workload created on the target, not yet running, waiting for its checkpoint.
// It stays on the target: the runtime derives both fields from the migration ID, and no
// request carries them.
type Prepared struct {
	// ID identifies the created workload on the target.
	ID string `json:"id"`
	// CheckpointDir is where the checkpoint images must be placed before Restore.
	CheckpointDir string `json:"checkpointDir"`
}

// Runtime is one node's container (or process) runtime. Every method is keyed by IDs so a
// repeated call after a crash or a retry is harmless: Prepare for a migration ID that already
// has a prepared workload returns it, Remove of a missing workload succeeds.
//
// Implementations must be safe for concurrent use by different migrations.
type Runtime interface {
	// Name is the runtime's kind, matching Spec.Runtime.
	Name() string

	// Inspect describes a running workload on this node.
	Inspect(ctx context.Context, id string) (*Spec, error)

	// CheckSource is the source side of pre-flight: the workload is running and can be
	// checkpointed (CRIU present and recent enough, nothing CRIU cannot dump, volumes and
	// mounts movable). It must not change anything. Errors wrap ErrNotCheckpointable or
	// ErrPreflight with the reason.
	CheckSource(ctx context.Context, spec *Spec) error

	// CheckTarget is the target side of pre-flight: CRIU, architecture, memory headroom,
	// bind-mount paths. It must not change anything.
	CheckTarget(ctx context.Context, spec *Spec) error

	// Prepare creates the workload on the target from spec without starting it. Done before
	// the freeze, so it is not downtime.
	Prepare(ctx context.Context, migrationID string, spec *Spec) (Prepared, error)

	// Checkpoint freezes the workload, dumps it into dir and leaves it stopped (not removed).
	Checkpoint(ctx context.Context, id, dir string) error

	// Restore starts the prepared workload from the checkpoint in p.CheckpointDir.
	Restore(ctx context.Context, p Prepared) error

	// Resume brings the original workload back on the source from its local checkpoint in
	// dir: the rollback path.
	Resume(ctx context.Context, spec *Spec, dir string) error

	// Verify reports nil when the workload id is running and answering (for docker: the
	// container runs and, when it carries LabelProbePort, accepts a TCP connection on that
	// port through its own loopback).
	Verify(ctx context.Context, id string) error

	// State reports whether workload id exists here and whether it runs. A missing
	// workload is {false, false}, not an error.
	State(ctx context.Context, id string) (WorkloadState, error)

	// Remove deletes the workload id and what belongs to it. Removing a missing workload
	// succeeds.
	Remove(ctx context.Context, id string) error
}

// ImageMover is implemented by runtimes whose workloads come from images that may be absent
// on the target (docker). The image moves before the freeze, so it is not downtime.
type ImageMover interface {
	HasImage(ctx context.Context, imageID string) (bool, error)
	// SaveImage writes the workload's image, with its tag when the tag still names it.
	SaveImage(ctx context.Context, spec *Spec, w io.Writer) error
	LoadImage(ctx context.Context, r io.Reader) error
}

// VolumeMover is implemented by runtimes that can carry local named volumes' contents with
// the checkpoint: the source's volume directory travels in the checkpoint stream (after the
// freeze, so it is consistent) and is unpacked into the target's volume of the same name,
// which Prepare created.
type VolumeMover interface {
	// VolumePath is the directory holding the named volume's contents on this node.
	VolumePath(ctx context.Context, name string) (string, error)
}

// Labels godwit reads on workloads.
const (
	// LabelProbePort names a TCP port the workload answers on inside its own network
	// namespace; Verify connects to it after a restore.
	LabelProbePort = "godwit.io/probe-port"
	// LabelManaged marks a workload godwit may move: "true".
	LabelManaged = "godwit.io/managed"
	// LabelWorkload is the workload's identity across moves; set on every copy.
	LabelWorkload = "godwit.io/workload"
	// LabelMigrationID is set on a workload created on the target by a migration, so a
	// repeated Prepare finds it.
	LabelMigrationID = "godwit.io/migration-id"
)
