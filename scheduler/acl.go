package scheduler

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Token roles: what a bearer token lets its holder do through the API.
const (
	// TokenViewer reads everything and changes nothing.
	TokenViewer = "viewer"
	// TokenOperator may also drain, undrain and migrate.
	TokenOperator = "operator"
)

// Token is an API bearer token as the state records it: never the secret, only its
// SHA-256 (hex), so that neither the raft log nor a snapshot can be replayed as a
// credential.
type Token struct {
	// ID names the token in lists and in delete; it is not secret.
	ID string `json:"id"`
	// Name is who or what holds it, as given at creation (logged as the caller).
	Name string `json:"name"`
	// Role is TokenViewer or TokenOperator.
	Role string `json:"role"`
	// Hash is the hex SHA-256 of the secret.
	Hash string `json:"hash"`
	// CreatedBy is who created it (Command.By); CreatedAt when (Command.At).
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// Command types of the token commands.
const (
	TypeCreateToken CommandType = "create-token"
	TypeDeleteToken CommandType = "delete-token"
)

// CreateToken records a new token. It is refused when its ID, name or hash is in use.
type CreateToken struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	Hash string `json:"hash"`
}

// DeleteToken removes a token: it is refused (not found) for an ID the state does not have.
type DeleteToken struct {
	ID string `json:"id"`
}

func (CreateToken) commandType() CommandType { return TypeCreateToken }
func (DeleteToken) commandType() CommandType { return TypeDeleteToken }

func (p CreateToken) check() error {
	switch {
	case !validID(p.ID):
		return missing("id")
	case !validName(p.Name):
		return missing("name")
	case p.Role != TokenViewer && p.Role != TokenOperator:
		return reject(ErrInvalidCommand, "role %q: want viewer or operator", truncate(p.Role, 64))
	case !validHash(p.Hash):
		return missing("hash (64 hex digits)")
	}
	return nil
}

func (p DeleteToken) check() error {
	if !validID(p.ID) {
		return missing("id")
	}
	return nil
}

// validHash accepts a hex SHA-256.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, r := range h {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

func createToken(s *State, cmd *Command, p *CreateToken) error {
	for _, t := range s.Tokens {
		switch {
		case t.ID == p.ID:
			return reject(ErrConflict, "token ID %q in use", p.ID)
		case t.Name == p.Name:
			return reject(ErrConflict, "a token named %q exists (ID %s)", p.Name, t.ID)
		case t.Hash == p.Hash:
			return reject(ErrConflict, "token hash in use")
		}
	}
	s.Tokens[p.ID] = Token{ID: p.ID, Name: p.Name, Role: p.Role, Hash: p.Hash, CreatedBy: cmd.By, CreatedAt: cmd.At}
	return nil
}

func deleteToken(s *State, p *DeleteToken) error {
	if _, ok := s.Tokens[p.ID]; !ok {
		return reject(ErrNotFound, "no token %q", p.ID)
	}
	delete(s.Tokens, p.ID)
	return nil
}

// TokenByHash returns the token whose secret hashes to hash.
func (s *State) TokenByHash(hash string) (Token, bool) {
	for _, t := range s.Tokens {
		if t.Hash == hash {
			return t, true
		}
	}
	return Token{}, false
}

// SortedTokens returns the tokens oldest first (by CreatedAt, then ID).
func (s *State) SortedTokens() []Token {
	out := slices.Collect(maps.Values(s.Tokens))
	slices.SortFunc(out, func(a, b Token) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	return out
}

// checkTokens is State.Check's part for tokens.
func (s *State) checkTokens(bad func(string, ...any)) {
	hashes := map[string]bool{}
	for id, t := range s.Tokens {
		if t.ID != id || (CreateToken{ID: t.ID, Name: t.Name, Role: t.Role, Hash: t.Hash}).check() != nil || hashes[t.Hash] {
			bad("token %q: invalid or duplicate", id)
		}
		hashes[t.Hash] = true
	}
}
