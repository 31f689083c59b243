//go:build tools

// Package deps pins modules that no package uses yet, at versions known to build together:
// the control plane (scheduler/: raft, its bbolt log store) and the agent's metrics. raft-boltdb
// v2.3.1 does not build with go-metrics v0.7.0, which memberlist v0.7.0 and raft v1.8.0 pull
// in, so memberlist stays at v0.6.0 and raft at v1.7.3. Remove an import once real code uses it.
package deps

import (
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
)
