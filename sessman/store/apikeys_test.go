package store_test

import (
	"crypto/sha256"
	"encoding/base64"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

var secretRE = regexp.MustCompile(`^adk_([a-z2-7]{12})_[A-Za-z0-9_-]{43}$`)

func TestCreateAPIKey(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)

	before := time.Now().Truncate(time.Millisecond)
	secret, key, err := db.CreateAPIKey(ctx, "deploy bot", "Example.ORG", true)
	require.NoError(t, err)
	m := secretRE.FindStringSubmatch(secret)
	require.NotNil(t, m, "secret %q", secret)
	assert.Equal(t, m[1], key.ID, "the secret carries the ID")
	assert.Equal(t, "deploy bot", key.Name)
	assert.Equal(t, "example.org", key.Domain, "canonical domain")
	assert.True(t, key.ReadOnly)
	assert.False(t, key.CreatedAt.Before(before))
	assert.True(t, key.RevokedAt.IsZero())
	assert.True(t, key.LastUsed.IsZero())

	// Only the hash of the secret is stored.
	var stored string
	rawQuery(t, path, "SELECT secret_hash FROM api_keys WHERE id = '"+key.ID+"'", &stored)
	sum := sha256.Sum256([]byte(secret))
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), stored)
	var n int
	rawQuery(t, path, "SELECT COUNT(*) FROM api_keys WHERE instr(id || name || domain || secret_hash, '"+secret[17:]+"') > 0", &n)
	assert.Zero(t, n, "the random part is nowhere")

	got, err := db.APIKeyBySecret(ctx, secret)
	require.NoError(t, err)
	assert.False(t, got.LastUsed.IsZero(), "the use is recorded")
	got.LastUsed = time.Time{}
	assert.Equal(t, key, got)

	other, key2, err := db.CreateAPIKey(ctx, "other", "localhost", false)
	require.NoError(t, err)
	assert.NotEqual(t, key.ID, key2.ID)
	assert.NotEqual(t, secret, other)
	got, err = db.APIKeyBySecret(ctx, other)
	require.NoError(t, err)
	assert.Equal(t, key2.ID, got.ID)
	assert.False(t, got.ReadOnly)
}

func TestAPIKeyBySecretRejects(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	secret, key, err := db.CreateAPIKey(ctx, "ci", "localhost", false)
	require.NoError(t, err)
	otherSecret, _, err := db.CreateAPIKey(ctx, "other", "localhost", false)
	require.NoError(t, err)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name        string
		whenSecret  string
		expectError error
	}{
		{name: "empty", whenSecret: "", expectError: store.ErrNotFound},
		{name: "no prefix", whenSecret: "xyz_" + secret[4:], expectError: store.ErrNotFound},
		{name: "truncated", whenSecret: secret[:len(secret)-1], expectError: store.ErrNotFound},
		{name: "extended", whenSecret: secret + "A", expectError: store.ErrNotFound},
		{name: "wrong random part", whenSecret: flip(secret, len(secret)-5), expectError: store.ErrNotFound},
		{name: "upper-case id", whenSecret: "adk_" + strings.ToUpper(key.ID) + secret[16:], expectError: store.ErrNotFound},
		{name: "unknown id", whenSecret: "adk_aaaaaaaaaaaa" + secret[16:], expectError: store.ErrNotFound},
		{name: "id of another key", whenSecret: otherSecret[:16] + secret[16:], expectError: store.ErrNotFound},
		{name: "no separator", whenSecret: secret[:16] + "A" + secret[17:], expectError: store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.APIKeyBySecret(ctx, tc.whenSecret)
			assert.ErrorIs(t, err, tc.expectError)
			assert.Equal(t, store.APIKey{}, got)
			assert.NotContains(t, err.Error(), "account", "names the API key")
		})
	}
}

func TestRevokeAPIKey(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	secret, key, err := db.CreateAPIKey(ctx, "ci", "localhost", false)
	require.NoError(t, err)

	require.NoError(t, db.RevokeAPIKey(ctx, key.ID))
	got, err := db.APIKeyBySecret(ctx, secret)
	require.ErrorIs(t, err, session.ErrKeyRevoked)
	assert.Equal(t, key.ID, got.ID, "the key comes with ErrRevoked")
	assert.False(t, got.RevokedAt.IsZero())

	// A wrong secret for a revoked key says nothing about the revocation.
	_, err = db.APIKeyBySecret(ctx, secret[:20]+strings.Repeat("A", len(secret)-20))
	assert.ErrorIs(t, err, store.ErrNotFound)

	first := got.RevokedAt
	require.NoError(t, db.RevokeAPIKey(ctx, key.ID), "revoking twice")
	keys, err := db.APIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, first, keys[0].RevokedAt, "the first revocation time is kept")

	err = db.RevokeAPIKey(ctx, "nosuchkey234")
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, "store: no such API key: nosuchkey234", err.Error())

	// The name of a revoked key is free again.
	_, key2, err := db.CreateAPIKey(ctx, "ci", "localhost", false)
	require.NoError(t, err)
	assert.NotEqual(t, key.ID, key2.ID)
}

func TestAPIKeysList(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	db, err := store.Open(path)
	require.NoError(t, err)

	keys, err := db.APIKeys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)

	var want []store.APIKey
	for _, name := range []string{"c", "a", "b"} {
		_, k, err := db.CreateAPIKey(ctx, name, "localhost", name == "a")
		require.NoError(t, err)
		want = append(want, k)
	}
	require.NoError(t, db.RevokeAPIKey(ctx, want[1].ID))
	keys, err = db.APIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 3)
	for i := range want {
		assert.Equal(t, want[i].ID, keys[i].ID, "creation order")
		assert.Equal(t, want[i].Name, keys[i].Name)
	}
	assert.False(t, keys[1].RevokedAt.IsZero(), "revoked keys are listed")
	want[1].RevokedAt = keys[1].RevokedAt
	assert.Equal(t, want, keys)
	require.NoError(t, db.Close())

	db, err = store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, db.Close()) }()
	again, err := db.APIKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, keys, again, "after reopen")
}

func TestCreateAPIKeyRejects(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	_, _, err := db.CreateAPIKey(ctx, "taken", "localhost", false)
	require.NoError(t, err)

	tests := []struct {
		name        string
		givenName   string
		givenDomain string
		expectError error
	}{
		{name: "duplicate", givenName: "taken", givenDomain: "example.org", expectError: store.ErrExists},
		{name: "empty name", givenName: "", givenDomain: "localhost", expectError: store.ErrInvalid},
		{name: "long name", givenName: strings.Repeat("é", 65), givenDomain: "localhost", expectError: store.ErrInvalid},
		{name: "tab", givenName: "a\tb", givenDomain: "localhost", expectError: store.ErrInvalid},
		{name: "newline", givenName: "a\n", givenDomain: "localhost", expectError: store.ErrInvalid},
		{name: "surrounding space", givenName: " a", givenDomain: "localhost", expectError: store.ErrInvalid},
		{name: "invalid UTF-8", givenName: "a\xff", givenDomain: "localhost", expectError: store.ErrInvalid},
		{name: "empty domain", givenName: "x", givenDomain: "", expectError: store.ErrInvalid},
		{name: "JID as domain", givenName: "x", givenDomain: "bob@localhost", expectError: store.ErrInvalid},
		{name: "bad domain", givenName: "x", givenDomain: "a b", expectError: store.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, key, err := db.CreateAPIKey(ctx, tc.givenName, tc.givenDomain, false)
			assert.ErrorIs(t, err, tc.expectError)
			assert.Empty(t, secret)
			assert.Equal(t, store.APIKey{}, key)
		})
	}
	_, _, err = db.CreateAPIKey(ctx, strings.Repeat("é", 64), "localhost", false)
	assert.NoError(t, err, "64 characters")

	keys, err := db.APIKeys(ctx)
	require.NoError(t, err)
	assert.Len(t, keys, 2)
}
