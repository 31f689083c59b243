package gossip

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestWrongKeyCannotJoin: a node with another key, and a node with none, cannot join an
// encrypted cluster; the cluster's log says it could not decrypt, the joiner's log says
// the key may differ.
func TestWrongKeyCannotJoin(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	cfgA := testConfig("keyed-a", ipFor(3, 0))
	cfgA.SecretKey = key
	a := startNode(t, cfgA, nil)
	cfgB := testConfig("keyed-b", ipFor(3, 1))
	cfgB.SecretKey = key
	b := startNode(t, cfgB, nil)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatalf("same key must join: %v", err)
	}

	for _, tc := range []struct {
		desc     string
		key      []byte
		theirLog string // in the cluster's log
	}{
		{"other key", bytes.Repeat([]byte{2}, 32), "no installed keys could decrypt the message"},
		{"no key", nil, "encryption is configured but remote state is not encrypted"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			cfg := testConfig("intruder-"+strings.ReplaceAll(tc.desc, " ", "-"), ipFor(3, 2))
			cfg.SecretKey = tc.key
			c := startNode(t, cfg, nil)
			_, err := c.Join([]string{a.Addr()})
			if !errors.Is(err, ErrNoJoin) {
				t.Fatalf("join with %s: got %v, want ErrNoJoin", tc.desc, err)
			}
			waitFor(t, 5*time.Second, "cluster log says why", func() (bool, string) {
				return strings.Contains(a.log.String(), tc.theirLog), "log of keyed-a lacks " + tc.theirLog
			})
			if got := c.log.String(); !strings.Contains(got, "join failed") || !strings.Contains(got, "encrypt") {
				t.Errorf("joiner's log does not say why:\n%s", tail(got, 5))
			}
			time.Sleep(500 * time.Millisecond) // let any stray gossip land
			if _, ok := a.View().Node(cfg.Name); ok {
				t.Errorf("cluster knows the intruder")
			}
			if n := c.Stats().Members; n != 1 {
				t.Errorf("intruder sees %d members, want 1", n)
			}
			_ = c.Shutdown()
		})
	}
}

// TestMalformedPayloadsDropped sends truncated and corrupted states, push-pull states and
// garbage from a plain memberlist node (real sockets) to an agent, which must drop them,
// count them, and keep working.
func TestMalformedPayloadsDropped(t *testing.T) {
	a := startNode(t, testConfig("target", ipFor(4, 0)), nil)

	good := encodeState(sampleState())
	var bad [][]byte
	for i := 0; i < len(good); i += 7 {
		bad = append(bad, good[:i]) // truncated
	}
	flip := append([]byte(nil), good...)
	flip[1] = 99 // unknown revision
	bad = append(bad, flip, []byte{msgState}, []byte{0xff, 0xff, 0xff}, append(good, 0))

	// A raw memberlist peer whose NodeMeta and push-pull state are garbage too.
	raw := rawMember(t, "raw-peer", ipFor(4, 1), []byte{msgMeta, 7, 7}, append([]byte{msgPushPull, wireRevision, 5}, good[2:20]...))
	if _, err := raw.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	var target *memberlist.Node
	waitFor(t, 5*time.Second, "raw peer sees target", func() (bool, string) {
		for _, n := range raw.Members() {
			if n.Name == "target" {
				target = n
				return true, ""
			}
		}
		return false, "not yet"
	})
	for _, b := range bad {
		if err := raw.SendReliable(target, b); err != nil {
			t.Fatalf("send: %v", err)
		}
		_ = raw.SendBestEffort(target, b)
	}
	// Then a good state from the same peer must still be taken.
	if err := raw.SendReliable(target, good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "good state after garbage", func() (bool, string) {
		nv, ok := a.View().Node(sampleState().Name)
		return ok && nv.Load.CPUCores == sampleState().Load.CPUCores, "not taken"
	})
	waitFor(t, 10*time.Second, "malformed counted", func() (bool, string) {
		m := a.Stats().Malformed
		return m >= uint64(len(bad)), "counted " + strconv.FormatUint(m, 10)
	})
	if !strings.Contains(a.log.String(), "dropping malformed gossip message") {
		t.Errorf("no log line for malformed messages")
	}
}

// rawMember is a plain memberlist node (no Agent) with fixed meta and push-pull state.
func rawMember(t *testing.T, name, ip string, meta, state []byte) *memberlist.Memberlist {
	t.Helper()
	c := memberlist.DefaultLocalConfig()
	c.Name = name
	c.BindAddr = ip
	c.BindPort = 0
	c.TCPTimeout = 10 * time.Second // the local profile's 1 s is tight on a loaded machine
	c.Delegate = &rawDelegate{meta: meta, state: state}
	c.LogOutput = &logBuffer{}
	m, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

type rawDelegate struct{ meta, state []byte }

func (d *rawDelegate) NodeMeta(int) []byte                 { return d.meta }
func (d *rawDelegate) NotifyMsg([]byte)                    {}
func (d *rawDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (d *rawDelegate) LocalState(bool) []byte              { return d.state }
func (d *rawDelegate) MergeRemoteState(buf []byte, _ bool) {}

func sampleState() *nodeState {
	return &nodeState{
		Name:             "raw-peer",
		Version:          Version{Epoch: 100, Seq: 3},
		InventoryVersion: Version{Epoch: 100, Seq: 2},
		Drain:            true,
		Load:             Load{CPUCores: 1.5, CPUCapacity: 4, MemoryBytes: 1 << 30, MemoryCapacity: 8 << 30, MemoryPressure: 0.02},
		PublishedAt:      time.Unix(0, 1700000000000000000),
		Labels:           map[string]string{"site": "s1", "arch": "arm64"},
		Links:            []LinkEstimate{{Peer: "n2", BytesPerSecond: 1.25e8, Samples: 3, ObservedAt: time.Unix(0, 1700000000000000000)}},
		HasInventory:     true,
		Containers: []Container{{
			ID: "abc", Name: "web", Image: "img:1", MemoryBytes: 64 << 20, CPUCores: 0.5,
			Labels: map[string]string{"godwit.io/managed": "true"}, UserSites: []string{"s2"},
		}},
	}
}
