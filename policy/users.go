package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// LabelUserSites says where a container's users are, as sites with weights:
// godwit.io/user-sites=site-a:0.7,site-b:0.3. The live leader reads it from the container's
// labels; a value recorded through the API (`godwit users set`) takes precedence over it.
const LabelUserSites = "godwit.io/user-sites"

// Limits of a user-site list: what gossip carries per container, and the longest site name
// an agent config accepts.
const (
	MaxUserSites    = 64
	MaxSiteNameLen  = 64
	MaxUserWeight   = 1e9
	userSitesSyntax = "site:weight[,site:weight...], e.g. site-a:0.7,site-b:0.3"
)

// ErrInvalidUserSites is wrapped by every error ParseUserSites and CheckUserSites return.
var ErrInvalidUserSites = errors.New("policy: invalid user sites")

// ParseUserSites parses the value of LabelUserSites: comma-separated site:weight pairs.
// Spaces around the separators are allowed; the result is checked by CheckUserSites.
func ParseUserSites(s string) ([]UserSite, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty: want %s", ErrInvalidUserSites, userSitesSyntax)
	}
	var out []UserSite
	for i, part := range strings.Split(s, ",") {
		site, w, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("%w: entry %d %q: want site:weight (%s)", ErrInvalidUserSites, i+1, strings.TrimSpace(part), userSitesSyntax)
		}
		u, err := ParseUserSite(strings.TrimSpace(site), strings.TrimSpace(w))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		out = append(out, u)
	}
	if err := CheckUserSites(out); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseUserSite reads one site and its weight (a positive decimal number).
func ParseUserSite(site, weight string) (UserSite, error) {
	w, err := strconv.ParseFloat(weight, 64)
	if err != nil {
		return UserSite{}, fmt.Errorf("%w: site %q: weight %q is not a number", ErrInvalidUserSites, site, weight)
	}
	return UserSite{Site: site, Weight: w}, nil
}

// CheckUserSites checks a user-site list: 1..MaxUserSites entries, each a site name (1..64
// bytes, no spaces, commas, colons, equals signs or control characters) once, with a finite
// weight in (0, MaxUserWeight]. Weights are relative: they need not sum to one.
func CheckUserSites(us []UserSite) error {
	if len(us) == 0 {
		return fmt.Errorf("%w: no sites: want at least one site with a weight", ErrInvalidUserSites)
	}
	if len(us) > MaxUserSites {
		return fmt.Errorf("%w: %d sites, at most %d", ErrInvalidUserSites, len(us), MaxUserSites)
	}
	seen := map[string]bool{}
	for _, u := range us {
		if err := checkSiteName(u.Site); err != nil {
			return err
		}
		if seen[u.Site] {
			return fmt.Errorf("%w: site %q given twice", ErrInvalidUserSites, u.Site)
		}
		seen[u.Site] = true
		if math.IsNaN(u.Weight) || u.Weight <= 0 || u.Weight > MaxUserWeight {
			return fmt.Errorf("%w: site %q: weight %v must be > 0 and <= %g", ErrInvalidUserSites, u.Site, u.Weight, float64(MaxUserWeight))
		}
	}
	return nil
}

func checkSiteName(s string) error {
	if s == "" || len(s) > MaxSiteNameLen {
		return fmt.Errorf("%w: site name %q: must be 1..%d bytes", ErrInvalidUserSites, s, MaxSiteNameLen)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == ',' || r == ':' || r == '=' || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: site name %q: no spaces, commas, colons or equals signs", ErrInvalidUserSites, s)
		}
	}
	return nil
}
