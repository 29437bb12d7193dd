package store_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/store"
)

// TestMigrateFromVersion1 upgrades in place a database that version 1 of the
// schema made, with an account in it.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = raw.Exec(store.Migrations()[0])
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO accounts (jid, admin, created_at) VALUES ('bob@localhost', TRUE, 1700000000000)`)
	require.NoError(t, err)
	_, err = raw.Exec(`PRAGMA user_version = 1`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	db, err := store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, db.Close()) }()
	var version int
	rawQuery(t, path, "PRAGMA user_version", &version)
	assert.Equal(t, store.SchemaVersion, version)

	bob, err := db.User(ctx, jid.MustParse("bob@localhost"))
	require.NoError(t, err, "the account is kept")
	assert.True(t, bob.Admin)
	require.NoError(t, db.SetBlock(ctx, bob.JID, time.Now().Add(time.Hour), ""))
	_, _, err = db.CreateAPIKey(ctx, "ci", "localhost", false)
	require.NoError(t, err)
	_, err = db.AppendAudit(ctx, store.AuditEntry{Actor: "cli", Action: "test", Targets: []string{"x"}})
	require.NoError(t, err)
}

// TestMigrateIdempotent reopens a migrated database: nothing is applied
// twice and nothing is lost.
func TestMigrateIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	db, err := store.Open(path)
	require.NoError(t, err)
	_, key, err := db.CreateAPIKey(ctx, "ci", "localhost", true)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	for range 2 {
		db, err = store.Open(path)
		require.NoError(t, err)
		var version int
		rawQuery(t, path, "PRAGMA user_version", &version)
		assert.Equal(t, store.SchemaVersion, version)
		keys, err := db.APIKeys(ctx)
		require.NoError(t, err)
		assert.Equal(t, []store.APIKey{key}, keys)
		require.NoError(t, db.Close())
	}
}
