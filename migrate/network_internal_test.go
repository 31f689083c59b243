package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
)

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0050", "0.0.0.0:80"},
		{"0000000000000000FFFF0000056714AC:1F90", "172.20.103.5:8080"},
		{"00000000000000000000000000000000:1F90", "[::]:8080"},
	} {
		got, ok := parseProcAddr(tc.in)
		if !ok || got != tc.want {
			t.Errorf("parseProcAddr(%s) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := parseProcAddr("zz:1"); ok {
		t.Error("garbage parsed")
	}
}

func TestCheckNetworking(t *testing.T) {
	ok := func() dockerWorkload {
		return dockerWorkload{NetworkMode: "app", Networks: []dockerEndpoint{{Network: "app", Driver: "bridge", Aliases: []string{"web"}}},
			Ports: []dockerPort{{Port: "8080/tcp", HostPort: "80"}}}
	}
	cases := []struct {
		desc  string
		mod   func(*dockerWorkload)
		field string
	}{
		{"user network with a port", func(*dockerWorkload) {}, ""},
		{"port range", func(w *dockerWorkload) { w.Ports[0].HostPort = "80-81" }, "ports[0].hostPort"},
		{"sctp port", func(w *dockerWorkload) { w.Ports[0].Port = "80/sctp" }, "ports[0].port"},
		{"bad alias", func(w *dockerWorkload) { w.Networks[0].Aliases = []string{"-x;y"} }, "networks[0].aliases"},
		{"bad option name", func(w *dockerWorkload) { w.Networks[0].Options = map[string]string{"a b": "1"} }, "networks[0].options"},
		{"primary network missing", func(w *dockerWorkload) { w.NetworkMode = "other" }, "networks"},
		{"network twice", func(w *dockerWorkload) { w.Networks = append(w.Networks, w.Networks[0]) }, "networks[1].network"},
		{"bad MAC", func(w *dockerWorkload) { w.Networks[0].MacAddress = "02:42" }, "networks[0].macAddress"},
		{"ports without a network", func(w *dockerWorkload) { w.NetworkMode = "none"; w.Networks = nil }, "networks"},
	}
	for _, tc := range cases {
		w := ok()
		tc.mod(&w)
		err := w.checkNetworking()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.desc, err)
		case tc.field != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.field)):
			t.Errorf("%s: %v, want ErrRefused naming %s", tc.desc, err, tc.field)
		}
	}
}

func TestCheckAttachment(t *testing.T) {
	l2 := dockerEndpoint{Network: "lab", Driver: "bridge", Layer2: "site1", Subnet: "10.103.200.0/24", IPAddress: "10.103.200.70"}
	local := dockerEndpoint{Network: "app", Driver: "bridge", IPAddress: "10.103.17.2"}
	there := func(label, subnet string) *network.Inspect {
		return &network.Inspect{Driver: "bridge", Labels: map[string]string{LabelLayer2: label},
			IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}}
	}
	cases := []struct {
		desc string
		p    networkPlan
		want string // "" accepted
	}{
		{"node-local network created here", networkPlan{ep: local}, ""},
		{"node-local network, process bound to its address", networkPlan{ep: func() dockerEndpoint { e := local; e.BoundTo = []string{"10.103.17.2:80"}; return e }()}, "listens on 10.103.17.2:80"},
		{"layer-2 network present", networkPlan{ep: l2, existing: there("site1", "10.103.200.0/24")}, ""},
		{"layer-2 network, other subnet", networkPlan{ep: l2, existing: there("site1", "10.103.201.0/24")}, "clashes"},
		{"layer-2 network, other domain", networkPlan{ep: l2, existing: there("site2", "10.103.200.0/24")}, "layer-2 domain"},
		{"layer-2 network missing", networkPlan{ep: l2}, "not attached"},
		{"default bridge missing", networkPlan{ep: dockerEndpoint{Network: "bridge", Driver: "bridge"}}, "no default bridge"},
		{"macvlan network missing", networkPlan{ep: dockerEndpoint{Network: "mv", Driver: "macvlan"}}, "only bridge networks"},
	}
	for _, tc := range cases {
		err := checkAttachment(&tc.p, "127.0.103.2")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.desc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a refusal saying %q", tc.desc, err, tc.want)
		}
	}
	if err := checkDriver([]string{"bridge", "host", "null"}, &dockerEndpoint{Network: "mv", Driver: "weave"}); err == nil || !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), `driver "weave"`) {
		t.Errorf("missing driver: %v", err)
	}
}
