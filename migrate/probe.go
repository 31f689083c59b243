package migrate

import (
	"context"
	"fmt"

	"github.com/godwit-io/godwit/internal/netns"
)

// ProbeTCPInNetns reports nil when something accepts a TCP connection on 127.0.0.1:port in
// the network namespace of process pid (a --network none container's own loopback).
func ProbeTCPInNetns(ctx context.Context, pid, port int) error {
	c, err := netns.DialTCP(ctx, pid, port)
	if err != nil {
		return fmt.Errorf("migrate: verify: nothing answers on port %d inside the workload (pid %d): %w", port, pid, err)
	}
	return c.Close()
}
