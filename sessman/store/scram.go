package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
	"unicode/utf8"

	"github.com/adhocd/adhocd/sessman/session"
)

// Hash names accepted by SCRAM and DeriveSCRAM, as they appear in the SASL
// mechanism names SCRAM-SHA-1 and SCRAM-SHA-256.
const (
	// HashSHA1 names SHA-1, the hash of SCRAM-SHA-1 (RFC 5802).
	HashSHA1 = "SHA-1"
	// HashSHA256 names SHA-256, the hash of SCRAM-SHA-256 (RFC 7677).
	HashSHA256 = "SHA-256"
)

const (
	// iterations is the PBKDF2 iteration count of new credentials, the
	// minimum RFC 7677 §4 recommends.
	iterations = 4096
	// saltLen is the length in bytes of the random salt of new credentials.
	saltLen = 16
	// maxPasswordLen bounds a password in bytes.
	maxPasswordLen = 1024
)

// DeriveSCRAM computes the SCRAM keys of a password for hash "SHA-1" or
// "SHA-256" as RFC 5802 §3 defines them:
// SaltedPassword = PBKDF2(password, salt, iterations), ClientKey =
// HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey) and ServerKey
// = HMAC(SaltedPassword, "Server Key").
// The password is used as given, without SASLprep.
func DeriveSCRAM(hashName string, password, salt []byte, iterations int) (session.SCRAMKeys, error) {
	newHash, err := hashFunc(hashName)
	if err != nil {
		return session.SCRAMKeys{}, err
	}
	if iterations < 1 {
		return session.SCRAMKeys{}, fmt.Errorf("store: SCRAM iteration count %d is not positive", iterations)
	}
	salted, err := pbkdf2.Key(newHash, string(password), salt, iterations, newHash().Size())
	if err != nil {
		return session.SCRAMKeys{}, fmt.Errorf("store: derive SCRAM keys: %w", err)
	}
	clientKey := hmacSum(newHash, salted, "Client Key")
	h := newHash()
	h.Write(clientKey)
	return session.SCRAMKeys{
		Salt:       bytes.Clone(salt),
		Iterations: iterations,
		StoredKey:  h.Sum(nil),
		ServerKey:  hmacSum(newHash, salted, "Server Key"),
	}, nil
}

// hashFunc maps a SCRAM hash name to its hash function.
func hashFunc(name string) (func() hash.Hash, error) {
	switch name {
	case HashSHA1:
		return sha1.New, nil
	case HashSHA256:
		return sha256.New, nil
	default:
		return nil, fmt.Errorf("store: unsupported SCRAM hash %q (want %q or %q)", name, HashSHA1, HashSHA256)
	}
}

// hmacSum returns HMAC(key, msg) with the given hash.
func hmacSum(newHash func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// checkPassword reports whether a password is acceptable: non-empty, at most
// maxPasswordLen bytes and valid UTF-8.
func checkPassword(password string) error {
	switch {
	case password == "":
		return fmt.Errorf("%w: it is empty", ErrInvalidPassword)
	case len(password) > maxPasswordLen:
		return fmt.Errorf("%w: it is longer than %d bytes", ErrInvalidPassword, maxPasswordLen)
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: it is not valid UTF-8", ErrInvalidPassword)
	}
	return nil
}

// credential is the SCRAM keys of one account for one hash, as stored.
type credential struct {
	hash string
	keys session.SCRAMKeys
}

// newCredentials checks a password and derives its keys for every supported
// hash, each with its own random salt.
func newCredentials(password string) ([]credential, error) {
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	creds := make([]credential, 0, 2)
	for _, name := range []string{HashSHA1, HashSHA256} {
		salt := make([]byte, saltLen)
		// crypto/rand.Read never returns an error since Go 1.24; it crashes
		// the program if the system has no randomness.
		_, _ = rand.Read(salt)
		keys, err := DeriveSCRAM(name, []byte(password), salt, iterations)
		if err != nil {
			return nil, err
		}
		creds = append(creds, credential{hash: name, keys: keys})
	}
	return creds, nil
}

// passwordMatches reports, in constant time, whether password derives keys.
func passwordMatches(hashName, password string, keys session.SCRAMKeys) bool {
	if checkPassword(password) != nil {
		return false
	}
	got, err := DeriveSCRAM(hashName, []byte(password), keys.Salt, keys.Iterations)
	if err != nil {
		return false
	}
	return hmac.Equal(got.StoredKey, keys.StoredKey)
}
