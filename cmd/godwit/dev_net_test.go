package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit-io/godwit/internal/testenv"
)

// TestDevNetLayout checks how dev up cuts its /16: each node's bridge, pool and range of the
// shared subnet, disjoint, and the limits.
func TestDevNetLayout(t *testing.T) {
	d, err := newDevNet("gw108x", "10.108.0.0/16", 3, true)
	if err != nil {
		t.Fatal(err)
	}
	e := d.engine(2, "127.0.108.2")
	if e.Bridge != "gw108x2" || e.BridgeAddress != "10.108.128.1/24" || e.PublishIP != "127.0.108.2" ||
		len(e.AddressPools) != 1 || e.AddressPools[0] != "base=10.108.160.0/19,size=24" {
		t.Errorf("node 2 of 3: %+v", e)
	}
	if s, gw, r := d.sharedSubnet(3); s != "10.108.0.0/18" || gw != "10.108.0.1" || r != "10.108.48.0/20" {
		t.Errorf("node 3's share: %s %s %s", s, gw, r)
	}
	if b := d.bridges(3); strings.Join(b, " ") != "gw108xs gw108x1 gw108x2 gw108x3" {
		t.Errorf("bridges: %v", b)
	}
	d, err = newDevNet("gw108x", "10.108.0.0/16", 15, true)
	if err != nil {
		t.Fatal(err)
	}
	if e := d.engine(15, "127.0.108.15"); e.BridgeAddress != "10.108.240.1/24" || e.AddressPools[0] != "base=10.108.248.0/21,size=24" {
		t.Errorf("node 15 of 15: %+v", e)
	}
	if s, _, r := d.sharedSubnet(15); s != "10.108.0.0/20" || r != "10.108.15.0/24" {
		t.Errorf("node 15's share: %s %s", s, r)
	}
	d, err = newDevNet("gw108x", "10.108.0.0/16", 127, false)
	if err != nil {
		t.Fatal(err)
	}
	if e := d.engine(127, "127.0.108.127"); e.BridgeAddress != "10.108.254.1/24" || e.AddressPools[0] != "base=10.108.255.0/24,size=24" {
		t.Errorf("node 127 of 127: %+v", e)
	}
	for _, tc := range []struct {
		prefix, subnet string
		nodes          int
		shared         bool
		want           string
	}{
		{"gw108x", "10.108.0.0/16", 128, false, "at most 127"},
		{"gw108x", "10.108.0.0/16", 64, true, "at most 63"},
		{"gw108x", "192.168.0.0/16", 3, false, "inside 10.0.0.0/8"},
		{"gw108x", "10.108.0.0/24", 3, false, "/16"},
		{"gw108x", "10.108.1.0/16", 3, false, "host bits"},
		{"a/b", "10.108.0.0/16", 3, false, "--bridge-prefix"},
		{"gw108xxxxxxxxxx", "10.108.0.0/16", 3, false, "at most 15"},
	} {
		if _, err := newDevNet(tc.prefix, tc.subnet, tc.nodes, tc.shared); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newDevNet(%q, %q, %d, %v): %v, want an error saying %q", tc.prefix, tc.subnet, tc.nodes, tc.shared, err, tc.want)
		}
	}
}

// TestDevUpNetFlags: bad networking flags are usage errors (exit 2) before anything starts.
func TestDevUpNetFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--emulated-delay", "2s"},
		{"--emulated-delay", "-1ms"},
		{"--subnet-base", "192.168.0.0/16"},
		{"--bridge-prefix", "much-too-long-name"},
		{"--nodes", "64", "--shared-bridge"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"dev", "up", "--dir", t.TempDir()}, args...), &out, &errb); code != exitUsage {
			t.Errorf("dev up %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, errb.String())
		}
	}
}

// TestDevDownRecordedBridges: dev up refuses a /16 an interface has an address in, and a
// dev up that died after recording a bridge (whether or not it made it) leaves dev down to
// remove it.
func TestDevDownRecordedBridges(t *testing.T) {
	testenv.RequireRoot(t)
	const br = "gw108z"
	if out, err := exec.Command("ip", "link", "add", br, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add %s: %v: %s", br, err, out)
	}
	t.Cleanup(func() { removeBridges([]string{br}) })
	if out, err := exec.Command("ip", "addr", "add", "10.108.250.1/24", "dev", br).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	// dev up refuses a /16 some interface has an address in.
	d, err := newDevNet("gw108x", "10.108.0.0/16", 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if in := d.subnetInUse(); !strings.HasPrefix(in, br+" ") {
		t.Errorf("subnetInUse with %s on 10.108.250.1/24: %q", br, in)
	}
	t.Setenv(envDevState, filepath.Join(t.TempDir(), "dev.json"))
	dir := t.TempDir()
	if err := saveDevState(devCluster{Dir: dir, Bridges: []string{br, "gw108y"}}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := devDown(&out); err != nil {
		t.Fatalf("dev down: %v\n%s", err, out.String())
	}
	if in := bridgesInUse([]string{br}); len(in) > 0 {
		t.Fatalf("%s is still there after dev down", br)
	}
}
