package dockerd

import (
	"errors"
	"testing"
)

func TestSelectedVersion(t *testing.T) {
	for _, tc := range []struct {
		desc, env, want string
		err             error
	}{
		{"unset: the default", "", DefaultVersion, nil},
		{"a supported engine", "28.5", "28.5", nil},
		{"spaces around it", " 20.10 ", "20.10", nil},
		{"an unknown engine is an error, not a silent default", "27.0", "", ErrUnknownVersion},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Setenv(EngineEnv, tc.env)
			got, err := SelectedVersion()
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("SelectedVersion() = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := Lookup("19.03"); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("Lookup(19.03): %v", err)
	}
}
