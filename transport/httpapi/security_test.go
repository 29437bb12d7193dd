package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/transport/httpapi"
	"github.com/adhocd/adhocd/transport/limit"
)

// secured is the whole API of localhost (the gateway, the session API, the
// audit) over the real services, with bob bound once, an admin of
// localhost, and an admin and a key of example.org in the same database.
type secured struct {
	handler             http.Handler
	svc                 *services
	bob                 *boundConn
	key, otherDomainKey string
}

func newSecured(t *testing.T, trusted ...netip.Prefix) *secured {
	t.Helper()
	return newSecuredWith(t, func(cfg *httpapi.Config) { cfg.TrustedProxies = trusted })
}

// newSecuredWith is newSecured with the configuration changed by configure.
func newSecuredWith(t *testing.T, configure func(*httpapi.Config)) *secured {
	t.Helper()
	svc := newServices(t)
	ctx := context.Background()
	require.NoError(t, svc.db.AddUser(ctx, jid.MustParse("admin@localhost"), "secret", true))
	require.NoError(t, svc.db.AddUser(ctx, jid.MustParse("root@example.org"), "rootpw", true))
	key, _, err := svc.db.CreateAPIKey(ctx, "ops", "localhost", false)
	require.NoError(t, err)
	otherKey, _, err := svc.db.CreateAPIKey(ctx, "elsewhere", "example.org", false)
	require.NoError(t, err)
	bob := &boundConn{reg: svc.reg, id: "s-bob", addr: jid.MustParse("bob@localhost/x")}
	require.NoError(t, svc.reg.Bind(bob))
	cfg := httpapi.Config{
		Domain: "localhost", Accounts: svc.accounts, Commands: svc.cmds, Sessions: svc.mgr, Audit: svc.mgr,
		Failures: limit.NewFailures(limit.Limits{Pair: 100, Address: 100, Account: 100}), // the tests' refusals are not what is throttled
	}
	configure(&cfg)
	srv := httpapi.New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	return &secured{handler: srv.Handler(), svc: svc, bob: bob, key: key, otherDomainKey: otherKey}
}

// request is one call; auth is "basic user:password" or "key SECRET".
type request struct {
	method, path, auth, body string
	header                   map[string]string
}

func (s *secured) do(t *testing.T, r request) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch kind, cred, _ := strings.Cut(r.auth, " "); kind {
	case "basic":
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	case "key":
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

func (s *secured) audit(t *testing.T, query string) []session.AuditEntry {
	t.Helper()
	rec := s.do(t, request{method: http.MethodGet, path: "/rest/audit" + query, auth: "basic admin@localhost:secret"})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var page session.AuditPage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	return page.Items
}

func endBob(user string) string {
	return `{"command":{"node":"http://jabber.org/protocol/admin#end-user-session","fields":[{"var":"accountjids","value":"` + user + `"}]}}`
}

func command(node string, fields ...[2]string) string {
	var fs []string
	for _, f := range fields {
		fs = append(fs, `{"var":"`+f[0]+`","value":"`+f[1]+`"}`)
	}
	return `{"command":{"node":"` + node + `","fields":[` + strings.Join(fs, ",") + `]}}`
}

// TestOtherDomainCallersAreRefusedOnEveryRoute: an admin and a key of a
// domain that the database holds but the server does not serve get 401 on
// every route, and end nothing.
func TestOtherDomainCallersAreRefusedOnEveryRoute(t *testing.T) {
	s := newSecured(t)
	routes := []request{
		{method: http.MethodGet, path: "/rest/adhoc/sess-man@localhost"},
		{method: http.MethodPost, path: "/rest/adhoc/sess-man@localhost", body: endBob("bob@localhost")},
		{method: http.MethodPost, path: "/rest/adhoc/sess-man@localhost", body: command("urn:adhocd:apikey#create", [2]string{"name", "mine"})},
		{method: http.MethodGet, path: "/rest/sessions"},
		{method: http.MethodGet, path: "/rest/users/bob@localhost/sessions"},
		{method: http.MethodGet, path: "/rest/users/bob@localhost/sessions/s-bob"},
		{method: http.MethodDelete, path: "/rest/users/bob@localhost/sessions/s-bob"},
		{method: http.MethodDelete, path: "/rest/users/bob@localhost/sessions/all"},
		{method: http.MethodGet, path: "/rest/audit"},
	}
	for _, auth := range []string{"basic root@example.org:rootpw", "key " + s.otherDomainKey} {
		for _, r := range routes {
			r.auth = auth
			rec := s.do(t, r)
			assert.Equal(t, http.StatusUnauthorized, rec.Code, "%s %s as %.10s: %s", r.method, r.path, auth, rec.Body.String())
			assert.Contains(t, strings.ToLower(rec.Body.String()), "this server serves localhost only", r.path)
		}
	}
	assert.Empty(t, s.bob.reason, "bob's session was not ended")
	keys, err := s.svc.db.APIKeys(context.Background())
	require.NoError(t, err)
	assert.Len(t, keys, 2, "no key was made")
}

// TestAPIKeyMayNotMintKeysOrChangePasswords: over the real router, a full
// key that tries to create a key or change admin@'s password gets 403; the
// audit records both refusals; the key still ends sessions.
func TestAPIKeyMayNotMintKeysOrChangePasswords(t *testing.T) {
	s := newSecured(t)
	for _, body := range []string{
		command("urn:adhocd:apikey#create", [2]string{"name", "second"}),
		command("http://jabber.org/protocol/admin#change-user-password", [2]string{"accountjid", "admin@localhost"}, [2]string{"password", "taken"}),
	} {
		rec := s.do(t, request{method: http.MethodPost, path: "/rest/adhoc/sess-man@localhost", auth: "key " + s.key, body: body})
		require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
		assert.Contains(t, rec.Body.String(), "API keys may list and end sessions only; this needs an administrator's account.")
	}
	rec := s.do(t, request{method: http.MethodGet, path: "/rest/audit", auth: "key " + s.key})
	assert.Equal(t, http.StatusForbidden, rec.Code, "keys do not read the audit: %s", rec.Body.String())

	entries := s.audit(t, "?actor=apikey:ops")
	require.Len(t, entries, 2)
	assert.Equal(t, []string{"adhoc:http://jabber.org/protocol/admin#change-user-password", "forbidden", "admin@localhost"},
		[]string{entries[0].Action, entries[0].Outcome, strings.Join(entries[0].Targets, ",")})
	assert.Equal(t, []string{"apikey-create", "forbidden"}, []string{entries[1].Action, entries[1].Outcome})
	rec = s.do(t, request{method: http.MethodGet, path: "/rest/sessions", auth: "basic admin@localhost:taken"})
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "the password did not change")

	rec = s.do(t, request{method: http.MethodPost, path: "/rest/adhoc/sess-man@localhost", auth: "key " + s.key, body: endBob("bob@localhost")})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.NotEmpty(t, s.bob.reason, "what keys are for still works")
}

// TestForgedForwardedForDoesNotReachTheAudit: without a trusted proxy the
// audit records the peer, whatever X-Forwarded-For says, and a request id
// that is not a plain token is replaced; behind a trusted proxy the
// client it names is recorded, and the peer beside it.
func TestForgedForwardedForDoesNotReachTheAudit(t *testing.T) {
	forged := map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.10", "X-Request-Id": "forged id\twith junk"}
	s := newSecured(t)
	rec := s.do(t, request{method: http.MethodDelete, path: "/rest/users/bob@localhost/sessions/s-bob", auth: "basic admin@localhost:secret", header: forged})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	id := rec.Header().Get("X-Request-Id")
	assert.Regexp(t, `^[0-9a-f]{32}$`, id, "a new id replaces the junk")
	entries := s.audit(t, "?target=bob@localhost")
	require.Len(t, entries, 1)
	assert.Equal(t, "192.0.2.1", entries[0].RemoteAddr, "httptest's peer, not the forged address")
	assert.Equal(t, "192.0.2.1:1234", entries[0].Peer)
	assert.Equal(t, id, entries[0].RequestID)

	s = newSecured(t, netip.MustParsePrefix("192.0.2.0/24"))
	rec = s.do(t, request{method: http.MethodDelete, path: "/rest/users/bob@localhost/sessions/s-bob", auth: "basic admin@localhost:secret",
		header: map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Request-Id": "lb-7f3a:42"}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	entries = s.audit(t, "?target=bob@localhost")
	require.Len(t, entries, 1)
	assert.Equal(t, "203.0.113.9", entries[0].RemoteAddr, "the client the trusted proxy names (the right-most untrusted hop)")
	assert.Equal(t, "192.0.2.1:1234", entries[0].Peer, "and the proxy itself")
	assert.Equal(t, "lb-7f3a:42", entries[0].RequestID, "a plain token is kept")
}
