package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit-io/godwit/migrate"
)

// TestPolicyFileReload: a one-server cluster's leader puts the configured policy in force;
// a changed valid file is put in force too; an invalid one is refused, the agent says so and
// keeps the policy in force.
func TestPolicyFileReload(t *testing.T) {
	c := newTestCluster(t)
	src, err := os.ReadFile("testdata/evacuate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.dir, "policy.yaml")
	mustWriteFile(t, file, string(src))
	cfg := c.config("solo", RoleServer, 20, "server:\n  raft:\n    bind: "+testIP(20)+":0\n  bootstrap_expect: 1\n  policy_file: "+file+"\n")
	a := c.start(cfg, "", migrate.NewFakeRuntime(filepath.Join(c.dir, "solo", "engine")))
	version := func() (uint64, string) {
		st := a.ControlPlane().FSM().State()
		if st.Policy == nil {
			return 0, ""
		}
		return st.Policy.Version, st.Policy.Name
	}
	waitFor(t, "the configured policy in force", 20*time.Second, func() bool { v, _ := version(); return v == 1 })

	mustWriteFile(t, file, strings.Replace(string(src), "name: evacuate", "name: evacuate-two", 1))
	waitFor(t, "the changed policy in force", 10*time.Second, func() bool { v, n := version(); return v == 2 && n == "evacuate-two" })

	mustWriteFile(t, file, "apiVersion: godwit.io/v1\nkind: Policy\nspec:\n  mode: sometimes\n")
	waitFor(t, "the invalid file reported", 10*time.Second, func() bool { return c.log.has("policy file not reloaded") })
	if err := a.ReloadPolicy(); err == nil {
		t.Fatal("ReloadPolicy of an invalid file: no error")
	}
	time.Sleep(500 * time.Millisecond)
	if v, n := version(); v != 2 || n != "evacuate-two" {
		t.Fatalf("policy in force: version %d %q", v, n)
	}
}

func mustWriteFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
