package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // Pusher's body_md5 is defined on MD5
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/transport/httpapi"
	"github.com/adhocd/adhocd/transport/limit"
)

// The app of these tests, and the path of terminate_connections for zed.
const (
	pusherKey    = "key1"
	pusherSecret = "secret1"
	zedPath      = "/apps/app1/users/zed/terminate_connections"
	replayText   = "Authentication failed: This request was already received; Pusher requests cannot be replayed."
	badSignature = "Authentication failed: Invalid signature."
)

// fakeClock is the server's clock: tests move it instead of sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// pusherAPI is the production router with one Pusher app, app1, of
// localhost, and the sessions of the registry.
type pusherAPI struct {
	handler http.Handler
	reg     *sessman.Registry
	clock   *fakeClock
	next    int
}

func newPusherAPI(t *testing.T, replay httpapi.ReplayCache, clock *fakeClock) *pusherAPI {
	t.Helper()
	svc := newServices(t)
	srv := httpapi.New(httpapi.Config{
		Domain: "localhost", Sessions: svc.mgr,
		PusherApps:   []httpapi.PusherApp{{ID: "app1", Key: pusherKey, Secret: pusherSecret, Domain: "localhost"}},
		PusherReplay: replay, Now: clock.Now,
		// Many refusals in a row here; the throttle has tests of its own.
		Failures: limit.NewFailures(limit.Limits{Pair: 1000, Address: 1000, Account: 1000}),
	}, zerolog.New(zerolog.NewTestWriter(t)))
	return &pusherAPI{handler: srv.Handler(), reg: svc.reg, clock: clock}
}

// bind stands up the sessions of the users zed (two) and yan (one, a
// bystander) that are not online; yan is nil if he was.
func (p *pusherAPI) bind(t *testing.T) (zed []*boundConn, yan *boundConn) {
	t.Helper()
	for _, addr := range []string{"zed@localhost/a", "zed@localhost/b", "yan@localhost/x"} {
		if _, online := p.reg.Lookup(jid.MustParse(addr)); online {
			continue
		}
		p.next++
		c := &boundConn{reg: p.reg, id: "s" + strconv.Itoa(p.next), addr: jid.MustParse(addr)}
		require.NoError(t, p.reg.Bind(c))
		if c.addr.Localpart() == "zed" {
			zed = append(zed, c)
		} else {
			yan = c
		}
	}
	return zed, yan
}

// online is how many sessions user has.
func (p *pusherAPI) online(user string) int { return len(p.reg.Resources(jid.MustParse(user))) }

// pusherParams are the parameters Pusher's SDK signs for a body, at ts.
func pusherParams(ts time.Time, body string) map[string]string {
	params := map[string]string{"auth_key": pusherKey, "auth_timestamp": strconv.FormatInt(ts.Unix(), 10), "auth_version": "1.0"}
	if body != "" {
		sum := md5.Sum([]byte(body)) //nolint:gosec // see the import
		params["body_md5"] = hex.EncodeToString(sum[:])
	}
	return params
}

// signPusher returns the query of a POST to path with params, signed as
// createSignedQueryString of Pusher's Node.js SDK (pusher 5.3.4,
// lib/requests.js) signs it: "key=value" sorted by key, joined by '&', the
// values as they are; auth_signature last. Values are percent-encoded in
// the query, which the SDK leaves to the caller.
func signPusher(path string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	signed := make([]string, len(keys))
	sent := make([]string, len(keys))
	for i, k := range keys {
		signed[i] = k + "=" + params[k]
		sent[i] = url.QueryEscape(k) + "=" + url.QueryEscape(params[k])
	}
	mac := hmac.New(sha256.New, []byte(pusherSecret))
	mac.Write([]byte("POST\n" + path + "\n" + strings.Join(signed, "&")))
	return strings.Join(sent, "&") + "&auth_signature=" + hex.EncodeToString(mac.Sum(nil))
}

// pusherAnswer is a response: its status, Retry-After, and the sentence
// of {"error": …} ("" for 200 {}).
type pusherAnswer struct {
	status     int
	retryAfter string
	text       string
}

// post sends POST path?query with body, as the SDK does (Content-Type
// application/json), and checks that the answer is Pusher's JSON shape.
func (p *pusherAPI) post(t *testing.T, path, query, body string) pusherAnswer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path+"?"+query, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, req)
	assert.Equal(t, "application/json", strings.Split(rec.Header().Get("Content-Type"), ";")[0])
	var e map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), "body %q", rec.Body.String())
	if rec.Code == http.StatusOK {
		assert.Empty(t, e, "a success is {}")
	} else {
		assert.Len(t, e, 1, "Pusher's error shape is {\"error\": …} alone: %s", rec.Body.String())
	}
	return pusherAnswer{status: rec.Code, retryAfter: rec.Header().Get("Retry-After"), text: e["error"]}
}

func TestPusherReplayIsRefused(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	p := newPusherAPI(t, nil, clock)
	zed, yan := p.bind(t)
	captured := signPusher(zedPath, pusherParams(clock.Now(), "{}"))

	got := p.post(t, zedPath, captured, "{}")
	require.Equal(t, pusherAnswer{status: http.StatusOK}, got)
	assert.Equal(t, 0, p.online("zed@localhost"), "zed's sessions end")
	for _, c := range zed {
		assert.NotEmpty(t, c.reason, "%s was told why", c.addr)
	}

	// zed is back; the same request, seen again, ends nothing, at once, a
	// second later, and at the last second of its window.
	p.bind(t)
	for _, after := range []time.Duration{0, time.Second, 599 * time.Second} {
		clock.Set(time.Unix(1_700_000_000, 0).Add(after))
		got = p.post(t, zedPath, captured, "{}")
		assert.Equal(t, pusherAnswer{status: http.StatusUnauthorized, text: replayText}, got, "replayed %s later", after)
		assert.Equal(t, 2, p.online("zed@localhost"), "a replay %s later ends nothing", after)
	}
	clock.Add(time.Second) // now at auth_timestamp + 600 s: the bound of the window
	got = p.post(t, zedPath, captured, "{}")
	assert.Equal(t, pusherAnswer{status: http.StatusUnauthorized, text: replayText}, got, "replayed at the end of the window")
	// Past the window, the timestamp refuses it (and the cache let it go).
	clock.Add(time.Second)
	got = p.post(t, zedPath, captured, "{}")
	assert.Equal(t, http.StatusUnauthorized, got.status)
	assert.Contains(t, got.text, "is more than 600 s from this server's time")
	assert.Equal(t, 2, p.online("zed@localhost"), "refused requests end nothing")
	assert.Equal(t, 1, p.online("yan@localhost"), "yan's session was never touched")
	assert.Empty(t, yan.reason)

	// The app signs a new request: it is carried out.
	got = p.post(t, zedPath, signPusher(zedPath, pusherParams(clock.Now(), "{}")), "{}")
	assert.Equal(t, pusherAnswer{status: http.StatusOK}, got)
	assert.Equal(t, 0, p.online("zed@localhost"))
}

func TestPusherReplayConcurrent(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	p := newPusherAPI(t, nil, clock)
	p.bind(t)
	captured := signPusher(zedPath, pusherParams(clock.Now(), "{}"))
	const n = 16
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, zedPath+"?"+captured, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			p.handler.ServeHTTP(rec, req)
			statuses <- rec.Code
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	assert.Equal(t, map[int]int{http.StatusOK: 1, http.StatusUnauthorized: n - 1}, count,
		"of %d copies of one request sent at once, one is carried out", n)
}

func TestPusherTimestampWindow(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name         string
		givenSkew    time.Duration // auth_timestamp - now
		givenRaw     string        // auth_timestamp as sent, instead of now+givenSkew
		expectStatus int
		expectText   string
	}{
		{name: "now", expectStatus: http.StatusOK},
		{name: "600 s ago", givenSkew: -600 * time.Second, expectStatus: http.StatusOK},
		{name: "600 s ahead", givenSkew: 600 * time.Second, expectStatus: http.StatusOK},
		{name: "601 s ago", givenSkew: -601 * time.Second, expectStatus: http.StatusUnauthorized,
			expectText: "Authentication failed: auth_timestamp 2023-11-14T22:03:19Z is more than 600 s from this server's time, " +
				"2023-11-14T22:13:20Z: the clock of the sender or of this server is off."},
		{name: "601 s ahead", givenSkew: 601 * time.Second, expectStatus: http.StatusUnauthorized,
			expectText: "Authentication failed: auth_timestamp 2023-11-14T22:23:21Z is more than 600 s from this server's time, " +
				"2023-11-14T22:13:20Z: the clock of the sender or of this server is off."},
		{name: "a day ahead", givenSkew: 24 * time.Hour, expectStatus: http.StatusUnauthorized,
			expectText: "Authentication failed: auth_timestamp 2023-11-15T22:13:20Z is more than 600 s from this server's time, " +
				"2023-11-14T22:13:20Z: the clock of the sender or of this server is off."},
		{name: "milliseconds", givenRaw: "1700000000000", expectStatus: http.StatusUnauthorized,
			expectText: "Authentication failed: auth_timestamp 55840-11-08T22:13:20Z is more than 600 s from this server's time, " +
				"2023-11-14T22:13:20Z: the clock of the sender or of this server is off."},
		{name: "not a number", givenRaw: "yesterday", expectStatus: http.StatusUnauthorized,
			expectText: "Authentication failed: auth_timestamp is missing or not a number of seconds since 1970."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: base}
			p := newPusherAPI(t, nil, clock)
			p.bind(t)
			params := pusherParams(base.Add(tc.givenSkew), "{}")
			if tc.givenRaw != "" {
				params["auth_timestamp"] = tc.givenRaw
			}
			got := p.post(t, zedPath, signPusher(zedPath, params), "{}")
			assert.Equal(t, pusherAnswer{status: tc.expectStatus, text: tc.expectText}, got)
			want := 2
			if tc.expectStatus == http.StatusOK {
				want = 0
			}
			assert.Equal(t, want, p.online("zed@localhost"), "zed's sessions after the request")
		})
	}
}

func TestPusherParametersNotSigned(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	signed := signPusher(zedPath, pusherParams(base, "{}"))
	withExtra := func(k, v string) string {
		params := pusherParams(base, "{}")
		params[k] = v
		return signPusher(zedPath, params)
	}
	tests := []struct {
		name         string
		givenPath    string // default zedPath
		givenQuery   string
		givenBody    string
		expectStatus int
		expectText   string
	}{
		{name: "auth_key appended again", givenQuery: signed + "&auth_key=key2", givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: `Authentication failed: the parameter "auth_key" is given more than once; a signature covers one value of each parameter.`},
		{name: "a newer auth_timestamp appended", givenQuery: signed + "&auth_timestamp=" + strconv.FormatInt(base.Unix()+1, 10), givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: `Authentication failed: the parameter "auth_timestamp" is given more than once; a signature covers one value of each parameter.`},
		{name: "a second auth_signature", givenQuery: signed + "&auth_signature=00", givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: `Authentication failed: the parameter "auth_signature" is given more than once; a signature covers one value of each parameter.`},
		{name: "a parameter repeated in another case", givenQuery: signed + "&AUTH_KEY=key1", givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: `Authentication failed: the parameters "AUTH_KEY" and "auth_key" differ only in case; a signature covers one of each name, lowercased.`},
		{name: "an unsigned parameter appended", givenQuery: signed + "&info=x", givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: badSignature},
		{name: "an encoded '&' in a signed value", givenQuery: withExtra("info", "a&auth_key=key1"), givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: `Authentication failed: the parameter "info" holds '&' or '=' once decoded, which the signature cannot tell from a separator.`},
		{name: "the body removed", givenQuery: signed,
			expectStatus: http.StatusUnauthorized, expectText: "Authentication failed: body_md5 does not match the body."},
		{name: "the body changed", givenQuery: signed, givenBody: `{"a":1}`,
			expectStatus: http.StatusUnauthorized, expectText: "Authentication failed: body_md5 does not match the body."},
		{name: "another user in the path", givenPath: "/apps/app1/users/yan/terminate_connections", givenQuery: signed, givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: badSignature},
		{name: "no auth_signature", givenQuery: signed[:strings.Index(signed, "&auth_signature=")], givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: "Authentication failed: auth_signature is missing."},
		{name: "not URL encoding", givenQuery: signed + "&info=%zz", givenBody: "{}",
			expectStatus: http.StatusBadRequest, expectText: "Invalid request: the query string is not valid URL encoding."},
		{name: "a long repeated name is cut short", givenQuery: signed + "&" + strings.Repeat("k", 50) + "=1&" + strings.Repeat("k", 50) + "=2", givenBody: "{}",
			expectStatus: http.StatusUnauthorized, expectText: `Authentication failed: the parameter "` + strings.Repeat("k", 40) + `…" is given more than once; a signature covers one value of each parameter.`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: base}
			p := newPusherAPI(t, nil, clock)
			_, yan := p.bind(t)
			path := zedPath
			if tc.givenPath != "" {
				path = tc.givenPath
			}
			got := p.post(t, path, tc.givenQuery, tc.givenBody)
			assert.Equal(t, pusherAnswer{status: tc.expectStatus, text: tc.expectText}, got)
			assert.Equal(t, 2, p.online("zed@localhost"), "a refused request ends nothing")
			assert.Equal(t, 1, p.online("yan@localhost"), "a refused request ends nothing")
			assert.Empty(t, yan.reason)

			// It was not remembered: the request as signed is still carried out once.
			got = p.post(t, zedPath, signed, "{}")
			assert.Equal(t, pusherAnswer{status: http.StatusOK}, got, "the untampered request after the refusal")
			assert.Equal(t, 0, p.online("zed@localhost"))
		})
	}

	t.Run("a signed extra parameter", func(t *testing.T) {
		p := newPusherAPI(t, nil, &fakeClock{now: base})
		p.bind(t)
		got := p.post(t, zedPath, withExtra("info", "x"), "{}")
		assert.Equal(t, pusherAnswer{status: http.StatusOK}, got, "parameters the app signed are its own business")
		assert.Equal(t, 0, p.online("zed@localhost"))
	})
}

func TestPusherReplayCacheFull(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	clock := &fakeClock{now: base}
	p := newPusherAPI(t, httpapi.NewMemoryReplayCache(httpapi.MemoryReplayConfig{Max: 2, Now: clock.Now}), clock)
	for i := range 2 {
		p.bind(t)
		// Distinct timestamps: distinct requests; the second expires first.
		ts := base.Add(time.Duration(-10*i) * time.Second)
		got := p.post(t, zedPath, signPusher(zedPath, pusherParams(ts, "{}")), "{}")
		require.Equal(t, pusherAnswer{status: http.StatusOK}, got, "request %d", i)
	}
	p.bind(t)
	got := p.post(t, zedPath, signPusher(zedPath, pusherParams(base, "")), "")
	assert.Equal(t, pusherAnswer{status: http.StatusTooManyRequests, retryAfter: "591",
		text: "Too many Pusher requests within the timestamp window to tell them from replays; try again later."}, got,
		"full: the new request waits rather than an old one becoming replayable")
	assert.Equal(t, 2, p.online("zed@localhost"), "a request refused for a full cache ends nothing")

	clock.Add(591 * time.Second) // the second request's signature has expired
	got = p.post(t, zedPath, signPusher(zedPath, pusherParams(clock.Now(), "")), "")
	assert.Equal(t, pusherAnswer{status: http.StatusOK}, got, "room again once an entry expired")
	assert.Equal(t, 0, p.online("zed@localhost"))
}

func TestMemoryReplayCache(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1_000, 0)}
	c := httpapi.NewMemoryReplayCache(httpapi.MemoryReplayConfig{Max: 3, Now: clock.Now})
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	for i, e := range []struct {
		key    string
		until  time.Time
		expect bool
	}{
		{"a", at(1_030), true}, {"b", at(1_010), true}, {"a", at(1_030), false}, {"c", at(1_020), true},
	} {
		fresh, err := c.Remember(ctx, e.key, e.until)
		require.NoError(t, err)
		assert.Equal(t, e.expect, fresh, "call %d, %s", i, e.key)
	}
	_, err := c.Remember(ctx, "d", at(1_040))
	var full *httpapi.ReplayCacheFullError
	require.ErrorAs(t, err, &full)
	assert.Equal(t, at(1_010), full.Retry, "b expires first")

	clock.Set(at(1_010)) // b's last moment
	_, err = c.Remember(ctx, "d", at(1_040))
	require.ErrorAs(t, err, &full)
	fresh, err := c.Remember(ctx, "b", at(1_040))
	require.NoError(t, err)
	assert.False(t, fresh, "b is kept up to its expiry")

	clock.Set(at(1_011))
	fresh, err = c.Remember(ctx, "b", at(1_040))
	require.NoError(t, err)
	assert.True(t, fresh, "b after it expired")
	fresh, err = c.Remember(ctx, "a", at(1_030))
	require.NoError(t, err)
	assert.False(t, fresh, "a has not expired")
}
