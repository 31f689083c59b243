package agent

import (
	"sort"

	"github.com/godwit-io/godwit/internal/pki"
)

// materials is what the files a config names hold, read and checked.
type materials struct {
	id     *pki.TLS
	key    []byte
	policy *policyFile
}

// Check reads the files the config names (certificates, gossip key, policy) and checks
// them against it, without starting anything: what `godwit agent --check` adds to parsing.
// The error is a *ConfigError, each problem at the field naming the file.
func (c *Config) Check() error {
	_, err := c.readMaterials()
	return err
}

func (c *Config) readMaterials() (*materials, error) {
	var m materials
	var probs []Problem
	id, err := pki.Load(pki.Files{CA: c.TLS.CA, Cert: c.TLS.Cert, Key: c.TLS.Key})
	if err != nil {
		probs = append(probs, c.problem("tls.cert", "%v", err))
	} else {
		who := id.Identity()
		want := pki.RoleClient
		if c.Role == RoleServer {
			want = pki.RoleServer
		}
		if who.Node != c.Node || who.Role != want {
			probs = append(probs, c.problem("tls.cert", "the certificate of %s; this node is %s (%s): `godwit tls cert create --node %s --role %s` makes its own", who, c.Node, want, c.Node, want))
		}
		m.id = id
	}
	if c.Gossip.KeyFile != "" {
		if m.key, err = ReadGossipKey(c.Gossip.KeyFile); err != nil {
			probs = append(probs, c.problem("gossip.key_file", "%v", err))
		}
	}
	if c.Server != nil && c.Server.PolicyFile != "" {
		if m.policy, err = readPolicyFile(c.Server.PolicyFile); err != nil {
			probs = append(probs, c.problem("server.policy_file", "%v", err))
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			return probs[i].Line < probs[j].Line || probs[i].Line == probs[j].Line && probs[i].Column < probs[j].Column
		})
		return nil, &ConfigError{Problems: probs}
	}
	return &m, nil
}
