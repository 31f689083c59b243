package migrate

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-connections/nat"
)

// LabelLayer2 on a Docker network says which layer-2 domain it belongs to: engines whose
// same-named networks carry the same value (and the same subnet) are attached to one
// segment, so a container moving between them keeps its address, and its established TCP
// connections survive the move. Without it a network is local to its node: the container
// gets a new address on the target, listening sockets keep listening, and established
// connections are closed (CRIU's tcp-close); clients reconnect.
const LabelLayer2 = "godwit.io/layer2"

// networkOptionHostBinding is the bridge driver's option naming the host address that
// ports published on the network bind to by default.
const networkOptionHostBinding = "com.docker.network.bridge.host_binding_ipv4"

// copiedBridgeOptions are the bridge driver options a target copies when it creates a
// missing network. Options naming host devices (bridge name) are not taken off the wire:
// the target's engine names its own bridge.
var copiedBridgeOptions = []string{
	"com.docker.network.bridge.enable_icc",
	"com.docker.network.bridge.enable_ip_masquerade",
	"com.docker.network.driver.mtu",
}

// dockerEndpoint is one network attachment of a container, with what the target needs to
// recreate it.
type dockerEndpoint struct {
	Network    string            `json:"network"`
	Driver     string            `json:"driver"`
	Options    map[string]string `json:"options,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	EnableIPv6 bool              `json:"enableIPv6,omitempty"`
	// Layer2 is the network's LabelLayer2 value; Subnet its IPv4 subnet.
	Layer2 string `json:"layer2,omitempty"`
	Subnet string `json:"subnet,omitempty"`
	// Aliases are the container's DNS names on the network besides its name.
	Aliases    []string `json:"aliases,omitempty"`
	IPAddress  string   `json:"ipAddress,omitempty"`
	MacAddress string   `json:"macAddress,omitempty"`
	// BoundTo lists the container's listening sockets bound to IPAddress itself: they
	// cannot be restored on a node where that address does not exist.
	BoundTo []string `json:"boundTo,omitempty"`
}

// keepsAddress reports whether the endpoint's address moves with the container.
func (e *dockerEndpoint) keepsAddress() bool {
	return e.Layer2 != "" && e.Subnet != "" && e.IPAddress != ""
}

// dockerPort is one published port.
type dockerPort struct {
	Port     string `json:"port"` // "8080/tcp"
	HostIP   string `json:"hostIP,omitempty"`
	HostPort string `json:"hostPort,omitempty"`
}

// networked reports whether the container has network attachments that move with it (not
// none, not host).
func (w *dockerWorkload) networked() bool {
	return w.NetworkMode != "none" && w.NetworkMode != "host"
}

// keepsAddresses reports whether every attachment keeps its address, so established TCP
// connections can be restored (CRIU's tcp-established) instead of closed.
func (w *dockerWorkload) keepsAddresses() bool {
	if !w.networked() || len(w.Networks) == 0 {
		return false
	}
	for i := range w.Networks {
		if !w.Networks[i].keepsAddress() {
			return false
		}
	}
	return true
}

// ClosesConnections reports whether moving the workload of spec closes its established TCP
// connections (its address cannot move), and how many it had when inspected.
func ClosesConnections(spec *Spec) (closes bool, established int) {
	w, err := decodeDockerWorkload(spec.Config)
	if err != nil || !w.networked() {
		return false, 0
	}
	return !w.keepsAddresses(), w.Established
}

// inspectNetworks fills w's endpoints and ports from the container and its networks.
func (d *DockerRuntime) inspectNetworks(ctx context.Context, info container.InspectResponse, w *dockerWorkload) error {
	if !w.networked() || info.NetworkSettings == nil {
		return nil
	}
	listening, established := containerTCP(info)
	w.Established = established
	names := make([]string, 0, len(info.NetworkSettings.Networks))
	for name := range info.NetworkSettings.Networks {
		names = append(names, name)
	}
	// The primary network (NetworkMode) first: the target creates the container on it and
	// connects the others afterwards.
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == w.NetworkMode:
			return -1
		case b == w.NetworkMode:
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		es := info.NetworkSettings.Networks[name]
		if es == nil {
			continue
		}
		n, err := d.cfg.Client.NetworkInspect(ctx, es.NetworkID, network.InspectOptions{})
		if err != nil {
			return fmt.Errorf("migrate: inspect network %s: %w", name, err)
		}
		ep := dockerEndpoint{
			Network: n.Name, Driver: n.Driver, Options: n.Options, Internal: n.Internal, EnableIPv6: n.EnableIPv6,
			Layer2: n.Labels[LabelLayer2], IPAddress: es.IPAddress, MacAddress: es.MacAddress,
		}
		for _, c := range n.IPAM.Config {
			if ip, _, err := net.ParseCIDR(c.Subnet); err == nil && ip.To4() != nil {
				ep.Subnet = c.Subnet
				break
			}
		}
		short := info.ID
		if len(short) > 12 {
			short = short[:12]
		}
		for _, a := range es.Aliases {
			// Docker adds the short ID itself on every attachment.
			if a != short && a != strings.TrimPrefix(info.Name, "/") {
				ep.Aliases = append(ep.Aliases, a)
			}
		}
		for _, l := range listening {
			if host, _, _ := net.SplitHostPort(l); host == es.IPAddress {
				ep.BoundTo = append(ep.BoundTo, l)
			}
		}
		w.Networks = append(w.Networks, ep)
	}
	for port, bindings := range info.HostConfig.PortBindings {
		for _, b := range bindings {
			w.Ports = append(w.Ports, dockerPort{Port: string(port), HostIP: b.HostIP, HostPort: b.HostPort})
		}
	}
	slices.SortFunc(w.Ports, func(a, b dockerPort) int { return strings.Compare(a.Port+a.HostPort, b.Port+b.HostPort) })
	return nil
}

// containerTCP lists the container's listening TCP sockets (host:port) and counts its
// established connections, from its network namespace's /proc tables. Docker's embedded
// DNS server (127.0.0.11) lives in the namespace too and is not counted.
func containerTCP(info container.InspectResponse) (listening []string, established int) {
	if info.State == nil || info.State.Pid == 0 {
		return nil, 0
	}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", info.State.Pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 {
				continue
			}
			local, ok := parseProcAddr(fields[1])
			if !ok || strings.HasPrefix(local, "127.0.0.11:") {
				continue
			}
			switch fields[3] {
			case "0A": // LISTEN
				listening = append(listening, local)
			case "01": // ESTABLISHED
				established++
			}
		}
		f.Close()
	}
	return listening, established
}

// parseProcAddr decodes /proc/net/tcp's "0100007F:1F90" (little-endian words) into
// "127.0.0.1:8080"; IPv4-mapped IPv6 addresses come out as IPv4.
func parseProcAddr(s string) (string, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", false
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", false
	}
	ip := net.IP(raw)
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), true
}

var (
	networkName  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	networkAlias = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,252}$`)
	macAddress   = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
	optionKey    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
)

// checkNetworking validates the travelling network settings, naming the field.
func (w *dockerWorkload) checkNetworking() error {
	refuse := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrRefused, field, fmt.Sprintf(format, args...))
	}
	if !w.networked() {
		if len(w.Networks) > 0 || len(w.Ports) > 0 {
			return refuse("networks", "network mode %q has no network attachments to move", w.NetworkMode)
		}
		return nil
	}
	if strings.HasPrefix(w.NetworkMode, "container:") {
		return refuse("networkMode", "%q shares another container's network namespace, which stays behind", w.NetworkMode)
	}
	if !networkName.MatchString(w.NetworkMode) {
		return refuse("networkMode", "%q is not a network name", w.NetworkMode)
	}
	if len(w.Networks) == 0 || w.Networks[0].Network != w.NetworkMode {
		return refuse("networks", "the container's network %q is not described", w.NetworkMode)
	}
	seen := map[string]bool{}
	for i, ep := range w.Networks {
		field := fmt.Sprintf("networks[%d]", i)
		if !networkName.MatchString(ep.Network) || seen[ep.Network] {
			return refuse(field+".network", "%q is not a network name, or appears twice", ep.Network)
		}
		seen[ep.Network] = true
		if !networkName.MatchString(ep.Driver) {
			return refuse(field+".driver", "%q is not a driver name", ep.Driver)
		}
		for k := range ep.Options {
			if !optionKey.MatchString(k) {
				return refuse(field+".options", "%q is not an option name", k)
			}
		}
		for _, a := range ep.Aliases {
			if !networkAlias.MatchString(a) {
				return refuse(field+".aliases", "%q is not a DNS alias", a)
			}
		}
		if ep.Subnet != "" {
			if _, _, err := net.ParseCIDR(ep.Subnet); err != nil {
				return refuse(field+".subnet", "%q is not a subnet", ep.Subnet)
			}
		}
		if ep.IPAddress != "" && net.ParseIP(ep.IPAddress) == nil {
			return refuse(field+".ipAddress", "%q is not an IP address", ep.IPAddress)
		}
		if ep.MacAddress != "" && !macAddress.MatchString(ep.MacAddress) {
			return refuse(field+".macAddress", "%q is not a MAC address", ep.MacAddress)
		}
		if ep.Layer2 != "" && !optionKey.MatchString(ep.Layer2) {
			return refuse(field+".layer2", "%q is not a layer-2 domain name", ep.Layer2)
		}
	}
	for i, p := range w.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		proto, port := nat.SplitProtoPort(p.Port)
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 || (proto != "tcp" && proto != "udp") {
			return refuse(field+".port", "%q is not a port/protocol (tcp or udp)", p.Port)
		}
		if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
			return refuse(field+".hostIP", "%q is not an IP address", p.HostIP)
		}
		if p.HostPort != "" {
			if n, err := strconv.Atoi(p.HostPort); err != nil || n <= 0 || n > 65535 {
				return refuse(field+".hostPort", "%q is not a port (ranges do not move)", p.HostPort)
			}
		}
	}
	return nil
}

// networkPlan is the target's view of one attachment: what happens to it if the container
// moves here.
type networkPlan struct {
	ep       dockerEndpoint
	existing *network.Inspect // nil: the target creates the network
	// hostBinding is the address ports published on this network bind to by default.
	hostBinding string
}

// planNetworks checks, on the target, that every attachment and published port can be
// recreated here, and says how. Nothing changes.
func (d *DockerRuntime) planNetworks(ctx context.Context, w *dockerWorkload) ([]networkPlan, error) {
	if !w.networked() {
		return nil, nil
	}
	if !d.fastRestore(ctx) {
		return nil, fmt.Errorf("%w: this engine lacks the %s runtime, which networked containers restore through (it passes CRIU the TCP options)", ErrPreflight, FastRestoreRuntime)
	}
	info, err := d.cfg.Client.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: target engine: %v", ErrPreflight, err)
	}
	var plans []networkPlan
	for _, ep := range w.Networks {
		field := fmt.Sprintf("network %s", ep.Network)
		if err := checkDriver(info.Plugins.Network, &ep); err != nil {
			return nil, err
		}
		p := networkPlan{ep: ep}
		n, err := d.cfg.Client.NetworkInspect(ctx, ep.Network, network.InspectOptions{})
		switch {
		case err == nil:
			p.existing = &n
		case !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("%w: %s: %v", ErrPreflight, field, err)
		}
		if err := checkAttachment(&p, d.cfg.PublishAddress); err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	if err := d.checkPorts(w, plans); err != nil {
		return nil, err
	}
	return plans, nil
}

// checkAttachment decides, for one attachment, whether the target can take it: the network
// exists with the same driver (and, for a layer-2 network, the same domain and subnet), or
// it is a node-local bridge network the target can create.
func checkAttachment(p *networkPlan, publish string) error {
	ep := p.ep
	field := fmt.Sprintf("network %s", ep.Network)
	keeps := ep.keepsAddress()
	if n := p.existing; n != nil {
		if n.Driver != ep.Driver {
			return fmt.Errorf("%w: %s: uses driver %q here, %q on the source", ErrPreflight, field, n.Driver, ep.Driver)
		}
		if keeps {
			if n.Labels[LabelLayer2] != ep.Layer2 {
				return fmt.Errorf("%w: %s: is in layer-2 domain %q on the source, %q here; the container's address cannot move", ErrPreflight, field, ep.Layer2, n.Labels[LabelLayer2])
			}
			if sub := ipv4Subnet(n); sub != ep.Subnet {
				return fmt.Errorf("%w: %s: subnet %s on the source clashes with %s here", ErrPreflight, field, ep.Subnet, sub)
			}
		}
		p.hostBinding = n.Options[networkOptionHostBinding]
	} else {
		switch {
		case ep.Network == "bridge":
			return fmt.Errorf("%w: %s: this node's engine has no default bridge", ErrPreflight, field)
		case keeps:
			return fmt.Errorf("%w: %s: is a layer-2 network (%s=%s, subnet %s) this node is not attached to; create it here with the same subnet and its own --ip-range", ErrPreflight, field, LabelLayer2, ep.Layer2, ep.Subnet)
		case ep.Driver != "bridge":
			return fmt.Errorf("%w: %s: only bridge networks are created on the target; create this %s network here first", ErrPreflight, field, ep.Driver)
		}
		p.hostBinding = publish
	}
	if !keeps && len(ep.BoundTo) > 0 {
		return fmt.Errorf("%w: %s: a process listens on %s, the container's address there, which cannot move to this node (not in the same layer-2 domain); listen on all addresses instead", ErrNotCheckpointable, field, strings.Join(ep.BoundTo, ", "))
	}
	return nil
}

// checkDriver refuses an attachment whose network driver this node's engine lacks.
func checkDriver(available []string, ep *dockerEndpoint) error {
	if !slices.Contains(available, ep.Driver) {
		return fmt.Errorf("%w: network %s: driver %q is not available on this node (it has %s)", ErrPreflight, ep.Network, ep.Driver, strings.Join(available, ", "))
	}
	return nil
}

func ipv4Subnet(n *network.Inspect) string {
	for _, c := range n.IPAM.Config {
		if ip, _, err := net.ParseCIDR(c.Subnet); err == nil && ip.To4() != nil {
			return c.Subnet
		}
	}
	return ""
}

// hostIP is the address a published port binds to on this node: an explicit address
// becomes this node's publish address (the source's own address means nothing here), an
// empty one is the network's default.
func (d *DockerRuntime) hostIP(p dockerPort) string {
	if ip := net.ParseIP(p.HostIP); ip != nil && !ip.IsUnspecified() && d.cfg.PublishAddress != "" {
		return d.cfg.PublishAddress
	}
	return p.HostIP
}

// checkPorts refuses ports already taken on this node, by trying to bind each one.
func (d *DockerRuntime) checkPorts(w *dockerWorkload, plans []networkPlan) error {
	if len(plans) == 0 {
		return nil
	}
	for i, p := range w.Ports {
		if p.HostPort == "" {
			continue // Docker picks a free port
		}
		ip := d.hostIP(p)
		if ip == "" {
			ip = plans[0].hostBinding
		}
		if ip == "" {
			ip = "0.0.0.0"
		}
		addr := net.JoinHostPort(ip, p.HostPort)
		proto, _ := nat.SplitProtoPort(p.Port)
		var err error
		if proto == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("%w: ports[%d]: %s published on %s/%s: the port is taken on this node (%v)", ErrPreflight, i, p.Port, addr, proto, err)
		}
	}
	return nil
}

// ensureNetworks creates the missing node-local networks of plans (Prepare, before the
// container): same name, driver, labels and the allowlisted options, the subnet chosen by
// this engine, and ports published on this node's address.
func (d *DockerRuntime) ensureNetworks(ctx context.Context, plans []networkPlan) error {
	for _, p := range plans {
		if p.existing != nil {
			continue
		}
		opts := map[string]string{}
		for _, k := range copiedBridgeOptions {
			if v, ok := p.ep.Options[k]; ok {
				opts[k] = v
			}
		}
		if d.cfg.PublishAddress != "" {
			opts[networkOptionHostBinding] = d.cfg.PublishAddress
		}
		ipv6 := p.ep.EnableIPv6
		_, err := d.cfg.Client.NetworkCreate(ctx, p.ep.Network, network.CreateOptions{
			Driver: p.ep.Driver, Options: opts, Internal: p.ep.Internal, EnableIPv6: &ipv6,
			Labels: map[string]string{LabelManaged: "true"},
		})
		if err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("migrate: creating network %s on the target: %w", p.ep.Network, err)
		}
	}
	return nil
}

// buildNetworking adds the attachments and published ports to the create configs. The
// first attachment is made at create; connectRest makes the others.
func (d *DockerRuntime) buildNetworking(w *dockerWorkload, c *container.Config, hc *container.HostConfig) *network.NetworkingConfig {
	if !w.networked() || len(w.Networks) == 0 {
		return nil
	}
	for _, p := range w.Ports {
		port := nat.Port(p.Port)
		if c.ExposedPorts == nil {
			c.ExposedPorts = nat.PortSet{}
		}
		c.ExposedPorts[port] = struct{}{}
		if hc.PortBindings == nil {
			hc.PortBindings = nat.PortMap{}
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: d.hostIP(p), HostPort: p.HostPort})
	}
	ep := w.Networks[0]
	if w.keepsAddresses() && ep.MacAddress != "" {
		// The same MAC too: peers' neighbour caches stay right, so packets flow at once.
		c.MacAddress = ep.MacAddress //nolint:staticcheck // the engines speak API 1.41
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		ep.Network: endpointSettings(&ep, w.keepsAddresses()),
	}}
}

func endpointSettings(ep *dockerEndpoint, keep bool) *network.EndpointSettings {
	s := &network.EndpointSettings{Aliases: ep.Aliases}
	if keep {
		s.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ep.IPAddress}
	}
	if ep.Network == "bridge" {
		s.Aliases = nil // Docker refuses aliases on the default bridge
	}
	return s
}

// connectRest attaches the container to its further networks after create (API 1.41 takes
// one network at create).
func (d *DockerRuntime) connectRest(ctx context.Context, id string, w *dockerWorkload) error {
	if !w.networked() {
		return nil
	}
	keep := w.keepsAddresses()
	for i := 1; i < len(w.Networks); i++ {
		ep := w.Networks[i]
		if err := d.cfg.Client.NetworkConnect(ctx, ep.Network, id, endpointSettings(&ep, keep)); err != nil {
			return fmt.Errorf("migrate: connecting the container to network %s: %w", ep.Network, err)
		}
	}
	return nil
}

// criuConfName is the CRIU configuration file godwit-runc hands to CRIU for a restore; it
// sits beside the staged-checkpoint marker, written by this node.
const criuConfName = "godwit-criu.conf"

// tcpMode is the CRIU option for established TCP connections: restored where the
// container's addresses move with it, closed otherwise.
func tcpMode(keep bool) string {
	if keep {
		return "tcp-established"
	}
	return "tcp-close"
}

// writeCRIUConf writes a CRIU configuration file holding the TCP option.
func writeCRIUConf(path string, keep bool) error {
	return os.WriteFile(path, []byte(tcpMode(keep)+"\n"), 0o600)
}

// checkpointNetworking prepares a networked container for runc checkpoint: it returns the
// runc arguments and environment that pass CRIU its TCP option, and, where the address
// moves, takes the
// container's interfaces down first so that no packet reaches the old copy after the dump
// (its sockets would answer with resets; the peers retransmit to the new copy instead).
// undo brings them back when the checkpoint fails.
func (d *DockerRuntime) checkpointNetworking(ctx context.Context, info container.InspectResponse, work string) (args, env []string, undo func(), err error) {
	undo = func() {}
	if info.HostConfig == nil || info.HostConfig.NetworkMode.IsNone() || info.HostConfig.NetworkMode.IsHost() {
		return nil, nil, undo, nil
	}
	w, _ := workloadFromInspect(info)
	if err := d.inspectNetworks(ctx, info, &w); err != nil {
		return nil, nil, undo, err
	}
	if !w.keepsAddresses() {
		// runc has no flag for it; CRIU reads it from its configuration file.
		conf := filepath.Join(work, "criu.conf")
		if err := writeCRIUConf(conf, false); err != nil {
			return nil, nil, undo, err
		}
		return nil, []string{"CRIU_CONFIG_FILE=" + conf}, undo, nil
	}
	args = []string{"--tcp-established"}
	if info.State == nil || info.State.Pid == 0 {
		return args, nil, undo, nil
	}
	links, err := containerLinks(info.State.Pid)
	if err != nil {
		return nil, nil, undo, err
	}
	inNetns := func(args ...string) ([]byte, error) {
		return exec.Command("nsenter", append([]string{"-t", strconv.Itoa(info.State.Pid), "-n", "ip"}, args...)...).CombinedOutput()
	}
	// Taking a link down deletes the routes through it: keep them to put back if the
	// checkpoint fails and the container runs on.
	routes, err := inNetns("-4", "route", "show")
	if err != nil {
		return nil, nil, undo, fmt.Errorf("migrate: routes of container %s: %v: %s", info.Name, err, strings.TrimSpace(string(routes)))
	}
	setLinks := func(state string) error {
		for _, l := range links {
			if out, err := inNetns("link", "set", "dev", l, state); err != nil {
				return fmt.Errorf("migrate: setting %s %s in container %s: %v: %s", l, state, info.Name, err, strings.TrimSpace(string(out)))
			}
		}
		return nil
	}
	restore := func() {
		_ = setLinks("up")
		for _, r := range strings.Split(strings.TrimSpace(string(routes)), "\n") {
			// ip prints state flags it does not take back as input.
			f := slices.DeleteFunc(strings.Fields(r), func(w string) bool { return w == "linkdown" || w == "dead" })
			if len(f) > 0 {
				_, _ = inNetns(append([]string{"route", "replace"}, f...)...)
			}
		}
	}
	if err := setLinks("down"); err != nil {
		restore()
		return nil, nil, undo, err
	}
	return args, nil, restore, nil
}

// containerLinks lists the network interfaces in pid's namespace besides loopback.
func containerLinks(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, fmt.Errorf("migrate: interfaces of pid %d: %w", pid, err)
	}
	var links []string
	for _, line := range strings.Split(string(b), "\n") {
		name, _, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		links = append(links, name)
	}
	return links, nil
}

// keepsAddresses reports whether a prepared container keeps its source addresses: Prepare
// gives it fixed addresses (IPAMConfig) exactly then.
func keepsAddresses(info container.InspectResponse) bool {
	if info.NetworkSettings == nil || len(info.NetworkSettings.Networks) == 0 {
		return false
	}
	for _, es := range info.NetworkSettings.Networks {
		if es == nil || es.IPAMConfig == nil || es.IPAMConfig.IPv4Address == "" {
			return false
		}
	}
	return true
}

// placeTCPMode writes, beside the checkpoint marker of a networked container, the CRIU
// option for its established TCP connections (godwit-runc passes it on).
func (d *DockerRuntime) placeTCPMode(info container.InspectResponse, name string, keep bool) error {
	if info.HostConfig == nil || info.HostConfig.NetworkMode.IsNone() || info.HostConfig.NetworkMode.IsHost() {
		return nil
	}
	return writeCRIUConf(filepath.Join(d.cfg.DataRoot, "containers", info.ID, "checkpoints", name, criuConfName), keep)
}
