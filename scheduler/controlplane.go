package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ControlPlane is one server's part of the control plane: a raft Server feeding the FSM,
// and the Leader loop, which runs while (and only while) this server leads. When leadership
// is lost the loop's context ends, so a deposed leader orders nothing more; the next
// leader's loop takes over every migration in flight from the replicated ledger.
type ControlPlane struct {
	srv    *Server
	fsm    *FSM
	leader *Leader

	mu      sync.Mutex
	running context.CancelFunc // the current term's loop
	stop    chan struct{}      // closed by Shutdown
	done    chan struct{}      // closed when the watcher ends
	termWG  sync.WaitGroup
	once    sync.Once
}

// NewControlPlane starts the raft server with a new FSM and watches leadership. In lc,
// Replica and FSM are set here; Name defaults to the server's, and sc.Observer to
// lc.Observer.
func NewControlPlane(sc ServerConfig, lc LeaderConfig) (*ControlPlane, error) {
	fsm := NewFSM(FSMConfig{})
	sc.FSM = fsm
	if sc.Observer == nil {
		sc.Observer = lc.Observer
	}
	srv, err := NewServer(sc)
	if err != nil {
		return nil, err
	}
	lc.Replica, lc.FSM = srv, fsm
	if lc.Name == "" {
		lc.Name = sc.Name
	}
	cp := &ControlPlane{srv: srv, fsm: fsm, leader: NewLeader(lc), stop: make(chan struct{}), done: make(chan struct{})}
	go cp.watch()
	return cp, nil
}

// Server is the raft server (SetPeers, Leader, Stats...).
func (cp *ControlPlane) Server() *Server { return cp.srv }

// FSM is the replicated state machine (read it; only the log writes it).
func (cp *ControlPlane) FSM() *FSM { return cp.fsm }

// Leader is the leader loop (its LastPlan; Request only on the leader).
func (cp *ControlPlane) Leader() *Leader { return cp.leader }

// watch starts the leader loop when this server gains leadership and stops it when it
// loses it.
func (cp *ControlPlane) watch() {
	defer close(cp.done)
	for {
		var isLeader bool
		select {
		case <-cp.stop:
			return
		case isLeader = <-cp.srv.LeaderCh():
		}
		cp.mu.Lock()
		if cp.running != nil {
			cp.running()
			cp.running = nil
		}
		if isLeader {
			ctx, cancel := context.WithCancel(context.Background())
			cp.running = cancel
			cp.termWG.Add(1)
			go func() {
				defer cp.termWG.Done()
				// Everything committed by earlier leaders is applied here before deciding.
				if err := cp.srv.Barrier(ctx); err != nil {
					return
				}
				cp.leader.Run(ctx)
			}()
		}
		cp.mu.Unlock()
	}
}

// ErrShutdown is returned by Request after Shutdown.
var ErrShutdown = errors.New("scheduler: control plane shut down")

// Request asks for a manual migration: on the leader it is recorded and driven; elsewhere
// the error is a *NotLeaderError naming the leader.
func (cp *ControlPlane) Request(ctx context.Context, workload, target, by string) (string, error) {
	if cp.leader.stopping.Load() {
		return "", ErrShuttingDown
	}
	// Just elected, the loop starts once earlier terms' commands are applied (Barrier); a
	// request waits for it so that what it orders lives as long as the term.
	for wait := time.Now(); cp.srv.IsLeader() && !cp.leader.Leading(); {
		if time.Since(wait) > 10*time.Second || ctx.Err() != nil {
			return "", fmt.Errorf("scheduler: this server leads but its loop has not started yet; retry")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !cp.srv.IsLeader() {
		name, addr := cp.srv.Leader()
		return "", &NotLeaderError{Leader: name, Addr: addr}
	}
	return cp.leader.Request(ctx, workload, target, by)
}

// StopLeading prepares a stopping server: its leader loop starts no migration any more
// (Leader.StopStarting; requests get ErrShuttingDown). If it leads and another voter
// exists, it hands leadership over (the new leader settles the migrations this one was
// driving, from the ledger and the nodes' journals): transferred is true, with the new
// leader's name once known. Otherwise it waits, until ctx ends, for the migrations its loop
// drives to be recorded as ended; those still driven then are left to the next leader. It
// never changes the raft configuration: the server stays a member and may come back.
func (cp *ControlPlane) StopLeading(ctx context.Context) (transferred bool, newLeader string, err error) {
	cp.leader.StopStarting()
	transferred, newLeader, err = cp.srv.TransferLeadership(ctx)
	if err != nil || transferred {
		return transferred, newLeader, err
	}
	for cp.leader.Driving() > 0 {
		select {
		case <-ctx.Done():
			return false, "", nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false, "", nil
}

// Shutdown stops the leader loop (migrations go on on the nodes; the next leader settles
// them) and the raft server.
func (cp *ControlPlane) Shutdown() error {
	cp.once.Do(func() { close(cp.stop) })
	<-cp.done
	cp.mu.Lock()
	if cp.running != nil {
		cp.running()
		cp.running = nil
	}
	cp.mu.Unlock()
	err := cp.srv.Shutdown()
	cp.termWG.Wait()
	return err
}
