package gossip

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is returned (wrapped, with every problem found) by Config.Validate and
// Start when the configuration cannot be used.
var ErrInvalidConfig = errors.New("gossip: invalid config")

// ErrMalformed is returned by the wire decoders when a payload is truncated, oversized or
// otherwise not a message this version understands. Receivers drop such payloads and
// carry on.
var ErrMalformed = errors.New("gossip: malformed payload")

// ErrShutdown is returned by Agent methods called after Shutdown.
var ErrShutdown = errors.New("gossip: agent is shut down")

// ErrNoJoin is returned by Agent.Join when none of the given addresses could be reached.
var ErrNoJoin = errors.New("gossip: could not join any address")

// FieldError is one invalid configuration field: its name and the allowed range.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ConfigError collects every FieldError found by Validate. errors.Is(err,
// ErrInvalidConfig) holds for it.
type ConfigError struct {
	Fields []FieldError
}

func (e *ConfigError) Error() string {
	s := ErrInvalidConfig.Error()
	for i, f := range e.Fields {
		if i == 0 {
			s += ": "
		} else {
			s += "; "
		}
		s += f.Error()
	}
	return s
}

func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
