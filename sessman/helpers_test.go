package sessman_test

import (
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

var (
	sessManJID  = jid.MustParse("sess-man@localhost")
	adminJID    = jid.MustParse("admin@localhost/script")
	adminCaller = adhoc.Caller{JID: adminJID, Auth: adhoc.AuthBasic, Admin: true, Name: "admin@localhost"}
	// keyCaller and readKeyCaller are a full and a read-only API key of localhost.
	keyCaller     = adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthAPIKey, Name: "apikey:ops"}
	readKeyCaller = adhoc.Caller{JID: jid.MustParse("localhost"), Auth: adhoc.AuthAPIKey, ReadOnly: true, Name: "apikey:ro"}
)

func node(name string) string { return sessman.AdminNS + "#" + name }

// env is a session manager over a real registry, accounts service on a
// temporary SQLite database, and command registry.
type env struct {
	reg      *sessman.Registry
	db       *store.DB
	accounts *sessman.Accounts
	mgr      *sessman.Manager
	cmds     *adhoc.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "adhocd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, db.Close()) })
	logger := zerolog.New(zerolog.NewTestWriter(t))
	e := &env{
		reg:  sessman.New(sessman.Config{EndTimeout: 5 * time.Second}, logger),
		db:   db,
		cmds: adhoc.NewRegistry(adhoc.RegistryConfig{}),
	}
	e.accounts = sessman.NewAccounts(sessman.AccountsConfig{Domain: "localhost", Admins: []jid.JID{jid.MustParse("root@localhost")}}, db, logger)
	e.mgr = sessman.NewManager(sessman.ManagerConfig{Domain: "localhost", ActiveWindow: time.Minute}, e.reg, e.accounts, logger)
	require.NoError(t, e.mgr.Register(e.cmds))
	require.NoError(t, db.AddUser(t.Context(), adminJID, "admin-pw", true))
	return e
}

// addUsers creates accounts with the password "pw".
func (e *env) addUsers(t *testing.T, users ...string) {
	t.Helper()
	for _, u := range users {
		require.NoError(t, e.db.AddUser(t.Context(), jid.MustParse(u), "pw", false))
	}
}

// run executes a command as the admin, in one request without a session.
func (e *env) run(t *testing.T, name string, fields ...adhoc.Field) (adhoc.Response, error) {
	t.Helper()
	return e.cmds.Execute(t.Context(), adhoc.Request{To: sessManJID, Node: node(name), Fields: fields, Caller: adminCaller})
}

// result runs a command that must succeed and returns its result fields.
func (e *env) result(t *testing.T, name string, fields ...adhoc.Field) []adhoc.Field {
	t.Helper()
	resp, err := e.run(t, name, fields...)
	require.NoError(t, err)
	assert.Equal(t, adhoc.StatusCompleted, resp.Status)
	require.NotNil(t, resp.Form)
	assert.Equal(t, adhoc.FormTypeResult, resp.Form.Type)
	return resp.Form.Fields
}

// audit returns the whole audit, newest first.
func (e *env) audit(t *testing.T, q session.AuditQuery) []session.AuditEntry {
	t.Helper()
	page, err := e.db.Audit(t.Context(), q)
	require.NoError(t, err)
	return page.Items
}

// online returns the full JIDs of the bound sessions, in order.
func (e *env) online(t testing.TB) []string {
	t.Helper()
	page, err := e.reg.List(t.Context(), session.ListRequest{})
	require.NoError(t, err)
	var out []string
	for _, s := range page.Items {
		out = append(out, s.JID)
	}
	return out
}

func field(v string, values ...string) adhoc.Field { return adhoc.Field{Var: v, Values: values} }

// shape is a result field without its label.
type shape struct {
	Var    string
	Type   adhoc.FieldType
	Values []string
}

func shapes(fields []adhoc.Field) []shape {
	out := make([]shape, len(fields))
	for i, f := range fields {
		out[i] = shape{f.Var, f.Type, f.Values}
	}
	return out
}

func notesOf(lines ...string) []shape {
	return []shape{{"Notes", adhoc.FieldTextMulti, lines}}
}

// client behaves as the c2s transport does: once kicked it unbinds itself
// (unless stuck). It records the messages it was sent and how it was
// kicked. The c2s tests cover the real connection.
type client struct {
	reg        *sessman.Registry
	id         string
	addr       jid.JID
	ip         net.IP
	lastActive time.Time
	stuck      bool // kicked, it never goes away

	mu       sync.Mutex
	closing  bool
	messages []session.Message
	kicks    []string      // "condition: text"
	gone     chan struct{} // closed once unbound after a kick
}

var _ session.Conn = (*client)(nil)

// newClient makes a client of addr whose session id is "s-" + addr.
func newClient(reg *sessman.Registry, addr string) *client {
	return &client{reg: reg, id: "s-" + addr, addr: jid.MustParse(addr), ip: net.IPv4(192, 0, 2, 1),
		lastActive: time.Now(), gone: make(chan struct{})}
}

func (c *client) SessionID() string     { return c.id }
func (c *client) JID() jid.JID          { return c.addr }
func (c *client) Transport() string     { return "tls" }
func (c *client) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: c.ip, Port: 40000} }
func (c *client) BoundAt() time.Time    { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) }
func (c *client) LastActive() time.Time { return c.lastActive }
func (c *client) Presence() string      { return "available" }
func (c *client) Deliver([]byte) bool   { return !c.isClosing() }

func (c *client) Notify(m session.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.messages = append(c.messages, m)
	return true
}

func (c *client) Kick(condition, text string) {
	c.mu.Lock()
	c.closing = true
	c.kicks = append(c.kicks, condition+": "+text)
	first := len(c.kicks) == 1
	c.mu.Unlock()
	if first && !c.stuck {
		// The registry holds no lock while it kicks, so the connection may
		// unbind at once; a goroutine, as the transport's, could outlive
		// the test.
		c.reg.Unbind(c)
		close(c.gone)
	}
}

func (c *client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *client) kicked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.kicks...)
}

func (c *client) received() []session.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]session.Message(nil), c.messages...)
}

// bind binds a client that was last active ago, from its own address.
func (e *env) bind(t testing.TB, addr string, ago time.Duration) *client {
	t.Helper()
	c := newClient(e.reg, addr)
	c.lastActive = time.Now().Add(-ago)
	c.ip = net.IPv4(192, 0, 2, byte(len(e.online(t))+1))
	require.NoError(t, e.reg.Bind(c))
	return c
}

// bindStuck binds a client that never goes away when kicked.
func (e *env) bindStuck(t testing.TB, addr string) *client {
	t.Helper()
	c := newClient(e.reg, addr)
	c.stuck = true
	require.NoError(t, e.reg.Bind(c))
	return c
}
