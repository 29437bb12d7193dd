package main

// End-to-end tests of the session management API (/rest/sessions,
// /rest/users/{jid}/sessions, /rest/audit, API keys, blocks, login
// throttling) and of the Pusher-compatible terminate_connections, on the
// built adhocd binary, with real mellium and slixmpp sessions and with
// Pusher's official server SDK for Node.js (testdata/clients).

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/transport/c2s/c2stest"
	"github.com/adhocd/adhocd/transport/limit"
)

// apiSessionKeys are the members of a session object, no more, no fewer.
var apiSessionKeys = []string{"id", "jid", "user", "resource", "transport", "remote_addr", "bound_at", "last_active", "presence"}

// apiSessionList is the answer of the list endpoints.
type apiSessionList struct{ session.Page }

func (l apiSessionList) ids() []string {
	ids := make([]string, len(l.Items))
	for i, s := range l.Items {
		ids[i] = s.ID
	}
	return ids
}

// idOf returns the id of the session whose full JID is full.
func (l apiSessionList) idOf(t *testing.T, full jid.JID) string {
	t.Helper()
	for _, s := range l.Items {
		if s.JID == full.String() {
			return s.ID
		}
	}
	t.Fatalf("no session %s among %+v", full, l.Items)
	return ""
}

// apiCount is the answer of the bulk deletes.
type apiCount struct {
	Count *int `json:"count"`
}

// sessAuth is how a request authenticates: HTTP Basic (user, password) or
// header lines such as "Authorization: Bearer <key>".
type sessAuth struct {
	user, password string
	header         []string
}

var sessAdmin = sessAuth{user: e2eAdmin, password: e2eAdminPassword}

func sessBasic(user, password string) sessAuth { return sessAuth{user: user, password: password} }
func sessBearer(secret string) sessAuth {
	return sessAuth{header: []string{"Authorization: Bearer " + secret}}
}
func sessAPIKey(secret string) sessAuth { return sessAuth{header: []string{"Api-Key: " + secret}} }

// sessCall sends one request to the session API as who.
func (d *daemon) sessCall(t *testing.T, who sessAuth, method, path, body string) gatewayResponse {
	t.Helper()
	header := who.header
	if body != "" {
		header = append(slices.Clone(header), "Content-Type: application/json")
	}
	return d.gatewayCall(t, method, path, who.user, who.password, body, header...)
}

// sessJSON decodes a 2xx JSON answer into v, failing with the answer shown.
func sessJSON(t *testing.T, resp gatewayResponse, status int, v any, what string) {
	t.Helper()
	require.Equal(t, status, resp.status, "%s: %s", what, resp.body)
	assert.Equal(t, "application/json", resp.mediaType(t), "%s: Content-Type", what)
	require.NoError(t, json.Unmarshal(resp.body, v), "%s: decoding %s", what, resp.body)
}

// sessList GETs a list endpoint; items must be a JSON array, never null.
func (d *daemon) sessList(t *testing.T, who sessAuth, path string) apiSessionList {
	t.Helper()
	resp := d.sessCall(t, who, http.MethodGet, path, "")
	var raw struct {
		Count *int            `json:"count"`
		Items json.RawMessage `json:"items"`
	}
	sessJSON(t, resp, http.StatusOK, &raw, "GET "+path)
	require.NotNil(t, raw.Count, "GET %s: no count in %s", path, resp.body)
	require.True(t, strings.HasPrefix(string(raw.Items), "["), "GET %s: items must be an array (even empty), got %s", path, resp.body)
	var l apiSessionList
	require.NoError(t, json.Unmarshal(resp.body, &l))
	return l
}

// sessError checks an error answer: its status, its JSON condition and a
// sentence.
func sessError(t *testing.T, resp gatewayResponse, status int, condition, what string) {
	t.Helper()
	require.Equal(t, status, resp.status, "%s: %s", what, resp.body)
	assert.Equal(t, "application/json", resp.mediaType(t), "%s: errors of the session API are JSON", what)
	var e gatewayError
	require.NoError(t, json.Unmarshal(resp.body, &e), "%s: %s", what, resp.body)
	assert.Equal(t, condition, e.Condition, "%s: %s", what, resp.body)
	assert.NotEmpty(t, e.Error, "%s: an error carries a sentence", what)
}

// sessLoginOnce is a mellium login over STARTTLS or direct TLS that reports
// its error instead of failing the test, for loops and goroutines.
func sessLoginOnce(ctx context.Context, addr string, tlsConfig *tls.Config, user jid.JID, password string, directTLS bool) (*xmpp.Session, net.Conn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, sasl.ScramSha256), xmpp.BindResource()}
	if directTLS {
		conn = tls.Client(conn, tlsConfig)
	} else {
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(tlsConfig)}, features...)
	}
	s, err := xmpp.NewClientSession(ctx, user, conn, features...)
	if err != nil {
		_ = conn.Close() // the session failed: only the socket is left
		return nil, nil, err
	}
	return s, conn, nil
}

// loginMany opens n mellium sessions of each of users (one goroutine per
// user, all sharing password) with server-chosen resources, alternating
// STARTTLS and direct TLS, and returns them by full JID.
func (d *daemon) loginMany(t *testing.T, users []jid.JID, password string, n int) map[string]*xmpp.Session {
	t.Helper()
	tlsConfig := d.clientTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type result struct {
		s    *xmpp.Session
		conn net.Conn
		err  error
	}
	results := make(chan result, len(users)*n)
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for i := range n {
				addr := d.addrs["c2s"]
				if i%2 == 1 {
					addr = d.addrs["c2s-tls"]
				}
				s, conn, err := sessLoginOnce(ctx, addr, tlsConfig, u, password, i%2 == 1)
				if err != nil {
					err = fmt.Errorf("login %d of %s on %s: %w", i, u, addr, err)
				}
				results <- result{s, conn, err}
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	close(results)
	sessions := map[string]*xmpp.Session{}
	var errs []error
	for r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		sessions[r.s.LocalAddr().String()] = r.s
		t.Cleanup(func() { _ = r.s.Close(); _ = r.conn.Close() })
	}
	require.NoError(t, errors.Join(errs...))
	return sessions
}

// sessCLI runs the adhocd binary with args (a command beside serve, on
// the same data directory) and returns its stdout.
func sessCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, adhocdBinary(t), args...)
	cmd.Env = childEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "adhocd %s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}

var sessKeyCreatedLine = regexp.MustCompile(`(?m)^API key (\S+) \((.*)\) for (\S+), read-only: (true|false): (\S+)$`)

// sessKeyCreate runs `adhocd apikey create` beside the running server and
// returns the key's ID and the secret it printed.
func sessKeyCreate(t *testing.T, dir, name string, readOnly bool) (id, secret string) {
	t.Helper()
	args := []string{"apikey", "create", "--data", dir, "--name", name}
	if readOnly {
		args = append(args, "--read-only")
	}
	out := sessCLI(t, args...)
	m := sessKeyCreatedLine.FindStringSubmatch(out)
	require.NotNil(t, m, "adhocd apikey create printed %q", out)
	assert.Equal(t, name, m[2])
	assert.Equal(t, "localhost", m[3])
	assert.Equal(t, strconv.FormatBool(readOnly), m[4])
	return m[1], m[5]
}

// sessBody is a JSON body of a delete.
func sessBody(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestE2ESessionsPagination(t *testing.T) {
	dir := t.TempDir()
	users := []jid.JID{
		jid.MustParse("page1@localhost"), jid.MustParse("page2@localhost"),
		jid.MustParse("page3@localhost"), jid.MustParse("page4@localhost"),
	}
	for _, u := range users {
		userAdd(t, dir, u.String(), "page-secret") // before serve: no daemon to race with
	}
	d := startDaemon(t, dir)

	start := time.Now()
	sessions := d.loginMany(t, users, "page-secret", 30)
	t.Logf("120 mellium logins (4 users in parallel) took %s", time.Since(start))
	require.Len(t, sessions, 120, "distinct full JIDs: the server chose a resource twice")

	read := func() []session.Session {
		var all []session.Session
		for i, offset := range []int{0, 50, 100} {
			l := d.sessList(t, sessAdmin, fmt.Sprintf("/rest/sessions?limit=50&offset=%d", offset))
			assert.Equal(t, 120, l.Count, "count at offset %d", offset)
			require.Len(t, l.Items, []int{50, 50, 20}[i], "items at offset %d", offset)
			all = append(all, l.Items...)
		}
		return all
	}
	first := read()
	seen := map[string]bool{}
	for _, s := range first {
		assert.False(t, seen[s.ID], "session id %s on two pages", s.ID)
		seen[s.ID] = true
		assert.NotNil(t, sessions[s.JID], "listed session %s is none of ours", s.JID)
		assert.Equal(t, s.User+"/"+s.Resource, s.JID)
		assert.NotEmpty(t, s.ID)
		assert.NotEqual(t, "all", s.ID, "an id is never the word all")
		assert.NotEmpty(t, s.Transport, "transport of %s", s.JID)
		assert.True(t, strings.HasPrefix(s.RemoteAddr, "127.0.0.1:"), "remote_addr of %s: %q", s.JID, s.RemoteAddr)
		assert.False(t, s.BoundAt.Before(start.Add(-time.Minute)), "bound_at of %s: %s", s.JID, s.BoundAt)
	}
	assert.Len(t, seen, 120, "every session exactly once over the three pages")
	second := read()
	require.Equal(t, len(first), len(second))
	for i := range first {
		assert.Equal(t, first[i].ID, second[i].ID, "position %d differs between two reads: the order is not stable", i)
	}

	// The defaults, and pages past the end.
	l := d.sessList(t, sessAdmin, "/rest/sessions")
	assert.Equal(t, 120, l.Count)
	assert.Len(t, l.Items, 50, "default limit")
	assert.Equal(t, first[:50], l.Items, "no parameters is the first page")
	l = d.sessList(t, sessAdmin, "/rest/sessions?offset=120")
	assert.Equal(t, 120, l.Count)
	assert.Empty(t, l.Items)
	l = d.sessList(t, sessAdmin, "/rest/sessions?limit=7&offset=1000")
	assert.Equal(t, 120, l.Count)
	assert.Empty(t, l.Items)

	// One user's sessions, paged.
	l = d.sessList(t, sessAdmin, "/rest/users/page2@localhost/sessions?limit=50")
	assert.Equal(t, 30, l.Count)
	require.Len(t, l.Items, 30)
	for _, s := range l.Items {
		assert.Equal(t, "page2@localhost", s.User)
	}
	tail := d.sessList(t, sessAdmin, "/rest/users/page2@localhost/sessions?limit=7&offset=28")
	assert.Equal(t, 30, tail.Count)
	assert.Equal(t, l.ids()[28:], tail.ids(), "the last page of page2's sessions")

	for _, q := range []string{"limit=0", "limit=51", "limit=-1", "limit=x", "offset=-1", "offset=x", "limit=", "limit=1.5"} {
		for _, path := range []string{"/rest/sessions?", "/rest/users/page1@localhost/sessions?"} {
			resp := d.sessCall(t, sessAdmin, http.MethodGet, path+q, "")
			if q == "limit=" {
				// An empty value is no value: the default.
				assert.Equal(t, http.StatusOK, resp.status, "GET %s%s: %s", path, q, resp.body)
				continue
			}
			sessError(t, resp, http.StatusBadRequest, "bad-request", "GET "+path+q)
		}
	}
}

func TestE2ESessionsDelete(t *testing.T) {
	python := c2stest.SlixmppPython(t)
	dir := t.TempDir()
	userAdd(t, dir, "carol@localhost", "carol-secret")
	d := startDaemon(t, dir)
	carol := jid.MustParse("carol@localhost")
	testStart := time.Now()

	m := make([]*xmpp.Session, 5)
	done := make([]<-chan error, 5)
	for i := range m {
		m[i] = d.login(t, carol, "carol-secret", i%2 == 1)
		done[i] = served(m[i])
	}
	slixJID := jid.MustParse("carol@localhost/slix")
	slix := d.startSlixmpp(t, python, slixJID, "carol-secret")
	assert.Equal(t, "AUTH SCRAM-SHA-256", slix.Next())
	require.Equal(t, "READY carol@localhost/slix", slix.Next())

	l := d.sessList(t, sessAdmin, "/rest/users/carol@localhost/sessions")
	require.Equal(t, 6, l.Count, "%+v", l.Items)
	id := make([]string, 5)
	for i := range m {
		id[i] = l.idOf(t, m[i].LocalAddr())
	}
	slixID := l.idOf(t, slixJID)
	base := "/rest/users/carol@localhost/sessions"

	t.Run("get one", func(t *testing.T) {
		resp := d.sessCall(t, sessAdmin, http.MethodGet, base+"/"+id[0], "")
		var members map[string]json.RawMessage
		sessJSON(t, resp, http.StatusOK, &members, "GET one session")
		assert.ElementsMatch(t, apiSessionKeys, slices.Collect(maps.Keys(members)), "members of a session object")
		var s session.Session
		require.NoError(t, json.Unmarshal(resp.body, &s))
		assert.Equal(t, id[0], s.ID)
		assert.Equal(t, m[0].LocalAddr().String(), s.JID)
		assert.Equal(t, "carol@localhost", s.User)
		assert.Equal(t, m[0].LocalAddr().Resourcepart(), s.Resource)
		assert.NotEmpty(t, s.Transport)
		assert.True(t, strings.HasPrefix(s.RemoteAddr, "127.0.0.1:"), "remote_addr %q", s.RemoteAddr)
		assert.False(t, s.BoundAt.Before(testStart.Add(-time.Minute)), "bound_at %s", s.BoundAt)
		assert.False(t, s.LastActive.Before(s.BoundAt.Add(-time.Second)), "last_active %s before bound_at %s", s.LastActive, s.BoundAt)

		sessError(t, d.sessCall(t, sessAdmin, http.MethodGet, base+"/no-such-session", ""), http.StatusNotFound, "item-not-found", "GET an unknown id")
		// Another user's path does not reach carol's session.
		sessError(t, d.sessCall(t, sessAdmin, http.MethodGet, "/rest/users/nobody@localhost/sessions/"+id[0], ""),
			http.StatusNotFound, "item-not-found", "GET carol's session under another user")
	})

	t.Run("delete one", func(t *testing.T) {
		reason := "Ended one by one."
		resp := d.sessCall(t, sessAdmin, http.MethodDelete, base+"/"+id[0], sessBody(t, map[string]any{"reason": reason}))
		var s session.Session
		sessJSON(t, resp, http.StatusOK, &s, "DELETE one session")
		assert.Equal(t, id[0], s.ID, "the deleted session is returned")
		assert.Equal(t, m[0].LocalAddr().String(), s.JID)
		expectStreamError(t, m[0].LocalAddr(), done[0], "policy-violation", reason)

		sessError(t, d.sessCall(t, sessAdmin, http.MethodGet, base+"/"+id[0], ""), http.StatusNotFound, "item-not-found", "GET an ended session")
		sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, base+"/"+id[0], ""), http.StatusNotFound, "item-not-found", "DELETE an ended session")
		assert.Equal(t, 5, d.sessList(t, sessAdmin, base).Count)
	})

	t.Run("bulk delete with unknown ids", func(t *testing.T) {
		sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, base, `{"reason": "no list"}`), http.StatusBadRequest, "bad-request", "bulk delete without sessions")
		sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, base, ""), http.StatusBadRequest, "bad-request", "bulk delete without a body")
		sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, base, `{"sessions": [`), http.StatusBadRequest, "bad-request", "bulk delete with broken JSON")
		tooMany := make([]string, 51)
		for i := range tooMany {
			tooMany[i] = fmt.Sprintf("unknown-%d", i)
		}
		tooMany[0] = id[1] // a real one among them: it must survive the refusal
		sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, base, sessBody(t, map[string]any{"sessions": tooMany})),
			http.StatusBadRequest, "bad-request", "bulk delete of 51 ids")
		assert.Equal(t, 5, d.sessList(t, sessAdmin, base).Count, "a refused bulk delete ended nothing")

		reason := "Ended in bulk."
		resp := d.sessCall(t, sessAdmin, http.MethodDelete, base, sessBody(t, map[string]any{
			"sessions": []string{id[1], "no-such-session", slixID, id[0], "all"}, "reason": reason}))
		var c apiCount
		sessJSON(t, resp, http.StatusOK, &c, "bulk delete")
		require.NotNil(t, c.Count, "%s", resp.body)
		assert.Equal(t, 2, *c.Count, "only the two live sessions count: %s", resp.body)
		expectStreamError(t, m[1].LocalAddr(), done[1], "policy-violation", reason)
		assert.Equal(t, "STREAM_ERROR policy-violation "+reason, slix.Next())
		assert.Equal(t, "DISCONNECTED", slix.Next())
		slix.ExpectExit()
		assert.ElementsMatch(t, []string{id[2], id[3], id[4]}, d.sessList(t, sessAdmin, base).ids())
	})

	t.Run("all but one", func(t *testing.T) {
		reason := "Logged out everywhere else."
		q := url.Values{"except": {id[2]}, "reason": {reason}}
		resp := d.sessCall(t, sessAdmin, http.MethodDelete, base+"/all?"+q.Encode(), "")
		var c apiCount
		sessJSON(t, resp, http.StatusOK, &c, "delete all but one")
		require.NotNil(t, c.Count, "%s", resp.body)
		assert.Equal(t, 2, *c.Count, "%s", resp.body)
		expectStreamError(t, m[3].LocalAddr(), done[3], "policy-violation", reason)
		expectStreamError(t, m[4].LocalAddr(), done[4], "policy-violation", reason)
		expectServing(t, m[2].LocalAddr(), done[2])
		pingServer(t, m[2])
		assert.Equal(t, []string{id[2]}, d.sessList(t, sessAdmin, base).ids())
	})

	t.Run("all", func(t *testing.T) {
		resp := d.sessCall(t, sessAdmin, http.MethodDelete, base+"/all", "")
		var c apiCount
		sessJSON(t, resp, http.StatusOK, &c, "delete all")
		require.NotNil(t, c.Count, "%s", resp.body)
		assert.Equal(t, 1, *c.Count, "%s", resp.body)
		text := expectStreamError(t, m[2].LocalAddr(), done[2], "policy-violation", "")
		assert.NotEmpty(t, text, "without a reason the stream error carries a default text")
		l := d.sessList(t, sessAdmin, base)
		assert.Equal(t, 0, l.Count)
		assert.Empty(t, l.Items)
		assert.Equal(t, 0, d.healthSessions(t))

		resp = d.sessCall(t, sessAdmin, http.MethodDelete, base+"/all", "")
		sessJSON(t, resp, http.StatusOK, &c, "delete all again")
		require.NotNil(t, c.Count, "%s", resp.body)
		assert.Equal(t, 0, *c.Count, "nobody is left: %s", resp.body)
	})

	t.Run("openapi", func(t *testing.T) {
		var doc struct {
			OpenAPI string                    `json:"openapi"`
			Paths   map[string]map[string]any `json:"paths"`
		}
		sessJSON(t, d.gatewayCall(t, http.MethodGet, "/rest/openapi.json", "", "", ""), http.StatusOK, &doc, "GET /rest/openapi.json")
		assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "openapi %q", doc.OpenAPI)
		for path, methods := range map[string][]string{
			"/rest/sessions":                  {"get"},
			"/rest/users/{jid}/sessions":      {"get", "delete"},
			"/rest/users/{jid}/sessions/all":  {"delete"},
			"/rest/users/{jid}/sessions/{id}": {"get", "delete"},
			"/rest/audit":                     {"get"},
		} {
			for _, m := range methods {
				assert.Contains(t, doc.Paths[path], m, "the OpenAPI document has no %s %s", strings.ToUpper(m), path)
			}
		}
	})

	t.Run("paths", func(t *testing.T) {
		l := d.sessList(t, sessAdmin, "/rest/users/nobody@localhost/sessions")
		assert.Equal(t, 0, l.Count, "a JID with no sessions is an empty list")
		assert.Empty(t, l.Items)
		for _, p := range []string{"/rest/users/carol@localhost%2Fres/sessions", "/rest/users/localhost/sessions", "/rest/users/a@b@c/sessions"} {
			sessError(t, d.sessCall(t, sessAdmin, http.MethodGet, p, ""), http.StatusBadRequest, "jid-malformed", "GET "+p)
		}
	})

	// No block was asked for: carol comes straight back.
	again := d.login(t, carol, "carol-secret", false)
	assert.Equal(t, []string{again.LocalAddr().String()}, sessJIDs(d.sessList(t, sessAdmin, base)))
}

// sessJIDs lists the full JIDs of a page.
func sessJIDs(l apiSessionList) []string {
	jids := make([]string, len(l.Items))
	for i, s := range l.Items {
		jids[i] = s.JID
	}
	return jids
}

// waitLoginAllowed polls logins every 250ms for at most bound until one
// succeeds, and returns that session and when it was made. Every refusal
// must be <account-disabled/>.
func (d *daemon) waitLoginAllowed(t *testing.T, user jid.JID, password string, bound time.Duration) (*xmpp.Session, time.Time) {
	t.Helper()
	tlsConfig := d.clientTLS(t)
	var (
		mu       sync.Mutex
		lastErr  error
		refusals []string
		allowed  time.Time
		session  *xmpp.Session
		conn     net.Conn
	)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, c, err := sessLoginOnce(ctx, d.addrs["c2s"], tlsConfig, user, password, false)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			lastErr = err
			refusals = append(refusals, saslCondition(err))
			return false
		}
		allowed, session, conn = time.Now(), s, c
		return true
	}, bound, 250*time.Millisecond, "the login of %s was still refused %s later", user, bound)
	mu.Lock()
	defer mu.Unlock()
	t.Cleanup(func() { _ = session.Close(); _ = conn.Close() })
	for _, c := range refusals {
		assert.Equal(t, "account-disabled", c, "a login during the block was refused with another condition (last error: %v)", lastErr)
	}
	return session, allowed
}

func TestE2ESessionsBlock(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "dave@localhost", "dave-secret")
	userAdd(t, dir, "erin@localhost", "erin-secret")
	d := startDaemon(t, dir)
	dave := jid.MustParse("dave@localhost")

	s1, s2 := d.login(t, dave, "dave-secret", false), d.login(t, dave, "dave-secret", true)
	done1, done2 := served(s1), served(s2)

	reason := "Cooling off."
	q := url.Values{"block": {"2"}, "reason": {reason}}
	blockedAt := time.Now()
	resp := d.sessCall(t, sessAdmin, http.MethodDelete, "/rest/users/dave@localhost/sessions/all?"+q.Encode(), "")
	var c apiCount
	sessJSON(t, resp, http.StatusOK, &c, "delete all with block=2")
	require.NotNil(t, c.Count, "%s", resp.body)
	assert.Equal(t, 2, *c.Count)
	expectStreamError(t, s1.LocalAddr(), done1, "policy-violation", reason)
	expectStreamError(t, s2.LocalAddr(), done2, "policy-violation", reason)

	_, err := d.tryLogin(t, dave, "dave-secret")
	require.Error(t, err, "dave logged in again right after a 2s block")
	t.Logf("login during the block: %v (SASL condition %q)", err, saslCondition(err))
	assert.Equal(t, "account-disabled", saslCondition(err), "SASL condition of a blocked login: %v", err)
	assert.Contains(t, err.Error(), reason, "the SASL failure text carries the reason")
	assert.Contains(t, err.Error(), "You may not log in before", "the SASL failure text tells until when")
	// The block is dave's alone.
	erin := d.login(t, jid.MustParse("erin@localhost"), "erin-secret", false)
	erinDone := served(erin)

	s3, allowed := d.waitLoginAllowed(t, dave, "dave-secret", 10*time.Second)
	done3 := served(s3)
	t.Logf("dave logged in again %s after the delete with block=2", allowed.Sub(blockedAt))
	assert.GreaterOrEqual(t, allowed.Sub(blockedAt), time.Second, "the 2s block ended too early")

	// The same through /rest/adhoc end-user-session's block field (JSON).
	body, err := json.Marshal(map[string]any{"command": map[string]any{"node": nodeEndUserSession, "fields": []any{
		map[string]any{"var": "accountjids", "value": []string{dave.String()}},
		map[string]any{"var": "reason", "value": "Ad-hoc block."},
		map[string]any{"var": "block", "value": "2"},
	}}})
	require.NoError(t, err)
	blockedAt = time.Now()
	resp = d.gatewayCall(t, http.MethodPost, "/rest/adhoc/sess-man@localhost", e2eAdmin, e2eAdminPassword, string(body),
		"Content-Type: application/json")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.JSONEq(t, notesJSON(t, "sess-man@localhost", nodeEndUserSession, s3.LocalAddr().String()), string(resp.body))
	expectStreamError(t, s3.LocalAddr(), done3, "policy-violation", "Ad-hoc block.")
	_, err = d.tryLogin(t, dave, "dave-secret")
	require.Error(t, err, "dave logged in again right after end-user-session with block=2")
	assert.Equal(t, "account-disabled", saslCondition(err), "SASL condition: %v", err)
	assert.Contains(t, err.Error(), "Ad-hoc block.")
	s4, allowed := d.waitLoginAllowed(t, dave, "dave-secret", 10*time.Second)
	s4Done := served(s4)
	t.Logf("dave logged in again %s after end-user-session with block=2", allowed.Sub(blockedAt))
	assert.GreaterOrEqual(t, allowed.Sub(blockedAt), time.Second, "the 2s block ended too early")

	for _, bad := range []string{"block=-1", "block=x", "block=1.5"} {
		sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, "/rest/users/dave@localhost/sessions/all?"+bad, ""),
			http.StatusBadRequest, "bad-request", "delete all with "+bad)
	}
	sessError(t, d.sessCall(t, sessAdmin, http.MethodDelete, "/rest/users/dave@localhost/sessions/all", `{"block": -5}`),
		http.StatusBadRequest, "bad-request", "delete all with a negative block in the body")
	assert.Equal(t, 1, d.sessList(t, sessAdmin, "/rest/users/dave@localhost/sessions").Count, "refused deletes ended nothing")

	// A block refuses HTTP at once, although erin's password was verified
	// just before and is cached; and it survives a restart.
	erinAuth := sessBasic("erin@localhost", "erin-secret")
	assert.Equal(t, 1, d.sessList(t, erinAuth, "/rest/users/erin@localhost/sessions").Count, "erin lists her sessions before the block")
	resp = d.sessCall(t, sessAdmin, http.MethodDelete, "/rest/users/erin@localhost/sessions/all", `{"block": 600, "reason": "Long block."}`)
	sessJSON(t, resp, http.StatusOK, &c, "delete all of erin with block 600")
	require.NotNil(t, c.Count, "%s", resp.body)
	assert.Equal(t, 1, *c.Count, "%s", resp.body)
	expectStreamError(t, erin.LocalAddr(), erinDone, "policy-violation", "Long block.")
	sessError(t, d.sessCall(t, erinAuth, http.MethodGet, "/rest/users/erin@localhost/sessions", ""),
		http.StatusForbidden, "forbidden", "erin lists her sessions during her block, with a cached password")
	d.stop(t)
	expectStreamError(t, s4.LocalAddr(), s4Done, "system-shutdown", "")
	d = startDaemon(t, dir)
	_, err = d.tryLogin(t, jid.MustParse("erin@localhost"), "erin-secret")
	require.Error(t, err, "erin logged in after a restart, within her 600s block")
	assert.Equal(t, "account-disabled", saslCondition(err), "SASL condition after a restart: %v", err)
	assert.Contains(t, err.Error(), "Long block.")
	d.login(t, dave, "dave-secret", false) // dave's blocks ended before the restart
}

func TestE2ESessionsPermissions(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "erin@localhost", "erin-secret")
	userAdd(t, dir, "frank@localhost", "frank-secret")
	d := startDaemon(t, dir)
	erinJID, frankJID := jid.MustParse("erin@localhost"), jid.MustParse("frank@localhost")
	erin := sessBasic("erin@localhost", "erin-secret")

	e1, e2 := d.login(t, erinJID, "erin-secret", false), d.login(t, erinJID, "erin-secret", true)
	e1Done, e2Done := served(e1), served(e2)
	f1, f2 := d.login(t, frankJID, "frank-secret", false), d.login(t, frankJID, "frank-secret", false)
	f1Done, f2Done := served(f1), served(f2)
	all := d.sessList(t, sessAdmin, "/rest/sessions")
	require.Equal(t, 4, all.Count)
	e1ID, e2ID := all.idOf(t, e1.LocalAddr()), all.idOf(t, e2.LocalAddr())
	f1ID, f2ID := all.idOf(t, f1.LocalAddr()), all.idOf(t, f2.LocalAddr())

	t.Run("a normal account manages only its own sessions", func(t *testing.T) {
		l := d.sessList(t, erin, "/rest/users/erin@localhost/sessions")
		assert.ElementsMatch(t, []string{e1ID, e2ID}, l.ids())
		l = d.sessList(t, sessBasic("erin", "erin-secret"), "/rest/users/erin@localhost/sessions") // localpart of the domain
		assert.Equal(t, 2, l.Count)
		// The same JID, percent-encoded or in other case, is still erin's.
		for _, p := range []string{"/rest/users/erin%40localhost/sessions", "/rest/users/Erin@LocalHost/sessions"} {
			l = d.sessList(t, erin, p)
			assert.ElementsMatch(t, []string{e1ID, e2ID}, l.ids(), "GET %s", p)
		}
		resp := d.sessCall(t, erin, http.MethodGet, "/rest/users/erin@localhost/sessions/"+e1ID, "")
		var s session.Session
		sessJSON(t, resp, http.StatusOK, &s, "erin gets her own session")
		assert.Equal(t, e1.LocalAddr().String(), s.JID)

		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/rest/sessions", ""},
			{http.MethodGet, "/rest/users/frank@localhost/sessions", ""},
			{http.MethodGet, "/rest/users/frank@localhost/sessions/" + f1ID, ""},
			{http.MethodDelete, "/rest/users/frank@localhost/sessions/" + f1ID, ""},
			{http.MethodDelete, "/rest/users/frank@localhost/sessions", sessBody(t, map[string]any{"sessions": []string{f1ID, f2ID}})},
			{http.MethodDelete, "/rest/users/frank@localhost/sessions/all", ""},
			{http.MethodDelete, "/rest/users/frank@localhost/sessions/all?except=" + f1ID, ""},
			{http.MethodGet, "/rest/audit", ""},
		} {
			sessError(t, d.sessCall(t, erin, r.method, r.path, r.body), http.StatusForbidden, "forbidden", "erin: "+r.method+" "+r.path)
		}
		// Frank's id under erin's own path is not found, not ended.
		sessError(t, d.sessCall(t, erin, http.MethodDelete, "/rest/users/erin@localhost/sessions/"+f1ID, ""),
			http.StatusNotFound, "item-not-found", "erin deletes frank's session id under her own path")
		resp = d.sessCall(t, erin, http.MethodDelete, "/rest/users/erin@localhost/sessions", sessBody(t, map[string]any{"sessions": []string{f1ID, f2ID}}))
		var c apiCount
		sessJSON(t, resp, http.StatusOK, &c, "erin bulk-deletes frank's ids under her own path")
		require.NotNil(t, c.Count)
		assert.Equal(t, 0, *c.Count, "frank's sessions are not erin's to end")
		expectServing(t, f1.LocalAddr(), f1Done)
		expectServing(t, f2.LocalAddr(), f2Done)

		resp = d.sessCall(t, erin, http.MethodDelete, "/rest/users/erin@localhost/sessions/"+e2ID, `{"reason": "my other phone"}`)
		sessJSON(t, resp, http.StatusOK, &s, "erin ends her own session")
		assert.Equal(t, e2ID, s.ID)
		expectStreamError(t, e2.LocalAddr(), e2Done, "policy-violation", "my other phone")
		expectServing(t, e1.LocalAddr(), e1Done)
	})

	roID, roSecret := sessKeyCreate(t, dir, "readonly-script", true)
	rwID, rwSecret := sessKeyCreate(t, dir, "ops-script", false)

	t.Run("a read-only key lists but does not end", func(t *testing.T) {
		for _, who := range []sessAuth{sessBearer(roSecret), sessAPIKey(roSecret)} {
			l := d.sessList(t, who, "/rest/sessions")
			assert.Equal(t, 3, l.Count)
			l = d.sessList(t, who, "/rest/users/frank@localhost/sessions")
			assert.ElementsMatch(t, []string{f1ID, f2ID}, l.ids())
			for _, r := range []struct{ method, path, body string }{
				{http.MethodDelete, "/rest/users/frank@localhost/sessions/" + f1ID, ""},
				{http.MethodDelete, "/rest/users/frank@localhost/sessions", sessBody(t, map[string]any{"sessions": []string{f1ID}})},
				{http.MethodDelete, "/rest/users/frank@localhost/sessions/all", ""},
				{http.MethodDelete, "/rest/users/frank@localhost/sessions/all?except=" + f1ID, ""},
			} {
				sessError(t, d.sessCall(t, who, r.method, r.path, r.body), http.StatusForbidden, "forbidden", "read-only key: "+r.method+" "+r.path)
			}
		}
		expectServing(t, f1.LocalAddr(), f1Done)
		expectServing(t, f2.LocalAddr(), f2Done)
		pingServer(t, f1)
	})

	t.Run("a read-write key ends", func(t *testing.T) {
		resp := d.sessCall(t, sessAPIKey(rwSecret), http.MethodDelete, "/rest/users/frank@localhost/sessions/"+f2ID, `{"reason": "by key"}`)
		var s session.Session
		sessJSON(t, resp, http.StatusOK, &s, "DELETE with a read-write Api-Key")
		assert.Equal(t, f2ID, s.ID)
		expectStreamError(t, f2.LocalAddr(), f2Done, "policy-violation", "by key")
		l := d.sessList(t, sessBearer(rwSecret), "/rest/users/frank@localhost/sessions")
		assert.Equal(t, []string{f1ID}, l.ids())
	})

	t.Run("a revoked key and an unknown key are refused", func(t *testing.T) {
		sessCLI(t, "apikey", "revoke", "--data", dir, rwID)
		list := sessCLI(t, "apikey", "list", "--data", dir)
		var rwLine, roLine string
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			switch strings.SplitN(line, "\t", 2)[0] {
			case rwID:
				rwLine = line
			case roID:
				roLine = line
			}
		}
		assert.Contains(t, rwLine, "\trevoked ", "apikey list after the revoke:\n%s", list)
		assert.Contains(t, roLine, "\tactive\t", "apikey list:\n%s", list)

		for _, who := range []sessAuth{sessBearer(rwSecret), sessAPIKey(rwSecret)} {
			// The revocation takes effect at once: no cache lets the key through.
			sessError(t, d.sessCall(t, who, http.MethodGet, "/rest/sessions", ""), http.StatusUnauthorized, "not-authorized", "a revoked key lists")
			sessError(t, d.sessCall(t, who, http.MethodDelete, "/rest/users/frank@localhost/sessions/all", ""), http.StatusUnauthorized, "not-authorized", "a revoked key ends")
		}
		unknown := "adk_aaaaaaaaaaaa_" + strings.Repeat("A", 43)
		for _, who := range []sessAuth{sessBearer(unknown), sessAPIKey(unknown), sessBearer("not-even-a-key")} {
			sessError(t, d.sessCall(t, who, http.MethodGet, "/rest/sessions", ""), http.StatusUnauthorized, "not-authorized", "an unknown key lists")
			sessError(t, d.sessCall(t, who, http.MethodDelete, "/rest/users/frank@localhost/sessions/"+f1ID, ""), http.StatusUnauthorized, "not-authorized", "an unknown key ends")
		}
		sessError(t, d.sessCall(t, sessAuth{}, http.MethodGet, "/rest/sessions", ""), http.StatusUnauthorized, "not-authorized", "no credentials")
		expectServing(t, f1.LocalAddr(), f1Done)
		pingServer(t, f1)
		assert.Equal(t, 1, d.sessList(t, sessBearer(roSecret), "/rest/users/frank@localhost/sessions").Count, "the read-only key still works")
	})
}

// session.AuditEntry is an entry of GET /rest/audit and of `adhocd audit --json`.
func (d *daemon) auditList(t *testing.T, who sessAuth, query string) session.AuditPage {
	t.Helper()
	var p session.AuditPage
	sessJSON(t, d.sessCall(t, who, http.MethodGet, "/rest/audit"+query, ""), http.StatusOK, &p, "GET /rest/audit"+query)
	return p
}

// sessByRequestID finds the row of one request.
func sessByRequestID(t *testing.T, rows []session.AuditEntry, requestID string) session.AuditEntry {
	t.Helper()
	for _, r := range rows {
		if r.RequestID == requestID {
			return r
		}
	}
	t.Fatalf("no audit row with request_id %q among %+v", requestID, rows)
	return session.AuditEntry{}
}

func TestE2ESessionsAudit(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "gina@localhost", "gina-secret")
	d := startDaemon(t, dir)
	gina := jid.MustParse("gina@localhost")
	keyID, keySecret := sessKeyCreate(t, dir, "auditor", false)
	testStart := time.Now()

	g := make([]*xmpp.Session, 3)
	done := make([]<-chan error, 3)
	for i := range g {
		g[i] = d.login(t, gina, "gina-secret", i == 1)
		done[i] = served(g[i])
	}
	l := d.sessList(t, sessAdmin, "/rest/users/gina@localhost/sessions")
	ids := []string{l.idOf(t, g[0].LocalAddr()), l.idOf(t, g[1].LocalAddr()), l.idOf(t, g[2].LocalAddr())}
	base := "/rest/users/gina@localhost/sessions"

	// Three deletes by three callers; the request id of each is in its answer.
	var rid [3]string
	resp := d.sessCall(t, sessAdmin, http.MethodDelete, base+"/"+ids[0], `{"reason": "audited"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	rid[0] = resp.header.Get("X-Request-Id")
	resp = d.sessCall(t, sessBearer(keySecret), http.MethodDelete, base+"/all?except="+ids[2], "")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	rid[1] = resp.header.Get("X-Request-Id")
	resp = d.sessCall(t, sessBasic("gina@localhost", "gina-secret"), http.MethodDelete, base+"/"+ids[2], "")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	rid[2] = resp.header.Get("X-Request-Id")
	for i := range g {
		expectStreamError(t, g[i].LocalAddr(), done[i], "policy-violation", "")
	}
	for i, r := range rid {
		require.NotEmpty(t, r, "answer %d has no X-Request-Id header", i)
	}

	// The rows are written before the deletes were acknowledged: no waiting.
	p := d.auditList(t, sessAdmin, "")
	require.GreaterOrEqual(t, p.Count, 4, "apikey-create and three end-sessions: %+v", p.Items)
	want := []struct {
		actor, auth string
		targets     []string
	}{
		{e2eAdmin, "basic", []string{gina.String(), ids[0]}},
		{"apikey:auditor", "apikey", []string{gina.String(), ids[1]}},
		{gina.String(), "basic", []string{gina.String(), ids[2]}},
	}
	var rows [3]session.AuditEntry
	for i, w := range want {
		r := sessByRequestID(t, p.Items, rid[i])
		rows[i] = r
		assert.Equal(t, w.actor, r.Actor, "actor of row %d", i)
		assert.Equal(t, w.auth, r.Auth, "auth of row %d", i)
		assert.Equal(t, "end-sessions", r.Action, "action of row %d", i)
		assert.Equal(t, w.targets, r.Targets, "targets of row %d", i)
		assert.Equal(t, "ok", r.Outcome, "outcome of row %d", i)
		assert.Equal(t, "127.0.0.1", r.RemoteAddr, "remote_addr of row %d", i)
		assert.NotEmpty(t, r.RequestID)
		assert.WithinRange(t, r.Time, testStart.Add(-time.Second), time.Now().Add(time.Second), "time of row %d", i)
	}
	// Newest first.
	var order []string
	for _, r := range p.Items {
		if slices.Contains(rid[:], r.RequestID) {
			order = append(order, r.RequestID)
		}
	}
	assert.Equal(t, []string{rid[2], rid[1], rid[0]}, order, "the audit lists the newest first")
	var created bool
	for _, r := range p.Items {
		if r.Action == "apikey-create" && slices.Contains(r.Targets, keyID) {
			created = true
			assert.Equal(t, "cli", r.Actor)
			assert.Equal(t, "ok", r.Outcome)
		}
	}
	assert.True(t, created, "no apikey-create row for key %s in %+v", keyID, p.Items)

	// Filters and paging.
	f := d.auditList(t, sessAdmin, "?actor=apikey:auditor")
	assert.Equal(t, 1, f.Count)
	if assert.Len(t, f.Items, 1) {
		assert.Equal(t, rows[1], f.Items[0])
	}
	f = d.auditList(t, sessAdmin, "?target="+url.QueryEscape(ids[0]))
	assert.Equal(t, 1, f.Count)
	if assert.Len(t, f.Items, 1) {
		assert.Equal(t, rows[0], f.Items[0])
	}
	f = d.auditList(t, sessAdmin, "?target="+url.QueryEscape(gina.String()))
	assert.Equal(t, 4, f.Count, "the three ends, and the command line's user add")
	if assert.Len(t, f.Items, 4) {
		assert.Equal(t, []session.AuditEntry{rows[2], rows[1], rows[0]}, f.Items[:3])
		added := f.Items[3]
		assert.Equal(t, []string{"cli", "cli", "user-add", "ok"}, []string{added.Actor, added.Auth, added.Action, added.Outcome})
		assert.Equal(t, []string{gina.String()}, added.Targets)
	}
	f = d.auditList(t, sessAdmin, "?actor="+url.QueryEscape(gina.String())+"&target="+url.QueryEscape(gina.String()))
	assert.Equal(t, []session.AuditEntry{rows[2]}, f.Items)
	f = d.auditList(t, sessAdmin, "?actor=nobody@localhost")
	assert.Equal(t, 0, f.Count)
	assert.NotNil(t, f.Items)
	assert.Empty(t, f.Items)
	f = d.auditList(t, sessAdmin, "?limit=1&offset=1")
	assert.Equal(t, p.Count, f.Count)
	assert.Equal(t, p.Items[1:2], f.Items)
	sessError(t, d.sessCall(t, sessAdmin, http.MethodGet, "/rest/audit?limit=0", ""), http.StatusBadRequest, "bad-request", "audit limit=0")
	sessError(t, d.sessCall(t, sessBasic("gina@localhost", "gina-secret"), http.MethodGet, "/rest/audit", ""),
		http.StatusForbidden, "forbidden", "a normal account reads the audit")

	// The command line reads the same rows while the server runs.
	var cli []session.AuditEntry
	for _, line := range strings.Split(strings.TrimSpace(sessCLI(t, "audit", "--data", dir, "--json")), "\n") {
		var r session.AuditEntry
		require.NoError(t, json.Unmarshal([]byte(line), &r), "adhocd audit --json line %q", line)
		cli = append(cli, r)
	}
	for i := range rows {
		r := sessByRequestID(t, cli, rid[i])
		assert.Equal(t, rows[i].ID, r.ID)
		assert.Equal(t, rows[i].Actor, r.Actor)
		assert.Equal(t, rows[i].Auth, r.Auth)
		assert.Equal(t, rows[i].Action, r.Action)
		assert.Equal(t, rows[i].Targets, r.Targets)
		assert.Equal(t, rows[i].Outcome, r.Outcome)
		assert.Equal(t, rows[i].RemoteAddr, r.RemoteAddr)
		assert.True(t, rows[i].Time.Equal(r.Time), "time %s over HTTP, %s on the command line", rows[i].Time, r.Time)
	}
	plain := sessCLI(t, "audit", "--data", dir, "--actor", "apikey:auditor")
	assert.Regexp(t, `(?m)^\S+\tapikey:auditor\tapikey\tend-sessions\tgina@localhost,`+regexp.QuoteMeta(ids[1])+`\tok\t`, plain)
	assert.Len(t, strings.Split(strings.TrimSpace(plain), "\n"), 1, "adhocd audit --actor apikey:auditor:\n%s", plain)
}

// pusherScriptFromCmd is the Pusher SDK driver, relative to this package.
const pusherScriptFromCmd = "../../testdata/clients/pusher_terminate.js"

// requirePusherSDK returns the path of node with the pusher npm package
// installed in testdata/clients, running `npm ci` there if it is missing.
// Without node or npm, or if the install fails, the test fails.
func requirePusherSDK(t *testing.T) string {
	t.Helper()
	unavailable := func(msg string) { c2stest.ToolMissing(t, msg) }
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node not found: install the Debian package nodejs (apt-get install nodejs npm)")
	}
	clients := filepath.Dir(pusherScriptFromCmd)
	if _, err := os.Stat(filepath.Join(clients, "node_modules", "pusher", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			unavailable("the pusher npm package is not installed in testdata/clients and npm is not found: " +
				"install the Debian package npm, then run npm ci --prefix testdata/clients")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, npm, "ci", "--prefix", clients, "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			unavailable(fmt.Sprintf("npm ci --prefix testdata/clients failed: %v\n%s", err, out))
		}
	}
	return node
}

// sessPusherResult is what pusher_terminate.js prints.
type sessPusherResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// sessPusherApp is the app of the daemon's --pusher-app flag.
type sessPusherApp struct{ id, key, secret string }

// runPusherSDK calls terminateUserConnections(userID) with Pusher's SDK.
func (d *daemon) runPusherSDK(t *testing.T, node string, app sessPusherApp, userID string) sessPusherResult {
	t.Helper()
	return runPusherSDKAt(t, node, d.addrs["http"], app, userID)
}

// runPusherSDKAt is runPusherSDK against the HTTP server at addr.
func runPusherSDKAt(t *testing.T, node, addr string, app sessPusherApp, userID string) sessPusherResult {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, pusherScriptFromCmd, "--app-id", app.id, "--key", app.key,
		"--host", host, "--port", port, "--user", userID)
	cmd.Env = childEnv("PUSHER_SECRET=" + app.secret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("pusher_terminate.js --app-id %s --key %s --user %q: %s%s", app.id, app.key, userID, out, stderr.String())
	var res sessPusherResult
	require.NoError(t, json.Unmarshal(out, &res), "pusher_terminate.js printed %q (exit: %v, stderr: %s)", out, err, stderr.String())
	require.Empty(t, res.Error, "the Pusher SDK got no answer")
	require.NoError(t, err, "pusher_terminate.js: %s", stderr.String())
	return res
}

func TestE2ESessionsPusherTerminate(t *testing.T) {
	node := requirePusherSDK(t)
	python := c2stest.SlixmppPython(t)
	dir := t.TempDir()
	userAdd(t, dir, "zed@localhost", "zed-secret")
	userAdd(t, dir, "yan@localhost", "yan-secret")
	app := sessPusherApp{id: "app1", key: "key1", secret: "secret1"}
	d := startDaemonWith(t, dir, "--pusher-app", app.id+":"+app.key+":"+app.secret+":localhost")
	zed := jid.MustParse("zed@localhost")

	m1, m2 := d.login(t, zed, "zed-secret", false), d.login(t, zed, "zed-secret", true)
	m1Done, m2Done := served(m1), served(m2)
	slixJID := jid.MustParse("zed@localhost/pusher-slix")
	slix := d.startSlixmpp(t, python, slixJID, "zed-secret")
	assert.Equal(t, "AUTH SCRAM-SHA-256", slix.Next())
	require.Equal(t, "READY "+slixJID.String(), slix.Next())
	bystander := d.login(t, jid.MustParse("yan@localhost"), "yan-secret", false)
	bystanderDone := served(bystander)
	require.Equal(t, 3, d.sessList(t, sessAdmin, "/rest/users/zed@localhost/sessions").Count)

	res := d.runPusherSDK(t, node, app, "zed")
	assert.Equal(t, http.StatusOK, res.Status, "terminate_connections: %s", res.Body)
	assert.JSONEq(t, `{}`, res.Body)
	text := expectStreamError(t, m1.LocalAddr(), m1Done, "policy-violation", "")
	assert.NotEmpty(t, text)
	expectStreamError(t, m2.LocalAddr(), m2Done, "policy-violation", "")
	line := slix.Next()
	assert.True(t, strings.HasPrefix(line, "STREAM_ERROR policy-violation"), "slixmpp saw %q", line)
	assert.Equal(t, "DISCONNECTED", slix.Next())
	slix.ExpectExit()
	// adhocd ends the sessions before it answers (the seed lets a server do it
	// later; adhocd does not).
	l := d.sessList(t, sessAdmin, "/rest/users/zed@localhost/sessions")
	assert.Equal(t, 0, l.Count, "zed's sessions after terminate_connections: %+v", l.Items)
	expectServing(t, bystander.LocalAddr(), bystanderDone)

	// The audit names the app.
	audit := d.auditList(t, sessAdmin, "?actor=pusher:app1")
	if assert.Len(t, audit.Items, 1, "audit rows of pusher:app1") {
		r := audit.Items[0]
		assert.Equal(t, "pusher", r.Auth)
		assert.Equal(t, "end-sessions", r.Action)
		assert.Equal(t, "ok", r.Outcome)
		assert.Contains(t, r.Targets, zed.String())
		assert.Len(t, r.Targets, 4, "the user and the three session ids: %v", r.Targets)
	}

	// A bare JID is a user id too; no block was set, so zed is back.
	again := d.login(t, zed, "zed-secret", false)
	againDone := served(again)
	res = d.runPusherSDK(t, node, app, "zed@localhost")
	assert.Equal(t, http.StatusOK, res.Status, "terminate_connections of zed@localhost: %s", res.Body)
	assert.JSONEq(t, `{}`, res.Body)
	expectStreamError(t, again.LocalAddr(), againDone, "policy-violation", "")

	again = d.login(t, zed, "zed-secret", false)
	againDone = served(again)
	for _, tc := range []struct {
		name       string
		app        sessPusherApp
		userID     string
		wantStatus int
		wantBody   string // exact JSON; "" checks only the prefix below
		wantPrefix string
	}{
		{name: "tampered signature (wrong secret)", app: sessPusherApp{app.id, app.key, "not-secret1"}, userID: "zed",
			wantStatus: http.StatusUnauthorized, wantBody: `{"error": "Authentication failed: Invalid signature."}`},
		{name: "unknown app id", app: sessPusherApp{"app2", app.key, app.secret}, userID: "zed",
			wantStatus: http.StatusNotFound, wantBody: `{"error": "Application not found."}`},
		{name: "unknown key", app: sessPusherApp{app.id, "key2", app.secret}, userID: "zed",
			wantStatus: http.StatusUnauthorized, wantPrefix: "Authentication failed: "},
		{name: "blank user id", app: app, userID: " ",
			wantStatus: http.StatusBadRequest, wantBody: `{"error": "Invalid request: 'user_id' cannot be empty."}`},
		{name: "user of another domain", app: app, userID: "zed@example.org",
			wantStatus: http.StatusBadRequest, wantPrefix: "Invalid request: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := d.runPusherSDK(t, node, tc.app, tc.userID)
			assert.Equal(t, tc.wantStatus, res.Status, "%s", res.Body)
			if tc.wantBody != "" {
				assert.JSONEq(t, tc.wantBody, res.Body)
			}
			var e map[string]string
			require.NoError(t, json.Unmarshal([]byte(res.Body), &e), "body %q", res.Body)
			assert.Len(t, e, 1, "Pusher's error shape is {\"error\": …} alone: %s", res.Body)
			assert.True(t, strings.HasPrefix(e["error"], tc.wantPrefix), "error %q", e["error"])
		})
	}
	expectServing(t, again.LocalAddr(), againDone)
	pingServer(t, again)
	assert.Equal(t, 1, d.sessList(t, sessAdmin, "/rest/users/zed@localhost/sessions").Count, "refused requests ended nothing")
	assert.Len(t, d.auditList(t, sessAdmin, "?actor=pusher:app1").Items, 2, "only the two accepted requests ended sessions")
}

func TestE2ESessionsThrottling(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "hank@localhost", "hank-secret")
	userAdd(t, dir, "ivan@localhost", "ivan-secret")
	userAdd(t, dir, "jill@localhost", "jill-secret")
	// Normal accounts and keys: a burst of 2, then one call per 10s.
	d := startDaemonWith(t, dir, "--rate", "0.1", "--rate-burst", "2")
	path := "/rest/users/hank@localhost/sessions"
	_, keySecret := sessKeyCreate(t, dir, "throttled", true)

	retryAfter := func(t *testing.T, resp gatewayResponse) {
		t.Helper()
		v := resp.header.Get("Retry-After")
		secs, err := strconv.Atoi(v)
		require.NoError(t, err, "Retry-After %q is not a number of seconds", v)
		assert.True(t, secs >= 1 && secs <= 61, "Retry-After %d", secs)
	}

	t.Run("wrong passwords lock the account", func(t *testing.T) {
		// The default: 5 failures a minute per account and address.
		require.Equal(t, 5, limit.DefaultPairFailures, "this test expects the default of 5 failures per account and address")
		var got []int
		var locked gatewayResponse
		for i := range 6 {
			resp := d.sessCall(t, sessBasic("hank@localhost", fmt.Sprintf("wrong-%d", i)), http.MethodGet, path, "")
			got = append(got, resp.status)
			if resp.status == http.StatusTooManyRequests {
				locked = resp
			}
		}
		assert.Equal(t, []int{401, 401, 401, 401, 401, 429}, got, "statuses of six wrong passwords in a row")
		require.Equal(t, http.StatusTooManyRequests, locked.status, "no 429 after six wrong passwords")
		sessError(t, locked, http.StatusTooManyRequests, "resource-constraint", "the sixth wrong password")
		retryAfter(t, locked)

		// The right password does not unlock it, over HTTP or SASL.
		resp := d.sessCall(t, sessBasic("hank@localhost", "hank-secret"), http.MethodGet, path, "")
		sessError(t, resp, http.StatusTooManyRequests, "resource-constraint", "the right password while locked")
		retryAfter(t, resp)
		_, err := d.tryLogin(t, jid.MustParse("hank@localhost"), "hank-secret")
		require.Error(t, err, "hank logged in over XMPP while his account is locked")
		assert.Equal(t, "temporary-auth-failure", saslCondition(err), "SASL condition of a locked account: %v", err)

		// Other accounts from the same address may still log in.
		d.sessList(t, sessAdmin, "/rest/sessions")
		d.login(t, jid.MustParse("ivan@localhost"), "ivan-secret", false)
	})

	t.Run("calls per caller", func(t *testing.T) {
		d.login(t, jid.MustParse("ivan@localhost"), "ivan-secret", true)
		ivan := sessBasic("ivan@localhost", "ivan-secret")
		ivanPath := "/rest/users/ivan@localhost/sessions"
		assert.Equal(t, 1, d.sessList(t, ivan, ivanPath).Count)
		assert.Equal(t, 1, d.sessList(t, ivan, ivanPath).Count)
		resp := d.sessCall(t, ivan, http.MethodGet, ivanPath, "")
		sessError(t, resp, http.StatusTooManyRequests, "resource-constraint", "ivan's third call within the burst of 2")
		retryAfter(t, resp)
		// Admins are not limited unless --admin-rate says so.
		for range 10 {
			d.sessList(t, sessAdmin, ivanPath)
		}
	})

	t.Run("unknown keys lock the address", func(t *testing.T) {
		// The address already failed 5 times (the wrong passwords; refusals
		// with 429 or <temporary-auth-failure/> do not count), so
		// DefaultAddressFailures-5 unknown keys later it is locked.
		var locked gatewayResponse
		refused := 0
		for i := range limit.DefaultAddressFailures + 5 {
			resp := d.sessCall(t, sessBearer(fmt.Sprintf("adk_unknown_%02d", i)), http.MethodGet, "/rest/sessions", "")
			if resp.status == http.StatusTooManyRequests {
				locked = resp
				break
			}
			sessError(t, resp, http.StatusUnauthorized, "not-authorized", "an unknown key")
			refused++
		}
		require.Equal(t, http.StatusTooManyRequests, locked.status, "%d unknown keys from one address were never throttled", refused)
		assert.Equal(t, limit.DefaultAddressFailures-5, refused, "unknown keys answered 401 before the address was locked")
		retryAfter(t, locked)
		// An account that never logged in from that address waits, with the
		// right password too.
		resp := d.sessCall(t, sessBasic("jill@localhost", "jill-secret"), http.MethodGet, "/rest/users/jill@localhost/sessions", "")
		sessError(t, resp, http.StatusTooManyRequests, "resource-constraint", "a new account at a locked address")
		retryAfter(t, resp)
		_, err := d.tryLogin(t, jid.MustParse("jill@localhost"), "jill-secret")
		require.Error(t, err, "jill logged in over XMPP from a locked address")
		assert.Equal(t, "temporary-auth-failure", saslCondition(err), "SASL condition at a locked address: %v", err)
		// The admin, who logged in from here before, and a valid key do not.
		d.sessList(t, sessAdmin, "/rest/sessions")
		d.sessList(t, sessBearer(keySecret), "/rest/sessions")
	})
}
