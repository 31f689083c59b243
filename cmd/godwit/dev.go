package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godwit-io/godwit/internal/dockerd"
)

func init() {
	register("dev", "start and stop a local cluster on this machine (dev up|down|env|status)", runDev)
}

// devStatePath records the local cluster `godwit dev up` started.
const devStatePath = "/run/godwit/dev.json"

// devNode is one node of the local cluster.
type devNode struct {
	Engine       dockerd.State `json:"engine"`
	Addr         string        `json:"addr"`     // the node's own 127.0.0.x
	Endpoint     string        `json:"endpoint"` // its migration endpoint
	EndpointPID  int           `json:"endpointPID"`
	EndpointLogs string        `json:"endpointLogs"`
}

type devCluster struct {
	Nodes []devNode `json:"nodes"`
}

func runDev(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: godwit dev up [--nodes N] | down | env NODE | status")
	}
	switch args[0] {
	case "up":
		return devUp(args[1:], stdout, stderr)
	case "down":
		return devDown(stdout)
	case "env":
		if len(args) != 2 {
			return usagef("usage: godwit dev env NODE")
		}
		return devEnv(args[1], stdout)
	case "status":
		c, err := readDevState()
		if err != nil {
			return err
		}
		for _, n := range c.Nodes {
			fmt.Fprintf(stdout, "%-8s %-12s endpoint %-18s docker %s\n", n.Engine.Name, n.Addr, n.Endpoint, n.Engine.Host)
		}
		return nil
	}
	return usagef("unknown dev command %q (up, down, env, status)", args[0])
}

func devUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev up", stderr)
	nodes := fs.Int("nodes", 3, "number of nodes")
	dir := fs.String("dir", "/var/lib/godwit-dev", "where the nodes' engines keep their data")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 200 {
		return usagef("--nodes must be between 1 and 200, got %d", *nodes)
	}
	if os.Geteuid() != 0 {
		return errors.New("dev up starts dockerd instances: run it as root")
	}
	if _, err := os.Stat(devStatePath); err == nil {
		return fmt.Errorf("a local cluster is already up (%s): godwit dev down first", devStatePath)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var c devCluster
	for i := 1; i <= *nodes; i++ {
		name := fmt.Sprintf("node%d", i)
		addr := fmt.Sprintf("127.0.0.%d", i+1)
		ndir := filepath.Join(*dir, name)
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			return err
		}
		e, err := dockerd.Start(ctx, dockerd.Config{Name: name, Dir: ndir})
		if err != nil {
			devStop(c, stdout)
			return err
		}
		n := devNode{Engine: e.State(), Addr: addr, EndpointLogs: filepath.Join(ndir, "endpoint.log")}
		c.Nodes = append(c.Nodes, n)
		ep, pid, err := startDetachedEndpoint(self, n, filepath.Join(ndir, "godwit"))
		if err != nil {
			devStop(c, stdout)
			return fmt.Errorf("%s: %w", name, err)
		}
		c.Nodes[len(c.Nodes)-1].Endpoint, c.Nodes[len(c.Nodes)-1].EndpointPID = ep, pid
		fmt.Fprintf(stdout, "%s up: docker %s, endpoint %s\n", name, e.Host, ep)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(devStatePath, b, 0o600); err != nil {
		devStop(c, stdout)
		return err
	}
	fmt.Fprintf(stdout, "local cluster of %d nodes is up; `godwit dev env node1` prints its environment, `godwit dev down` stops it\n", *nodes)
	return nil
}

// startDetachedEndpoint starts `godwit endpoint` for n in its own session, so it outlives
// this command, and returns its address and PID.
func startDetachedEndpoint(self string, n devNode, state string) (string, int, error) {
	logf, err := os.OpenFile(n.EndpointLogs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", 0, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "endpoint", "--listen", n.Addr+":7950", "--docker-host", n.Engine.Host,
		"--data-root", n.Engine.DataRoot, "--runc-root", n.Engine.RuncRoot(), "--state-dir", state)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", 0, fmt.Errorf("endpoint did not start (see %s)", n.EndpointLogs)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), pid, nil
}

func devDown(stdout io.Writer) error {
	c, err := readDevState()
	if err != nil {
		return err
	}
	devStop(c, stdout)
	return os.Remove(devStatePath)
}

func devStop(c devCluster, stdout io.Writer) {
	for _, n := range c.Nodes {
		if n.EndpointPID > 0 {
			_ = syscall.Kill(n.EndpointPID, syscall.SIGTERM)
			for i := 0; i < 50 && syscall.Kill(n.EndpointPID, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		_ = dockerd.StopState(context.Background(), n.Engine)
		// A dev cluster's data is disposable: its engines' images and containers go too.
		_ = os.RemoveAll(n.Engine.Dir)
		fmt.Fprintf(stdout, "%s down\n", n.Engine.Name)
	}
}

func devEnv(name string, stdout io.Writer) error {
	c, err := readDevState()
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if n.Engine.Name == name {
			fmt.Fprintf(stdout, "export DOCKER_HOST=%s GODWIT_ADDR=%s\n", n.Engine.Host, n.Endpoint)
			return nil
		}
	}
	return usagef("no node %q in the local cluster", name)
}

func readDevState() (devCluster, error) {
	var c devCluster
	b, err := os.ReadFile(devStatePath)
	if errors.Is(err, os.ErrNotExist) {
		return c, errors.New("no local cluster is up (godwit dev up starts one)")
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", devStatePath, err)
	}
	return c, nil
}
