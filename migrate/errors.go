package migrate

import "errors"

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
