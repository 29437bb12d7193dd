package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/adhocd/adhocd/transport/httpapi"
	"github.com/adhocd/adhocd/transport/limit"
)

type sessionAPI struct {
	handler  http.Handler
	reg      *sessman.Registry
	db       *store.DB
	conns    map[string]*boundConn
	readKey  string
	writeKey string
}

func newSessionAPI(t *testing.T) *sessionAPI {
	t.Helper()
	return newSessionAPIWith(t, limit.NewFailures(limit.Limits{Pair: 3, Address: 100}))
}

func newSessionAPIWith(t *testing.T, failures *limit.Failures) *sessionAPI {
	t.Helper()
	svc := newServices(t)
	db := svc.db
	ctx := context.Background()
	require.NoError(t, db.AddUser(ctx, jid.MustParse("admin@localhost"), "secret", true))
	require.NoError(t, db.AddUser(ctx, jid.MustParse("alice@localhost"), "alicepw", false))
	readKey, _, err := db.CreateAPIKey(ctx, "reader", "localhost", true)
	require.NoError(t, err)
	writeKey, _, err := db.CreateAPIKey(ctx, "writer", "localhost", false)
	require.NoError(t, err)

	reg := svc.reg
	a := &sessionAPI{reg: reg, db: db, conns: map[string]*boundConn{}, readKey: readKey, writeKey: writeKey}
	for i, addr := range []string{"alice@localhost/a", "alice@localhost/b", "alice@localhost/c", "bob@localhost/x"} {
		c := &boundConn{reg: reg, id: fmt.Sprintf("s%d", i), addr: jid.MustParse(addr)}
		require.NoError(t, reg.Bind(c))
		a.conns[addr] = c
	}
	srv := httpapi.New(httpapi.Config{
		Domain: "localhost", Accounts: svc.accounts, Sessions: svc.mgr, Audit: svc.mgr,
		Failures: failures,
	}, zerolog.New(zerolog.NewTestWriter(t)))
	a.handler = srv.Handler()
	return a
}

type apiCall struct {
	method, path, body string
	user, password     string
	key                string
}

func (a *sessionAPI) do(t *testing.T, c apiCall) (int, http.Header, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	assert.Equal(t, "application/json", strings.Split(rec.Header().Get("Content-Type"), ";")[0])
	return rec.Code, rec.Header(), body
}

func TestSessionAPIStatusesAndPermissions(t *testing.T) {
	admin := func(c apiCall) apiCall { c.user, c.password = "admin@localhost", "secret"; return c }
	alice := func(c apiCall) apiCall { c.user, c.password = "alice@localhost", "alicepw"; return c }
	tests := []struct {
		name            string
		whenCall        func(a *sessionAPI) apiCall
		expectStatus    int
		expectCondition string
		expectCount     float64 // -1: not checked
	}{
		{"admin lists all", func(*sessionAPI) apiCall { return admin(apiCall{method: "GET", path: "/rest/sessions"}) }, 200, "", 4},
		{"read-only key lists all", func(a *sessionAPI) apiCall { return apiCall{method: "GET", path: "/rest/sessions", key: a.readKey} }, 200, "", 4},
		{"user may not list all", func(*sessionAPI) apiCall { return alice(apiCall{method: "GET", path: "/rest/sessions"}) }, 403, "forbidden", -1},
		{"user lists own", func(*sessionAPI) apiCall {
			return alice(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions"})
		}, 200, "", 3},
		{"user may not list another", func(*sessionAPI) apiCall {
			return alice(apiCall{method: "GET", path: "/rest/users/bob@localhost/sessions"})
		}, 403, "forbidden", -1},
		{"no sessions is an empty list", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "GET", path: "/rest/users/carol%40localhost/sessions"})
		}, 200, "", 0},
		{"malformed JID", func(*sessionAPI) apiCall { return admin(apiCall{method: "GET", path: "/rest/users/a@b@c/sessions"}) }, 400, "jid-malformed", -1},
		{"resource in JID", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "GET", path: "/rest/users/alice@localhost%2Fa/sessions"})
		}, 400, "jid-malformed", -1},
		{"limit too big", func(*sessionAPI) apiCall { return admin(apiCall{method: "GET", path: "/rest/sessions?limit=51"}) }, 400, "bad-request", -1},
		{"limit zero", func(*sessionAPI) apiCall { return admin(apiCall{method: "GET", path: "/rest/sessions?limit=0"}) }, 400, "bad-request", -1},
		{"negative offset", func(*sessionAPI) apiCall { return admin(apiCall{method: "GET", path: "/rest/sessions?offset=-1"}) }, 400, "bad-request", -1},
		{"unknown session", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions/nope"})
		}, 404, "item-not-found", -1},
		{"another user's session id", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions/s3"})
		}, 404, "item-not-found", -1},
		{"bulk without sessions", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions", body: `{"reason":"x"}`})
		}, 400, "bad-request", -1},
		{"bulk over the limit", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions", body: `{"sessions":[` + strings.Repeat(`"x",`, 50) + `"x"]}`})
		}, 400, "bad-request", -1},
		{"bad block", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/all?block=soon"})
		}, 400, "bad-request", -1},
		{"body not JSON", func(*sessionAPI) apiCall {
			return admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/all", body: "reason=x"})
		}, 400, "bad-request", -1},
		{"read-only key may not end", func(a *sessionAPI) apiCall {
			return apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/all", key: a.readKey}
		}, 403, "forbidden", -1},
		{"user may not end another's", func(*sessionAPI) apiCall {
			return alice(apiCall{method: "DELETE", path: "/rest/users/bob@localhost/sessions/all"})
		}, 403, "forbidden", -1},
		{"unknown key", func(*sessionAPI) apiCall { return apiCall{method: "GET", path: "/rest/sessions", key: "adk_nope_nope"} }, 401, "not-authorized", -1},
		{"no credentials", func(*sessionAPI) apiCall { return apiCall{method: "GET", path: "/rest/sessions"} }, 401, "not-authorized", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newSessionAPI(t)
			status, _, body := a.do(t, tc.whenCall(a))
			require.Equal(t, tc.expectStatus, status, "%v", body)
			if tc.expectCondition != "" {
				assert.Equal(t, tc.expectCondition, body["condition"])
				assert.NotEmpty(t, body["error"])
			}
			if tc.expectCount >= 0 {
				assert.Equal(t, tc.expectCount, body["count"])
			}
			assert.Equal(t, 4, sessionCount(t, a.reg), "nothing was ended")
		})
	}
}

func TestSessionAPIEnds(t *testing.T) {
	a := newSessionAPI(t)
	admin := func(c apiCall) apiCall { c.user, c.password = "admin@localhost", "secret"; return c }

	status, _, body := a.do(t, admin(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions/s1"}))
	require.Equal(t, 200, status)
	assert.Equal(t, "alice@localhost/b", body["jid"])

	// Delete one: it is returned as it was, and the client got the reason.
	status, _, body = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/s1", body: `{"reason":"Bye."}`}))
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, "s1", body["id"])
	assert.Equal(t, "Bye.", a.conns["alice@localhost/b"].reason)
	status, _, _ = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/s1"}))
	assert.Equal(t, 404, status, "gone now")

	// Bulk with unknown ids: they count toward the limit, not the result.
	status, _, body = a.do(t, apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions", key: a.writeKey,
		body: `{"sessions":["s0","nope","s3"]}`})
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, float64(1), body["count"], "s3 is bob's")

	// All but one, then all, with a block.
	status, _, body = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/all?except=s2"}))
	require.Equal(t, 200, status)
	assert.Equal(t, float64(0), body["count"])
	status, _, body = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/all?block=60&reason=Locked."}))
	require.Equal(t, 200, status)
	assert.Equal(t, float64(1), body["count"])
	assert.Equal(t, 1, sessionCount(t, a.reg), "only bob is left")
	blk, blocked, err := a.db.ActiveBlock(context.Background(), jid.MustParse("alice@localhost"), time.Now())
	require.NoError(t, err)
	require.True(t, blocked)
	assert.Equal(t, "Locked.", blk.Reason)

	// Every end is in the audit, with who and how.
	page, err := a.db.Audit(context.Background(), session.AuditQuery{})
	require.NoError(t, err)
	entries := page.Items
	assert.Equal(t, 4, page.Count)
	assert.Equal(t, "apikey:writer", entries[2].Actor)
	assert.Equal(t, "apikey", entries[2].Auth)
	assert.NotEmpty(t, entries[0].RequestID)
}

func TestFailedLoginsAreThrottled(t *testing.T) {
	a := newSessionAPI(t)
	for range 3 {
		status, _, _ := a.do(t, apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions", user: "alice@localhost", password: "wrong"})
		require.Equal(t, 401, status)
	}
	status, header, body := a.do(t, apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions", user: "alice@localhost", password: "alicepw"})
	assert.Equal(t, 429, status, "even the right password waits: %v", body)
	assert.Equal(t, "resource-constraint", body["condition"])
	assert.NotEmpty(t, header.Get("Retry-After"))
}

func TestAPIKeysAtALockedAddress(t *testing.T) {
	a := newSessionAPIWith(t, limit.NewFailures(limit.Limits{Address: 3}))
	sessions := apiCall{method: "GET", path: "/rest/sessions"}
	admin := sessions
	admin.user, admin.password = "admin@localhost", "secret"
	status, _, _ := a.do(t, admin)
	require.Equal(t, 200, status, "the admin logs in from the test's address (192.0.2.1)")

	unknown := sessions
	unknown.key = "adk_unknown"
	for range 3 {
		status, _, body := a.do(t, unknown)
		require.Equal(t, 401, status, "an unknown key: %v", body)
	}
	status, header, body := a.do(t, unknown)
	assert.Equal(t, 429, status, "an unknown key from the locked address: %v", body)
	assert.Equal(t, "resource-constraint", body["condition"])
	assert.NotEmpty(t, header.Get("Retry-After"))

	valid := sessions
	valid.key = a.readKey
	status, _, body = a.do(t, valid)
	assert.Equal(t, 200, status, "a valid key passes from a locked address: %v", body)
	status, _, body = a.do(t, admin)
	assert.Equal(t, 200, status, "so does the admin, who logged in from it before: %v", body)
	alice := apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions", user: "alice@localhost", password: "alicepw"}
	status, _, body = a.do(t, alice)
	assert.Equal(t, 429, status, "alice, who never did, waits: %v", body)
}

func sessionCount(t *testing.T, reg *sessman.Registry) int {
	t.Helper()
	c, err := reg.Count(t.Context(), session.CountRequest{})
	require.NoError(t, err)
	return c.Sessions
}

// TestPageParamErrors checks that a refused limit or offset names the
// range it must be in, on the session API and the audit alike.
func TestPageParamErrors(t *testing.T) {
	tests := []struct {
		name       string
		whenQuery  string
		expectText string
	}{
		{name: "limit too big", whenQuery: "limit=51", expectText: "limit: 51 is more than the maximum of 50"},
		{name: "limit zero", whenQuery: "limit=0", expectText: "limit: 0 is less than the minimum of 1"},
		{name: "limit not a number", whenQuery: "limit=ten", expectText: `limit: "ten" is not a whole number; write 1 to 50`},
		{name: "negative offset", whenQuery: "offset=-1", expectText: "offset: -1 is less than the minimum of 0"},
		{name: "offset not a number", whenQuery: "offset=1.5", expectText: `offset: "1.5" is not a whole number; write 0 or more`},
	}
	a := newSessionAPI(t)
	for _, path := range []string{"/rest/sessions", "/rest/users/alice@localhost/sessions", "/rest/audit"} {
		for _, tc := range tests {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				status, _, body := a.do(t, apiCall{method: "GET", path: path + "?" + tc.whenQuery,
					user: "admin@localhost", password: "secret"})
				assert.Equal(t, http.StatusBadRequest, status)
				assert.Equal(t, "bad-request", body["condition"])
				assert.Equal(t, tc.expectText, body["error"])
			})
		}
	}
}
