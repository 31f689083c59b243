// Package configs embeds the example files that serve as built-in defaults.
package configs

import "embed"

// Scenarios holds scenarios/*.yaml; `godwit sim` runs scenarios/default.yaml when no
// scenario is given.
//
//go:embed scenarios/*.yaml
var Scenarios embed.FS
