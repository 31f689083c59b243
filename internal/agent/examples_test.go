package agent

import (
	"path/filepath"
	"testing"
)

// TestExampleConfigs: the documented example configs parse.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/agent/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("example configs: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := LoadConfig(f); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}
