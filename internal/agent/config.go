package agent

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/internal/pki"
	"github.com/godwit-io/godwit/migrate"
)

// ErrInvalidConfig is what a *ConfigError is (errors.Is): LoadConfig and ParseConfig return
// one for a config file with problems.
var ErrInvalidConfig = errors.New("agent: invalid config")

// Roles a node can have.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// Config is the agent's configuration file, version 1. Everything an operator must decide
// is in it; what has a sensible default has it (DefaultConfig and its comments).
type Config struct {
	// Node is this node's name: unique in the cluster, and the name its certificate carries.
	Node string `yaml:"node"`
	// Role is server (raft member, may order migrations) or client (a node).
	Role string `yaml:"role"`
	// Site is where the node is (the policy's unit of locality).
	Site string `yaml:"site"`
	// Labels are published with the node; keys under godwit.io/ are godwit's own.
	Labels map[string]string `yaml:"labels"`
	// Drain marks the node drained from start: nothing moves onto it, and an evacuating
	// policy moves its workloads away.
	Drain bool `yaml:"drain"`

	Gossip    GossipConfig `yaml:"gossip"`
	Migration ListenConfig `yaml:"migration"`
	// API is the HTTPS API (internal/api). Bind defaults to the migration service's host
	// with port DefaultAPIPort (port 0 when migration.bind's port is 0), and Advertise to
	// migration.advertise's host with the port bound.
	API       ListenConfig    `yaml:"api"`
	Server    *ServerSection  `yaml:"server"`
	Capacity  CapacityConfig  `yaml:"capacity"`
	Docker    DockerSection   `yaml:"docker"`
	DataDir   string          `yaml:"data_dir"`
	TLS       TLSFiles        `yaml:"tls"`
	Accept    AcceptPolicy    `yaml:"accept"`
	Log       LogConfig       `yaml:"log"`
	Inventory InventoryConfig `yaml:"inventory"`
	Metrics   MetricsConfig   `yaml:"metrics"`

	// File is the config file's name, for messages (not in the file).
	File string `yaml:"-"`
	// keys are the positions of the fields given, by dotted path, for later messages.
	keys map[string][2]int
	// apiGiven: the file has an api section (else its addresses are derived).
	apiGiven bool
}

// problem is a Problem at the field at path (the file's start when it was not given).
func (c *Config) problem(path, format string, args ...any) Problem {
	pos, ok := c.keys[path]
	if !ok {
		pos = [2]int{1, 1}
	}
	return Problem{File: c.File, Line: pos[0], Column: pos[1], Message: path + ": " + fmt.Sprintf(format, args...)}
}

// ListenConfig is where a service listens and what the others are told.
type ListenConfig struct {
	// Bind is host:port to listen on; port 0 picks a free one.
	Bind string `yaml:"bind"`
	// Advertise is IP:port the other nodes dial; empty means Bind's (which then must name
	// a specific IP). A port 0 here, or with Bind's port 0, means the port bound.
	Advertise string `yaml:"advertise"`
}

// GossipConfig configures membership.
type GossipConfig struct {
	// Bind and Advertise as in ListenConfig (UDP and TCP on the same port).
	Bind      string `yaml:"bind"`
	Advertise string `yaml:"advertise"`
	// Join lists host:port gossip addresses of existing members (retried until one answers).
	Join []string `yaml:"join"`
	// KeyFile holds the gossip encryption key, base64 (`godwit keygen`). Empty: gossip is
	// not encrypted (refused unless insecure_no_encryption is set).
	KeyFile string `yaml:"key_file"`
	// InsecureNoEncryption allows unencrypted gossip (labs only).
	InsecureNoEncryption bool `yaml:"insecure_no_encryption"`
	// Profile is lan (one site or a metro edge) or wan (sites far apart).
	Profile string `yaml:"profile"`
	// EmulatedDelay (labs and demos only) adds this one-way delay to every gossip packet
	// the node sends, in user space: nodes on one machine then measure RTTs between them
	// (twice the delay between two such nodes) in their coordinates, and the policy's
	// site RTTs with them. 0, the default, adds none.
	EmulatedDelay Duration `yaml:"emulated_delay"`
}

// MetricsConfig is where else than the API the agent serves its metrics.
type MetricsConfig struct {
	// Listen, when set, is host:port of a listener of its own serving /metrics (HTTPS with
	// the same mutual TLS as the API; port 0 picks one). The API serves /metrics either way.
	Listen string `yaml:"listen"`
}

// ServerSection is present on servers only.
type ServerSection struct {
	Raft ListenConfig `yaml:"raft"`
	// BootstrapExpect is the number of servers of the initial cluster (the same on each).
	BootstrapExpect int `yaml:"bootstrap_expect"`
	// PolicyFile, when set, is put in force by the leader when it differs from the policy
	// in force. Empty: use the cluster's (`godwit policy apply`).
	PolicyFile string `yaml:"policy_file"`
}

// CapacityConfig is what the node offers to godwit's containers.
type CapacityConfig struct {
	CPU    float64  `yaml:"cpu"`
	Memory ByteSize `yaml:"memory"`
}

// DockerSection is the node's Docker engine.
type DockerSection struct {
	Host     string `yaml:"host"`
	DataRoot string `yaml:"data_root"`
	RuncRoot string `yaml:"runc_root"`
	// CgroupParent is the engine's --cgroup-parent, when it has one: where the agent
	// reads its containers' memory and CPU use. Empty: Docker's default places.
	CgroupParent string `yaml:"cgroup_parent"`
	// PublishAddress is the node's address for published ports of containers migrating
	// here (migrate.DockerConfig.PublishAddress). Empty: the engine's default.
	PublishAddress string `yaml:"publish_address"`
}

// TLSFiles are the node's certificate files (`godwit tls cert create`).
type TLSFiles struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// AcceptPolicy is what this node accepts in containers migrating here (migrate.DockerPolicy).
type AcceptPolicy struct {
	AllowHostNetwork  bool     `yaml:"allow_host_network"`
	BindRoots         []string `yaml:"bind_roots"`
	AllowCapabilities []string `yaml:"allow_capabilities"`
}

// LogConfig configures the one logger.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// InventoryConfig says how often the runtime's containers are listed (events also trigger
// a listing on Docker).
type InventoryConfig struct {
	Interval Duration `yaml:"interval"`
}

// Default ports: what DefaultConfig and the example configs use.
const (
	DefaultGossipPort    = 7946 // memberlist's customary port
	DefaultMigrationPort = 7950 // godwit endpoint's
	DefaultRaftPort      = 7960
	DefaultAPIPort       = 7970
)

// DefaultConfig returns the values a config file starts from.
func DefaultConfig() Config {
	return Config{
		Role:      RoleClient,
		Gossip:    GossipConfig{Bind: "0.0.0.0:" + strconv.Itoa(DefaultGossipPort), Profile: "lan"},
		Migration: ListenConfig{Bind: "0.0.0.0:" + strconv.Itoa(DefaultMigrationPort)},
		Docker: DockerSection{
			// Docker's defaults.
			Host: "unix:///var/run/docker.sock", DataRoot: "/var/lib/docker",
			RuncRoot: "/run/docker/runtime-runc/moby",
		},
		DataDir: "/var/lib/godwit",
		Log:     LogConfig{Level: "info", Format: "text"},
		// Docker events trigger listings too; the poll catches memory drift and lost events.
		Inventory: InventoryConfig{Interval: Duration(5e9)},
	}
}

// LoadConfig reads and parses file.
func LoadConfig(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseConfig(file, data)
}

// ParseConfig parses a config file strictly, fills defaults, and validates it; relative
// paths in it are relative to the file's directory. The error is a *ConfigError with every
// problem found.
func ParseConfig(file string, data []byte) (*Config, error) {
	d := newDecoder(file)
	cfg := DefaultConfig()
	cfg.File = file
	root := d.Load(data, "an agent config (node, role, gossip, migration, capacity, data_dir, tls...)")
	if root == nil {
		return nil, d.configError()
	}
	d.Decode(root, &cfg, "")
	if root.Kind != yaml.MappingNode {
		return nil, d.configError()
	}
	cfg.defaultAPI()
	cfg.validate(d, root)
	if d.Len() > 0 {
		return nil, d.configError()
	}
	cfg.resolvePaths(filepath.Dir(file))
	cfg.keys = map[string][2]int{}
	for path, k := range d.Keys {
		cfg.keys[path] = [2]int{k.Line, k.Column}
	}
	return &cfg, nil
}

// defaultAPI fills the API's addresses from the migration service's when not given.
func (c *Config) defaultAPI() {
	// Only what the file says is checked: a default derived from a migration address
	// with a problem would repeat the migration's.
	c.apiGiven = c.API != ListenConfig{}
	if c.API.Bind == "" {
		if host, port, err := net.SplitHostPort(c.Migration.Bind); err == nil {
			p := strconv.Itoa(DefaultAPIPort)
			if port == "0" {
				p = "0"
			}
			c.API.Bind = net.JoinHostPort(host, p)
		}
	}
	if c.API.Advertise == "" && c.Migration.Advertise != "" {
		if host, _, err := net.SplitHostPort(c.Migration.Advertise); err == nil {
			c.API.Advertise = net.JoinHostPort(host, "0")
		}
	}
}

// validate adds a problem for each invalid field, at the field's key (or the document's
// top when the field is missing).
func (c *Config) validate(d *decoder, root *yaml.Node) {
	if c.Node == "" {
		d.atPath("node", root, "required: this node's name, as its certificate carries it")
	} else if err := pki.ValidNodeName(c.Node); err != nil {
		d.atPath("node", root, "%v", err)
	}
	switch c.Role {
	case RoleServer:
		if c.Server == nil {
			d.atPath("role", root, "a server needs a server section (raft address, bootstrap_expect)")
		}
	case RoleClient:
		if c.Server != nil {
			d.atPath("server", root, "only for role server (this node's role is client)")
		}
	default:
		d.atPath("role", root, "must be server or client, got %q", c.Role)
	}
	if len(c.Site) > 64 {
		d.atPath("site", root, "at most 64 bytes")
	}
	for k, v := range c.Labels {
		switch {
		case strings.HasPrefix(k, labelPrefix):
			d.atPath("labels."+k, root, "keys under %s are set by godwit", labelPrefix)
		case k == "site":
			d.atPath("labels."+k, root, "use the site field")
		case k == "" || len(k) > 128 || len(v) > 128:
			d.atPath("labels."+k, root, "keys must be 1..128 bytes and values at most 128")
		}
	}
	c.checkListen(d, root, "gossip", c.Gossip.Bind, c.Gossip.Advertise)
	for i, j := range c.Gossip.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			d.atPath(fmt.Sprintf("gossip.join[%d]", i), root, "must be host:port, got %q", j)
		}
	}
	if c.Gossip.Profile != "lan" && c.Gossip.Profile != "wan" {
		d.atPath("gossip.profile", root, "must be lan or wan, got %q", c.Gossip.Profile)
	}
	if c.Gossip.EmulatedDelay < 0 || c.Gossip.EmulatedDelay > Duration(time.Second) {
		d.atPath("gossip.emulated_delay", root, "must be 0 (none) to 1s")
	}
	if c.Gossip.KeyFile == "" && !c.Gossip.InsecureNoEncryption {
		d.atPath("gossip.key_file", root, "required: gossip is encrypted with the cluster key (`godwit keygen` makes one); insecure_no_encryption: true turns this off")
	}
	if c.Gossip.KeyFile != "" && c.Gossip.InsecureNoEncryption {
		d.atPath("gossip.insecure_no_encryption", root, "contradicts gossip.key_file: give one of them")
	}
	c.checkListen(d, root, "migration", c.Migration.Bind, c.Migration.Advertise)
	if c.apiGiven {
		c.checkListen(d, root, "api", c.API.Bind, c.API.Advertise)
	}
	if s := c.Server; s != nil && c.Role == RoleServer {
		c.checkListen(d, root, "server.raft", s.Raft.Bind, s.Raft.Advertise)
		if s.BootstrapExpect < 1 || s.BootstrapExpect > 9 {
			d.atPath("server.bootstrap_expect", root, "must be 1..9 (3 or 5 in production), got %d", s.BootstrapExpect)
		}
	}
	if !(c.Capacity.CPU > 0) || c.Capacity.CPU > 1<<16 {
		d.atPath("capacity.cpu", root, "required: cores this node offers, > 0 and <= 65536")
	}
	if c.Capacity.Memory <= 0 {
		d.atPath("capacity.memory", root, "required: memory this node offers, e.g. 8GiB")
	}
	if c.Docker.Host == "" {
		d.atPath("docker.host", root, "required")
	}
	for _, f := range []struct{ path, v string }{{"docker.data_root", c.Docker.DataRoot}, {"docker.runc_root", c.Docker.RuncRoot}} {
		if !filepath.IsAbs(f.v) {
			d.atPath(f.path, root, "must be an absolute path, got %q", f.v)
		}
	}
	if a := c.Docker.PublishAddress; a != "" && net.ParseIP(a) == nil {
		d.atPath("docker.publish_address", root, "must be an IP address, got %q", a)
	}
	if c.DataDir == "" {
		d.atPath("data_dir", root, "required")
	}
	for _, f := range []struct{ path, v string }{{"tls.ca", c.TLS.CA}, {"tls.cert", c.TLS.Cert}, {"tls.key", c.TLS.Key}} {
		if f.v == "" {
			d.atPath(f.path, root, "required: there is no plaintext mode (`godwit tls cert create --node %s --role %s`)", orName(c.Node), c.Role)
		}
	}
	for i, r := range c.Accept.BindRoots {
		if !filepath.IsAbs(r) {
			d.atPath(fmt.Sprintf("accept.bind_roots[%d]", i), root, "must be an absolute path, got %q", r)
		}
	}
	caps, err := migrate.NormalizeCapabilities(c.Accept.AllowCapabilities)
	if err != nil {
		d.atPath("accept.allow_capabilities", root, "%v", err)
	}
	c.Accept.AllowCapabilities = caps
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		d.atPath("log.level", root, "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		d.atPath("log.format", root, "must be text or json, got %q", c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		if host, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			d.atPath("metrics.listen", root, "must be host:port, got %q", c.Metrics.Listen)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || (host != "" && net.ParseIP(host) == nil) {
			d.atPath("metrics.listen", root, "must be an IP address and a port 0..65535, got %q", c.Metrics.Listen)
		}
	}
	if c.Inventory.Interval < Duration(1e8) {
		d.atPath("inventory.interval", root, "must be at least 100ms")
	}
}

func orName(n string) string {
	if n == "" {
		return "NAME"
	}
	return n
}

// checkListen checks a bind host:port and an advertise IP:port.
func (c *Config) checkListen(d *decoder, root *yaml.Node, path, bind, adv string) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		d.atPath(path+".bind", root, "must be host:port, got %q", bind)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		d.atPath(path+".bind", root, "port must be 0..65535, got %q", port)
	}
	if net.ParseIP(host) == nil {
		d.atPath(path+".bind", root, "host must be an IP address, got %q", host)
		return
	}
	if adv == "" {
		if ip := net.ParseIP(host); ip.IsUnspecified() {
			d.atPath(path+".advertise", root, "required when bind is %s: the address the other nodes dial", bind)
		}
		return
	}
	ah, ap, err := net.SplitHostPort(adv)
	if err != nil {
		d.atPath(path+".advertise", root, "must be IP:port, got %q", adv)
		return
	}
	if ip := net.ParseIP(ah); ip == nil || ip.IsUnspecified() {
		d.atPath(path+".advertise", root, "must be a specific IP address, got %q", ah)
	}
	if p, err := strconv.Atoi(ap); err != nil || p < 0 || p > 65535 {
		d.atPath(path+".advertise", root, "port must be 0..65535, got %q", ap)
	}
}

// resolvePaths makes relative paths relative to dir (the config file's directory).
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.TLS.CA)
	abs(&c.TLS.Cert)
	abs(&c.TLS.Key)
	abs(&c.Gossip.KeyFile)
	if c.Server != nil {
		abs(&c.Server.PolicyFile)
	}
}

// ReadGossipKey reads a key file written by `godwit keygen`: base64 of 16, 24 or 32 bytes.
func ReadGossipKey(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64 (`godwit keygen` writes a key): %w", file, err)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("%s: key is %d bytes; it must be 16, 24 or 32", file, n)
	}
	return key, nil
}
