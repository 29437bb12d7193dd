package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/adhocd/adhocd/transport/httpapi"
	"github.com/adhocd/adhocd/transport/limit"
)

// testCommand answers with a fixed response or error, or waits for ctx.
type testCommand struct {
	info  adhoc.Info
	resp  adhoc.Response
	err   error
	block bool
}

func (c testCommand) Info() adhoc.Info { return c.info }

func (c testCommand) Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
	if c.block {
		<-ctx.Done()
		return adhoc.Response{}, ctx.Err()
	}
	if c.err != nil {
		return adhoc.Response{}, c.err
	}
	resp := c.resp
	resp.Node = req.Node
	if req.WantsForm() && resp.Form != nil {
		return resp, nil
	}
	resp.Form = &adhoc.Form{Type: adhoc.FormTypeResult, Fields: []adhoc.Field{
		{Var: "Notes", Type: adhoc.FieldTextMulti, Values: []string{"run by " + req.Caller.JID.String()}},
	}}
	return resp, nil
}

// wizard is a two-stage command, for sessions.
type wizard struct{}

func (wizard) Info() adhoc.Info { return adhoc.Info{Node: "wizard", Name: "Wizard", AdminOnly: true} }
func (wizard) Execute(_ context.Context, req adhoc.Request) (adhoc.Response, error) {
	if req.SessionID == "" {
		return adhoc.Response{Status: adhoc.StatusExecuting, Actions: []adhoc.Action{adhoc.ActionComplete}, Default: adhoc.ActionComplete,
			Form: &adhoc.Form{Type: adhoc.FormTypeForm, Title: "Step 1", Fields: []adhoc.Field{{Var: "x", Type: adhoc.FieldTextSingle}}}}, nil
	}
	return adhoc.Response{Status: adhoc.StatusCompleted}, nil
}

type gateway struct {
	svc     *services
	handler http.Handler
	now     *time.Time
	srv     *httpapi.Server
	db      *store.DB
}

// newGateway builds the router over a real account store; opts adjust its
// Config before it is built.
func newGateway(t *testing.T, opts ...func(*httpapi.Config)) *gateway {
	t.Helper()
	svc := newServices(t)
	db := svc.db
	ctx := context.Background()
	require.NoError(t, db.AddUser(ctx, jid.MustParse("admin@localhost"), "secret", true))
	require.NoError(t, db.AddUser(ctx, jid.MustParse("user@localhost"), "userpw", false))
	require.NoError(t, db.AddUser(ctx, jid.MustParse("off@localhost"), "offpw", false))
	require.NoError(t, db.SetDisabled(ctx, jid.MustParse("off@localhost"), true))

	// The session manager's commands and guard, and commands of every
	// outcome beside them.
	now := time.Now()
	reg := adhoc.NewRegistry(adhoc.RegistryConfig{SessionTTL: time.Minute, Now: func() time.Time { return now }})
	require.NoError(t, svc.mgr.Register(reg))
	sm := jid.MustParse("sess-man@localhost")
	for _, c := range []adhoc.Command{
		testCommand{info: adhoc.Info{Node: "ok", Name: "OK", AdminOnly: true}, resp: adhoc.Response{Status: adhoc.StatusCompleted},
			err: nil},
		testCommand{info: adhoc.Info{Node: "form", Name: "Form", AdminOnly: true}, resp: adhoc.Response{Status: adhoc.StatusExecuting,
			Form: &adhoc.Form{Type: adhoc.FormTypeForm, Title: "End a session", Instructions: "Pick users.", Fields: []adhoc.Field{
				{Var: "accountjids", Type: adhoc.FieldJIDMulti, Label: "Users", Required: true}}}}},
		testCommand{info: adhoc.Info{Node: "public", Name: "Public"}},
		testCommand{info: adhoc.Info{Node: "conflict", AdminOnly: true}, err: &adhoc.Error{Condition: stanza.Conflict, Text: "It exists."}},
		testCommand{info: adhoc.Info{Node: "busy", AdminOnly: true}, err: &adhoc.Error{Condition: stanza.ResourceConstraint, Text: "Busy."}},
		testCommand{info: adhoc.Info{Node: "unimplemented", AdminOnly: true}, err: &adhoc.Error{Condition: stanza.FeatureNotImplemented, Text: "Not yet."}},
		testCommand{info: adhoc.Info{Node: "down", AdminOnly: true}, err: &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: "Down."}},
		testCommand{info: adhoc.Info{Node: "gone", AdminOnly: true}, err: &adhoc.Error{Condition: stanza.Gone, Text: "Gone."}},
		testCommand{info: adhoc.Info{Node: "crash", AdminOnly: true}, err: errors.New("database exploded at /var/lib/secret")},
		testCommand{info: adhoc.Info{Node: "slow", AdminOnly: true}, block: true},
		wizard{},
	} {
		require.NoError(t, reg.Register(sm, c))
	}
	cfg := httpapi.Config{
		Domain: "localhost", Commands: reg, Accounts: svc.accounts,
		// The product's deadline: a login under the race detector on a busy
		// machine may take tens of milliseconds. TestGatewayDeadlineIs504
		// sets a short one.
		BodyLimit: 4096, CommandTimeout: 10 * time.Second,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	srv := httpapi.New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	return &gateway{svc: svc, handler: srv.Handler(), now: &now, srv: srv, db: db}
}

type call struct {
	method, path, contentType, accept, body string
	user, password                          string // empty user: no Authorization
}

func (g *gateway) do(t *testing.T, c call) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	if c.user != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password)))
	}
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	return rec
}

func jsonCommand(node string) string {
	return `{"command":{"node":"` + node + `","fields":[{"var":"x","value":"1"}]}}`
}

func TestGatewayErrorTable(t *testing.T) {
	g := newGateway(t)
	admin := func(c call) call { c.user, c.password = "admin@localhost", "secret"; return c }
	post := func(node string) call {
		return admin(call{method: http.MethodPost, path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: jsonCommand(node)})
	}
	tests := []struct {
		name            string
		whenCall        call
		expectStatus    int
		expectCondition string
		expectSpecific  string
		expectText      string
	}{
		{"ok", post("ok"), 200, "", "", ""},
		{"malformed JSON", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: `{"command":`}), 400, "bad-request", "", ""},
		{"malformed XML", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/xml", body: `<command><node>ok</node>`}), 400, "bad-request", "", ""},
		{"no node", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: `{"command":{"fields":[]}}`}), 400, "bad-request", "", "no node"},
		{"resource in path", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost%2Fr", contentType: "application/json", body: jsonCommand("ok")}), 400, "jid-malformed", "", "resource"},
		{"malformed path JID", admin(call{method: "POST", path: "/rest/adhoc/a@b@c", contentType: "application/json", body: jsonCommand("ok")}), 400, "jid-malformed", "", ""},
		{"no credentials", call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: jsonCommand("ok")}, 401, "not-authorized", "", "Basic"},
		{"wrong password", call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: jsonCommand("ok"), user: "admin@localhost", password: "nope"}, 401, "not-authorized", "", "wrong"},
		{"disabled account", call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: jsonCommand("ok"), user: "off@localhost", password: "offpw"}, 403, "forbidden", "", "disabled"},
		{"non-admin", call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: jsonCommand("ok"), user: "user@localhost", password: "userpw"}, 403, "forbidden", "", "administrators"},
		{"unknown component", admin(call{method: "POST", path: "/rest/adhoc/nobody@localhost", contentType: "application/json", body: jsonCommand("ok")}), 404, "item-not-found", "", ""},
		{"unknown node", post("nope"), 404, "item-not-found", "", ""},
		{"conflict", post("conflict"), 409, "conflict", "", "It exists."},
		{"gone", post("gone"), 410, "gone", "", ""},
		{"bad sessionid", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: `{"command":{"node":"wizard","sessionid":"forged","fields":[]}}`}), 400, "bad-request", "bad-sessionid", ""},
		{"too large", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "application/json", body: `{"command":{"node":"ok","fields":[{"var":"x","value":"` + strings.Repeat("a", 5000) + `"}]}}`}), 413, "policy-violation", "", "4096"},
		{"unsupported type", admin(call{method: "POST", path: "/rest/adhoc/sess-man@localhost", contentType: "text/plain", accept: "application/json", body: "node=ok"}), 415, "bad-request", "", "text/plain"},
		{"resource constraint", post("busy"), 429, "resource-constraint", "", ""},
		{"crash hides internals", post("crash"), 500, "internal-server-error", "", "The command failed."},
		{"not implemented", post("unimplemented"), 501, "feature-not-implemented", "", ""},
		{"unavailable", post("down"), 503, "service-unavailable", "", ""},
		{"no such route", admin(call{method: "GET", path: "/rest/nothing", accept: "application/json"}), 404, "item-not-found", "", "/rest/nothing"},
		{"wrong method", admin(call{method: "DELETE", path: "/rest/adhoc/sess-man@localhost", accept: "application/json"}), 405, "not-allowed", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := g.do(t, tc.whenCall)
			require.Equal(t, tc.expectStatus, rec.Code, rec.Body.String())
			body := rec.Body.String()
			if tc.expectCondition == "" {
				return
			}
			e := decodeError(t, body)
			assert.Equal(t, tc.expectCondition, e["condition"])
			assert.Equal(t, tc.expectSpecific, e["specific"])
			assert.Contains(t, e["error"], tc.expectText)
			assert.NotEmpty(t, e["type"])
			assert.NotContains(t, body, "/var/lib/secret", "causes are never sent")
			if !strings.Contains(tc.whenCall.contentType, "xml") {
				assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			}
			if tc.expectStatus == 401 {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `Basic realm="adhocd"`)
			}
		})
	}
}

// TestGatewayDeadlineIs504: a command still running at --command-timeout
// is answered 504, in time.
func TestGatewayDeadlineIs504(t *testing.T) {
	g := newGateway(t, func(cfg *httpapi.Config) { cfg.CommandTimeout = time.Second })
	c := call{method: http.MethodPost, path: "/rest/adhoc/sess-man@localhost", contentType: "application/json",
		user: "admin@localhost", password: "secret"}
	c.body = jsonCommand("ok")
	require.Equal(t, http.StatusOK, g.do(t, c).Code, "the login is cached from now on")
	c.body = jsonCommand("slow")
	rec := g.do(t, c)
	require.Equal(t, http.StatusGatewayTimeout, rec.Code, rec.Body.String())
	e := decodeError(t, rec.Body.String())
	assert.Equal(t, "remote-server-timeout", e["condition"])
	assert.Contains(t, e["error"], "in time")
}

func TestGatewaySessionExpiredIs410(t *testing.T) {
	g := newGateway(t)
	rec := g.do(t, call{method: "POST", path: "/rest/adhoc/localhost", contentType: "application/json", user: "admin", password: "secret",
		body: `{"command":{"node":"wizard"}}`})
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"status": "executing"`)
	i := strings.Index(rec.Body.String(), `"sessionid": "`)
	require.Positive(t, i)
	sid := rec.Body.String()[i+len(`"sessionid": "`):]
	sid = sid[:strings.IndexByte(sid, '"')]

	*g.now = g.now.Add(90 * time.Second)
	rec = g.do(t, call{method: "POST", path: "/rest/adhoc/localhost", contentType: "application/json", user: "admin", password: "secret",
		body: `{"command":{"node":"wizard","sessionid":"` + sid + `","fields":[{"var":"x","value":"1"}]}}`})
	assert.Equal(t, http.StatusGone, rec.Code, rec.Body.String())
	assert.Equal(t, "session-expired", decodeError(t, rec.Body.String())["specific"])
}

func TestGatewayFormatsAndListing(t *testing.T) {
	g := newGateway(t)
	// XML error for an XML request.
	rec := g.do(t, call{method: "POST", path: "/rest/adhoc/sess-man%40localhost", contentType: "application/xml", user: "admin@localhost", password: "secret",
		body: `<command><node>conflict</node></command>`})
	assert.Equal(t, 409, rec.Code)
	assert.Equal(t, "application/xml; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Body.String(), "<condition>conflict</condition>")

	// Form retrieval: only the node.
	rec = g.do(t, call{method: "POST", path: "/rest/adhoc/sess-man%40localhost", contentType: "application/json", user: "admin@localhost", password: "secret",
		body: `{"command":{"node":"form"}}`})
	require.Equal(t, 200, rec.Code, rec.Body.String())
	for _, want := range []string{`"title": "End a session"`, `"instructions": "Pick users."`, `"var": "accountjids"`, `"type": "jid-multi"`, `"label": "Users"`, `"required": true`} {
		assert.Contains(t, rec.Body.String(), want)
	}

	// The caller is stamped as the requester; the component JID comes from the URL.
	rec = g.do(t, call{method: "POST", path: "/rest/adhoc/localhost?type=json", contentType: "application/json", user: "admin@localhost", password: "secret", body: ``})
	assert.Equal(t, 400, rec.Code, "an empty body is a bad request")

	// GET lists what the caller may run, in the negotiated format.
	rec = g.do(t, call{method: "GET", path: "/rest/adhoc/sess-man@localhost", accept: "application/json", user: "admin@localhost", password: "secret"})
	require.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Body.String(), `"node": "conflict"`)
	assert.Contains(t, rec.Body.String(), `"jid": "sess-man@localhost"`)
	rec = g.do(t, call{method: "GET", path: "/rest/adhoc/localhost", user: "user@localhost", password: "userpw"})
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "application/xml; charset=utf-8", rec.Header().Get("Content-Type"), "XML by default")
	assert.Contains(t, rec.Body.String(), "<node>public</node>")
	assert.NotContains(t, rec.Body.String(), "<node>conflict</node>", "a non-admin sees only what they may run")
}

func TestGatewayCachesVerifiedCredentials(t *testing.T) {
	g := newGateway(t)
	c := call{method: "POST", path: "/rest/adhoc/localhost", contentType: "application/json", user: "admin@localhost", password: "secret", body: jsonCommand("ok")}
	for range 5 {
		rec := g.do(t, c)
		require.Equal(t, 200, rec.Code, rec.Body.String())
		assert.Contains(t, rec.Body.String(), "run by admin@localhost")
	}
	c.password = "other"
	require.Equal(t, 401, g.do(t, c).Code, "a different password is not taken from the cache")

	// A change to the account is seen at once.
	require.NoError(t, g.svc.accounts.SetPassword(t.Context(), sessman.CommandLine, jid.MustParse("admin@localhost"), "changed"))
	c.password = "secret"
	require.Equal(t, 401, g.do(t, c).Code, "the old password is forgotten")
}

func TestGatewayAdminRates(t *testing.T) {
	c := call{method: http.MethodPost, path: "/rest/adhoc/localhost", contentType: "application/json",
		user: "admin@localhost", password: "secret", body: jsonCommand("ok")}
	t.Run("limited", func(t *testing.T) {
		g := newGateway(t, func(cfg *httpapi.Config) { cfg.AdminRates = limit.NewRates(1, 1) })
		require.Equal(t, http.StatusOK, g.do(t, c).Code)
		rec := g.do(t, c)
		require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
		assert.NotEmpty(t, rec.Header().Get("Retry-After"))
		assert.Equal(t, "resource-constraint", decodeError(t, rec.Body.String())["condition"])
	})
	t.Run("nil is unlimited", func(t *testing.T) {
		// Rates limits non-admins only: an admin is not held to it.
		g := newGateway(t, func(cfg *httpapi.Config) { cfg.Rates = limit.NewRates(1, 1) })
		for range 5 {
			rec := g.do(t, c)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		}
		u := call{method: http.MethodPost, path: "/rest/adhoc/localhost", contentType: "application/json",
			user: "user@localhost", password: "userpw", body: jsonCommand("public")}
		require.Equal(t, http.StatusOK, g.do(t, u).Code)
		assert.Equal(t, http.StatusTooManyRequests, g.do(t, u).Code, "while a non-admin is")
	})
}

func TestGatewayTrailingDataOverLimitIs413(t *testing.T) {
	g := newGateway(t)
	for _, tc := range []struct{ name, contentType, body string }{
		{"JSON", "application/json", `{"command":{"node":"ok"}}` + strings.Repeat(" ", 5000)},
		{"XML", "application/xml", `<command><node>ok</node></command>` + strings.Repeat(" ", 5000)},
		{"native XML", "application/xml", `<command xmlns="http://jabber.org/protocol/commands" node="ok"/>` + strings.Repeat(" ", 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := g.do(t, call{method: http.MethodPost, path: "/rest/adhoc/localhost", contentType: tc.contentType,
				user: "admin@localhost", password: "secret", body: tc.body})
			require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
			assert.Contains(t, decodeError(t, rec.Body.String())["error"], "4096")
		})
	}
}

func TestGatewayAPIKeyDomainCheckedBeforeBody(t *testing.T) {
	g := newGateway(t)
	key, _, err := g.db.CreateAPIKey(context.Background(), "elsewhere", "other.org", false)
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/rest/adhoc/localhost", strings.NewReader(`{"command":`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "a key for another domain is refused before its body is read: %s", rec.Body.String())
	assert.Equal(t, "The API key is for another domain; this server serves localhost only.", decodeError(t, rec.Body.String())["error"])
}

// decodeError decodes an error body, JSON {"error","condition","type","specific"?}
// or XML <error><text/><condition/><type/><specific/></error>, into the JSON keys.
func decodeError(t *testing.T, body string) map[string]string {
	t.Helper()
	if strings.HasPrefix(body, "<") {
		var x struct {
			Text      string `xml:"text"`
			Condition string `xml:"condition"`
			Type      string `xml:"type"`
			Specific  string `xml:"specific"`
		}
		require.NoError(t, xml.Unmarshal([]byte(body), &x), body)
		return map[string]string{"error": x.Text, "condition": x.Condition, "type": x.Type, "specific": x.Specific}
	}
	var e map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e
}

func TestGatewayFormatNegotiation(t *testing.T) {
	g := newGateway(t)
	tests := []struct {
		name         string
		whenMethod   string
		givenPath    string
		givenType    string // Content-Type
		givenAccept  string
		expectStatus int
		expectJSON   bool
	}{
		{name: "GET Content-Type json", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost", givenType: "application/json", expectStatus: 200, expectJSON: true},
		{name: "GET Content-Type json wins over Accept", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost", givenType: "application/json; charset=utf-8", givenAccept: "application/xml", expectStatus: 200, expectJSON: true},
		{name: "GET Content-Type xml wins over type", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=json", givenType: "text/xml", expectStatus: 200},
		{name: "GET other Content-Type ignored", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=json", givenType: "application/x-www-form-urlencoded", expectStatus: 200, expectJSON: true},
		{name: "GET other Content-Type then Accept", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost", givenType: "text/plain", givenAccept: "application/json", expectStatus: 200, expectJSON: true},
		{name: "GET type application/json", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=application/json", expectStatus: 200, expectJSON: true},
		{name: "GET type application%2Fjson", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=application%2Fjson", givenAccept: "application/xml", expectStatus: 200, expectJSON: true},
		{name: "GET type application/xml", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=application/xml", givenAccept: "application/json", expectStatus: 200},
		{name: "GET type text/xml", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=text/xml", givenAccept: "application/json", expectStatus: 200},
		{name: "GET type json", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=json", expectStatus: 200, expectJSON: true},
		{name: "GET type unknown", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost?type=yaml", givenAccept: "application/json", expectStatus: 400, expectJSON: true},
		{name: "POST text/plain is 415 in the type format", whenMethod: http.MethodPost, givenPath: "/rest/adhoc/localhost?type=application/json", givenType: "text/plain", expectStatus: 415, expectJSON: true},
		{name: "GET 401 in the Content-Type's format", whenMethod: http.MethodGet, givenPath: "/rest/adhoc/localhost", givenType: "application/json", expectStatus: 401, expectJSON: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := call{method: tc.whenMethod, path: tc.givenPath, contentType: tc.givenType, accept: tc.givenAccept, user: "admin@localhost", password: "secret"}
			if tc.expectStatus == 401 {
				c.password = "wrong"
			}
			rec := g.do(t, c)
			require.Equal(t, tc.expectStatus, rec.Code, rec.Body.String())
			body := rec.Body.String()
			if tc.expectJSON {
				assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
				assert.True(t, json.Valid([]byte(body)), body)
			} else {
				assert.Equal(t, "application/xml; charset=utf-8", rec.Header().Get("Content-Type"))
				assert.True(t, strings.HasPrefix(body, "<"), body)
			}
			if tc.expectStatus == 200 {
				if tc.expectJSON {
					assert.Contains(t, body, `"node": "public"`)
				} else {
					assert.Contains(t, body, "<node>public</node>")
				}
			}
		})
	}
}
