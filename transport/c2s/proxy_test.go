package c2s_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/httpapi"
)

// TestWebSocketBehindATrustedProxy: through the HTTP server, a WebSocket
// session's address is the client that a trusted proxy names in
// X-Forwarded-For, and the peer's when no proxy is trusted, whatever the
// header says.
func TestWebSocketBehindATrustedProxy(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "jay", "pw")
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		expect  string
	}{
		{"no proxy trusted", nil, "127.0.0.1"},
		{"loopback trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			router := httpapi.New(httpapi.Config{Domain: domain, WebSocket: e.srv.WebSocketHandler(), TrustedProxies: tc.trusted}, zerolog.Nop())
			hs := httptest.NewServer(router.Handler())
			defer hs.Close()
			ws := dialWebSocketAt(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/xmpp-websocket",
				http.Header{"X-Forwarded-For": {"203.0.113.9"}})
			_, failure := ws.login(user, "pw", sasl.ScramSha256)
			require.Empty(t, failure)
			full := ws.bind(tc.name)
			c, ok := e.reg.Lookup(jid.MustParse(full))
			require.True(t, ok)
			host, _, _ := strings.Cut(c.RemoteAddr().String(), ":")
			assert.Equal(t, tc.expect, host)
		})
	}
}
