package sessman_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
)

// testConn behaves as the c2s transport does: once kicked it unbinds
// itself. The c2s tests cover the real connection.
type testConn struct {
	reg    *sessman.Registry
	id     string
	addr   jid.JID
	kicked atomic.Value // condition
	once   sync.Once
	gone   chan struct{}
	ignore bool // never goes away when kicked
}

var _ sessman.Conn = (*testConn)(nil)

func newTestConn(reg *sessman.Registry, addr string) *testConn {
	return &testConn{reg: reg, id: addr, addr: jid.MustParse(addr), gone: make(chan struct{})}
}

func (c *testConn) SessionID() string    { return c.id }
func (c *testConn) JID() jid.JID         { return c.addr }
func (c *testConn) Transport() string    { return "tcp" }
func (c *testConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *testConn) BoundAt() time.Time   { return time.Unix(1, 0) }
func (c *testConn) LastActive() time.Time {
	return time.Unix(2, 0)
}
func (c *testConn) Presence() string      { return "available" }
func (c *testConn) Deliver(b []byte) bool { return c.kicked.Load() == nil }
func (c *testConn) Kick(condition, _ string) {
	c.once.Do(func() {
		c.kicked.Store(condition)
		if !c.ignore {
			// The registry holds no lock while it kicks, so the connection
			// may unbind right here; a goroutine could outlive the test.
			c.disconnect()
		}
	})
}

func (c *testConn) disconnect() {
	c.reg.Unbind(c)
	select {
	case <-c.gone:
	default:
		close(c.gone)
	}
}

func newRegistry(t testing.TB) *sessman.Registry {
	return sessman.New(sessman.Config{EndTimeout: 5 * time.Second}, zerolog.New(zerolog.NewTestWriter(t)))
}

func TestBindLookupEnd(t *testing.T) {
	reg := newRegistry(t)
	a := newTestConn(reg, "alice@localhost/a")
	b := newTestConn(reg, "alice@localhost/b")
	c := newTestConn(reg, "bob@localhost/c")
	for _, conn := range []*testConn{a, b, c} {
		require.NoError(t, reg.Bind(conn))
	}
	assert.Equal(t, 3, reg.Count())
	got, ok := reg.Lookup(jid.MustParse("alice@localhost/b"))
	require.True(t, ok)
	assert.Same(t, b, got)
	assert.Len(t, reg.Resources(jid.MustParse("alice@localhost")), 2)
	assert.ErrorIs(t, reg.Bind(newTestConn(reg, "localhost")), sessman.ErrNotFullJID)

	ended, err := reg.End(context.Background(), []jid.JID{jid.MustParse("alice@localhost"), jid.MustParse("alice@localhost/a")}, "", "")
	require.NoError(t, err)
	assert.Equal(t, []jid.JID{a.addr, b.addr}, ended, "each resource once, ordered")
	assert.Equal(t, sessman.ConditionPolicyViolation, a.kicked.Load())
	assert.Equal(t, 1, reg.Count())
	assert.Nil(t, c.kicked.Load(), "bob is untouched")
}

func TestBindConflictKicksOlder(t *testing.T) {
	reg := newRegistry(t)
	older := newTestConn(reg, "alice@localhost/phone")
	newer := newTestConn(reg, "alice@localhost/phone")
	require.NoError(t, reg.Bind(older))
	require.NoError(t, reg.Bind(newer))
	assert.Equal(t, sessman.ConditionConflict, older.kicked.Load())
	<-older.gone
	got, ok := reg.Lookup(newer.addr)
	require.True(t, ok)
	assert.Same(t, newer, got, "the older session's Unbind does not remove the newer one")
	assert.Equal(t, 1, reg.Count())
}

// TestBindConflictWithTheSameSessionID: these test connections take their
// JID as session id, so the older and newer session share it; the newer
// one must stay reachable by id.
func TestBindConflictWithTheSameSessionID(t *testing.T) {
	reg := newRegistry(t)
	older := newTestConn(reg, "alice@localhost/phone")
	newer := newTestConn(reg, "alice@localhost/phone")
	require.Equal(t, older.SessionID(), newer.SessionID())
	require.NoError(t, reg.Bind(older))
	require.NoError(t, reg.Bind(newer))
	<-older.gone
	got, ok := reg.LookupID(newer.SessionID())
	require.True(t, ok, "the newer session is found by its id")
	assert.Same(t, newer, got)
	assert.Equal(t, 1, reg.Count())
}

func TestEndTimesOutOnAConnectionThatNeverGoes(t *testing.T) {
	reg := newRegistry(t)
	stuck := newTestConn(reg, "alice@localhost/stuck")
	stuck.ignore = true
	require.NoError(t, reg.Bind(stuck))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ended, err := reg.End(ctx, []jid.JID{stuck.addr}, "", "")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, ended)
}

func TestListPagesInStableOrder(t *testing.T) {
	reg := newRegistry(t)
	for i := range 25 {
		require.NoError(t, reg.Bind(newTestConn(reg, fmt.Sprintf("u%02d@localhost/r", 24-i))))
	}
	var seen []string
	for offset := 0; offset < 30; offset += 10 {
		page, err := reg.List(sessman.ListRequest{Offset: offset, Limit: 10})
		require.NoError(t, err)
		assert.Equal(t, 25, page.Count)
		for _, s := range page.Items {
			seen = append(seen, s.JID)
		}
	}
	require.Len(t, seen, 25)
	assert.Equal(t, "u00@localhost/r", seen[0])
	assert.Equal(t, "u24@localhost/r", seen[24])

	one, err := reg.List(sessman.ListRequest{User: "u03@localhost"})
	require.NoError(t, err)
	require.Equal(t, 1, one.Count)
	assert.Equal(t, sessman.Session{
		ID: "u03@localhost/r", JID: "u03@localhost/r", User: "u03@localhost", Resource: "r", Transport: "tcp",
		RemoteAddr: "127.0.0.1:1", BoundAt: time.Unix(1, 0).UTC(), LastActive: time.Unix(2, 0).UTC(), Presence: "available",
	}, one.Items[0])

	empty, err := reg.List(sessman.ListRequest{User: "nobody@localhost"})
	require.NoError(t, err)
	assert.Equal(t, sessman.ListResult{Items: []sessman.Session{}}, empty)
}

// TestConcurrentBindsKicksAndDisconnects is meant for -race: binds with
// clashing resources, ends and disconnects all at once, and the registry
// ends consistent and empty.
func TestConcurrentBindsKicksAndDisconnects(t *testing.T) {
	reg := newRegistry(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				c := newTestConn(reg, fmt.Sprintf("user%d@localhost/r%d", i%5, (i+w)%3))
				require.NoError(t, reg.Bind(c))
				switch i % 3 {
				case 0:
					c.disconnect()
				case 1:
					_, err := reg.End(context.Background(), []jid.JID{c.addr.Bare()}, "", "")
					assert.NoError(t, err)
				}
				_, err := reg.List(sessman.ListRequest{Limit: 10})
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	_, err := reg.EndAll(context.Background(), sessman.ConditionSystemShutdown, "")
	require.NoError(t, err)
	assert.Equal(t, 0, reg.Count())
	assert.Empty(t, reg.All())
}

// BenchmarkOnlineUsers runs the commands that group the online users by
// account over 10,000 sessions: 5,000 users with two resources each.
func BenchmarkOnlineUsers(b *testing.B) {
	e := newEnv(b)
	for i := range 10000 {
		require.NoError(b, e.reg.Bind(newTestConn(e.reg, fmt.Sprintf("user%05d@localhost/r%d", i/2, i%2))))
	}
	for _, tc := range []struct {
		name   string
		fields []adhoc.Field
	}{
		{"get-online-users-num", nil},
		{"get-online-users-list", []adhoc.Field{field("max_items", "none")}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := adhoc.Request{To: sessManJID, From: adminJID, Admin: true, Node: node(tc.name), Fields: tc.fields}
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
