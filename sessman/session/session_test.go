package session_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
)

var caller = adhoc.Caller{
	JID: jid.MustParse("admin@example.org/console"), Auth: adhoc.AuthXMPP, Admin: true,
	Name: "admin@example.org", RemoteAddr: "192.0.2.1:5222", RequestID: "iq-7",
}

// roundTrip marshals v, unmarshals it into a new T and returns that.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal(b, &out), "%s", b)
	return out
}

// TestRequestsRoundTrip checks that every request and result a cluster
// would send to another node comes back equal: JIDs as strings, nothing
// lost.
func TestRequestsRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := session.Session{ID: "abc", JID: "alice@example.org/phone", User: "alice@example.org", Resource: "phone",
		Transport: "tls", RemoteAddr: "192.0.2.2:40000", BoundAt: at, LastActive: at.Add(time.Minute), Presence: "away"}

	end := session.EndRequest{
		Users: []jid.JID{jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org/desk")},
		IDs:   []string{"a", "b"}, All: true, Except: "c", Condition: session.ConditionPolicyViolation,
		Reason: "Bye.", Block: 90 * time.Second, Caller: caller,
	}
	assert.Equal(t, end, roundTrip(t, end))
	assert.Equal(t, session.EndRequest{Everyone: true}, roundTrip(t, session.EndRequest{Everyone: true}))
	assert.Equal(t, session.EndResult{Ended: []session.Session{s}}, roundTrip(t, session.EndResult{Ended: []session.Session{s}}))

	list := session.ListRequest{User: jid.MustParse("alice@example.org"), Offset: 5, Limit: 10, Caller: caller}
	assert.Equal(t, list, roundTrip(t, list))
	everyone := session.ListRequest{Limit: 50, Caller: caller}
	assert.Equal(t, everyone, roundTrip(t, everyone), "the zero JID stays zero")
	assert.Equal(t, session.Page{Count: 3, Items: []session.Session{s}}, roundTrip(t, session.Page{Count: 3, Items: []session.Session{s}}))

	get := session.GetRequest{User: jid.MustParse("alice@example.org"), ID: "abc", Caller: caller}
	assert.Equal(t, get, roundTrip(t, get))

	counts := session.Counts{Sessions: 2, Users: 1, ByTransport: map[string]int{"tls": 2},
		Online: []session.OnlineUser{{User: "alice@example.org", Sessions: 2, LastActive: at}}}
	assert.Equal(t, counts, roundTrip(t, counts))
	assert.Equal(t, session.CountRequest{PerUser: true, Activity: true, Caller: caller}, roundTrip(t, session.CountRequest{PerUser: true, Activity: true, Caller: caller}))

	ann := session.AnnounceRequest{From: jid.MustParse("example.org"), Subject: "Maintenance", Body: "At noon.", Caller: caller}
	assert.Equal(t, ann, roundTrip(t, ann))
	assert.Equal(t, session.AnnounceResult{Sent: 1, Online: 2}, roundTrip(t, session.AnnounceResult{Sent: 1, Online: 2}))

	q := session.AuditQuery{Limit: 5, Offset: 1, Actor: "cli", Target: "alice@example.org", Caller: caller}
	assert.Equal(t, q, roundTrip(t, q))
}

func TestRequestsRejectBadJIDs(t *testing.T) {
	var end session.EndRequest
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"users":["a@b@c"]}`), &end), `users "a@b@c"`)
	var list session.ListRequest
	assert.Error(t, json.Unmarshal([]byte(`{"user":"@x"}`), &list))
	var c adhoc.Caller
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"jid":"a@b@c"}`), &c), `caller jid`)
}

// conn is a bound connection for Selects.
type conn struct {
	id   string
	addr jid.JID
}

func (c conn) SessionID() string           { return c.id }
func (c conn) JID() jid.JID                { return c.addr }
func (conn) Transport() string             { return "tcp" }
func (conn) RemoteAddr() net.Addr          { return nil }
func (conn) BoundAt() time.Time            { return time.Time{} }
func (conn) LastActive() time.Time         { return time.Time{} }
func (conn) Presence() string              { return "available" }
func (conn) Deliver([]byte) bool           { return true }
func (conn) Notify(session.Message) bool   { return true }
func (conn) Kick(condition, text string)   {}
func newConn(id, addr string) session.Conn { return conn{id: id, addr: jid.MustParse(addr)} }
func users(addrs ...string) (out []jid.JID) {
	for _, a := range addrs {
		out = append(out, jid.MustParse(a))
	}
	return out
}

func TestEndRequestSelects(t *testing.T) {
	phone, desk, bob := newConn("1", "alice@example.org/phone"), newConn("2", "alice@example.org/desk"), newConn("3", "bob@example.org/x")
	tests := []struct {
		name   string
		req    session.EndRequest
		expect []bool // phone, desk, bob
	}{
		{"a bare JID is every session of the user", session.EndRequest{Users: users("alice@example.org"), All: true}, []bool{true, true, false}},
		{"a full JID is that resource", session.EndRequest{Users: users("alice@example.org/desk"), All: true}, []bool{false, true, false}},
		{"all but one", session.EndRequest{Users: users("alice@example.org"), All: true, Except: "1"}, []bool{false, true, false}},
		{"by id, of the users named only", session.EndRequest{Users: users("alice@example.org"), IDs: []string{"2", "3"}}, []bool{false, true, false}},
		{"no ids, nothing", session.EndRequest{Users: users("alice@example.org"), IDs: []string{}}, []bool{false, false, false}},
		{"no users, nothing", session.EndRequest{All: true}, []bool{false, false, false}},
		{"everyone", session.EndRequest{Everyone: true}, []bool{true, true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.expect, []bool{tc.req.Selects(phone), tc.req.Selects(desk), tc.req.Selects(bob)})
		})
	}
}

func TestBlockedErrorText(t *testing.T) {
	until := time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 7200))
	b := &session.BlockedError{Until: until, Reason: "Spam."}
	assert.Equal(t, "Spam. You may not log in before 2026-05-01T10:00:00Z.", b.Text())
	tests := []struct {
		givenReason string
		expectText  string
	}{
		{"", "You may not log in before 2026-05-01T10:00:00Z."},
		{"Password reset", "Password reset. You may not log in before 2026-05-01T10:00:00Z."},
		{"Password reset. ", "Password reset. You may not log in before 2026-05-01T10:00:00Z."},
		{"Why?", "Why? You may not log in before 2026-05-01T10:00:00Z."},
		{"  ", "You may not log in before 2026-05-01T10:00:00Z."},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.expectText, (&session.BlockedError{Until: until, Reason: tc.givenReason}).Text(), "reason %q", tc.givenReason)
	}
	assert.ErrorIs(t, b, session.ErrDisabled, "a block refuses a login as a disabled account does")
}
