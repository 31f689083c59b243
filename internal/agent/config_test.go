package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const validClient = `node: edge-1
role: client
site: site-a
labels:
  zone: a
gossip:
  bind: 10.0.0.1:7946
  join: [10.0.0.2:7946]
  key_file: gossip.key
migration:
  bind: 10.0.0.1:7950
capacity:
  cpu: 4
  memory: 8GiB
data_dir: /var/lib/godwit
tls:
  ca: tls/ca.pem
  cert: tls/edge-1.pem
  key: tls/edge-1-key.pem
`

const validServer = `node: core-1
role: server
gossip:
  bind: 0.0.0.0:7946
  advertise: 10.0.0.2:7946
  insecure_no_encryption: true
migration:
  bind: 0.0.0.0:7950
  advertise: 10.0.0.2:7950
server:
  raft:
    bind: 10.0.0.2:7960
  bootstrap_expect: 3
  policy_file: /etc/godwit/policy.yaml
capacity: {cpu: 2.5, memory: 1.5GiB}
docker:
  host: unix:///run/godwit/docker.sock
  data_root: /srv/docker
  runc_root: /run/docker/runtime-runc/moby
data_dir: /var/lib/godwit
tls: {ca: /etc/godwit/ca.pem, cert: /etc/godwit/core-1.pem, key: /etc/godwit/core-1-key.pem}
accept:
  allow_host_network: true
  bind_roots: [/srv/data]
  allow_capabilities: [net_admin, CAP_SYS_TIME]
log: {level: debug, format: json}
inventory: {interval: 2s}
drain: true
`

func TestParseConfigValid(t *testing.T) {
	c, err := ParseConfig("/etc/godwit/agent.yaml", []byte(validClient))
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != RoleClient || c.Server != nil || c.Gossip.KeyFile != "/etc/godwit/gossip.key" || c.TLS.Cert != "/etc/godwit/tls/edge-1.pem" ||
		c.Capacity.Memory != 8<<30 || c.Gossip.Profile != "lan" || c.Docker.Host != "unix:///var/run/docker.sock" ||
		time.Duration(c.Inventory.Interval) != 5*time.Second || c.Labels["zone"] != "a" || c.Log.Format != "text" {
		t.Fatalf("client config: %+v", c)
	}
	s, err := ParseConfig("core.yaml", []byte(validServer))
	if err != nil {
		t.Fatal(err)
	}
	want := AcceptPolicy{AllowHostNetwork: true, BindRoots: []string{"/srv/data"}, AllowCapabilities: []string{"NET_ADMIN", "SYS_TIME"}}
	if d := cmp.Diff(want, s.Accept); d != "" {
		t.Fatalf("accept (-want +got):\n%s", d)
	}
	if s.Server == nil || s.Server.BootstrapExpect != 3 || s.Capacity.Memory != 3<<29 || s.Capacity.CPU != 2.5 || !s.Drain ||
		time.Duration(s.Inventory.Interval) != 2*time.Second || s.Log.Format != "json" {
		t.Fatalf("server config: %+v", s)
	}
}

// TestParseConfigErrors: every problem is reported, at its line and column, in file order.
func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		desc string
		text string
		want []string
	}{
		{"empty file", "", []string{"f.yaml:1:1: empty file: want an agent config"}},
		{"not YAML", "node: [a\n", []string{"f.yaml:1:1: "}},
		{"top level not a mapping", "- a\n", []string{"f.yaml:1:1: (top level): want a mapping, got a list"}},
		{"unknown field with a suggestion", strings.Replace(validClient, "data_dir:", "datadir:", 1),
			[]string{"f.yaml:15:1: (top level): unknown field \"datadir\", did you mean \"data_dir\"?"}},
		{"nested unknown field, no suggestion", validClient + "tls_extra: 1\n",
			[]string{"f.yaml:20:1: (top level): unknown field \"tls_extra\" (known: "}},
		{"misspelt nested field", strings.Replace(validClient, "  key_file:", "  keyfile:", 1),
			[]string{"f.yaml:6:1: gossip.key_file: required", "f.yaml:9:3: gossip: unknown field \"keyfile\", did you mean \"key_file\"?"}},
		{"all at once", `node: "bad name!"
role: boss
gossip:
  bind: nowhere
  key_file: k
  profile: moon
migration:
  bind: 0.0.0.0:7950
capacity:
  cpu: -1
  memory: lots
tls: {ca: a}
log: {level: loud}
`, []string{
			"f.yaml:1:1: node: ",
			"f.yaml:2:1: role: must be server or client, got \"boss\"",
			"f.yaml:4:3: gossip.bind: must be host:port, got \"nowhere\"",
			"f.yaml:6:3: gossip.profile: must be lan or wan, got \"moon\"",
			"f.yaml:7:1: migration.advertise: required when bind is 0.0.0.0:7950",
			"f.yaml:10:3: capacity.cpu: required",
			"f.yaml:11:11: capacity.memory: \"lots\" is not a size",
			"f.yaml:12:1: tls.cert: required",
			"f.yaml:12:1: tls.key: required",
			"f.yaml:13:7: log.level: must be debug, info, warn or error, got \"loud\"",
		}},
		{"wrong kinds", strings.Replace(validClient, "cpu: 4", "cpu: [4]", 1) + "drain: yes please\n",
			[]string{"f.yaml:13:8: capacity.cpu: want a number, got a list", "f.yaml:20:8: drain: want true or false, got the string \"yes please\""}},
		{"server section on a client", validClient + "server:\n  bootstrap_expect: 3\n",
			[]string{"f.yaml:20:1: server: only for role server"}},
		{"server without a section", strings.Replace(validClient, "role: client", "role: server", 1),
			[]string{"f.yaml:2:1: role: a server needs a server section"}},
		{"server section values", strings.Replace(validServer, "bootstrap_expect: 3", "bootstrap_expect: 0", 1),
			[]string{"f.yaml:13:3: server.bootstrap_expect: must be 1..9"}},
		{"reserved labels", strings.Replace(validClient, "  zone: a", "  godwit.io/role: server\n  site: b", 1),
			[]string{"f.yaml:5:3: labels.godwit.io/role: keys under godwit.io/ are set by godwit", "f.yaml:6:3: labels.site: use the site field"}},
		{"metrics listener not host:port", validClient + "metrics:\n  listen: nowhere\n",
			[]string{"f.yaml:21:3: metrics.listen: must be host:port, got \"nowhere\""}},
		{"metrics listener on a name", validClient + "metrics:\n  listen: localhost:9470\n",
			[]string{"f.yaml:21:3: metrics.listen: must be an IP address and a port 0..65535, got \"localhost:9470\""}},
		{"duplicate field", validClient + "node: again\n", []string{"f.yaml:20:1: (top level): duplicate key \"node\""}},
		{"capability ALL", strings.Replace(validServer, "[net_admin, CAP_SYS_TIME]", "[all]", 1),
			[]string{"f.yaml:25:3: accept.allow_capabilities: ALL is not accepted"}},
		{"encryption both ways", strings.Replace(validClient, "  key_file: gossip.key", "  key_file: gossip.key\n  insecure_no_encryption: true", 1),
			[]string{"f.yaml:10:3: gossip.insecure_no_encryption: contradicts gossip.key_file"}},
		{"two documents", validClient + "---\nnode: x\n", []string{"f.yaml:20:1: a second YAML document starts here"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := ParseConfig("f.yaml", []byte(tc.text))
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v (%T), want a *ConfigError", err, err)
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

// TestConfigCheck: the files a config names are read and checked, each problem at the
// field that names the file.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gossip.key"), []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(filepath.Join(dir, "agent.yaml"), []byte(validClient))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Check()
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("%v", err)
	}
	if p := ce.Problems[0].String(); !strings.HasPrefix(p, filepath.Join(dir, "agent.yaml")+":9:3: gossip.key_file: ") || !strings.Contains(p, "not base64") {
		t.Errorf("got %s", p)
	}
	if p := ce.Problems[1].String(); !strings.HasPrefix(p, filepath.Join(dir, "agent.yaml")+":18:3: tls.cert: ") {
		t.Errorf("got %s", p)
	}
}
