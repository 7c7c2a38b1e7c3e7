package agent

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// A content manifest is an age file. Its file key is wrapped by one
// stanza of type sealStanza:
//
//	-> stashplane-scrypt <salt, base64> <work factor>
//	<nonce (24 bytes) || XChaCha20-Poly1305 of the file key, base64>
//
// under the key scrypt derives from the repository's password and
// sealLabel followed by the salt. Unlike age's own scrypt stanza, whose salt
// is drawn afresh for every file, a salt here may seal many manifests of
// the same repository, each with its own file key and nonce: a run that
// opened one manifest seals the next under the key it already derived, so
// a backup reading the previous manifest and writing its own pays for one
// derivation, not two. Sharing a salt between files of one password gives
// an attacker nothing: the salt keeps precomputed tables useless across
// passwords, and one manifest is as good a target as many.
//
// Manifests written before this seal have age's scrypt stanza and are
// still opened.
const (
	sealStanza = "stashplane-scrypt"
	// sealLabel separates these keys from any other use of the password.
	sealLabel    = "stashplane.io/manifest-seal/v1"
	sealSaltSize = 16
	// fileKeySize is age's file key size.
	fileKeySize = 16
)

// manifestKeys seals and opens a repository's content manifests with its
// password, deriving each key (scrypt) once per salt. It is an age
// Recipient, sealing under the key the run last opened a manifest with
// (or a new salt), and an age Identity. Safe for concurrent use.
type manifestKeys struct {
	password []byte

	mu   sync.Mutex
	keys map[string]*derivedKey
	// last is the key of the last manifest opened at manifestWorkFactor.
	last *derivedKey
}

// derivedKey is the key of one salt and work factor, derived once.
type derivedKey struct {
	once sync.Once
	salt []byte
	logN int
	key  []byte
	err  error
}

func newManifestKeys(password string) *manifestKeys {
	return &manifestKeys{password: []byte(password), keys: map[string]*derivedKey{}}
}

// derive returns the key of salt at work factor logN, deriving it on first
// use; callers asking for the same one meanwhile wait for it.
func (k *manifestKeys) derive(salt []byte, logN int) (*derivedKey, error) {
	k.mu.Lock()
	id := string(salt) + "/" + strconv.Itoa(logN)
	d, ok := k.keys[id]
	if !ok {
		d = &derivedKey{salt: salt, logN: logN}
		k.keys[id] = d
	}
	k.mu.Unlock()
	d.once.Do(func() {
		d.key, d.err = scrypt.Key(k.password, append([]byte(sealLabel), salt...), 1<<logN, 8, 1, chacha20poly1305.KeySize)
	})
	return d, d.err
}

// Wrap seals fileKey under the key of the last manifest opened, or under a
// new salt when none was.
func (k *manifestKeys) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	if len(k.password) == 0 {
		return nil, errors.New("cannot seal the manifest: the repository's password is empty")
	}
	k.mu.Lock()
	d := k.last
	k.mu.Unlock()
	if d == nil {
		salt := make([]byte, sealSaltSize)
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("cannot draw a salt: %w", err)
		}
		var err error
		if d, err = k.derive(salt, manifestWorkFactor); err != nil {
			return nil, fmt.Errorf("cannot derive the manifest key: %w", err)
		}
		k.mu.Lock()
		if k.last == nil {
			k.last = d
		}
		k.mu.Unlock()
	}
	aead, err := chacha20poly1305.NewX(d.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(fileKey)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("cannot draw a nonce: %w", err)
	}
	return []*age.Stanza{{
		Type: sealStanza,
		Args: []string{base64.RawStdEncoding.EncodeToString(d.salt), strconv.Itoa(d.logN)},
		Body: aead.Seal(nonce, nonce, fileKey, nil),
	}}, nil
}

// Unwrap opens a manifest's file key. A stanza asking for more work than
// manifestWorkFactor is refused before scrypt spends it; one that another
// recipient's stanza accompanies is refused, as age refuses it for its own
// scrypt stanza.
func (k *manifestKeys) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type == sealStanza && len(stanzas) != 1 {
			return nil, errors.New("a manifest's seal must be its only recipient")
		}
	}
	if len(stanzas) != 1 || stanzas[0].Type != sealStanza {
		return nil, fmt.Errorf("%w: not sealed with a Stashplane manifest key", age.ErrIncorrectIdentity)
	}
	s := stanzas[0]
	if len(s.Args) != 2 {
		return nil, errors.New("malformed manifest seal: want a salt and a work factor")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(s.Args[0])
	if err != nil || len(salt) != sealSaltSize {
		return nil, errors.New("malformed manifest seal: bad salt")
	}
	logN, err := strconv.Atoi(s.Args[1])
	if err != nil || strconv.Itoa(logN) != s.Args[1] || logN <= 0 {
		return nil, errors.New("malformed manifest seal: bad work factor")
	}
	if logN > manifestWorkFactor {
		return nil, fmt.Errorf("the manifest's seal asks for work factor %d, more than the %d manifests are sealed with", logN, manifestWorkFactor)
	}
	if len(s.Body) != chacha20poly1305.NonceSizeX+fileKeySize+chacha20poly1305.Overhead {
		return nil, errors.New("malformed manifest seal: bad body")
	}
	d, err := k.derive(salt, logN)
	if err != nil {
		return nil, fmt.Errorf("cannot derive the manifest key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(d.key)
	if err != nil {
		return nil, err
	}
	fileKey, err := aead.Open(nil, s.Body[:chacha20poly1305.NonceSizeX], s.Body[chacha20poly1305.NonceSizeX:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: not the repository's password", age.ErrIncorrectIdentity)
	}
	if logN == manifestWorkFactor {
		k.mu.Lock()
		k.last = d
		k.mu.Unlock()
	}
	return fileKey, nil
}
