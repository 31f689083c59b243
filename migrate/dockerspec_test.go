package migrate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDockerWorkloadPolicy(t *testing.T) {
	policy := DockerPolicy{BindRoots: []string{"/srv/data"}, AllowCapabilities: []string{"NET_BIND_SERVICE"}}
	base := func() dockerWorkload { return dockerWorkload{NetworkMode: "none"} }
	cases := []struct {
		desc  string
		mod   func(*dockerWorkload)
		field string // "" means accepted
	}{
		{"plain", func(w *dockerWorkload) {}, ""},
		{"privileged", func(w *dockerWorkload) { w.Privileged = true }, "privileged"},
		{"host PID", func(w *dockerWorkload) { w.PidMode = "host" }, "pidMode"},
		{"another container's PID namespace", func(w *dockerWorkload) { w.PidMode = "container:x" }, "pidMode"},
		{"host IPC", func(w *dockerWorkload) { w.IpcMode = "host" }, "ipcMode"},
		{"host UTS", func(w *dockerWorkload) { w.UTSMode = "host" }, "utsMode"},
		{"host userns", func(w *dockerWorkload) { w.UsernsMode = "host" }, "usernsMode"},
		{"device", func(w *dockerWorkload) { w.Devices = []string{"/dev/sda"} }, "devices"},
		{"device rule", func(w *dockerWorkload) { w.DeviceCgroupRules = []string{"c 1:3 rwm"} }, "deviceCgroupRules"},
		{"seccomp off", func(w *dockerWorkload) { w.SecurityOpt = []string{"seccomp=unconfined"} }, "securityOpt"},
		{"sysctl", func(w *dockerWorkload) { w.Sysctls = []string{"net.ipv4.ip_forward=1"} }, "sysctls"},
		{"capability not allowed", func(w *dockerWorkload) { w.CapAdd = []string{"SYS_ADMIN"} }, "capAdd"},
		{"capability allowed", func(w *dockerWorkload) { w.CapAdd = []string{"CAP_NET_BIND_SERVICE"} }, ""},
		{"host network not allowed", func(w *dockerWorkload) { w.NetworkMode = "host" }, "networkMode"},
		{"bridge network without its attachment", func(w *dockerWorkload) { w.NetworkMode = "bridge" }, "networks"},
		{"bridge network", func(w *dockerWorkload) {
			w.NetworkMode = "bridge"
			w.Networks = []dockerEndpoint{{Network: "bridge", Driver: "bridge"}}
		}, ""},
		{"another container's network", func(w *dockerWorkload) { w.NetworkMode = "container:x" }, "networkMode"},
		{"bind under root", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "bind", Source: "/srv/data/a", Target: "/a"}}
		}, ""},
		{"bind outside roots", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "bind", Source: "/etc", Target: "/a"}}
		}, "mounts[0].source"},
		{"bind sharing a prefix with a root", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "bind", Source: "/srv/data-other", Target: "/a"}}
		}, "mounts[0].source"},
		{"unclean bind", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "bind", Source: "/srv/data/../../etc", Target: "/a"}}
		}, "mounts[0].source"},
		{"volume name with a slash", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "volume", Source: "../x", Target: "/a"}}
		}, "mounts[0].source"},
		{"relative target", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "volume", Source: "v", Target: "a"}}
		}, "mounts[0].target"},
		{"unknown mount type", func(w *dockerWorkload) {
			w.Mounts = []dockerMount{{Type: "npipe", Source: "x", Target: "/a"}}
		}, "mounts[0].type"},
	}
	for _, tc := range cases {
		w := base()
		tc.mod(&w)
		err := w.check(&Spec{Name: "web"}, policy)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.desc, err)
		case tc.field != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.field)):
			t.Errorf("%s: %v, want ErrRefused naming %s", tc.desc, err, tc.field)
		}
	}
	if err := (&dockerWorkload{NetworkMode: "host"}).check(&Spec{}, DockerPolicy{AllowHostNetwork: true}); err != nil {
		t.Errorf("host network where allowed: %v", err)
	}
	if w := base(); w.check(&Spec{Name: "../x"}, policy) == nil {
		t.Error("a path as container name accepted")
	}
}

func TestDockerWorkloadStrict(t *testing.T) {
	// A whole HostConfig off the wire (the old protocol) is refused, not half-applied.
	raw, _ := json.Marshal(map[string]any{"networkMode": "none", "HostConfig": map[string]any{"Privileged": true}})
	if _, err := decodeDockerWorkload(raw); !errors.Is(err, ErrRefused) {
		t.Fatalf("unknown field: %v", err)
	}
	w := dockerWorkload{NetworkMode: "none", CapAdd: []string{"NET_BIND_SERVICE"}, Mounts: []dockerMount{{Type: "volume", Source: "v", Target: "/v"}}}
	cfg, hc := w.build(&Spec{Workload: "wl", Labels: map[string]string{"a": "b", LabelWorkload: "forged"}}, "img")
	if cfg.Labels[LabelWorkload] != "wl" || cfg.Labels["a"] != "b" || hc.Privileged || len(hc.Mounts) != 1 {
		t.Fatalf("built: %+v %+v", cfg, hc)
	}
}
