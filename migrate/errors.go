package migrate

import (
	"errors"
	"fmt"
)

var (
	// ErrNotCheckpointable is returned (wrapped, with the reason) by pre-flight when the
	// workload cannot be checkpointed, e.g. it holds an MPTCP socket. Nothing was frozen.
	ErrNotCheckpointable = errors.New("migrate: workload cannot be checkpointed")
	// ErrPreflight is returned (wrapped) when a pre-flight check other than
	// checkpointability fails: CRIU missing or too old, no memory headroom on the target,
	// architecture mismatch, missing bind-mount path. Nothing was frozen.
	ErrPreflight = errors.New("migrate: pre-flight check failed")
	// ErrChecksum is returned when the sha256 of the received checkpoint stream does not
	// match the sender's: the stream was corrupted in transit. The migration rolls back.
	ErrChecksum = errors.New("migrate: checkpoint stream checksum mismatch")
	// ErrNotFound is returned when a workload, migration or image does not exist.
	ErrNotFound = errors.New("migrate: not found")
	// ErrRolledBack is returned by Migrate when the migration failed after the freeze and
	// the workload was restored on the source. It wraps the original cause.
	ErrRolledBack = errors.New("migrate: migration failed and was rolled back; the workload runs on the source")
	// ErrRollbackFailed is returned when both the migration and the rollback failed: the
	// workload is not running anywhere and its checkpoint is kept on the source for an
	// operator. This is the one case that needs a person.
	ErrRollbackFailed = errors.New("migrate: rollback failed; checkpoint kept on the source")
	// ErrInDoubt is returned when the target was asked to restore but its answer was lost
	// and it could not be reached to remove its copy: the workload may be running there.
	// The source keeps its copy stopped and its checkpoint, so there is never a second
	// running copy; asking the target again (same migration ID) settles it.
	ErrInDoubt = errors.New("migrate: outcome in doubt: the target may run the workload; the source copy stays stopped")
)

var (
	// ErrUnsafeStream is returned (wrapped, with the entry and the reason) when an incoming
	// checkpoint or image stream holds something a node must not write: an absolute name, a
	// `..` component, a name outside checkpoint/ and volumes/, a link that leaves its
	// directory, a device or hard link, or more bytes or entries than the limits allow.
	// Nothing outside the migration's staging directory was written.
	ErrUnsafeStream = errors.New("migrate: unsafe stream refused")
	// ErrUnauthorized is returned (wrapped, with the reason) when a peer's certificate does
	// not allow the request: wrong role, not the migration's source, another node's name.
	// The node changed nothing.
	ErrUnauthorized = errors.New("migrate: not authorized")
	// ErrRefused is returned (wrapped, with the field or rule) when a request is well formed
	// and authorized but this node will not do it: a container config its node policy does
	// not allow, an image the migration does not need, a workload another migration holds,
	// an unmanaged container. Nothing was frozen or changed.
	ErrRefused = errors.New("migrate: refused")
	// ErrShuttingDown (which is also ErrRefused) is returned (wrapped) by a node that is shutting
	// down when it is asked to start a migration, as its source (an order) or its target (a
	// pre-flight). Nothing was frozen or changed; another node, or this one once it is back,
	// may be asked.
	ErrShuttingDown = fmt.Errorf("%w: this node is shutting down", ErrRefused)
)
