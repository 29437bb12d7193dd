package sessman_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

var rootCaller = adhoc.Caller{JID: jid.MustParse("root@localhost"), Auth: adhoc.AuthBasic, Admin: true, Name: "root@localhost",
	RemoteAddr: "192.0.2.1", RequestID: "req-1"}

func users(addrs ...string) []jid.JID {
	out := make([]jid.JID, len(addrs))
	for i, a := range addrs {
		out[i] = jid.MustParse(a)
	}
	return out
}

func TestEndSessions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	alice := jid.MustParse("alice@localhost")
	e.addUsers(t, "alice@localhost")
	a := e.bind(t, "alice@localhost/a", 0)
	b := e.bind(t, "alice@localhost/b", 0)
	c := e.bind(t, "alice@localhost/c", 0)
	bob := e.bind(t, "bob@localhost/x", 0)
	_, err := e.accounts.Login(ctx, alice, "pw")
	require.NoError(t, err, "cached from now on")

	// By id: unknown ids and another user's ids are ignored.
	res, err := e.mgr.End(ctx, session.EndRequest{Users: []jid.JID{alice}, IDs: []string{a.SessionID(), "nope", bob.SessionID()}, Caller: rootCaller})
	require.NoError(t, err)
	assert.Equal(t, []string{"alice@localhost/a"}, endedJIDs(res))
	assert.Empty(t, bob.kicked())

	// All but one, with a block.
	res, err = e.mgr.End(ctx, session.EndRequest{Users: []jid.JID{alice}, All: true, Except: c.SessionID(), Block: time.Hour,
		Reason: "Rotating keys.", Caller: rootCaller})
	require.NoError(t, err)
	assert.Equal(t, []string{"alice@localhost/b"}, endedJIDs(res))
	assert.Equal(t, []string{"policy-violation: Rotating keys."}, b.kicked())
	assert.Empty(t, c.kicked(), "the excepted session stays")
	_, blocked, err := e.db.ActiveBlock(ctx, alice, time.Now())
	require.NoError(t, err)
	assert.True(t, blocked)
	_, err = e.accounts.Login(ctx, alice, "pw")
	var blockedErr *session.BlockedError
	require.ErrorAs(t, err, &blockedErr, "a block drops cached credentials")
	assert.Equal(t, "Rotating keys.", blockedErr.Reason)

	// Nothing online is no error; a foreign user is a bad request; refusals
	// are not audited.
	res, err = e.mgr.End(ctx, session.EndRequest{Users: users("carol@localhost"), All: true, Caller: rootCaller})
	require.NoError(t, err)
	assert.Empty(t, res.Ended)
	_, err = e.mgr.End(ctx, session.EndRequest{Users: users("eve@example.org"), All: true, Caller: rootCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest})
	_, err = e.mgr.End(ctx, session.EndRequest{Users: []jid.JID{alice}, All: true, Block: -time.Second, Caller: rootCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest})
	_, err = e.mgr.End(ctx, session.EndRequest{Everyone: true, Caller: rootCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, "everyone is for the node's own shutdown")
	_, err = e.mgr.End(ctx, session.EndRequest{Users: []jid.JID{alice}, All: true, Condition: "<x/>", Caller: rootCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest}, "callers end with policy-violation only")
	assert.Empty(t, c.kicked())

	entries := e.audit(t, session.AuditQuery{Target: "alice@localhost"})
	require.Len(t, entries, 2)
	assert.Equal(t, "end-sessions", entries[0].Action)
	assert.Equal(t, "root@localhost", entries[0].Actor)
	assert.Equal(t, "ended 1 sessions, blocked 3600s", entries[0].Detail)
	assert.Equal(t, []string{"alice@localhost", b.SessionID()}, entries[0].Targets)
	assert.Equal(t, "req-1", entries[0].RequestID)
	assert.Equal(t, "192.0.2.1", entries[0].RemoteAddr)
	assert.Len(t, e.audit(t, session.AuditQuery{}), 4, "and carol's, which ended nothing, and the refused end of everyone")
}

func TestEndSessionsBlockUnderASecond(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	alice := jid.MustParse("alice@localhost")
	e.bind(t, "alice@localhost/a", 0)
	before := time.Now()
	res, err := e.mgr.End(ctx, session.EndRequest{Users: []jid.JID{alice}, All: true, Block: 500 * time.Millisecond, Caller: rootCaller})
	require.NoError(t, err)
	after := time.Now()
	require.Len(t, res.Ended, 1)

	b, blocked, err := e.db.ActiveBlock(ctx, alice, before)
	require.NoError(t, err)
	require.True(t, blocked, "a block under a second is stored")
	assert.WithinRange(t, b.Until, before.Add(499*time.Millisecond), after.Add(501*time.Millisecond))
	entries := e.audit(t, session.AuditQuery{Target: "alice@localhost"})
	require.Len(t, entries, 1)
	assert.Equal(t, "ended 1 sessions, blocked 0.5s", entries[0].Detail)
}

func TestEndSessionsTimeout(t *testing.T) {
	e := newEnv(t)
	stuck := e.bindStuck(t, "alice@localhost/stuck")

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	caller := rootCaller
	caller.RequestID = "req-2"
	res, err := e.mgr.End(ctx, session.EndRequest{Users: users("alice@localhost"), All: true, Caller: caller})
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the cause is kept")
	assert.Equal(t, "Not every session ended in time; 0 did.", adhoc.AsError(err).Text)
	assert.Empty(t, res.Ended)
	assert.Equal(t, []string{"policy-violation: " + session.DefaultEndReason}, stuck.kicked())

	entries := e.audit(t, session.AuditQuery{Target: "alice@localhost"})
	require.Len(t, entries, 1, "the timed-out attempt is audited")
	assert.Equal(t, "end-sessions", entries[0].Action)
	assert.Equal(t, "remote-server-timeout", entries[0].Outcome)
	assert.Equal(t, "ended 0 sessions", entries[0].Detail)
	assert.Equal(t, "req-2", entries[0].RequestID)
}

func TestEndUserSessionTimeoutIsAudited(t *testing.T) {
	e := newEnv(t)
	e.bindStuck(t, "alice@localhost/stuck")

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.cmds.Execute(ctx, adhoc.Request{To: sessManJID, Node: node("end-user-session"),
		Fields: []adhoc.Field{field("accountjids", "alice@localhost")}, Caller: rootCaller})
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
	assert.Equal(t, "Not every session ended in time; 0 did.", adhoc.AsError(err).Text)

	entries := e.audit(t, session.AuditQuery{Target: "alice@localhost"})
	require.Len(t, entries, 1, "the timed-out attempt is audited, once")
	assert.Equal(t, "adhoc:"+node("end-user-session"), entries[0].Action)
	assert.Equal(t, "remote-server-timeout", entries[0].Outcome)
}

// TestAuthorization covers the one place that decides who may do what, on
// each path: the session service's End, List, Get and Count, the audit.
func TestAuthorization(t *testing.T) {
	alice := adhoc.Caller{JID: jid.MustParse("alice@localhost/web"), Auth: adhoc.AuthBasic, Name: "alice@localhost"}
	readKey := adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthAPIKey, ReadOnly: true, Name: "apikey:r"}
	writeKey := adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthAPIKey, Name: "apikey:w"}
	otherAdmin := adhoc.Caller{JID: jid.MustParse("root@other.org"), Auth: adhoc.AuthBasic, Admin: true, Name: "root@other.org"}
	pusher := adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthPusher, Name: "pusher:app"}
	forbidden := &adhoc.Error{Condition: stanza.Forbidden}
	tests := []struct {
		name      string
		caller    adhoc.Caller
		users     []jid.JID // nil: everyone
		expectErr map[string]error
	}{
		{"admin, anyone", rootCaller, users("bob@localhost"), nil},
		{"admin, everyone", rootCaller, nil, map[string]error{"end": forbidden}},
		{"account, itself", alice, users("alice@localhost"), nil},
		{"account, another", alice, users("bob@localhost"),
			map[string]error{"end": forbidden, "list": forbidden, "get": forbidden}},
		{"account, everyone", alice, nil, map[string]error{"end": forbidden, "list": forbidden, "count": forbidden, "audit": forbidden}},
		{"read-only key", readKey, users("bob@localhost"), map[string]error{"end": forbidden}},
		{"read-write key", writeKey, users("bob@localhost"), nil},
		{"read-write key, everyone", writeKey, nil, map[string]error{"end": forbidden, "audit": forbidden}},
		{"read-only key, everyone", readKey, nil, map[string]error{"end": forbidden, "audit": forbidden}},
		{"admin of another domain", otherAdmin, users("bob@localhost"),
			map[string]error{"end": forbidden, "list": forbidden, "get": forbidden}},
		{"pusher app", pusher, users("bob@localhost"), map[string]error{"list": forbidden, "get": forbidden}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bob := e.bind(t, "bob@localhost/x", 0)
			alice := e.bind(t, "alice@localhost/y", 0)
			ctx := t.Context()
			var user jid.JID
			if len(tc.users) > 0 {
				user = tc.users[0]
			}
			got := map[string]error{}
			_, got["list"] = e.mgr.List(ctx, session.ListRequest{User: user, Caller: tc.caller})
			if len(tc.users) > 0 {
				_, got["get"] = e.mgr.Get(ctx, session.GetRequest{User: user, ID: "s-" + user.String() + "/x", Caller: tc.caller})
				if user.Localpart() == "alice" {
					_, got["get"] = e.mgr.Get(ctx, session.GetRequest{User: user, ID: alice.SessionID(), Caller: tc.caller})
				}
			} else {
				_, got["count"] = e.mgr.Count(ctx, session.CountRequest{Caller: tc.caller})
				_, got["audit"] = e.mgr.Audit(ctx, session.AuditQuery{Caller: tc.caller})
			}
			_, got["end"] = e.mgr.End(ctx, session.EndRequest{Users: tc.users, Everyone: tc.users == nil, All: true, Caller: tc.caller})
			for op, err := range got {
				if want := tc.expectErr[op]; want != nil {
					assert.ErrorIs(t, err, want, op)
				} else {
					assert.NoError(t, err, op)
				}
			}
			if tc.expectErr["end"] != nil {
				assert.Empty(t, bob.kicked(), "refused: nothing ended")
				assert.Empty(t, alice.kicked(), "refused: nothing ended")
				entries := e.audit(t, session.AuditQuery{})
				require.Len(t, entries, 1, "the refusal is audited")
				assert.Equal(t, "end-sessions", entries[0].Action)
				assert.Equal(t, "forbidden", entries[0].Outcome)
				assert.Equal(t, "refused", entries[0].Detail)
				assert.Equal(t, tc.caller.Name, entries[0].Actor)
			}
		})
	}
}

// TestCallersOfAnotherDomainAreRefused: an account or key of a domain not
// served here, which the database may hold, may not address the session
// manager at all, whatever its rights there.
func TestCallersOfAnotherDomainAreRefused(t *testing.T) {
	e := newEnv(t)
	for _, c := range []adhoc.Caller{
		{JID: jid.MustParse("other.org"), Auth: adhoc.AuthAPIKey, Name: "apikey:elsewhere"},
		{JID: jid.MustParse("root@other.org"), Auth: adhoc.AuthBasic, Admin: true, Name: "root@other.org"},
		{JID: jid.MustParse("root@other.org/x"), Auth: adhoc.AuthXMPP, Admin: true, Name: "root@other.org"},
	} {
		err := e.cmds.Admit(sessManJID, c)
		require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, c.Name)
		assert.Equal(t, "This server serves localhost only; you may not act on it.", adhoc.AsError(err).Text)
		_, err = e.cmds.Commands(jid.MustParse("localhost"), c)
		assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, c.Name)
	}
	assert.NoError(t, e.cmds.Admit(sessManJID, adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthAPIKey}))
}

// TestCommandLineChangesReachTheRunningServer changes accounts through a
// second accounts service on the same database file, as `adhocd user`
// does beside a running server: the server drops cached passwords and ends
// the sessions of disabled and deleted accounts at once, without waiting
// for a cache to expire.
func TestCommandLineChangesReachTheRunningServer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "adhocd.db")
	db, err := store.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, db.Close()) })
	logger := zerolog.New(zerolog.NewTestWriter(t))
	reg := sessman.New(sessman.Config{}, logger)
	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: "localhost", WatchInterval: 10 * time.Millisecond}, db, logger)
	sessman.NewManager(sessman.ManagerConfig{Domain: "localhost"}, reg, accounts, logger)
	ctx := t.Context()
	for _, u := range []string{"alice@localhost", "bob@localhost", "carol@localhost"} {
		require.NoError(t, db.AddUser(ctx, jid.MustParse(u), "pw", false))
	}
	require.NoError(t, accounts.Start(ctx))
	defer accounts.Close()
	phone, desk := newClient(reg, "alice@localhost/phone"), newClient(reg, "bob@localhost/desk")
	laptop := newClient(reg, "carol@localhost/laptop")
	for _, c := range []*client{phone, desk, laptop} {
		require.NoError(t, reg.Bind(c))
		_, err := accounts.Login(ctx, c.addr.Bare(), "pw")
		require.NoError(t, err, "cached from now on")
	}

	cliDB, err := store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, cliDB.Close()) }()
	cli := sessman.NewAccounts(sessman.AccountsConfig{Domain: "localhost"}, cliDB, zerolog.Nop())
	require.NoError(t, cli.SetDisabled(ctx, sessman.CommandLine, users("alice@localhost"), true))
	require.NoError(t, cli.DeleteUsers(ctx, sessman.CommandLine, users("bob@localhost")))
	require.NoError(t, cli.SetPassword(ctx, sessman.CommandLine, jid.MustParse("carol@localhost"), "new"))

	for _, c := range []*client{phone, desk} {
		select {
		case <-c.gone:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not ended", c.addr)
		}
	}
	assert.Equal(t, []string{"policy-violation: Your account was disabled."}, phone.kicked())
	assert.Equal(t, []string{"policy-violation: Your account was deleted."}, desk.kicked())
	assert.Empty(t, laptop.kicked(), "a new password leaves sessions alone")
	require.Eventually(t, func() bool {
		_, err := accounts.Login(ctx, jid.MustParse("carol@localhost"), "pw")
		return err != nil
	}, 10*time.Second, 5*time.Millisecond, "the old password is no longer taken from the cache")
	_, err = accounts.Login(ctx, jid.MustParse("alice@localhost"), "pw")
	assert.ErrorIs(t, err, session.ErrDisabled)

	// Every change of the command line is audited as its own.
	page, err := db.Audit(ctx, session.AuditQuery{Actor: "cli"})
	require.NoError(t, err)
	var actions []string
	for _, e := range page.Items {
		actions = append(actions, e.Action+" "+e.Targets[0]+" "+e.Outcome)
		assert.Equal(t, "cli", e.Auth)
	}
	assert.Equal(t, []string{"user-password carol@localhost ok", "user-delete bob@localhost ok", "user-disable alice@localhost ok"}, actions)
}
