package sessman_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
)

func count(t testing.TB, reg *sessman.Registry) int {
	t.Helper()
	c, err := reg.Count(t.Context(), session.CountRequest{})
	require.NoError(t, err)
	return c.Sessions
}

func endedJIDs(res session.EndResult) []string {
	out := []string{}
	for _, s := range res.Ended {
		out = append(out, s.JID)
	}
	return out
}

func TestBindLookupEnd(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.bind(t, "alice@localhost/a", 0), e.bind(t, "alice@localhost/b", 0), e.bind(t, "bob@localhost/c", 0)
	assert.Equal(t, 3, count(t, e.reg))
	got, ok := e.reg.Lookup(jid.MustParse("alice@localhost/b"))
	require.True(t, ok)
	assert.Same(t, b, got)
	assert.Len(t, e.reg.Resources(jid.MustParse("alice@localhost")), 2)
	assert.ErrorIs(t, e.reg.Bind(newClient(e.reg, "localhost")), sessman.ErrNotFullJID)

	res, err := e.reg.End(t.Context(), session.EndRequest{Users: []jid.JID{jid.MustParse("alice@localhost"), a.addr}, All: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"alice@localhost/a", "alice@localhost/b"}, endedJIDs(res), "each resource once, ordered")
	assert.Equal(t, []string{"policy-violation: " + session.DefaultEndReason}, a.kicked())
	assert.Equal(t, 1, count(t, e.reg))
	assert.Empty(t, c.kicked(), "bob is untouched")
	assert.Equal(t, "tls", res.Ended[0].Transport, "ended sessions are described as they were")
}

func TestBindConflictKicksOlder(t *testing.T) {
	e := newEnv(t)
	older := e.bind(t, "alice@localhost/phone", 0)
	newer := e.bind(t, "alice@localhost/phone", 0)
	assert.Equal(t, []string{"conflict: Replaced by a new connection with the same resource."}, older.kicked())
	<-older.gone
	got, ok := e.reg.Lookup(newer.addr)
	require.True(t, ok)
	assert.Same(t, newer, got, "the older session's Unbind does not remove the newer one")
	assert.Equal(t, 1, count(t, e.reg))
}

// TestBindConflictWithTheSameSessionID: these test connections take their
// JID as session id, so the older and newer session share it; the newer
// one must stay reachable by id.
func TestBindConflictWithTheSameSessionID(t *testing.T) {
	e := newEnv(t)
	older := e.bind(t, "alice@localhost/phone", 0)
	newer := e.bind(t, "alice@localhost/phone", 0)
	require.Equal(t, older.SessionID(), newer.SessionID())
	<-older.gone
	got, err := e.reg.Get(t.Context(), session.GetRequest{User: newer.addr.Bare(), ID: newer.SessionID()})
	require.NoError(t, err, "the newer session is found by its id")
	assert.Equal(t, newer.addr.String(), got.JID)
	assert.Equal(t, 1, count(t, e.reg))
}

func TestEndTimesOutOnAConnectionThatNeverGoes(t *testing.T) {
	e := newEnv(t)
	stuck := e.bindStuck(t, "alice@localhost/stuck")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res, err := e.reg.End(ctx, session.EndRequest{Users: []jid.JID{stuck.addr}, All: true})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, res.Ended)
}

func TestEndEveryoneAtShutdown(t *testing.T) {
	e := newEnv(t)
	a, b := e.bind(t, "alice@localhost/a", 0), e.bind(t, "bob@localhost/b", 0)
	res, err := e.reg.End(t.Context(), session.EndRequest{Everyone: true, Condition: session.ConditionSystemShutdown, Reason: "Bye."})
	require.NoError(t, err)
	assert.Equal(t, []string{"alice@localhost/a", "bob@localhost/b"}, endedJIDs(res))
	assert.Equal(t, []string{"system-shutdown: Bye."}, a.kicked())
	assert.Equal(t, []string{"system-shutdown: Bye."}, b.kicked())
	assert.Zero(t, count(t, e.reg))
}

func TestListPagesInStableOrder(t *testing.T) {
	e := newEnv(t)
	for i := range 25 {
		e.bind(t, fmt.Sprintf("u%02d@localhost/r", 24-i), 0)
	}
	var seen []string
	for offset := 0; offset < 30; offset += 10 {
		page, err := e.reg.List(t.Context(), session.ListRequest{Offset: offset, Limit: 10})
		require.NoError(t, err)
		assert.Equal(t, 25, page.Count)
		for _, s := range page.Items {
			seen = append(seen, s.JID)
		}
	}
	require.Len(t, seen, 25)
	assert.Equal(t, "u00@localhost/r", seen[0])
	assert.Equal(t, "u24@localhost/r", seen[24])

	one, err := e.reg.List(t.Context(), session.ListRequest{User: jid.MustParse("u03@localhost")})
	require.NoError(t, err)
	require.Equal(t, 1, one.Count)
	got := one.Items[0]
	got.LastActive = time.Time{}
	assert.Equal(t, session.Session{
		ID: "s-u03@localhost/r", JID: "u03@localhost/r", User: "u03@localhost", Resource: "r", Transport: "tls",
		RemoteAddr: got.RemoteAddr, BoundAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Presence: "available",
	}, got)
	assert.Regexp(t, `^192\.0\.2\.\d+:40000$`, got.RemoteAddr)

	empty, err := e.reg.List(t.Context(), session.ListRequest{User: jid.MustParse("nobody@localhost")})
	require.NoError(t, err)
	assert.Equal(t, session.Page{Items: []session.Session{}}, empty)
}

func TestCountGroupsByUser(t *testing.T) {
	e := newEnv(t)
	e.bind(t, "alice@localhost/a", time.Hour)
	recent := e.bind(t, "alice@localhost/b", time.Second)
	e.bind(t, "bob@localhost/c", 2*time.Hour)
	counts, err := e.reg.Count(t.Context(), session.CountRequest{})
	require.NoError(t, err)
	assert.Equal(t, session.Counts{Sessions: 3, Users: 2}, counts, "the numbers only, unless asked")
	counts, err = e.reg.Count(t.Context(), session.CountRequest{PerUser: true})
	require.NoError(t, err)
	assert.ElementsMatch(t, []session.OnlineUser{{User: "alice@localhost", Sessions: 2}, {User: "bob@localhost", Sessions: 1}},
		counts.Online, "users without their activity, unless asked")
	counts, err = e.reg.Count(t.Context(), session.CountRequest{PerUser: true, Activity: true})
	require.NoError(t, err)
	assert.Equal(t, 3, counts.Sessions)
	assert.Equal(t, 2, counts.Users)
	assert.Equal(t, map[string]int{"tls": 3}, counts.ByTransport)
	assert.ElementsMatch(t, []session.OnlineUser{
		{User: "alice@localhost", Sessions: 2, LastActive: recent.lastActive},
		{User: "bob@localhost", Sessions: 1, LastActive: counts.Online[indexOf(counts.Online, "bob@localhost")].LastActive},
	}, counts.Online)
}

func indexOf(users []session.OnlineUser, user string) int {
	for i, u := range users {
		if u.User == user {
			return i
		}
	}
	return -1
}

// TestConcurrentBindsKicksAndDisconnects is meant for -race: binds with
// clashing resources, ends and disconnects all at once, and the registry
// ends consistent and empty.
func TestConcurrentBindsKicksAndDisconnects(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				c := newClient(e.reg, fmt.Sprintf("user%d@localhost/r%d", i%5, (i+w)%3))
				require.NoError(t, e.reg.Bind(c))
				switch i % 3 {
				case 0:
					e.reg.Unbind(c)
				case 1:
					_, err := e.reg.End(t.Context(), session.EndRequest{Users: []jid.JID{c.addr.Bare()}, All: true})
					assert.NoError(t, err)
				}
				_, err := e.reg.List(t.Context(), session.ListRequest{Limit: 10})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	_, err := e.reg.End(t.Context(), session.EndRequest{Everyone: true, Condition: session.ConditionSystemShutdown})
	require.NoError(t, err)
	assert.Zero(t, count(t, e.reg))
	assert.Empty(t, e.online(t))
}

// BenchmarkOnlineUsers runs the commands that group the online users by
// account over 10,000 sessions: 5,000 users with two resources each.
func BenchmarkOnlineUsers(b *testing.B) {
	e := newEnv(b)
	for i := range 10000 {
		require.NoError(b, e.reg.Bind(newClient(e.reg, fmt.Sprintf("user%05d@localhost/r%d", i/2, i%2))))
	}
	for _, tc := range []struct {
		name   string
		fields []adhoc.Field
	}{
		{"get-online-users-num", nil},
		{"get-online-users-list", []adhoc.Field{field("max_items", "none")}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := adhoc.Request{To: sessManJID, Node: node(tc.name), Fields: tc.fields, Caller: adminCaller}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := e.cmds.Execute(b.Context(), req)
				if err != nil || len(resp.Form.Fields) != 1 {
					b.Fatalf("%s: %v %+v", tc.name, err, resp)
				}
			}
		})
	}
}
