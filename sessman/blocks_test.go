package sessman_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
)

// block ends bob's sessions with a block, as an admin would.
func (e *env) block(t *testing.T, user, seconds, reason string) {
	t.Helper()
	e.result(t, "end-user-session", field("accountjids", user), field("block", seconds), field("reason", reason))
}

// lift runs the block command as caller.
func (e *env) lift(t *testing.T, caller adhoc.Caller, users ...string) (adhoc.Response, error) {
	t.Helper()
	return e.cmds.Execute(t.Context(), adhoc.Request{To: sessManJID, Node: sessman.BlocksNS + "#lift",
		Fields: []adhoc.Field{field("accountjids", users...)}, Caller: caller})
}

func TestBlockIsShownAndLifted(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.addUsers(t, "bob@localhost", "carol@localhost")
	bob := jid.MustParse("bob@localhost")
	e.bind(t, "bob@localhost/phone", 0)
	e.block(t, "bob@localhost", "600", "Password reset")

	// A login is refused with two sentences.
	_, err := e.accounts.Login(ctx, bob, "pw")
	var blocked *session.BlockedError
	require.ErrorAs(t, err, &blocked)
	until := blocked.Until.UTC().Format(time.RFC3339)
	assert.Equal(t, "Password reset. You may not log in before "+until+".", blocked.Text())

	// The block shows in the user's sessions, in Block and in user-stats.
	page, err := e.mgr.List(ctx, session.ListRequest{User: bob, Caller: adminCaller})
	require.NoError(t, err)
	require.NotNil(t, page.Block, "the listing says bob is blocked")
	assert.Equal(t, "Password reset", page.Block.Reason)
	assert.Equal(t, "bob@localhost", page.Block.User)
	assert.WithinDuration(t, time.Now().Add(600*time.Second), page.Block.Until, time.Minute)
	b, ok, err := e.mgr.Block(ctx, session.BlockRequest{User: bob, Caller: keyCaller})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, *page.Block, b)
	all, err := e.mgr.List(ctx, session.ListRequest{Caller: adminCaller})
	require.NoError(t, err)
	assert.Nil(t, all.Block, "a listing of everyone names no block")
	stats := shapes(e.result(t, "user-stats", field("accountjid", "bob@localhost")))
	assert.Contains(t, stats, shape{"blockeduntil", adhoc.FieldTextSingle, []string{until}})
	assert.Contains(t, stats, shape{"blockreason", adhoc.FieldTextSingle, []string{"Password reset"}})

	// reenable-user is about disabled accounts: the block stays.
	e.result(t, "reenable-user", field("accountjids", "bob@localhost"))
	_, err = e.accounts.Login(ctx, bob, "pw")
	require.ErrorAs(t, err, &blocked, "re-enabling does not lift a block")

	// Lifting it: a line per user, and bob logs in at once.
	resp, err := e.lift(t, adminCaller, "bob@localhost", "carol@localhost")
	require.NoError(t, err)
	assert.Equal(t, adhoc.StatusCompleted, resp.Status)
	assert.Equal(t, notesOf("Block lifted for bob@localhost", "carol@localhost was not blocked"), shapes(resp.Form.Fields))
	_, err = e.accounts.Login(ctx, bob, "pw")
	require.NoError(t, err, "bob may log in again")
	page, err = e.mgr.List(ctx, session.ListRequest{User: bob, Caller: adminCaller})
	require.NoError(t, err)
	assert.Nil(t, page.Block)
	stats = shapes(e.result(t, "user-stats", field("accountjid", "bob@localhost")))
	assert.Contains(t, stats, shape{"blockeduntil", adhoc.FieldTextSingle, nil})
	_, ok, err = e.mgr.Block(ctx, session.BlockRequest{User: bob, Caller: adminCaller})
	require.NoError(t, err)
	assert.False(t, ok)

	entries := e.audit(t, session.AuditQuery{})
	require.NotEmpty(t, entries)
	assert.Equal(t, "user-unblock", entries[0].Action)
	assert.Equal(t, "admin@localhost", entries[0].Actor)
	assert.Equal(t, "ok", entries[0].Outcome)
	assert.Equal(t, []string{"bob@localhost", "carol@localhost"}, entries[0].Targets)
	assert.Equal(t, `lifted bob@localhost until `+until+`, reason "Password reset"; carol@localhost was not blocked`, entries[0].Detail)
}

func TestUnblockWhoMay(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.addUsers(t, "bob@localhost")
	bob := jid.MustParse("bob@localhost")
	bobCaller := adhoc.Caller{JID: jid.MustParse("bob@localhost/web"), Auth: adhoc.AuthBasic, Name: "bob@localhost"}

	tests := []struct {
		name         string
		whenCaller   adhoc.Caller
		expectErr    error
		expectText   string
		expectLifted bool
	}{
		{name: "read-only key", whenCaller: readKeyCaller, expectErr: &adhoc.Error{Condition: stanza.Forbidden},
			expectText: "This API key is read-only: it may not lift a block."},
		{name: "the user itself", whenCaller: bobCaller, expectErr: &adhoc.Error{Condition: stanza.Forbidden},
			expectText: "Only administrators and API keys may lift a block."},
		{name: "pusher", whenCaller: adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthPusher, Name: "pusher:1"},
			expectErr: &adhoc.Error{Condition: stanza.Forbidden}, expectText: "A Pusher app may only end sessions."},
		{name: "full key, which may block", whenCaller: keyCaller, expectLifted: true},
		{name: "admin", whenCaller: adminCaller, expectLifted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.block(t, "bob@localhost", "600", "Spam")
			res, err := e.mgr.Unblock(ctx, session.BlockRequest{User: bob, Caller: tc.whenCaller})
			entries := e.audit(t, session.AuditQuery{})
			require.NotEmpty(t, entries)
			assert.Equal(t, "user-unblock", entries[0].Action)
			assert.Equal(t, tc.whenCaller.Name, entries[0].Actor)
			if tc.expectErr != nil {
				require.ErrorIs(t, err, tc.expectErr)
				assert.Equal(t, tc.expectText, adhoc.AsError(err).Text)
				assert.Equal(t, []string{"forbidden", "refused"}, []string{entries[0].Outcome, entries[0].Detail}, "a refusal is audited")
				_, still, err := e.mgr.Block(ctx, session.BlockRequest{User: bob, Caller: adminCaller})
				require.NoError(t, err)
				assert.True(t, still, "the block stays")
				_, err = e.lift(t, tc.whenCaller, "bob@localhost")
				assert.ErrorIs(t, err, tc.expectErr, "the command refuses the same callers")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expectLifted, res.Unblocked)
			require.NotNil(t, res.Block)
			assert.Equal(t, "Spam", res.Block.Reason)
			assert.Equal(t, "ok", entries[0].Outcome)
			res, err = e.mgr.Unblock(ctx, session.BlockRequest{User: bob, Caller: tc.whenCaller})
			require.NoError(t, err)
			assert.False(t, res.Unblocked, "lifted already")
		})
	}

	// An unknown account is item-not-found, and audited as such.
	_, err := e.mgr.Unblock(ctx, session.BlockRequest{User: jid.MustParse("nobody@localhost"), Caller: adminCaller})
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound})
	assert.Equal(t, "There is no account nobody@localhost.", adhoc.AsError(err).Text)
	assert.Equal(t, "item-not-found", e.audit(t, session.AuditQuery{})[0].Outcome)
	_, _, err = e.mgr.Block(ctx, session.BlockRequest{User: jid.MustParse("nobody@localhost"), Caller: adminCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound})
	_, err = e.lift(t, adminCaller, "bob@localhost", "nobody@localhost")
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound})
	_, err = e.mgr.Unblock(ctx, session.BlockRequest{User: jid.MustParse("bob@example.org"), Caller: adminCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest}, "another domain's user")
	_, _, err = e.mgr.Block(ctx, session.BlockRequest{User: bob, Caller: adhoc.Caller{JID: jid.MustParse("carol@localhost"), Auth: adhoc.AuthBasic}})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, "only bob and admins see bob's block")
}
