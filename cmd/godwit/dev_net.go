package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/internal/dockerd"
	"github.com/godwit-io/godwit/migrate"
)

// The local cluster's networks. Every node's engine has its default bridge network on a
// Linux bridge of its own (PREFIXi) and takes the subnets of its user-defined networks from
// a pool of its own, all inside one /16 (--subnet-base). The /16 is cut into `blocks` equal
// blocks of /24s, a power of two above the node count: node i has block i (its bridge on the
// first /24, its pool the second half), block 0 is the shared network's (--shared-bridge).
//
// With --shared-bridge every engine also has a network devSharedNetwork on one Linux bridge
// (PREFIXs), labelled as a layer-2 domain (migrate.LabelLayer2): the same subnet (block 0)
// on every engine, each engine handing out addresses from its own range of it, so that a
// container keeps its address when it moves.

// devSharedNetwork is the name of the shared layer-2 network on every engine.
const devSharedNetwork = "godwit-l2"

// devLayer2Domain is the shared network's layer-2 domain label.
const devLayer2Domain = "dev"

// devNet is the local cluster's network layout.
type devNet struct {
	Prefix string  `json:"prefix"` // bridge names: PREFIXi per node, PREFIXs shared
	Base   [2]byte `json:"base"`   // the /16: Base[0].Base[1].0.0
	Blocks int     `json:"blocks"`
	Shared bool    `json:"shared"`
}

// newDevNet lays out the networks of nodes nodes inside subnet (a /16 in 10.0.0.0/8).
func newDevNet(prefix, subnet string, nodes int, shared bool) (devNet, error) {
	ip, ipn, err := net.ParseCIDR(subnet)
	if err != nil || ip.To4() == nil {
		return devNet{}, fmt.Errorf("--subnet-base %q: want an IPv4 /16 such as 10.200.0.0/16", subnet)
	}
	if ones, _ := ipn.Mask.Size(); ones != 16 || ipn.IP.To4()[0] != 10 || !ip.Equal(ipn.IP) {
		return devNet{}, fmt.Errorf("--subnet-base %q: want a /16 inside 10.0.0.0/8 with its host bits zero, such as 10.200.0.0/16", subnet)
	}
	if prefix == "" || len(prefix)+len(strconv.Itoa(nodes)) > 15 || !isIfaceName(prefix) {
		return devNet{}, fmt.Errorf("--bridge-prefix %q: bridge names are PREFIX plus the node number, at most 15 letters, digits, '-' or '_'", prefix)
	}
	blocks := 1
	for blocks < nodes+1 {
		blocks *= 2
	}
	d := devNet{Prefix: prefix, Base: [2]byte{ipn.IP.To4()[0], ipn.IP.To4()[1]}, Blocks: blocks, Shared: shared}
	if d.blockSize() < 2 {
		return devNet{}, fmt.Errorf("--nodes %d: each node's bridge and address pool need two /24s of --subnet-base's /16: at most 127 nodes", nodes)
	}
	if shared && d.blockSize() < 4 {
		return devNet{}, fmt.Errorf("--nodes %d with --shared-bridge: at most 63 nodes (each node takes a range of the shared subnet)", nodes)
	}
	return d, nil
}

func isIfaceName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// blockSize is the number of /24s of each block.
func (d devNet) blockSize() int { return 256 / d.Blocks }

func (d devNet) third(block, offset int) byte { return byte(block*d.blockSize() + offset) }

// bridge is node i's own bridge.
func (d devNet) bridge(i int) string { return fmt.Sprintf("%s%d", d.Prefix, i) }

// sharedBridge is the shared network's bridge.
func (d devNet) sharedBridge() string { return d.Prefix + "s" }

// engine is node i's engine networking: its bridge, its pool, ports published on addr.
func (d devNet) engine(i int, addr string) dockerd.Config {
	half := d.blockSize() / 2
	bits := 0
	for 1<<bits < half {
		bits++
	}
	return dockerd.Config{
		Bridge:        d.bridge(i),
		BridgeAddress: fmt.Sprintf("%d.%d.%d.1/24", d.Base[0], d.Base[1], d.third(i, 0)),
		PublishIP:     addr,
		AddressPools:  []string{fmt.Sprintf("base=%d.%d.%d.0/%d,size=24", d.Base[0], d.Base[1], d.third(i, half), 24-bits)},
	}
}

// bridges are every bridge of the layout, the shared one first.
func (d devNet) bridges(nodes int) []string {
	var b []string
	if d.Shared {
		b = append(b, d.sharedBridge())
	}
	for i := 1; i <= nodes; i++ {
		b = append(b, d.bridge(i))
	}
	return b
}

// sharedSubnet is block 0 as one subnet, and node i's range of it.
func (d devNet) sharedSubnet(i int) (subnet, gateway, ipRange string) {
	bits := 0
	for 1<<bits < d.blockSize() {
		bits++
	}
	ones := 24 - bits
	// Block 0 has 256*blockSize addresses; node i takes the i-th of Blocks equal ranges.
	size := 256 * d.blockSize() / d.Blocks
	rbits := 0
	for 1<<rbits < size {
		rbits++
	}
	start := i * size
	subnet = fmt.Sprintf("%d.%d.0.0/%d", d.Base[0], d.Base[1], ones)
	gateway = fmt.Sprintf("%d.%d.0.1", d.Base[0], d.Base[1])
	ipRange = fmt.Sprintf("%d.%d.%d.%d/%d", d.Base[0], d.Base[1], start/256, start%256, 32-rbits)
	return subnet, gateway, ipRange
}

// createShared makes the shared layer-2 network on node i's engine, its published ports on
// the node's address.
func (d devNet) createShared(ctx context.Context, host string, i int, addr string) error {
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	subnet, gw, r := d.sharedSubnet(i)
	_, err = cli.NetworkCreate(ctx, devSharedNetwork, network.CreateOptions{
		Driver: "bridge",
		Labels: map[string]string{migrate.LabelLayer2: devLayer2Domain},
		Options: map[string]string{
			"com.docker.network.bridge.name":              d.sharedBridge(),
			"com.docker.network.bridge.host_binding_ipv4": addr,
		},
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gw, IPRange: r}}},
	})
	if err != nil {
		return fmt.Errorf("creating network %s (bridge %s, %s, range %s): %w", devSharedNetwork, d.sharedBridge(), subnet, r, err)
	}
	return nil
}

// bridgesInUse lists those of names that exist already: dev up refuses them (dev down
// would delete what is not its own).
func bridgesInUse(names []string) []string {
	var in []string
	for _, n := range names {
		if _, err := net.InterfaceByName(n); err == nil {
			in = append(in, n)
		}
	}
	return in
}

// subnetInUse names an interface with an address inside the layout's /16 ("" none): its
// routes would clash with the nodes' networks.
func (d devNet) subnetInUse() string {
	_, n, _ := net.ParseCIDR(fmt.Sprintf("%d.%d.0.0/16", d.Base[0], d.Base[1]))
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (n.Contains(ipn.IP) || ipn.Contains(n.IP)) {
				return fmt.Sprintf("%s (%s)", ifc.Name, a)
			}
		}
	}
	return ""
}

// removeBridges deletes those of names that still exist.
func removeBridges(names []string) {
	for _, n := range names {
		dockerd.RemoveBridge(n)
	}
}
