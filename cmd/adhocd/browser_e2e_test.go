package main

// End-to-end test of the cross-site request forgery rules (issue 8,
// point 3) with a real browser: headless Chromium (Debian chromium)
// driven by chromedp, against the built adhocd binary and a mellium
// session.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
)

// browserWait bounds the whole browser test: start, pages and shutdown.
const browserWait = 2 * time.Minute

// attackPage is the page of another origin. Its functions return promises
// that settle once the request has been answered.
const attackPage = `<!doctype html>
<title>not adhocd</title>
<body>
<script>
// noCors is fetch as a page of another origin may use it: the answer is
// opaque, but the browser sends the request, with the credentials it has.
function noCors(url, body, method) {
  return fetch(url, {method: method || 'POST', mode: 'no-cors', credentials: 'include', body: body})
    .then(r => r.type, e => e.name);
}
// formPost submits a text/plain form into an iframe and settles when the
// answer has loaded there; name=value is the body.
function formPost(action, name, value) {
  return new Promise(resolve => {
    const sink = document.createElement('iframe');
    sink.name = 'sink' + Math.random();
    document.body.append(sink); // about:blank has loaded: listen from here
    sink.addEventListener('load', () => resolve('loaded'), {once: true});
    const form = document.createElement('form');
    form.method = 'POST';
    form.enctype = 'text/plain';
    form.action = action;
    form.target = sink.name;
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.append(input);
    document.body.append(form);
    form.submit();
  });
}
async function attack(target, envelope, envelopeXML, deleteURL) {
  return {
    // A Blob's type is not a header a no-cors request may carry: the
    // browser drops it, and the POST has no Content-Type at all.
    blob: await noCors(target, new Blob([envelopeXML], {type: 'application/xml'})),
    blobTypeJSON: await noCors(target + '?type=json', new Blob([envelope])),
    text: await noCors(target + '?type=json', envelope), // text/plain;charset=UTF-8
    // The classic JSON form: name + "=" + value is the envelope with an extra key.
    form: await formPost(target + '?type=json', envelope.slice(0, -2) + ',"x":"', '"}}'),
    // A DELETE is no simple request: the browser refuses to send it.
    deleteNoCors: await noCors(deleteURL, undefined, 'DELETE'),
  };
}
</script>
`

// seenRequest is a request of the browser to adhocd, as DevTools saw it.
type seenRequest struct {
	url, method string
	header      map[string]string // lower-case names, as sent on the wire
	status      int               // 0 until answered
}

// requestLog collects the browser's requests to one origin from DevTools
// events, and wakes waiters on each change.
type requestLog struct {
	prefix  string
	mu      sync.Mutex
	byID    map[network.RequestID]*seenRequest
	order   []network.RequestID
	changed chan struct{} // has room for one wake-up
}

func newRequestLog(origin string) *requestLog {
	return &requestLog{prefix: origin + "/", byID: map[network.RequestID]*seenRequest{}, changed: make(chan struct{}, 1)}
}

// request returns the entry of id, made on first sight: the events of one
// request come in no fixed order.
func (l *requestLog) request(id network.RequestID) *seenRequest {
	r, ok := l.byID[id]
	if !ok {
		r = &seenRequest{}
		l.byID[id] = r
		l.order = append(l.order, id)
	}
	return r
}

// listen is a chromedp listener: it runs on the browser's reading
// goroutine, so it only records.
func (l *requestLog) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		r := l.request(ev.RequestID)
		r.url, r.method = ev.Request.URL, ev.Request.Method
	case *network.EventRequestWillBeSentExtraInfo:
		r := l.request(ev.RequestID)
		r.header = map[string]string{}
		for k, v := range ev.Headers {
			if s, ok := v.(string); ok {
				r.header[strings.ToLower(k)] = s
			}
		}
	case *network.EventResponseReceived:
		l.request(ev.RequestID).status = int(ev.Response.Status)
	default:
		return
	}
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// answered returns the requests to the origin with method whose URL starts
// with path and that have been answered, with their wire headers known, in
// the order they were first seen. An empty method is any.
func (l *requestLog) answered(method, path string) []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []seenRequest
	for _, id := range l.order {
		r := l.byID[id]
		if strings.HasPrefix(r.url, l.prefix+strings.TrimPrefix(path, "/")) && (method == "" || r.method == method) &&
			r.status != 0 && r.header != nil {
			out = append(out, *r)
		}
	}
	return out
}

// wait returns the requests of answered(method, path) after the first skip
// once there are n, or fails the test when ctx ends first.
func (l *requestLog) wait(ctx context.Context, t *testing.T, method, path string, skip, n int) []seenRequest {
	t.Helper()
	for {
		if got := l.answered(method, path); len(got) >= skip+n {
			return got[skip:]
		}
		select {
		case <-l.changed:
		case <-ctx.Done():
			t.Fatalf("DevTools saw %d answered %s %s%s after the first %d, want %d: %+v",
				len(l.answered(method, path))-skip, method, l.prefix, path, skip, n, l.answered("", ""))
		}
	}
}

// startBrowser starts headless Chromium as the tests may run it (as root,
// on a machine with no network) and returns its chromedp context, bounded
// by browserWait. The browser is closed at cleanup.
func startBrowser(t *testing.T, listen func(any)) context.Context {
	t.Helper()
	chromium := requireTool(t, "chromium", "chromium")
	profile := t.TempDir() // removed after the browser has exited: cleanups run last first
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		// Without these, Chromium's own connections fail on the closed
		// network and it refuses to connect at all.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(testLogWriter{t, "chromium"}),
	}
	bounded, cancelBound := context.WithTimeout(context.Background(), browserWait)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(bounded, opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(listen))
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil && bounded.Err() == nil {
			t.Logf("closing chromium: %v", err)
		}
		cancel()
		cancelAlloc()
		cancelBound()
	})
	require.NoError(t, chromedp.Do(ctx), "starting %s", chromium)
	return ctx
}

func TestE2EBrowserCannotEndSessionsCrossSite(t *testing.T) {
	// Two pages of other origins on other ports of 127.0.0.1: same-site for
	// the browser. The second one's origin is allowed.
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(attackPage)) // a failed write shows as a failed page load
	})
	evil, allowed := httptest.NewServer(page), httptest.NewServer(page)
	t.Cleanup(evil.Close)
	t.Cleanup(allowed.Close)

	dir := t.TempDir()
	victimJID := jid.MustParse("victim@localhost")
	userAdd(t, dir, victimJID.String(), "victim-secret")
	d := startDaemonWith(t, dir, "--allowed-origins", allowed.URL)
	adhocdOrigin := "http://" + d.addrs["http"]
	victim := d.login(t, victimJID, "victim-secret", false)
	victimDone := served(victim)
	full := victim.LocalAddr()

	log := newRequestLog(adhocdOrigin)
	ctx := startBrowser(t, log.listen)

	// The admin logs in once: the browser answers the Basic challenge with
	// the URL's credentials and caches them for adhocd's origin and realm.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://admin:"+e2eAdminPassword+"@"+d.addrs["http"]+"/rest/adhoc/sess-man@localhost")))
	listing, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.textContent`))
	require.NoError(t, err)
	require.Contains(t, listing, nodeEndUserSession, "the admin's listing of commands, through the cached credentials")
	const adhocPath = "/rest/adhoc/sess-man@localhost"
	seen := 0 // POSTs to adhocPath

	target := adhocdOrigin + adhocPath
	envelope := commandJSON(t, nodeEndUserSession, "accountjids", full.String())
	deleteURL := adhocdOrigin + "/rest/users/" + victimJID.String() + "/sessions/all"
	envelopeXML := "<command><node>" + nodeEndUserSession + "</node><fields><item><var>accountjids</var><value>" +
		full.String() + "</value></item></fields></command>"
	call, err := json.Marshal([]string{target, envelope, envelopeXML, deleteURL})
	require.NoError(t, err)
	attack := "attack(..." + string(call) + ")"

	for _, tc := range []struct {
		name         string
		givenPage    string
		expectStatus int // of every POST
	}{
		// Sec-Fetch-Site: same-site, and the origin is not allowed: 403.
		{"another port", evil.URL, http.StatusForbidden},
		// Allowed: the Origin rule lets it pass, the Content-Type rule not.
		{"another port, allowed origin", allowed.URL, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(tc.givenPage)))
			results, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](attack, chromedp.EvalAwaitPromise))
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"blob": "opaque", "blobTypeJSON": "opaque", "text": "opaque", "form": "loaded",
				"deleteNoCors": "TypeError"}, results, "what the page saw")

			// Every request settled on the page; DevTools saw them on the wire.
			posts := log.wait(ctx, t, http.MethodPost, adhocPath, seen, 4)
			seen += len(posts)
			wantTypes := []string{"", "", "text/plain;charset=UTF-8", "text/plain"}
			for i, r := range posts {
				what := r.method + " " + r.url
				assert.Equal(t, http.MethodPost, r.method, what)
				assert.Equal(t, tc.expectStatus, r.status, "%s: the answer of adhocd", what)
				assert.Equal(t, "same-site", r.header["sec-fetch-site"], what)
				assert.Equal(t, tc.givenPage, r.header["origin"], what)
				assert.Equal(t, wantTypes[i], r.header["content-type"], what)
				// Without the rules these would have been executed as the admin.
				assert.True(t, strings.HasPrefix(r.header["authorization"], "Basic "), "%s: the browser sent the cached credentials", what)
			}
			assert.Empty(t, log.answered(http.MethodDelete, "/"), "no DELETE reached adhocd")

			// The session is still bound, served and listed.
			expectServing(t, full, victimDone)
			pingServer(t, victim)
			d.sessList(t, sessAdmin, "/rest/users/"+victimJID.String()+"/sessions").idOf(t, full)
		})
	}

	// The control: the same envelope from adhocd's own origin, with its
	// Content-Type, ends the session. So the browser had working
	// credentials, and only the rules stopped the pages above.
	t.Run("same origin", func(t *testing.T) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(adhocdOrigin+"/healthz")))
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch(`+string(mustJSON(t, target))+`, {method: 'POST', credentials: 'include',
			headers: {'Content-Type': 'application/json'}, body: `+string(mustJSON(t, envelope))+`}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		post := log.wait(ctx, t, http.MethodPost, adhocPath, seen, 1)[0]
		assert.Equal(t, "same-origin", post.header["sec-fetch-site"])
		assert.Equal(t, "application/json", post.header["content-type"])
		expectStreamError(t, full, victimDone, "policy-violation", "")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
