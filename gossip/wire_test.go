package gossip

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/serf/coordinate"
)

func TestWireRoundTrip(t *testing.T) {
	withCoord := sampleState()
	withCoord.Coordinate = coordinate.NewCoordinate(coordinate.DefaultConfig())
	withCoord.Coordinate.Vec[2] = 0.004
	summary := sampleState()
	summary.HasInventory, summary.Containers = false, nil
	for _, tc := range []struct {
		desc string
		st   *nodeState
	}{
		{"full state", sampleState()},
		{"with coordinate", withCoord},
		{"summary without inventory", summary},
		{"minimal", &nodeState{Name: "n", Version: Version{1, 1}}},
		{"empty inventory", &nodeState{Name: "n", Version: Version{1, 1}, HasInventory: true}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := decodeState(encodeState(tc.st))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.st, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	tiny := &nodeState{Name: "n", Version: Version{1, 1}}
	if n := len(encodeState(tiny)) - 2; n != minStateBytes {
		t.Errorf("smallest state is %d bytes, minStateBytes says %d", n, minStateBytes)
	}
	if got, err := decodePushPull(encodePushPull([]*nodeState{tiny, tiny, tiny})); err != nil || len(got) != 3 {
		t.Errorf("push-pull of tiny states: %v, %d", err, len(got))
	}
	pp, err := decodePushPull(encodePushPull([]*nodeState{sampleState(), withCoord}))
	if err != nil || len(pp) != 2 {
		t.Fatalf("push-pull: %v, %d states", err, len(pp))
	}
	m, err := decodeMeta(encodeMeta(nodeMeta{Drain: true, Site: "s1"}))
	if err != nil || m != (nodeMeta{Drain: true, Site: "s1"}) {
		t.Fatalf("meta: %+v %v", m, err)
	}
	c, err := decodePing(encodePing(withCoord.Coordinate))
	if err != nil || !cmp.Equal(c, withCoord.Coordinate) {
		t.Fatalf("ping: %+v %v", c, err)
	}
}

func TestMetaFitsMemberlistLimit(t *testing.T) {
	// The largest meta Validate allows: a maxMetaSite-byte site.
	b := encodeMeta(nodeMeta{Drain: true, Site: string(make([]byte, maxMetaSite))})
	if len(b) > 512 { // memberlist.MetaMaxSize
		t.Fatalf("meta of %d bytes exceeds memberlist.MetaMaxSize", len(b))
	}
}

func TestDecodersRejectMalformed(t *testing.T) {
	good := encodeState(sampleState())
	for _, tc := range []struct {
		desc string
		b    []byte
	}{
		{"empty", nil},
		{"kind only", []byte{msgState}},
		{"wrong kind", append([]byte{msgPing}, good[1:]...)},
		{"wrong revision", append([]byte{msgState, 9}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"huge string length", []byte{msgState, wireRevision, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"unknown flags", append([]byte{msgState, wireRevision, 0x80}, good[3:]...)},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := decodeState(tc.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
	nan := coordinate.NewCoordinate(coordinate.DefaultConfig())
	b := encodePing(nan)
	for i := 3; i < 11; i++ {
		b[i] = 0xff // a NaN in the first component
	}
	if _, err := decodePing(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("NaN coordinate: got %v, want ErrMalformed", err)
	}
}

// The fuzz targets: nothing may panic, nothing invalid may come out, and whatever decodes
// must survive encode-then-decode unchanged (the decoders accept only what the encoders
// can say).
// Run each with: go test ./gossip -run '^$' -fuzz '^FuzzDecodeState$' -fuzztime 1m

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(sampleState()))
	s := sampleState()
	s.Coordinate = coordinate.NewCoordinate(coordinate.DefaultConfig())
	f.Add(encodeState(s))
	f.Add([]byte{msgState, wireRevision})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := decodeState(encodeState(st))
		if err != nil {
			t.Fatalf("re-encoding of %x does not decode: %v", b, err)
		}
		if diff := cmp.Diff(st, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("encode-decode changed %x:\n%s", b, diff)
		}
	})
}

func FuzzDecodePushPull(f *testing.F) {
	f.Add(encodePushPull([]*nodeState{sampleState()}))
	f.Add(encodePushPull(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		sts, err := decodePushPull(b)
		if err != nil {
			return
		}
		again, err := decodePushPull(encodePushPull(sts))
		if err != nil {
			t.Fatalf("re-encoding of %x does not decode: %v", b, err)
		}
		if diff := cmp.Diff(sts, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("encode-decode changed %x:\n%s", b, diff)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(nodeMeta{Drain: true, Site: "s1"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if len(b) > 512 {
			t.Fatalf("accepted a meta of %d bytes", len(b))
		}
		if again, err := decodeMeta(encodeMeta(m)); err != nil || again != m {
			t.Fatalf("encode-decode changed %x: %+v %v", b, again, err)
		}
	})
}

func FuzzDecodePing(f *testing.F) {
	f.Add(encodePing(coordinate.NewCoordinate(coordinate.DefaultConfig())))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodePing(b)
		if err != nil {
			return
		}
		if !c.IsValid() {
			t.Fatalf("decoded an invalid coordinate %+v", c)
		}
	})
}
