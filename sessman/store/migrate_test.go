package store_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
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
	assert.False(t, hasIndex(t, path, "audit_time"), "dropped by version 3")

	bob, err := db.User(ctx, jid.MustParse("bob@localhost"))
	require.NoError(t, err, "the account is kept")
	assert.True(t, bob.Admin)
	require.NoError(t, db.SetBlock(ctx, bob.JID, time.Now().Add(time.Hour), ""))
	_, _, err = db.CreateAPIKey(ctx, "ci", "localhost", false)
	require.NoError(t, err)
	_, err = db.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "test", Targets: []string{"x"}})
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
		assert.False(t, hasIndex(t, path, "audit_time"))
		keys, err := db.APIKeys(ctx)
		require.NoError(t, err)
		assert.Equal(t, []store.APIKey{key}, keys)
		require.NoError(t, db.Close())
	}
}

// TestMigrateFromVersion2 upgrades in place a database that version 2 of the
// schema made, with an audit entry in it: version 3 drops the audit_time
// index, which no query used but every audited command updated.
func TestMigrateFromVersion2(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	for _, m := range store.Migrations()[:2] {
		_, err = raw.Exec(m)
		require.NoError(t, err)
	}
	_, err = raw.Exec(`INSERT INTO audit (time, actor, action) VALUES (1700000000000, 'cli', 'test')`)
	require.NoError(t, err)
	_, err = raw.Exec(`PRAGMA user_version = 2`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())
	require.True(t, hasIndex(t, path, "audit_time"), "version 2 has it")

	db, err := store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, db.Close()) }()
	var version int
	rawQuery(t, path, "PRAGMA user_version", &version)
	assert.Equal(t, store.SchemaVersion, version)
	assert.False(t, hasIndex(t, path, "audit_time"))
	assert.True(t, hasIndex(t, path, "audit_actor"), "the other indexes stay")

	page, err := db.Audit(ctx, session.AuditQuery{})
	total, entries := page.Count, page.Items
	require.NoError(t, err, "the entry is kept")
	assert.Equal(t, 1, total)
	require.Len(t, entries, 1)
	assert.Equal(t, "test", entries[0].Action)
}

// hasIndex reports whether the database file at path has the index name.
func hasIndex(t *testing.T, path, name string) bool {
	t.Helper()
	var n int
	rawQuery(t, path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '"+name+"'", &n)
	return n > 0
}
