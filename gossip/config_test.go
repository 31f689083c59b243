package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigsValidate(t *testing.T) {
	for name, c := range map[string]Config{"LAN": DefaultLANConfig(), "WAN": DefaultWANConfig()} {
		c.Name = "n1"
		c.Capacity = Capacity{CPUCores: 2, MemoryBytes: 1 << 30}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateNamesFieldAndRange(t *testing.T) {
	base := func() Config {
		c := DefaultLANConfig()
		c.Name = "n1"
		c.Capacity = Capacity{CPUCores: 2, MemoryBytes: 1 << 30}
		return c
	}
	for _, tc := range []struct {
		desc  string
		edit  func(*Config)
		field string
		rng   string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "Name", "1..128 bytes"},
		{"bad bind address", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr", "IP address"},
		{"port out of range", func(c *Config) { c.BindPort = 70000 }, "BindPort", "0..65535"},
		{"join without port", func(c *Config) { c.Join = []string{"127.0.0.2"} }, "Join[0]", "host:port"},
		{"short key", func(c *Config) { c.SecretKey = []byte("short") }, "SecretKey", "16, 24 or 32 bytes"},
		{"no capacity", func(c *Config) { c.Capacity.CPUCores = 0 }, "Capacity.CPUCores", "> 0"},
		{"threshold over 1", func(c *Config) { c.LoadChangeThreshold = 2 }, "LoadChangeThreshold", "<= 1"},
		{"probe timeout over interval", func(c *Config) { c.ProbeTimeout = 2 * time.Second }, "ProbeTimeout", "below ProbeInterval"},
		{"site too long for meta", func(c *Config) { c.Labels = map[string]string{"site": strings.Repeat("x", 65)} }, "Labels[site]", "64 bytes"},
		{"gossip nodes zero", func(c *Config) { c.GossipNodes = 0 }, "GossipNodes", "1..64"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("not a *ConfigError: %T", err)
			}
			found := false
			for _, f := range ce.Fields {
				if f.Field == tc.field && strings.Contains(f.Message, tc.rng) {
					found = true
				}
			}
			if !found {
				t.Errorf("want field %s with range %q, got %v", tc.field, tc.rng, err)
			}
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := Config{}
	var ce *ConfigError
	if err := c.Validate(); !errors.As(err, &ce) || len(ce.Fields) < 10 {
		t.Fatalf("zero config: want many field errors, got %v", err)
	}
}
