package c2s_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/adhocd/adhocd/transport/c2s"
)

const endUserSession = "http://jabber.org/protocol/admin#end-user-session"

func endUserSessionIQ(id, to string, targets ...string) string {
	values := ""
	for _, t := range targets {
		values += "<value>" + t + "</value>"
	}
	return `<iq type='set' id='` + id + `' to='` + to + `'><command xmlns='http://jabber.org/protocol/commands' node='` + endUserSession +
		`' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='accountjids'>` + values +
		`</field><field var='reason'><value>In-band kick.</value></field></x></command></iq>`
}

func TestInBandEndUserSessionByAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.connect(t, e.addAccount(t, "root", "pw", true), "pw", "console")
	victim := e.connect(t, e.addUser(t, "mallory", "pw"), "pw", "laptop")

	// Disco lists the commands on the commands node.
	admin.send(`<iq type='get' id='d1' to='sess-man@localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`)
	items := admin.expect("iq")
	require.Equal(t, "result", items.attr("type"), "%+v", items)
	var nodes []string
	q, _ := items.find("query")
	for _, it := range q.Nodes {
		nodes = append(nodes, it.attr("node"))
	}
	assert.Contains(t, nodes, endUserSession)

	admin.send("%s", endUserSessionIQ("k1", "sess-man@localhost", "mallory@localhost"))
	cond, text := victim.expectStreamError()
	assert.Equal(t, "policy-violation", cond)
	assert.Equal(t, "In-band kick.", text)

	res := admin.expect("iq")
	require.Equal(t, "result", res.attr("type"), "%+v", res)
	cmd, ok := res.find("command")
	require.True(t, ok)
	assert.Equal(t, "completed", cmd.attr("status"))
	notes, ok := cmd.find("field")
	require.True(t, ok)
	assert.Equal(t, "Notes", notes.attr("var"))
	v, _ := notes.find("value")
	assert.Equal(t, "Operation successful for user mallory@localhost/laptop", v.Text)
	_, online := e.reg.Lookup(jid.MustParse("mallory@localhost/laptop"))
	assert.False(t, online, "the reply comes after the session is gone")

	// A stale session id, checked after authorization: bad-request with the XEP-0050 specific condition.
	admin.send("%s", `<iq type='set' id='k3' to='sess-man@localhost'><command xmlns='http://jabber.org/protocol/commands' node='`+endUserSession+`' sessionid='nope' action='complete'/></iq>`)
	res = admin.expect("iq")
	require.Equal(t, "error", res.attr("type"))
	_, specific := res.find("bad-sessionid")
	assert.True(t, specific, "%+v", res)

	// The in-band change is in the audit, as an XMPP one.
	page, err := e.db.Audit(context.Background(), session.AuditQuery{Actor: "root@localhost"})
	require.NoError(t, err)
	entries := page.Items
	require.NotEmpty(t, entries)
	last := entries[len(entries)-1]
	assert.Equal(t, "xmpp", last.Auth)
	assert.Equal(t, "k1", last.RequestID)
	assert.Equal(t, []string{"mallory@localhost"}, last.Targets)

	// The bare domain reaches the same commands.
	admin.send("%s", endUserSessionIQ("k2", "localhost", "mallory@localhost"))
	res = admin.expect("iq")
	assert.Equal(t, "result", res.attr("type"), "%+v", res)
}

func TestInBandCommandsForbiddenToNonAdmins(t *testing.T) {
	e := newEnv(t)
	user := e.connect(t, e.addUser(t, "eve", "pw"), "pw", "r")
	other := e.connect(t, e.addUser(t, "bob", "pw"), "pw", "r")

	user.send("%s", endUserSessionIQ("k1", "sess-man@localhost", "bob@localhost"))
	res := user.expect("iq")
	require.Equal(t, "error", res.attr("type"))
	_, forbidden := res.find("forbidden")
	assert.True(t, forbidden, "%+v", res)
	other.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Equal(t, "result", other.expect("iq").attr("type"), "bob is still online")
}

func TestInBandAdminEndsOwnSession(t *testing.T) {
	e := newEnv(t)
	admin := e.connect(t, e.addAccount(t, "root", "pw", true), "pw", "console")
	admin.send("%s", endUserSessionIQ("k1", "localhost", "root@localhost/console"))
	cond, text := admin.expectStreamError()
	assert.Equal(t, "policy-violation", cond)
	assert.Equal(t, "In-band kick.", text)
	e.waitUnbound(t, "root@localhost/console")
}

// failingAdmin is the real accounts service whose admin lookup fails: with
// hang set it waits for its ctx (or the end of the test), else it reports a
// broken store.
type failingAdmin struct {
	*sessman.Accounts
	hang    bool
	release chan struct{}
}

func (a failingAdmin) Caller(ctx context.Context, _ jid.JID, _ string) (adhoc.Caller, error) {
	if !a.hang {
		return adhoc.Caller{}, errors.New("store: disk I/O error")
	}
	select {
	case <-ctx.Done():
		return adhoc.Caller{}, ctx.Err()
	case <-a.release:
		return adhoc.Caller{}, errors.New("test over")
	}
}

// logBuffer collects log lines from the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newFailingAdminEnv is a STARTTLS-only env whose admin lookups fail, with
// a 50ms command deadline; its log goes to the returned buffer too.
func newFailingAdminEnv(t *testing.T, hang bool) (*env, *logBuffer) {
	t.Helper()
	return newFailingAdminEnvWith(t, hang, 50*time.Millisecond)
}

// newFailingAdminEnvWith is newFailingAdminEnv with another command deadline.
func newFailingAdminEnvWith(t *testing.T, hang bool, commandTimeout time.Duration) (*env, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	release := make(chan struct{})
	logger := zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), logs))
	db, err := store.Open(filepath.Join(t.TempDir(), "adhocd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	serverTLS, clientTLS := testCert(t)
	reg := sessman.New(sessman.Config{}, logger)
	cmds := adhoc.NewRegistry(adhoc.RegistryConfig{})
	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: domain}, db, logger)
	manager := sessman.NewManager(sessman.ManagerConfig{Domain: domain}, reg, accounts, logger)
	require.NoError(t, manager.Register(cmds))
	srv := c2s.New(c2s.Config{Domain: domain, TLS: serverTLS, CommandTimeout: commandTimeout},
		c2s.Deps{Accounts: failingAdmin{accounts, hang, release}, Registry: reg, Commands: cmds, Logger: logger})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		require.ErrorIs(t, <-done, c2s.ErrServerClosed)
	})
	t.Cleanup(func() { close(release) }) // before Close: a hung lookup would hold it up
	return &env{srv: srv, reg: reg, db: db, accounts: accounts, cmds: cmds, addr: ln.Addr().String(), client: clientTLS}, logs
}

func TestInBandDiscoAdminLookupHasDeadline(t *testing.T) {
	e, logs := newFailingAdminEnv(t, true)
	admin := e.connect(t, e.addAccount(t, "root", "pw", true), "pw", "console")
	admin.send(`<iq type='get' id='d1' to='sess-man@localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`)
	res := admin.expect("iq")
	require.Equal(t, "result", res.attr("type"), "a hanging lookup gives up at the command deadline: %+v", res)
	_, ok := res.find("query")
	assert.True(t, ok, "%+v", res)
	assert.Contains(t, logs.String(), "admin lookup failed")
	admin.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Equal(t, "result", admin.expect("iq").attr("type"), "the read loop goes on")
}

func TestInBandCommandAdminLookupFailureIsLogged(t *testing.T) {
	e, logs := newFailingAdminEnv(t, false)
	admin := e.connect(t, e.addAccount(t, "root", "pw", true), "pw", "console")
	admin.send("%s", endUserSessionIQ("k1", "sess-man@localhost", "nobody@localhost"))
	res := admin.expect("iq")
	require.Equal(t, "error", res.attr("type"), "%+v", res)
	_, internal := res.find("internal-server-error")
	assert.True(t, internal, "%+v", res)
	text, _ := res.find("text")
	assert.NotContains(t, text.Text, "disk I/O", "the cause is not sent")
	assert.Contains(t, logs.String(), "admin lookup failed")
	assert.Contains(t, logs.String(), "disk I/O error", "the cause is in the log")
}

func TestInBandCommandsPerClientAreBounded(t *testing.T) {
	// Lookups hang until the test ends, so the first commands stay running.
	e, _ := newFailingAdminEnvWith(t, true, time.Minute)
	eve := e.connect(t, e.addUser(t, "eve", "pw"), "pw", "r")
	for i := range 5 {
		eve.send("%s", endUserSessionIQ(fmt.Sprintf("k%d", i), "sess-man@localhost", "bob@localhost"))
	}
	res := eve.expect("iq")
	assert.Equal(t, "k4", res.attr("id"), "only the fifth is answered while four run: %+v", res)
	require.Equal(t, "error", res.attr("type"), "%+v", res)
	_, limited := res.find("resource-constraint")
	assert.True(t, limited, "%+v", res)
	eve.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Equal(t, "result", eve.expect("iq").attr("type"), "the read loop goes on")
}
