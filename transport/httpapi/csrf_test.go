package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // Pusher's body_md5 is defined on MD5
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/httpapi"
)

// The victim of the forgeries: one bound resource.
var csrfVictim = jid.MustParse("victim@localhost/phone")

const (
	csrfEndJSON = `{"command":{"node":"http://jabber.org/protocol/admin#end-user-session",` +
		`"fields":[{"var":"accountjids","value":["victim@localhost/phone"]}]}}`
	csrfEndXML = `<command><node>http://jabber.org/protocol/admin#end-user-session</node>` +
		`<fields><item><var>accountjids</var><value>victim@localhost/phone</value></item></fields></command>`
	csrfAdhoc     = "/rest/adhoc/sess-man@localhost"
	csrfDeleteAll = "/rest/users/victim@localhost/sessions/all"
	csrfPusher    = "/apps/app/users/victim/terminate_connections"
	// httptest.NewRequest's Host: the server's own origin is http://example.com.
	csrfSelf    = "http://example.com"
	csrfAllowed = "http://console.example.com:8443"
)

// csrfCall is one request; header holds "Key: value" lines.
type csrfCall struct {
	method, path, body string
	header             []string
	pusher             bool   // sign it as Pusher's SDK does, not with Basic
	remoteAddr         string // default httptest's 192.0.2.1:1234
}

// newCSRFServer is the production router over the real session manager,
// with the victim bound, and returns the router and the registry.
func newCSRFServer(t *testing.T) (http.Handler, func() bool) {
	t.Helper()
	svc := newServices(t)
	require.NoError(t, svc.db.AddUser(context.Background(), jid.MustParse("admin@localhost"), "secret", true))
	require.NoError(t, svc.reg.Bind(&boundConn{reg: svc.reg, id: "v1", addr: csrfVictim}))
	srv := httpapi.New(httpapi.Config{
		Domain: "localhost", Accounts: svc.accounts, Commands: svc.cmds, Sessions: svc.mgr,
		PusherApps: []httpapi.PusherApp{{ID: "app", Key: "key", Secret: "pusher-secret", Domain: "localhost"}},
		// As a user may write it: ParseOrigin makes it what browsers send.
		AllowedOrigins: []string{"HTTP://Console.Example.com:8443"},
	}, zerolog.New(zerolog.NewTestWriter(t)))
	bound := func() bool { _, ok := svc.reg.Lookup(csrfVictim); return ok }
	return srv.Handler(), bound
}

func (c csrfCall) do(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	target := c.path
	if c.pusher {
		target = pusherSign(c.method, c.path, c.body)
	}
	req := httptest.NewRequest(c.method, target, strings.NewReader(c.body))
	if c.remoteAddr != "" {
		req.RemoteAddr = c.remoteAddr
	}
	if !c.pusher {
		req.SetBasicAuth("admin@localhost", "secret")
	}
	for _, line := range c.header {
		k, v, ok := strings.Cut(line, ":")
		require.True(t, ok, line)
		req.Header.Set(k, strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// pusherSign adds the query of a Pusher HTTP API signature to path.
func pusherSign(method, path, body string) string {
	q := url.Values{"auth_key": {"key"}, "auth_timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "auth_version": {"1.0"}}
	if body != "" {
		sum := md5.Sum([]byte(body)) //nolint:gosec // see the import
		q.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + q.Get(k)
	}
	mac := hmac.New(sha256.New, []byte("pusher-secret"))
	mac.Write([]byte(method + "\n" + path + "\n" + strings.Join(pairs, "&")))
	q.Set("auth_signature", hex.EncodeToString(mac.Sum(nil)))
	return path + "?" + q.Encode()
}

func TestCSRFRefused(t *testing.T) {
	tests := []struct {
		name            string
		whenCall        csrfCall
		expectStatus    int
		expectCondition string
		expectJSON      bool   // the answer's format; XML otherwise
		expectText      string // in the error's sentence
	}{
		// Rule 1: a POST names a type the codec decodes, whatever ?type= says.
		{"POST without Content-Type", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON},
			415, "bad-request", false, "application/json or application/xml"},
		{"POST without Content-Type, ?type=json", csrfCall{method: "POST", path: csrfAdhoc + "?type=json", body: csrfEndJSON},
			415, "bad-request", true, "A POST needs the Content-Type application/json or application/xml"},
		{"POST without Content-Type, ?type=xml", csrfCall{method: "POST", path: csrfAdhoc + "?type=xml", body: csrfEndXML},
			415, "bad-request", false, "application/json"},
		{"POST text/plain (fetch with a string body)", csrfCall{method: "POST", path: csrfAdhoc + "?type=json", body: csrfEndJSON,
			header: []string{"Content-Type: text/plain;charset=UTF-8"}}, 415, "bad-request", true, `"text/plain" is not accepted`},
		{"POST form-urlencoded", csrfCall{method: "POST", path: csrfAdhoc, body: "a=" + url.QueryEscape(csrfEndJSON),
			header: []string{"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"}}, 415, "bad-request", true, "application/x-www-form-urlencoded"},
		{"POST multipart", csrfCall{method: "POST", path: csrfAdhoc, body: "--x--\r\n",
			header: []string{"Content-Type: multipart/form-data; boundary=x", "Accept: application/json"}}, 415, "bad-request", true, "multipart/form-data"},
		{"Pusher POST without Content-Type", csrfCall{method: "POST", path: csrfPusher, body: "{}", pusher: true},
			415, "bad-request", false, "application/json"},

		// Rule 2: the browser says it comes from another origin.
		{"cross-site", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}},
			403, "forbidden", true, `"https://evil.example" (Sec-Fetch-Site: cross-site)`},
		{"same-site: another port", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: same-site", "Origin: http://example.com:8080"}},
			403, "forbidden", true, "same-site"},
		{"same-site without Origin", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: same-site"}},
			403, "forbidden", true, "another site"},
		{"cross-site beats a missing Content-Type", csrfCall{method: "POST", path: csrfAdhoc + "?type=json", body: csrfEndJSON,
			header: []string{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}}, 403, "forbidden", true, "forgery"},
		{"an old browser's foreign Origin", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Origin: http://evil.example"}}, 403, "forbidden", true, `"http://evil.example"`},
		{"own host, other scheme", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Origin: https://example.com"}}, 403, "forbidden", true, "not this server's origin"},
		{"Origin null", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Origin: null"}}, 403, "forbidden", true, `"null"`},
		{"DELETE cross-site", csrfCall{method: "DELETE", path: csrfDeleteAll,
			header: []string{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}}, 403, "forbidden", true, "forgery"},
		{"DELETE with a foreign Origin", csrfCall{method: "DELETE", path: csrfDeleteAll,
			header: []string{"Origin: https://evil.example"}}, 403, "forbidden", true, "forgery"},
		{"Pusher cross-site", csrfCall{method: "POST", path: csrfPusher, body: "{}", pusher: true,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}}, 403, "forbidden", true, "forgery"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, bound := newCSRFServer(t)
			rec := tc.whenCall.do(t, h)
			require.Equal(t, tc.expectStatus, rec.Code, rec.Body.String())
			assert.True(t, bound(), "the refused request ended the session")
			wantType := "application/xml; charset=utf-8"
			if tc.expectJSON {
				wantType = "application/json; charset=utf-8"
			}
			assert.Equal(t, wantType, rec.Header().Get("Content-Type"), "answered in the negotiated format")
			e := decodeError(t, rec.Body.String())
			assert.Equal(t, tc.expectCondition, e["condition"])
			assert.Contains(t, e["error"], tc.expectText)
			assert.NotContains(t, rec.Header().Get("WWW-Authenticate"), "Basic", "refused before authentication is asked for")
		})
	}
}

func TestCSRFAllowed(t *testing.T) {
	tests := []struct {
		name     string
		whenCall csrfCall
	}{
		{"curl: JSON", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON, header: []string{"Content-Type: application/json"}}},
		{"curl: XML", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndXML, header: []string{"Content-Type: application/xml"}}},
		{"curl: text/xml with ?type=json", csrfCall{method: "POST", path: csrfAdhoc + "?type=json", body: csrfEndXML, header: []string{"Content-Type: text/xml; charset=utf-8"}}},
		{"same-origin", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: same-origin", "Origin: " + csrfSelf}}},
		{"same-origin behind a proxy that rewrote Host", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: same-origin", "Origin: https://admin.example.org"}}},
		{"Sec-Fetch-Site none (typed by the user)", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: none"}}},
		{"an old browser's own Origin", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Origin: " + csrfSelf}}},
		// echo takes X-Forwarded-Proto from a proxy on a loopback or private address.
		{"an old browser's own Origin behind a TLS proxy", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON, remoteAddr: "127.0.0.1:40000",
			header: []string{"Content-Type: application/json", "X-Forwarded-Proto: https", "Origin: https://example.com"}}},
		{"an allowed origin, same-site", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: same-site", "Origin: " + csrfAllowed}}},
		{"an allowed origin, cross-site", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Sec-Fetch-Site: cross-site", "Origin: " + csrfAllowed}}},
		{"an allowed origin, old browser", csrfCall{method: "POST", path: csrfAdhoc, body: csrfEndJSON,
			header: []string{"Content-Type: application/json", "Origin: " + csrfAllowed}}},
		// A DELETE needs no Content-Type: the method alone makes a browser
		// ask with a preflight first, which is never answered.
		{"DELETE without Content-Type", csrfCall{method: "DELETE", path: csrfDeleteAll}},
		{"DELETE with curl -d's form type", csrfCall{method: "DELETE", path: csrfDeleteAll, body: `{"reason":"bye"}`,
			header: []string{"Content-Type: application/x-www-form-urlencoded"}}},
		{"DELETE same-origin", csrfCall{method: "DELETE", path: csrfDeleteAll, header: []string{"Sec-Fetch-Site: same-origin", "Origin: " + csrfSelf}}},
		{"Pusher's SDK", csrfCall{method: "POST", path: csrfPusher, body: "{}", pusher: true, header: []string{"Content-Type: application/json"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, bound := newCSRFServer(t)
			rec := tc.whenCall.do(t, h)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.False(t, bound(), "the session was not ended")
		})
	}
}

func TestCSRFSafeMethodsPass(t *testing.T) {
	h, bound := newCSRFServer(t)
	for _, c := range []csrfCall{
		{method: "GET", path: csrfAdhoc, header: []string{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}},
		{method: "GET", path: "/rest/users/victim@localhost/sessions", header: []string{"Sec-Fetch-Site: cross-site"}},
	} {
		rec := c.do(t, h)
		assert.Equal(t, http.StatusOK, rec.Code, "%s %s: a page of another origin cannot read the answer: %s", c.method, c.path, rec.Body.String())
	}
	assert.True(t, bound())
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		given     string
		expect    string
		expectErr string
	}{
		{"https://admin.example.org", "https://admin.example.org", ""},
		{"HTTPS://Admin.Example.ORG:443", "https://admin.example.org", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"http://127.0.0.1:80", "http://127.0.0.1", ""},
		{"https://example.org:80", "https://example.org:80", ""},
		{"http://[::1]:8080", "http://[::1]:8080", ""},
		{"http://[::1]", "http://[::1]", ""},
		{"https://example.org/", "", "no path"},
		{"https://example.org/admin", "", "no path"},
		{"https://example.org?x=1", "", "no path, query"},
		{"https://example.org#f", "", "fragment"},
		{"ftp://example.org", "", "http or https"},
		{"example.org", "", "http or https"},
		{"example.org:8080", "", "http or https"},
		{"https://", "", "no host"},
		{"https://user:pw@example.org", "", "no user name"},
		{"https://example.org:0", "", "1 to 65535"},
		{"https://example.org:99999", "", "1 to 65535"},
		{"null", "", "http or https"},
		{"", "", "http or https"},
	}
	for _, tc := range tests {
		t.Run(tc.given, func(t *testing.T) {
			got, err := httpapi.ParseOrigin(tc.given)
			if tc.expectErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.expectErr)
				assert.Contains(t, err.Error(), strconv.Quote(tc.given), "the error names the value")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expect, got)
		})
	}
}
