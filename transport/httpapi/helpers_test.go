package httpapi_test

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

// services are the real session manager and accounts service of
// localhost, over a registry and a temporary SQLite database, as
// cmd/adhocd wires them.
type services struct {
	db       *store.DB
	accounts *sessman.Accounts
	reg      *sessman.Registry
	mgr      *sessman.Manager
	cmds     *adhoc.Registry
}

func newServices(t *testing.T) *services {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "adhocd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, db.Close()) })
	logger := zerolog.New(zerolog.NewTestWriter(t))
	s := &services{db: db, reg: sessman.New(sessman.Config{}, logger), cmds: adhoc.NewRegistry(adhoc.RegistryConfig{})}
	s.accounts = sessman.NewAccounts(sessman.AccountsConfig{Domain: "localhost"}, db, logger)
	s.mgr = sessman.NewManager(sessman.ManagerConfig{Domain: "localhost"}, s.reg, s.accounts, logger)
	require.NoError(t, s.mgr.Register(s.cmds))
	return s
}

// boundConn stands in for a client connection in the registry: the router
// tests are about HTTP; the c2s and end-to-end tests use real clients.
type boundConn struct {
	reg    *sessman.Registry
	id     string
	addr   jid.JID
	mu     sync.Mutex
	reason string
}

var _ session.Conn = (*boundConn)(nil)

func (c *boundConn) SessionID() string           { return c.id }
func (c *boundConn) JID() jid.JID                { return c.addr }
func (c *boundConn) Transport() string           { return "tcp" }
func (c *boundConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5} }
func (c *boundConn) BoundAt() time.Time          { return time.Unix(100, 0) }
func (c *boundConn) LastActive() time.Time       { return time.Unix(200, 0) }
func (c *boundConn) Presence() string            { return "available" }
func (c *boundConn) Deliver([]byte) bool         { return true }
func (c *boundConn) Notify(session.Message) bool { return true }
func (c *boundConn) Kick(_, text string) {
	c.mu.Lock()
	c.reason = text
	c.mu.Unlock()
	c.reg.Unbind(c)
}
