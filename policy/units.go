package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// Duration is a duration written as in Go: "30s", "5m", "1h30m".
type Duration struct{ time.Duration }

func (d *Duration) parseScalar(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 5m, got %q", s)
	}
	if v < 0 {
		return fmt.Errorf("want a duration of at least 0, got %q", s)
	}
	d.Duration = v
	return nil
}

// JSONSchema describes Duration in the generated schema.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
		Description: "A duration: 300ms, 30s, 5m, 1h30m."}
}

// ByteSize is an amount of memory: a number of bytes, or a number with a unit (KiB, MiB,
// GiB, TiB, or K, M, G, T in powers of 1000; Ki, Mi, Gi, Ti also accepted).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1},
}

var errByteSize = errors.New("want a size such as 512MiB or 8GiB")

func (b *ByteSize) parseScalar(s string) error {
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f*mult > math.MaxInt64/2 {
		return fmt.Errorf("%w, got %q", errByteSize, s)
	}
	*b = ByteSize(f * mult)
	return nil
}

// JSONSchema describes ByteSize in the generated schema.
func (ByteSize) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "integer", Minimum: "0"},
			{Type: "string", Pattern: `^[0-9]+(\.[0-9]+)? ?(KiB|MiB|GiB|TiB|Ki|Mi|Gi|Ti|KB|MB|GB|TB|K|M|G|T|B)?$`},
		},
		Description: "Bytes, or a size with a unit: 512MiB, 8GiB.",
	}
}
