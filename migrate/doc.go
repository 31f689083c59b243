// Package migrate executes one live migration of a running workload from a source node to a
// target node: pre-flight checks on both sides, moving the image if the target lacks it,
// checkpoint (CRIU), streaming the checkpoint to the target's godwit endpoint with a sha256
// over the stream, restore on the target, verification, and cleanup of the source copy, or
// rollback to the source on any failure after the freeze.
//
// Guarantees:
//   - Before the freeze nothing on the source changes: a failed pre-flight leaves the
//     workload untouched.
//   - After the freeze, any failure restores the workload on the source from its local
//     checkpoint, and removes whatever was created on the target.
//   - The source copy is removed only after the target reports the restored workload running
//     and answering.
//   - Every step is keyed by the migration ID and can be repeated harmlessly.
//
// Runtimes: Docker (through the Docker API, with CRIU via runc) and plain process trees
// (CRIU directly via go-criu) implement the same Runtime interface.
//
// This package does not decide what to migrate (policy/ does) nor record migrations in the
// cluster ledger (scheduler/ does); it reports phases and timings to its caller.
package migrate
