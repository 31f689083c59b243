package dockerd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Engines publish ports through Docker's userland proxy and never with iptables: Docker 20.10
// names its chains (DOCKER, DOCKER-ISOLATION-STAGE-*) the same for every daemon on a host,
// so two engines with iptables on would rewrite each other's rules (and a system dockerd's).
// The proxy listens on the node's address and forwards to the container over its bridge,
// which is all a node's clients need; embedded DNS on user-defined networks works without it.

// bridgeName is dockerd's --bridge value.
func (cfg Config) bridgeName() string {
	if cfg.Bridge == "" {
		return "none"
	}
	return cfg.Bridge
}

// networkArgs are the dockerd arguments of the engine's networking settings.
func (cfg Config) networkArgs() []string {
	var args []string
	if cfg.Bridge != "" && cfg.FixedCIDR != "" {
		args = append(args, "--fixed-cidr", cfg.FixedCIDR)
	}
	if cfg.PublishIP != "" {
		args = append(args, "--ip", cfg.PublishIP)
	}
	for _, p := range cfg.AddressPools {
		args = append(args, "--default-address-pool", p)
	}
	return args
}

// checkNetwork validates the networking fields.
func (cfg Config) checkNetwork() error {
	if cfg.Bridge != "" {
		if len(cfg.Bridge) > 15 || strings.ContainsAny(cfg.Bridge, "/ \t\n") {
			return fmt.Errorf("dockerd: Config.Bridge %q is not an interface name (at most 15 characters)", cfg.Bridge)
		}
		if cfg.Bridge == "docker0" {
			return fmt.Errorf("dockerd: Config.Bridge docker0 is the system engine's bridge; give each engine its own")
		}
		if _, _, err := net.ParseCIDR(cfg.BridgeAddress); err != nil {
			return fmt.Errorf("dockerd: Config.BridgeAddress %q: want the gateway address with its prefix, e.g. 10.103.1.1/24", cfg.BridgeAddress)
		}
	}
	if cfg.FixedCIDR != "" {
		if _, _, err := net.ParseCIDR(cfg.FixedCIDR); err != nil {
			return fmt.Errorf("dockerd: Config.FixedCIDR %q is not a CIDR", cfg.FixedCIDR)
		}
	}
	if cfg.PublishIP != "" && net.ParseIP(cfg.PublishIP) == nil {
		return fmt.Errorf("dockerd: Config.PublishIP %q is not an IP address", cfg.PublishIP)
	}
	return nil
}

// ensureBridge creates the Linux bridge name with address cidr and brings it up, unless an
// interface of that name exists already (engines attached to one shared bridge find it
// there). created reports whether this call made it, so that only its maker deletes it.
func ensureBridge(name, cidr string) (created bool, err error) {
	if _, err := net.InterfaceByName(name); err == nil {
		if !hasAddress(name, cidr) {
			if out, err := exec.Command("ip", "addr", "add", cidr, "dev", name).CombinedOutput(); err != nil {
				return false, fmt.Errorf("dockerd: bridge %s: adding %s: %v: %s", name, cidr, err, strings.TrimSpace(string(out)))
			}
		}
		return false, nil
	}
	steps := [][]string{
		{"link", "add", name, "type", "bridge"},
		{"addr", "add", cidr, "dev", name},
		{"link", "set", name, "up"},
	}
	for i, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			if i > 0 {
				deleteBridge(name)
			}
			return false, fmt.Errorf("dockerd: bridge %s: ip %s: %v: %s", name, strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return true, nil
}

func hasAddress(name, cidr string) bool {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return false
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.String() == cidr {
			return true
		}
	}
	return false
}

// deleteBridge removes a bridge this package created.
func deleteBridge(name string) {
	if name == "" {
		return
	}
	_ = exec.Command("ip", "link", "del", name).Run()
}

// RemoveBridge deletes the Linux bridge name if there is one (an interface of another kind
// is left alone). `godwit dev down` removes the bridges `dev up` recorded with it.
func RemoveBridge(name string) {
	if name == "" {
		return
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge")); err != nil {
		return
	}
	deleteBridge(name)
}

// removeNetworks deletes the engine's user-defined networks, so Docker removes the bridges
// it made for them (it keeps them across restarts otherwise).
func removeNetworks(ctx context.Context, cli *client.Client) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return
	}
	for _, n := range list {
		switch n.Name {
		case "bridge", "host", "none":
			continue
		}
		_ = cli.NetworkRemove(ctx, n.ID)
	}
}
