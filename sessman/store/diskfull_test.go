package store_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// A write that finds no room is ErrDiskFull and leaves nothing behind;
// once there is room again the same write succeeds.
func TestDiskFull(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)
	require.NoError(t, db.LimitPages(ctx, 1)) // the current size

	var (
		err  error
		full jid.JID
	)
	for i := range 10000 {
		full = jid.MustParse(fmt.Sprintf("u%d@localhost", i))
		if err = db.AddUser(ctx, full, "secret", false); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, store.ErrDiskFull)
	assert.NotErrorIs(t, err, store.ErrNotFound)
	_, err = db.User(ctx, full)
	assert.ErrorIs(t, err, store.ErrNotFound, "the user that did not fit is not half there")

	for i := range 10000 {
		if _, err = db.AppendAudit(ctx, session.AuditEntry{Actor: "admin@localhost", Action: "test",
			Targets: []string{fmt.Sprintf("t%d", i)}}); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, store.ErrDiskFull, "the audit on a full disk")
	_, _, _, err = db.CreateAPIKeyAudited(ctx, "full", "localhost", false, session.AuditEntry{Actor: "admin@localhost", Action: "apikey-create"})
	require.ErrorIs(t, err, store.ErrDiskFull, "a key on a full disk")

	require.NoError(t, db.LimitPages(ctx, 1<<30))
	require.NoError(t, db.AddUser(ctx, full, "secret", false), "the same write once there is room")
	var n int
	rawQuery(t, path, "SELECT COUNT(*) FROM api_keys", &n)
	assert.Zero(t, n, "no key was left from the failed create")
}

// A key made with its audit entry is found in the audit under its ID.
func TestCreateAPIKeyAudited(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	_, key, id, err := db.CreateAPIKeyAudited(ctx, "ci", "localhost", false,
		session.AuditEntry{Actor: "admin@localhost", Action: "apikey-create", Targets: []string{}, Outcome: "ok"})
	require.NoError(t, err)
	page, err := db.Audit(ctx, session.AuditQuery{Target: key.ID})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	assert.Equal(t, id, page.Items[0].ID)
	assert.Equal(t, []string{key.ID}, page.Items[0].Targets)
	assert.Equal(t, "apikey-create", page.Items[0].Action)

	_, _, _, err = db.CreateAPIKeyAudited(ctx, "ci", "localhost", false, session.AuditEntry{Actor: "admin@localhost", Action: "apikey-create"})
	require.ErrorIs(t, err, store.ErrExists)
	page, err = db.Audit(ctx, session.AuditQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Items, 1, "a refused key writes no entry")
	_, _, _, err = db.CreateAPIKeyAudited(ctx, "x", "localhost", false, session.AuditEntry{})
	assert.ErrorIs(t, err, store.ErrInvalid, "an entry without actor")
}
