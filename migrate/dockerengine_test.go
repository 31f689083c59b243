package migrate

import (
	"errors"
	"strings"
	"testing"
)

func TestDockerEngineRestores(t *testing.T) {
	v20 := dockerEngine{Version: "20.10.24", APIVersion: "1.41", Experimental: true}
	v26 := dockerEngine{Version: "26.1.5", APIVersion: "1.45", Experimental: true}
	v28 := dockerEngine{Version: "28.5.2", APIVersion: "1.51", Experimental: true}
	for _, tc := range []struct {
		desc   string
		target dockerEngine
		w      dockerWorkload
		want   string // "" when the target restores it
	}{
		{"20.10 -> 26.1, network none", v26, dockerWorkload{NetworkMode: "none", EngineAPI: "1.41"}, ""},
		{"26.1 -> 20.10, network none", v20, dockerWorkload{NetworkMode: "none", EngineAPI: "1.45"}, ""},
		{"28.5 -> 20.10, networking disabled", v20, dockerWorkload{NetworkMode: "none", NetworkDisabled: true, EngineAPI: "1.51"}, ""},
		{"28.5 -> 28.5, networking disabled", v28, dockerWorkload{NetworkMode: "none", NetworkDisabled: true, EngineAPI: "1.51"}, ""},
		{"28.5 -> 28.5, host network", v28, dockerWorkload{NetworkMode: "host", EngineAPI: "1.51"}, ""},
		{"28.5 -> 28.5, network none of Docker's", v28, dockerWorkload{NetworkMode: "none", EngineAPI: "1.51"}, "network namespace of Docker's"},
		{"20.10 -> 28.5, networking disabled", v28, dockerWorkload{NetworkMode: "none", NetworkDisabled: true, EngineAPI: "1.41"}, "API 1.41"},
		{"unknown source engine -> 28.5", v28, dockerWorkload{NetworkMode: "none", NetworkDisabled: true}, "before Docker 28"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.target.restores(tc.w)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrPreflight naming %q", err, tc.want)
			}
		})
	}
	if err := (dockerEngine{Version: "19.03.15", APIVersion: "1.40", Experimental: true}).supported(); !errors.Is(err, ErrPreflight) {
		t.Fatalf("API 1.40 accepted: %v", err)
	}
	if err := (dockerEngine{Version: "26.1.5", APIVersion: "1.45"}).supported(); err == nil || !strings.Contains(err.Error(), "experimental") {
		t.Fatalf("experimental off accepted: %v", err)
	}
}
