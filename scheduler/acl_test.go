package scheduler

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokens(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	f := NewFSM(FSMConfig{})
	applyAll(t, f, testCmd{typ: TypeCreateToken, p: CreateToken{ID: "t1", Name: "ops", Role: TokenOperator, Hash: hash}, by: "admin (operator)"})
	tok, ok := f.State().TokenByHash(hash)
	if !ok || tok.Name != "ops" || tok.Role != TokenOperator || tok.CreatedBy != "admin (operator)" || !tok.CreatedAt.Equal(epoch) {
		t.Fatalf("TokenByHash: %+v, %v", tok, ok)
	}
	for _, tc := range []struct {
		desc string
		cmd  testCmd
		want error
	}{
		{"same ID", testCmd{typ: TypeCreateToken, p: CreateToken{ID: "t1", Name: "x", Role: TokenViewer, Hash: strings.Repeat("cd", 32)}}, ErrConflict},
		{"same name", testCmd{typ: TypeCreateToken, p: CreateToken{ID: "t2", Name: "ops", Role: TokenViewer, Hash: strings.Repeat("cd", 32)}}, ErrConflict},
		{"same hash", testCmd{typ: TypeCreateToken, p: CreateToken{ID: "t2", Name: "x", Role: TokenViewer, Hash: hash}}, ErrConflict},
		{"unknown ID", testCmd{typ: TypeDeleteToken, p: DeleteToken{ID: "nope"}}, ErrNotFound},
	} {
		if res := applyData(f, tc.cmd.encode(t)); !errors.Is(res.Err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.desc, res.Err, tc.want)
		}
	}
	for _, p := range []CreateToken{
		{ID: "t3", Name: "x", Role: "admin", Hash: hash},
		{ID: "t3", Name: "x", Role: TokenViewer, Hash: "secret"},
		{ID: "t3", Name: "", Role: TokenViewer, Hash: hash},
	} {
		if _, err := Encode(TypeCreateToken, p, epoch, "a"); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("Encode %+v: %v, want invalid", p, err)
		}
	}
	// A snapshot keeps the tokens.
	g := NewFSM(FSMConfig{})
	if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, f)))); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f.State(), g.State()); d != "" {
		t.Errorf("restored (-want +got):\n%s", d)
	}
	applyAll(t, f, testCmd{typ: TypeDeleteToken, p: DeleteToken{ID: "t1"}})
	if _, ok := f.State().TokenByHash(hash); ok || len(f.State().SortedTokens()) != 0 {
		t.Error("token still there after delete")
	}
}
