package sessman_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
)

func TestEndSessions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	alice := jid.MustParse("alice@localhost")
	a := e.bind(t, "alice@localhost/a", 0)
	b := e.bind(t, "alice@localhost/b", 0)
	c := e.bind(t, "alice@localhost/c", 0)
	bob := e.bind(t, "bob@localhost/x", 0)
	origin := adhoc.Origin{Caller: "root@localhost", Auth: "basic", RemoteAddr: "192.0.2.1", RequestID: "req-1"}

	// By id: unknown ids and another user's ids are ignored.
	res, err := e.mgr.EndSessions(ctx, sessman.EndRequest{User: alice, IDs: []string{a.SessionID(), "nope", bob.SessionID()}, Origin: origin})
	require.NoError(t, err)
	require.Len(t, res.Ended, 1)
	assert.Equal(t, "alice@localhost/a", res.Ended[0].JID)
	assert.Empty(t, bob.kicked())

	// All but one, with a block.
	res, err = e.mgr.EndSessions(ctx, sessman.EndRequest{User: alice, All: true, Except: c.SessionID(), Block: time.Hour, Reason: "Rotating keys.", Origin: origin})
	require.NoError(t, err)
	require.Len(t, res.Ended, 1)
	assert.Equal(t, "alice@localhost/b", res.Ended[0].JID)
	assert.NotEmpty(t, b.kicked())
	assert.Empty(t, c.kicked(), "the excepted session stays")
	_, blocked, err := e.db.ActiveBlock(ctx, alice, time.Now())
	require.NoError(t, err)
	assert.True(t, blocked)
	assert.Equal(t, []string{"alice@localhost"}, e.accountChanges(), "a block drops cached credentials")

	// Nothing online is no error; a foreign user is a bad request.
	res, err = e.mgr.EndSessions(ctx, sessman.EndRequest{User: jid.MustParse("carol@localhost"), All: true, Origin: origin})
	require.NoError(t, err)
	assert.Empty(t, res.Ended)
	_, err = e.mgr.EndSessions(ctx, sessman.EndRequest{User: jid.MustParse("eve@example.org"), All: true, Origin: origin})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest})

	total, entries, err := e.db.Audit(ctx, store.AuditQuery{Target: "alice@localhost"})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	assert.Equal(t, "end-sessions", entries[0].Action)
	assert.Equal(t, "ended 1 sessions, blocked 3600s", entries[0].Detail)
	assert.Equal(t, []string{"alice@localhost", b.SessionID()}, entries[0].Targets)
	assert.Equal(t, "req-1", entries[0].RequestID)
}

func TestEndSessionsBlockUnderASecond(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	alice := jid.MustParse("alice@localhost")
	e.bind(t, "alice@localhost/a", 0)
	before := time.Now()
	res, err := e.mgr.EndSessions(ctx, sessman.EndRequest{User: alice, All: true, Block: 500 * time.Millisecond,
		Origin: adhoc.Origin{Caller: "root@localhost"}})
	require.NoError(t, err)
	after := time.Now()
	require.Len(t, res.Ended, 1)

	b, blocked, err := e.db.ActiveBlock(ctx, alice, before)
	require.NoError(t, err)
	require.True(t, blocked, "a block under a second is stored")
	assert.WithinRange(t, b.Until, before.Add(499*time.Millisecond), after.Add(501*time.Millisecond))
	_, entries, err := e.db.Audit(ctx, store.AuditQuery{Target: "alice@localhost"})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "ended 1 sessions, blocked 0.5s", entries[0].Detail)
}

func TestEndSessionsTimeout(t *testing.T) {
	e := newEnv(t)
	alice := jid.MustParse("alice@localhost")
	stuck := newTestConn(e.reg, "alice@localhost/stuck")
	stuck.ignore = true // kicked, it never unbinds
	require.NoError(t, e.reg.Bind(stuck))

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res, err := e.mgr.EndSessions(ctx, sessman.EndRequest{User: alice, All: true, Origin: adhoc.Origin{Caller: "root@localhost", RequestID: "req-2"}})
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the cause is kept")
	assert.Equal(t, "Not every session ended in time; 0 did.", adhoc.AsError(err).Text)
	assert.Empty(t, res.Ended)
	assert.Equal(t, sessman.ConditionPolicyViolation, stuck.kicked.Load())

	total, entries, err := e.db.Audit(t.Context(), store.AuditQuery{Target: "alice@localhost"})
	require.NoError(t, err)
	require.Equal(t, 1, total, "the timed-out attempt is audited")
	assert.Equal(t, "end-sessions", entries[0].Action)
	assert.Equal(t, "remote-server-timeout", entries[0].Outcome)
	assert.Equal(t, "ended 0 sessions", entries[0].Detail)
	assert.Equal(t, "req-2", entries[0].RequestID)
}

func TestEndUserSessionTimeoutIsAudited(t *testing.T) {
	e := newEnv(t)
	stuck := newTestConn(e.reg, "alice@localhost/stuck")
	stuck.ignore = true // kicked, it never unbinds
	require.NoError(t, e.reg.Bind(stuck))

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.cmds.Execute(ctx, adhoc.Request{To: jid.MustParse("sess-man@localhost"), From: jid.MustParse("root@localhost"), Admin: true,
		Node: sessman.AdminNS + "#end-user-session", Fields: []adhoc.Field{{Var: "accountjids", Values: []string{"alice@localhost"}}}})
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
	assert.Equal(t, "Not every session ended in time; 0 did.", adhoc.AsError(err).Text)

	total, entries, err := e.db.Audit(t.Context(), store.AuditQuery{Target: "alice@localhost"})
	require.NoError(t, err)
	require.Equal(t, 1, total, "the timed-out attempt is audited")
	assert.Equal(t, "remote-server-timeout", entries[0].Outcome)
}
