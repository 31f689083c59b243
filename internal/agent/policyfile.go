package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/godwit-io/godwit/policy"
)

// policyFile is the policy a server's config names, as last read and found valid.
type policyFile struct {
	name   string
	source string
	// gen counts the versions read (from 1); the leader tries each once per term.
	gen uint64
	// mod and size are the file's as last read, to notice changes.
	mod  time.Time
	size int64
}

// readPolicyFile reads and checks path.
func readPolicyFile(path string) (*policyFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := policy.Parse(path, src); err != nil {
		return nil, err
	}
	return &policyFile{name: filepath.Base(path), source: string(src), gen: 1, mod: st.ModTime(), size: st.Size()}, nil
}

// currentPolicy is the policy file as last read (nil without one).
func (a *Agent) currentPolicy() *policyFile {
	a.polMu.Lock()
	defer a.polMu.Unlock()
	return a.policy
}

// ReloadPolicy reads the configured policy file again. A file that does not parse is
// refused: the policy read before stays (and the agent says so); the error says why. A
// valid file that changed is put in force by the leader. Servers with a policy file only;
// elsewhere it does nothing. The agent calls it on SIGHUP (cmd) and when the file changes.
func (a *Agent) ReloadPolicy() error {
	if a.cfg.Server == nil || a.cfg.Server.PolicyFile == "" {
		return nil
	}
	path := a.cfg.Server.PolicyFile
	p, err := readPolicyFile(path)
	a.polMu.Lock()
	defer a.polMu.Unlock()
	if err != nil {
		if a.policy != nil {
			// Remember what was seen so a broken file is reported once, not every tick.
			if st, serr := os.Stat(path); serr == nil {
				a.policy.mod, a.policy.size = st.ModTime(), st.Size()
			}
		}
		a.log.Warn("policy file not reloaded: it is invalid; keeping the one read before", "file", path, "err", err)
		return fmt.Errorf("policy file %s: %w", path, err)
	}
	if a.policy != nil && p.source == a.policy.source {
		a.policy.mod, a.policy.size = p.mod, p.size
		return nil
	}
	if a.policy != nil {
		p.gen = a.policy.gen + 1
	}
	a.policy = p
	a.log.Info("policy file reloaded", "file", path)
	kickChan(a.kickSrv)
	return nil
}

// policyFileChanged reports whether the policy file's modification time or size differ from
// when it was last read.
func (a *Agent) policyFileChanged() bool {
	p := a.currentPolicy()
	if p == nil {
		return false
	}
	st, err := os.Stat(a.cfg.Server.PolicyFile)
	if err != nil {
		return false
	}
	return !st.ModTime().Equal(p.mod) || st.Size() != p.size
}
