package main

// End-to-end test of replayed Pusher requests: a request that Pusher's
// Node.js SDK signed, recorded on its way to adhocd, is sent again.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
)

// recordedRequest is a request as it went through a recordingProxy.
type recordedRequest struct {
	method, uri string // uri: path and query, as sent
	header      http.Header
	body        []byte
}

// recordingProxy forwards HTTP requests to target and keeps a copy of each,
// as an eavesdropper between the app and adhocd would (a TLS-terminating
// load balancer's log, a proxy's debug capture).
type recordingProxy struct {
	addr string
	mu   sync.Mutex
	seen []recordedRequest
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	require.NoError(t, err)
	p := &recordingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		body, err := io.ReadAll(r.In.Body)
		if err != nil {
			body = nil // the forwarded request then fails, and so does the test
		}
		r.Out.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.seen = append(p.seen, recordedRequest{method: r.In.Method, uri: r.In.URL.RequestURI(), header: r.In.Header.Clone(), body: body})
		p.mu.Unlock()
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.True(t, errors.Is(<-served, http.ErrServerClosed))
	})
	return p
}

// requests returns what went through so far.
func (p *recordingProxy) requests() []recordedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recordedRequest(nil), p.seen...)
}

// replay sends r again, straight to the daemon, with its headers.
func (d *daemon) replay(t *testing.T, r recordedRequest, uri string) gatewayResponse {
	t.Helper()
	var header []string
	for _, k := range []string{"Content-Type", "X-Pusher-Library"} {
		if v := r.header.Get(k); v != "" {
			header = append(header, k+": "+v)
		}
	}
	return d.gatewayCall(t, r.method, uri, "", "", string(r.body), header...)
}

func TestE2EPusherReplay(t *testing.T) {
	node := requirePusherSDK(t)
	dir := t.TempDir()
	userAdd(t, dir, "zed@localhost", "zed-secret")
	userAdd(t, dir, "yan@localhost", "yan-secret")
	app := sessPusherApp{id: "app1", key: "key1", secret: "secret1"}
	d := startDaemonWith(t, dir, "--pusher-app", app.id+":"+app.key+":"+app.secret+":localhost")
	proxy := startRecordingProxy(t, d.addrs["http"])
	zed := jid.MustParse("zed@localhost")

	first := d.login(t, zed, "zed-secret", false)
	firstDone := served(first)
	bystander := d.login(t, jid.MustParse("yan@localhost"), "yan-secret", true)
	bystanderDone := served(bystander)

	// The app ends zed's sessions through the proxy, which records the request.
	res := runPusherSDKAt(t, node, proxy.addr, app, "zed")
	require.Equal(t, http.StatusOK, res.Status, "terminate_connections through the proxy: %s", res.Body)
	expectStreamError(t, first.LocalAddr(), firstDone, "policy-violation", "")
	recorded := proxy.requests()
	require.Len(t, recorded, 1, "the SDK sent one request")
	captured := recorded[0]
	require.Equal(t, http.MethodPost, captured.method)
	require.Contains(t, captured.uri, "auth_signature=")

	// zed logs in again, twice; the recorded request, sent again at once,
	// and with a later auth_timestamp appended (the signature covers only
	// one), ends neither session.
	again := d.login(t, zed, "zed-secret", false)
	againDone := served(again)
	againTLS := d.login(t, zed, "zed-secret", true)
	againTLSDone := served(againTLS)
	later := strconv.FormatInt(time.Now().Unix()+60, 10)
	for _, tc := range []struct {
		name, uri, text string
	}{
		{name: "as recorded", uri: captured.uri,
			text: "Authentication failed: This request was already received; Pusher requests cannot be replayed."},
		{name: "with a second auth_timestamp", uri: captured.uri + "&auth_timestamp=" + later,
			text: `Authentication failed: the parameter "auth_timestamp" is given more than once; a signature covers one value of each parameter.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := d.replay(t, captured, tc.uri)
			assert.Equal(t, http.StatusUnauthorized, resp.status, "%s", resp.body)
			assert.Equal(t, "application/json", resp.mediaType(t))
			var e map[string]string
			require.NoError(t, json.Unmarshal(resp.body, &e), "body %q", resp.body)
			assert.Equal(t, map[string]string{"error": tc.text}, e, "Pusher's error shape, with the reason")
		})
	}
	expectServing(t, again.LocalAddr(), againDone)
	expectServing(t, againTLS.LocalAddr(), againTLSDone)
	pingServer(t, again)
	pingServer(t, againTLS)
	assert.Equal(t, 2, d.sessList(t, sessAdmin, "/rest/users/zed@localhost/sessions").Count, "the replays ended nothing")
	assert.Len(t, d.auditList(t, sessAdmin, "?actor=pusher:app1").Items, 1, "only the recorded request itself was carried out")

	// The app itself is not hindered: a request it signs now is carried out.
	// (Another path: the same request signed within the same second is the
	// same request, byte for byte, and would be refused as a replay.)
	res = d.runPusherSDK(t, node, app, "zed@localhost")
	assert.Equal(t, http.StatusOK, res.Status, "terminate_connections after the replays: %s", res.Body)
	expectStreamError(t, again.LocalAddr(), againDone, "policy-violation", "")
	expectStreamError(t, againTLS.LocalAddr(), againTLSDone, "policy-violation", "")
	expectServing(t, bystander.LocalAddr(), bystanderDone)
	pingServer(t, bystander)
	assert.Len(t, d.auditList(t, sessAdmin, "?actor=pusher:app1").Items, 2)
}
