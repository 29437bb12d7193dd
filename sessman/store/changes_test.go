package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// kinds returns "user kind" for each change.
func kinds(changes []session.AccountChange) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.User + " " + c.Kind
	}
	return out
}

func TestAccountChangesAreLogged(t *testing.T) {
	db, path := openTemp(t)
	ctx := t.Context()
	alice, bob := jid.MustParse("alice@localhost"), jid.MustParse("bob@localhost")
	start, err := db.LastChange(ctx)
	require.NoError(t, err)
	assert.Zero(t, start)

	require.NoError(t, db.AddUser(ctx, alice, "pw", false))
	require.NoError(t, db.AddUser(ctx, bob, "pw", false))
	require.NoError(t, db.SetPassword(ctx, alice, "new"))
	require.NoError(t, db.SetUsersDisabled(ctx, []jid.JID{alice, bob}, true))
	require.NoError(t, db.SetDisabled(ctx, bob, false))
	require.NoError(t, db.SetAdmin(ctx, bob, true))
	require.NoError(t, db.SetBlock(ctx, alice, time.Now().Add(time.Hour), "spam"))
	_, lifted, err := db.ClearBlock(ctx, alice, time.Now())
	require.NoError(t, err)
	require.True(t, lifted)
	require.NoError(t, db.DeleteUser(ctx, alice))
	require.NoError(t, db.RecordLogin(ctx, bob, time.Now()), "a login is not a change")

	// A change that fails is rolled back with its log entry.
	require.ErrorIs(t, db.SetUsersDisabled(ctx, []jid.JID{bob, jid.MustParse("nobody@localhost")}, true), store.ErrNotFound)
	require.ErrorIs(t, db.AddUser(ctx, bob, "pw", false), store.ErrExists)

	changes, err := db.Changes(ctx, start)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"alice@localhost added", "bob@localhost added", "alice@localhost password",
		"alice@localhost disabled", "bob@localhost disabled", "bob@localhost enabled", "bob@localhost admin",
		"alice@localhost blocked", "alice@localhost unblocked", "alice@localhost deleted",
	}, kinds(changes))
	for i, c := range changes {
		assert.Equal(t, db.Origin(), c.Origin)
		assert.WithinDuration(t, time.Now(), c.At, time.Minute)
		if i > 0 {
			assert.Greater(t, c.Seq, changes[i-1].Seq)
		}
	}
	last, err := db.LastChange(ctx)
	require.NoError(t, err)
	assert.Equal(t, changes[len(changes)-1].Seq, last)
	rest, err := db.Changes(ctx, changes[2].Seq)
	require.NoError(t, err)
	assert.Equal(t, changes[3:], rest, "paging from a seq")

	// Another handle on the same file, like the command line beside a
	// running server, sees the changes, and has an origin of its own.
	other, err := store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, other.Close()) }()
	assert.NotEqual(t, db.Origin(), other.Origin())
	require.NoError(t, other.SetPassword(ctx, bob, "from-cli"))
	seen, err := db.Changes(ctx, last)
	require.NoError(t, err)
	require.Len(t, seen, 1)
	assert.Equal(t, "bob@localhost password", seen[0].User+" "+seen[0].Kind)
	assert.Equal(t, other.Origin(), seen[0].Origin)

	// Pruning old changes never makes the sequence go back.
	require.NoError(t, db.PruneChanges(ctx, time.Now().Add(time.Minute)))
	gone, err := db.Changes(ctx, 0)
	require.NoError(t, err)
	assert.Empty(t, gone)
	require.NoError(t, db.SetPassword(ctx, bob, "again"))
	after, err := db.Changes(ctx, seen[0].Seq)
	require.NoError(t, err)
	require.Len(t, after, 1)
	assert.Greater(t, after[0].Seq, seen[0].Seq)
}
