package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseUserSites(t *testing.T) {
	good := []struct {
		desc, in string
		want     []UserSite
	}{
		{"the issue's example", "site-a:0.7,site-b:0.3", []UserSite{{"site-a", 0.7}, {"site-b", 0.3}}},
		{"spaces around separators", " site-a : 2 , b:1 ", []UserSite{{"site-a", 2}, {"b", 1}}},
		{"one site", "edge-3:1", []UserSite{{"edge-3", 1}}},
	}
	for _, tc := range good {
		got, err := ParseUserSites(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.desc, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s: %s", tc.desc, d)
		}
	}
	bad := []struct{ desc, in, msg string }{
		{"empty", "", "empty"},
		{"blank", "  ", "empty"},
		{"no weight", "site-a", "want site:weight"},
		{"weight not a number", "site-a:lots", "not a number"},
		{"zero weight", "site-a:0", "must be > 0"},
		{"negative weight", "site-a:-1", "must be > 0"},
		{"NaN", "site-a:NaN", "must be > 0"},
		{"infinite", "site-a:Inf", "must be > 0"},
		{"empty site", ":1", "must be 1..64 bytes"},
		{"twice", "a:1,a:2", "given twice"},
		{"trailing comma", "a:1,", "want site:weight"},
		{"space inside a name", "site a:1", "no spaces"},
		{"long name", strings.Repeat("x", 65) + ":1", "must be 1..64 bytes"},
	}
	for _, tc := range bad {
		_, err := ParseUserSites(tc.in)
		if err == nil || !errors.Is(err, ErrInvalidUserSites) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %q: got %v, want an ErrInvalidUserSites saying %q", tc.desc, tc.in, err, tc.msg)
		}
	}
	many := make([]UserSite, MaxUserSites+1)
	for i := range many {
		many[i] = UserSite{Site: fmt.Sprintf("s%d", i), Weight: 1}
	}
	if err := CheckUserSites(many); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("65 sites: %v", err)
	}
}
