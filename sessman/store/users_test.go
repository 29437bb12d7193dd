package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// addUsers creates accounts with the password "pw".
func addUsers(t *testing.T, db *store.DB, users ...string) {
	t.Helper()
	for _, u := range users {
		require.NoError(t, db.AddUser(t.Context(), jid.MustParse(u), "pw", false))
	}
}

func jids(s ...string) []jid.JID {
	out := make([]jid.JID, len(s))
	for i, x := range s {
		out[i] = jid.MustParse(x)
	}
	return out
}

func TestCountAndListUsers(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	addUsers(t, db, "carol@localhost", "alice@localhost", "bob@localhost", "dave@localhost")
	require.NoError(t, db.SetUsersDisabled(ctx, jids("dave@localhost", "bob@localhost"), true))

	tests := []struct {
		name        string
		givenQuery  store.UserQuery
		expectCount int
		expectList  []jid.JID
	}{
		{"all", store.UserQuery{}, 4, jids("alice@localhost", "bob@localhost", "carol@localhost", "dave@localhost")},
		{"all limited", store.UserQuery{Limit: 2}, 4, jids("alice@localhost", "bob@localhost")},
		{"disabled", store.UserQuery{DisabledOnly: true}, 2, jids("bob@localhost", "dave@localhost")},
		{"disabled limited", store.UserQuery{DisabledOnly: true, Limit: 1}, 2, jids("bob@localhost")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := db.CountUsers(ctx, tc.givenQuery)
			require.NoError(t, err)
			assert.Equal(t, tc.expectCount, n)
			list, err := db.ListUsers(ctx, tc.givenQuery)
			require.NoError(t, err)
			assert.Equal(t, tc.expectList, list)
		})
	}
}

func TestListUsersEmpty(t *testing.T) {
	db, _ := openTemp(t)
	list, err := db.ListUsers(t.Context(), store.UserQuery{DisabledOnly: true})
	require.NoError(t, err)
	assert.Equal(t, []jid.JID{}, list)
	n, err := db.CountUsers(t.Context(), store.UserQuery{})
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestBatchUpdatesAreAllOrNothing(t *testing.T) {
	tests := []struct {
		name string
		when func(db *store.DB, users []jid.JID) error
	}{
		{"DeleteUsers", func(db *store.DB, users []jid.JID) error { return db.DeleteUsers(t.Context(), users) }},
		{"SetUsersDisabled", func(db *store.DB, users []jid.JID) error {
			return db.SetUsersDisabled(t.Context(), users, true)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db, _ := openTemp(t)
			addUsers(t, db, "alice@localhost", "bob@localhost")

			err := tc.when(db, jids("alice@localhost", "nobody@localhost", "bob@localhost"))
			require.ErrorIs(t, err, store.ErrNotFound)
			assert.Contains(t, err.Error(), "nobody@localhost")
			n, err := db.CountUsers(ctx, store.UserQuery{})
			require.NoError(t, err)
			assert.Equal(t, 2, n, "nothing deleted")
			n, err = db.CountUsers(ctx, store.UserQuery{DisabledOnly: true})
			require.NoError(t, err)
			assert.Zero(t, n, "nothing disabled")

			assert.ErrorIs(t, tc.when(db, jids("localhost")), store.ErrNotFound, "a domain is no account")
			require.NoError(t, tc.when(db, nil), "nothing to do")
			require.NoError(t, tc.when(db, jids("alice@localhost/phone", "alice@localhost", "bob@localhost")),
				"resources are ignored and an account named twice is changed once")
		})
	}
}

func TestDeleteUsers(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	addUsers(t, db, "alice@localhost", "bob@localhost", "carol@localhost")
	require.NoError(t, db.DeleteUsers(ctx, jids("alice@localhost", "carol@localhost")))
	list, err := db.ListUsers(ctx, store.UserQuery{})
	require.NoError(t, err)
	assert.Equal(t, jids("bob@localhost"), list)
	assert.ErrorIs(t, db.VerifyPassword(ctx, jid.MustParse("alice@localhost"), "pw"), store.ErrNotFound)
}

func TestSetUsersDisabled(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	addUsers(t, db, "alice@localhost", "bob@localhost")
	users := jids("alice@localhost", "bob@localhost")

	require.NoError(t, db.SetUsersDisabled(ctx, users, true))
	for _, u := range users {
		assert.ErrorIs(t, db.VerifyPassword(ctx, u, "pw"), session.ErrDisabled)
	}
	require.NoError(t, db.SetUsersDisabled(ctx, users, true), "disabling twice is no error")
	require.NoError(t, db.SetUsersDisabled(ctx, users, false))
	for _, u := range users {
		assert.NoError(t, db.VerifyPassword(ctx, u, "pw"))
	}
}

// TestOneUserAsBatch checks that DeleteUser and SetDisabled answer like
// DeleteUsers and SetUsersDisabled given that one user, texts included.
func TestOneUserAsBatch(t *testing.T) {
	tests := []struct {
		name        string
		givenUser   string
		expectErrIs error
	}{
		{name: "exists", givenUser: "bob@localhost"},
		{name: "resource ignored", givenUser: "bob@localhost/phone"},
		{name: "missing", givenUser: "nobody@localhost", expectErrIs: store.ErrNotFound},
		{name: "no localpart", givenUser: "localhost", expectErrIs: store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			u := jid.MustParse(tc.givenUser)
			one, _ := openTemp(t)
			batch, _ := openTemp(t)
			for _, db := range []*store.DB{one, batch} {
				addUsers(t, db, "bob@localhost")
			}
			for _, step := range []struct{ one, batch error }{
				{one.SetDisabled(ctx, u, true), batch.SetUsersDisabled(ctx, []jid.JID{u}, true)},
				{one.DeleteUser(ctx, u), batch.DeleteUsers(ctx, []jid.JID{u})},
			} {
				if tc.expectErrIs == nil {
					assert.NoError(t, step.one)
					assert.NoError(t, step.batch)
					continue
				}
				assert.ErrorIs(t, step.one, tc.expectErrIs)
				if assert.Error(t, step.batch) {
					assert.Equal(t, step.batch.Error(), step.one.Error())
				}
			}
		})
	}
}
