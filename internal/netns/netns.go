// Package netns runs code inside another process's network namespace, so godwit can reach a
// --network none container through its own loopback (there is no bridge to go through).
package netns

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread switched into pid's network namespace. The thread is
// switched back afterwards, or, if that fails, never reused.
func Do(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return // thread stays locked and is discarded
		}
		defer unix.Close(orig)
		target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- ferr
			return // leave the thread locked: the runtime discards it
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialTCP connects to 127.0.0.1:port inside pid's network namespace. The returned connection
// stays in that namespace.
func DialTCP(ctx context.Context, pid, port int) (net.Conn, error) {
	var c net.Conn
	err := Do(pid, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		var err error
		c, err = d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		return err
	})
	return c, err
}
