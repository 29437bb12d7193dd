package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// APIKey is an API key as stored, without its secret.
type APIKey struct {
	ID        string // short public id: 12 characters of lower-case base32
	Name      string
	Domain    string // the XMPP domain it may act on
	ReadOnly  bool
	CreatedAt time.Time
	RevokedAt time.Time // zero if active
	LastUsed  time.Time // zero if never; updated at most once a minute
}

// Format of an API key secret: "adk_" + ID + "_" + 32 random bytes in
// unpadded base64url (43 characters).
const (
	apiKeyPrefix    = "adk_"
	apiKeyIDLen     = 12
	apiKeyRandLen   = 32
	apiKeySecretLen = len(apiKeyPrefix) + apiKeyIDLen + 1 + 43
	// apiKeyIDAlphabet is lower-case base32 (RFC 4648 letters and digits):
	// no '_', so the ID's end is plain, and nothing that looks alike in print.
	apiKeyIDAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
	// maxAPIKeyName bounds a key's name, in characters.
	maxAPIKeyName = 64
	// lastUsedEvery is how stale LastUsed may get: APIKeyBySecret writes it
	// at most this often per key, so that using a key is not a disk write.
	lastUsedEvery = time.Minute
)

var errKeyName = &kindError{sentinels: []error{ErrExists}, msg: "store: an active API key has this name"}

// CreateAPIKey creates an API key and returns its secret, which is not
// stored and cannot be had again: only its SHA-256 hash is kept.
// name is 1 to 64 printable characters without surrounding spaces and
// unique among the active keys (ErrExists); domain is the domain of an XMPP
// JID, kept in its canonical form. Bad values are ErrInvalid.
func (db *DB) CreateAPIKey(ctx context.Context, name, domain string, readOnly bool) (string, APIKey, error) {
	return db.createAPIKey(ctx, name, domain, readOnly, nil)
}

// CreateAPIKeyAudited is CreateAPIKey that appends audit to the audit in
// the same transaction, with the new key's ID added to its targets: a key
// exists only with its audit entry, even after a crash, so a key whose
// secret nobody was shown is never left active. It returns the entry's ID
// too. The entry is not group-committed (see AppendAudit); keys are made
// seldom.
func (db *DB) CreateAPIKeyAudited(ctx context.Context, name, domain string, readOnly bool, audit session.AuditEntry) (string, APIKey, int64, error) {
	if audit.Actor == "" || audit.Action == "" {
		return "", APIKey{}, 0, fmt.Errorf("%w: an audit entry needs an actor and an action", ErrInvalid)
	}
	if audit.Time.IsZero() {
		audit.Time = time.Now()
	}
	w := &auditWrite{entry: audit}
	secret, key, err := db.createAPIKey(ctx, name, domain, readOnly, w)
	return secret, key, w.id, err
}

// createAPIKey is CreateAPIKey, which also writes audit when it is not nil.
func (db *DB) createAPIKey(ctx context.Context, name, domain string, readOnly bool, audit *auditWrite) (string, APIKey, error) {
	if err := checkAPIKeyName(name); err != nil {
		return "", APIKey{}, err
	}
	d, err := jid.Parse(domain)
	if domain == "" || err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return "", APIKey{}, fmt.Errorf("%w: API key domain %q is not a domain name", ErrInvalid, domain)
	}
	key := APIKey{
		Name:      name,
		Domain:    d.Domainpart(),
		ReadOnly:  readOnly,
		CreatedAt: time.UnixMilli(time.Now().UnixMilli()).UTC(),
	}
	var secret string
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL`, name).Scan(&one)
		if err == nil {
			return fmt.Errorf("%w: %q", errKeyName, name)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// 60 random bits make a clash unlikely, not impossible: draw again.
		for range 3 {
			key.ID, secret = newAPIKeySecret()
			res, err := tx.ExecContext(ctx,
				`INSERT INTO api_keys (id, name, domain, read_only, secret_hash, created_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
				key.ID, key.Name, key.Domain, key.ReadOnly, hashSecret(secret), key.CreatedAt.UnixMilli())
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				if audit == nil {
					return nil
				}
				audit.entry.Targets = append(slices.Clone(audit.entry.Targets), key.ID)
				return db.insertAudit(tx, []*auditWrite{audit})
			}
		}
		return errors.New("no free API key id")
	})
	if err != nil {
		return "", APIKey{}, wrapErr("create API key", fmt.Sprintf("%q", name), err)
	}
	return secret, key, nil
}

// checkAPIKeyName returns ErrInvalid for a name CreateAPIKey refuses.
func checkAPIKeyName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: API key name is empty", ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: API key name is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(name) > maxAPIKeyName:
		return fmt.Errorf("%w: API key name is longer than %d characters", ErrInvalid, maxAPIKeyName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: API key name %q begins or ends with a space", ErrInvalid, name)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%w: API key name %q has a character that is not printable", ErrInvalid, name)
	}
	return nil
}

// newAPIKeySecret returns a new random ID and the secret that carries it.
func newAPIKeySecret() (id, secret string) {
	var b [apiKeyIDLen + apiKeyRandLen]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	idb := make([]byte, apiKeyIDLen)
	for i := range idb {
		idb[i] = apiKeyIDAlphabet[b[i]&31] // 256 is a multiple of 32: unbiased
	}
	id = string(idb)
	return id, apiKeyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[apiKeyIDLen:])
}

// parseAPIKeySecret returns the ID of a well-formed secret, and false for
// anything else.
func parseAPIKeySecret(secret string) (string, bool) {
	if len(secret) != apiKeySecretLen || !strings.HasPrefix(secret, apiKeyPrefix) {
		return "", false
	}
	rest := secret[len(apiKeyPrefix):]
	id, random := rest[:apiKeyIDLen], rest[apiKeyIDLen:]
	if !validAPIKeyID(id) || random[0] != '_' {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(random[1:])
	if err != nil || len(b) != apiKeyRandLen {
		return "", false
	}
	return id, true
}

// validAPIKeyID reports whether id has the form of an API key ID.
func validAPIKeyID(id string) bool {
	if len(id) != apiKeyIDLen {
		return false
	}
	for i := range len(id) {
		if strings.IndexByte(apiKeyIDAlphabet, id[i]) < 0 {
			return false
		}
	}
	return true
}

// hashSecret is the stored form of a secret: base64 of its SHA-256.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// apiKeyColumns are the columns scanAPIKey reads, in order.
const apiKeyColumns = `id, name, domain, read_only, created_at, revoked_at, last_used`

// APIKeyBySecret returns the API key whose secret this is.
// A malformed secret, an unknown ID or a wrong secret for a known ID is
// ErrNotFound; the right secret of a revoked key is session.ErrKeyRevoked, returned
// with the key.
// The hashes are compared in constant time.
// It records the use in LastUsed when that is more than a minute old, best
// effort.
func (db *DB) APIKeyBySecret(ctx context.Context, secret string) (APIKey, error) {
	id, ok := parseAPIKeySecret(secret)
	if !ok {
		return APIKey{}, fmt.Errorf("%w: malformed secret", errNoAPIKey)
	}
	var stored string
	row := db.sql.QueryRowContext(ctx, `SELECT `+apiKeyColumns+`, secret_hash FROM api_keys WHERE id = $1`, id)
	key, err := scanAPIKey(row, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("%w: %s", errNoAPIKey, id)
	}
	if err != nil {
		return APIKey{}, wrapErr("get API key", id, err)
	}
	want, err := base64.StdEncoding.DecodeString(stored)
	if err != nil {
		return APIKey{}, wrapErr("get API key", id, fmt.Errorf("decode stored hash: %w", err))
	}
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return APIKey{}, fmt.Errorf("%w: %s: wrong secret", errNoAPIKey, id)
	}
	if !key.RevokedAt.IsZero() {
		return key, fmt.Errorf("%w: %s", session.ErrKeyRevoked, id)
	}
	if now := time.Now(); now.Sub(key.LastUsed) >= lastUsedEvery {
		ms := now.UnixMilli()
		// Bookkeeping, not an answer to the caller: a failure (a busy
		// database, a cancelled request) only leaves LastUsed older.
		if _, err := db.sql.ExecContext(ctx,
			`UPDATE api_keys SET last_used = $2 WHERE id = $1 AND (last_used IS NULL OR last_used < $2)`,
			id, ms); err == nil {
			key.LastUsed = time.UnixMilli(ms).UTC()
		}
	}
	return key, nil
}

// APIKeys returns every API key, revoked ones included, in the order they
// were created.
func (db *DB) APIKeys(ctx context.Context) ([]APIKey, error) {
	// created_at is in milliseconds and ids are random, so keys created in the
	// same millisecond are ordered by SQLite's rowid, which grows with every
	// insert (keys are revoked, never deleted). PostgreSQL would use an
	// identity column here.
	rows, err := db.sql.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("store: list API keys: %w", err)
	}
	defer rows.Close()
	keys := []APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list API keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list API keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes the API key id at once: APIKeyBySecret answers
// session.ErrKeyRevoked from then on.
// An unknown id is ErrNotFound; revoking a revoked key again is not an error
// and keeps the first revocation time.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	res, err := db.sql.ExecContext(ctx,
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, time.Now().UnixMilli())
	if err != nil {
		return wrapErr("revoke API key", id, diskFull(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("revoke API key", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", errNoAPIKey, id)
	}
	return nil
}

// scanAPIKey reads the apiKeyColumns of one row, then extra.
func scanAPIKey(row interface{ Scan(...any) error }, extra ...any) (APIKey, error) {
	var (
		k                   APIKey
		createdAt           int64
		revokedAt, lastUsed sql.NullInt64
	)
	dst := append([]any{&k.ID, &k.Name, &k.Domain, &k.ReadOnly, &createdAt, &revokedAt, &lastUsed}, extra...)
	if err := row.Scan(dst...); err != nil {
		return APIKey{}, err
	}
	k.CreatedAt = time.UnixMilli(createdAt).UTC()
	if revokedAt.Valid {
		k.RevokedAt = time.UnixMilli(revokedAt.Int64).UTC()
	}
	if lastUsed.Valid {
		k.LastUsed = time.UnixMilli(lastUsed.Int64).UTC()
	}
	return k, nil
}
