package accessor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stashplane/stashplane/internal/layout"
)

// A Grant is what a scoped token lets its holder do on a brokered storage:
// reach the keys under its prefixes, until it expires. The provider mints
// one for each owner of Jobs in another namespace (a BackupConfiguration, a
// RestoreSession) over the prefixes of that owner's Repositories, signed
// with the accessor's own token, so the accessor checks it without asking
// anyone and the provider's token still reaches everything.
type Grant struct {
	// Prefixes are the key prefixes the holder may read, write, list and
	// delete under; each is a clean path ending in "/".
	Prefixes []string `json:"p"`
	// Expires is when the grant ends (Unix seconds).
	Expires int64 `json:"e"`
	// Subject names the owner the grant was minted for, for the accessor's
	// log; it grants nothing.
	Subject string `json:"s"`
	// ReadOnly limits the holder to reading and listing under its
	// prefixes, and to the one write a reader of a restic repository
	// makes: its own lock files (restic's restore takes a shared lock, and
	// a restore removes a dead prune's lock). Restores get read-only
	// grants; backups, which write Snapshots, get full ones.
	ReadOnly bool `json:"r,omitempty"`
}

// grantPrefix starts every scoped token, so that the accessor tells one
// from its own token at a glance.
const grantPrefix = "spg1."

// GrantLifetime is how long a minted grant lasts, and GrantRenewal how
// often its owner's controller mints a fresh one: a grant outlives a day
// in which its controller cannot run by a week.
const (
	GrantLifetime = 8 * 24 * time.Hour
	GrantRenewal  = 24 * time.Hour
)

// GrantExpiry is the expiry of a grant minted at now: the end of the
// renewal period now falls in plus the lifetime, so that grants minted
// within one period are equal and a controller that re-applies one changes
// nothing until the next period.
func GrantExpiry(now time.Time) time.Time {
	return now.UTC().Truncate(GrantRenewal).Add(GrantLifetime)
}

// Mint signs g with key (the accessor's token) into a scoped token. It
// refuses a grant with no prefix or with one that is not a clean relative
// path ending in "/", since that would reach beyond a Repository.
func Mint(key string, g Grant) (string, error) {
	if key == "" {
		return "", errors.New("cannot mint a storage grant: the accessor has no token yet")
	}
	if len(g.Prefixes) == 0 {
		return "", errors.New("cannot mint a storage grant: it names no repository prefix")
	}
	for _, p := range g.Prefixes {
		if !cleanPrefix(p) {
			return "", fmt.Errorf("cannot mint a storage grant for prefix %q: a grant reaches only a clean repository path ending in /", p)
		}
	}
	body, err := json.Marshal(g)
	if err != nil {
		return "", fmt.Errorf("cannot mint a storage grant: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(body)
	return grantPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(sign(key, payload)), nil
}

func sign(key, payload string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(grantPrefix + payload))
	return m.Sum(nil)
}

// cleanPrefix says whether p is a relative, clean path ending in "/".
func cleanPrefix(p string) bool {
	if p == "" || p == "/" || !strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") {
		return false
	}
	for _, part := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// errGrant says why a scoped token is not accepted; its text names no
// part of the token.
var errGrant = errors.New("the storage grant is not valid")

// verifyGrant checks a scoped token against key at now.
func verifyGrant(key, token string, now time.Time) (*Grant, error) {
	rest, ok := strings.CutPrefix(token, grantPrefix)
	if !ok || key == "" {
		return nil, errGrant
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errGrant
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, sign(key, payload)) {
		return nil, errGrant
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errGrant
	}
	g := &Grant{}
	if err := json.Unmarshal(body, g); err != nil || len(g.Prefixes) == 0 {
		return nil, errGrant
	}
	for _, p := range g.Prefixes {
		if !cleanPrefix(p) {
			return nil, errGrant
		}
	}
	if now.Unix() >= g.Expires {
		return nil, errors.New("the storage grant has expired: its owner's controller mints a new one daily")
	}
	return g, nil
}

// allows says whether the grant reaches key.
func (g *Grant) allows(key string) bool {
	return g.prefixOf(key) != ""
}

// prefixOf is the grant's prefix key lies under, or "".
func (g *Grant) prefixOf(key string) string {
	for _, p := range g.Prefixes {
		if strings.HasPrefix(key, p) {
			return p
		}
	}
	return ""
}

// writes says whether the grant may write or delete key, which it
// reaches: any key for a full grant, only a restic lock file of one of
// its repositories for a read-only one.
func (g *Grant) writes(key string) bool {
	if !g.ReadOnly {
		return true
	}
	p := g.prefixOf(key)
	return p != "" && layout.IsResticLockKey(strings.TrimSuffix(p, "/"), key)
}
