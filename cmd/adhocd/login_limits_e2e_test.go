package main

// End-to-end tests of what login probing and guessing meet: SCRAM first
// messages that do not tell unknown users from real ones, across restarts,
// and a lockout that cannot keep an account out of an address it used
// before. Clients dial from 127.0.0.2 and up (loopback) to be another
// address.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// loopbackDialer dials from the loopback address ip, so that the server
// sees another remote address than 127.0.0.1.
func loopbackDialer(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: gatewayWait}
}

// basicFrom sends GET path with HTTP Basic credentials from ip.
func (d *daemon) basicFrom(t *testing.T, ip, user, password, path string) gatewayResponse {
	t.Helper()
	tr := &http.Transport{DialContext: loopbackDialer(ip).DialContext}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addrs["http"]+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth(user, password)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err, "GET %s from %s", path, ip)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	t.Logf("GET %s as %s from %s -> %d %s", path, user, ip, resp.StatusCode, body)
	return gatewayResponse{status: resp.StatusCode, header: resp.Header, body: body}
}

// saslFrom logs in over STARTTLS with mellium's SCRAM-SHA-256 from ip and
// returns the SASL failure condition, or "" when the login succeeded.
func (d *daemon) saslFrom(t *testing.T, ip string, user jid.JID, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	conn, err := loopbackDialer(ip).DialContext(ctx, "tcp", d.addrs["c2s"])
	require.NoError(t, err)
	defer conn.Close()
	s, err := xmpp.NewClientSession(ctx, user, conn,
		xmpp.StartTLS(d.clientTLS(t)), xmpp.SASL("", password, sasl.ScramSha256), xmpp.BindResource())
	if err != nil {
		cond := saslCondition(err)
		require.NotEmpty(t, cond, "login as %s from %s failed without a SASL failure: %v", user, ip, err)
		return cond
	}
	require.NoError(t, s.Close())
	return ""
}

// refusedForNow checks a 429 with a Retry-After of at most the window.
func refusedForNow(t *testing.T, resp gatewayResponse, what string) {
	t.Helper()
	sessError(t, resp, http.StatusTooManyRequests, "resource-constraint", what)
	secs, err := strconv.Atoi(resp.header.Get("Retry-After"))
	require.NoError(t, err, "%s: Retry-After %q", what, resp.header.Get("Retry-After"))
	assert.True(t, secs >= 1 && secs <= 61, "%s: Retry-After %d", what, secs)
}

func TestE2ELockoutCannotKeepAdminOutOfAnAddressItUsedBefore(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	admin := jid.MustParse(e2eAdmin)
	const path = "/rest/sessions"

	// The admin works from 127.0.0.1, over HTTP and XMPP.
	require.Equal(t, http.StatusOK, d.basicFrom(t, "127.0.0.1", e2eAdmin, e2eAdminPassword, path).status)
	require.Empty(t, d.saslFrom(t, "127.0.0.1", admin, e2eAdminPassword))

	// An attacker at 127.0.0.2 guesses the admin's password, over SASL and
	// HTTP Basic: five wrong ones, then it is refused, the right password
	// included.
	for i := range 3 {
		assert.Equal(t, "not-authorized", d.saslFrom(t, "127.0.0.2", admin, fmt.Sprintf("guess-%d", i)))
	}
	for i := range 2 {
		assert.Equal(t, http.StatusUnauthorized, d.basicFrom(t, "127.0.0.2", e2eAdmin, fmt.Sprintf("guess-%d", i+3), path).status)
	}
	for range 10 {
		refusedForNow(t, d.basicFrom(t, "127.0.0.2", e2eAdmin, "guess-again", path), "the attacker's sixth guess over HTTP")
		assert.Equal(t, "temporary-auth-failure", d.saslFrom(t, "127.0.0.2", admin, "guess-again"), "the attacker's sixth guess over SASL")
	}
	refusedForNow(t, d.basicFrom(t, "127.0.0.2", e2eAdmin, e2eAdminPassword, path), "the right password from the attacker's address")
	assert.Equal(t, "temporary-auth-failure", d.saslFrom(t, "127.0.0.2", admin, e2eAdminPassword))

	// The admin is not locked out.
	assert.Equal(t, http.StatusOK, d.basicFrom(t, "127.0.0.1", e2eAdmin, e2eAdminPassword, path).status, "the admin over HTTP")
	assert.Empty(t, d.saslFrom(t, "127.0.0.1", admin, e2eAdminPassword), "the admin over SASL")

	// Guessing spread over nine more addresses reaches the account's limit
	// of 50 failures: a new address waits even with the right password,
	// the admin's address does not.
	for i := 3; i <= 11; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		for j := range 5 {
			require.Equal(t, http.StatusUnauthorized, d.basicFrom(t, ip, e2eAdmin, fmt.Sprintf("guess-%d-%d", i, j), path).status)
		}
	}
	refusedForNow(t, d.basicFrom(t, "127.0.0.12", e2eAdmin, e2eAdminPassword, path), "the right password from a new address")
	assert.Equal(t, "temporary-auth-failure", d.saslFrom(t, "127.0.0.12", admin, e2eAdminPassword), "SASL from a new address")
	assert.Equal(t, http.StatusOK, d.basicFrom(t, "127.0.0.1", e2eAdmin, e2eAdminPassword, path).status, "the admin over HTTP")
	assert.Empty(t, d.saslFrom(t, "127.0.0.1", admin, e2eAdminPassword), "the admin over SASL")
}

// scramProbe is a raw client that starts a SCRAM exchange, reads the
// server's first message and aborts: what an account enumerator does.
type scramProbe struct {
	conn net.Conn
	dec  *xml.Decoder
}

// saslElement is a top-level element of the SASL exchange.
type saslElement struct {
	XMLName xml.Name
	Text    string `xml:",chardata"`
	Inner   []struct {
		XMLName xml.Name
	} `xml:",any"`
}

func (p *scramProbe) send(t *testing.T, s string) {
	t.Helper()
	require.NoError(t, p.conn.SetWriteDeadline(time.Now().Add(gatewayWait)))
	_, err := io.WriteString(p.conn, s)
	require.NoError(t, err)
}

// next reads the next top-level element, skipping stream headers.
func (p *scramProbe) next(t *testing.T) saslElement {
	t.Helper()
	require.NoError(t, p.conn.SetReadDeadline(time.Now().Add(gatewayWait)))
	for {
		tok, err := p.dec.Token()
		require.NoError(t, err)
		if start, ok := tok.(xml.StartElement); ok && start.Name.Local != "stream" {
			var el saslElement
			require.NoError(t, p.dec.DecodeElement(&el, &start))
			return el
		}
	}
}

func (p *scramProbe) open(t *testing.T) saslElement {
	t.Helper()
	p.send(t, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
	el := p.next(t)
	require.Equal(t, "features", el.XMLName.Local)
	return el
}

// serverFirst returns the attributes of the server-first-message that mech
// sends to user (r, s, i), then aborts the exchange.
func (d *daemon) serverFirst(t *testing.T, mech, user string) map[string]string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", d.addrs["c2s"], gatewayWait)
	require.NoError(t, err)
	defer conn.Close()
	p := &scramProbe{conn: conn, dec: xml.NewDecoder(conn)}
	p.open(t)
	p.send(t, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	require.Equal(t, "proceed", p.next(t).XMLName.Local)
	p.conn = tls.Client(conn, d.clientTLS(t))
	p.dec = xml.NewDecoder(p.conn)
	p.open(t)

	const clientNonce = "probeprobeprobe"
	first := "n,,n=" + user + ",r=" + clientNonce
	p.send(t, fmt.Sprintf(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>`, mech, base64.StdEncoding.EncodeToString([]byte(first))))
	ch := p.next(t)
	require.Equal(t, "challenge", ch.XMLName.Local, "the answer to %s for %s: %+v", mech, user, ch)
	msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ch.Text))
	require.NoError(t, err)
	attrs := map[string]string{}
	for _, kv := range strings.Split(string(msg), ",") {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, "server-first-message %q", msg)
		attrs[k] = v
	}
	require.True(t, strings.HasPrefix(attrs["r"], clientNonce), "the server nonce extends the client's: %q", msg)
	attrs["r"] = strings.TrimPrefix(attrs["r"], clientNonce)

	p.send(t, `<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	failure := p.next(t)
	require.Equal(t, "failure", failure.XMLName.Local)
	require.Len(t, failure.Inner, 1)
	assert.Equal(t, "aborted", failure.Inner[0].XMLName.Local, "RFC 6120 §6.4.6: an abort is answered <aborted/>")
	return attrs
}

func TestE2ESCRAMFirstMessagesOfUnknownAndKnownUsersAreIndistinguishableAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "real@localhost", "real-secret")
	users := []string{"real", "ghost"} // ghost has no account
	mechs := []string{"SCRAM-SHA-1", "SCRAM-SHA-256"}

	// Three runs of the server on the same data: two restarts.
	runs := make([]map[string]map[string]string, 3) // user+" "+mech -> attributes
	for run := range runs {
		d := startDaemon(t, dir)
		runs[run] = map[string]map[string]string{}
		for _, u := range users {
			for _, m := range mechs {
				runs[run][u+" "+m] = d.serverFirst(t, m, u)
			}
		}
		d.stop(t)
	}

	for _, u := range users {
		for _, m := range mechs {
			first := runs[0][u+" "+m]
			salt, err := base64.StdEncoding.DecodeString(first["s"])
			require.NoError(t, err, "%s %s: salt %q", u, m, first["s"])
			assert.Len(t, salt, 16, "%s %s: salt length", u, m)
			assert.Equal(t, "4096", first["i"], "%s %s: iterations", u, m)
			assert.Len(t, first["r"], len(runs[0]["real "+m]["r"]), "%s %s: server nonce length", u, m)
			for run := 1; run < len(runs); run++ {
				assert.Equal(t, first["s"], runs[run][u+" "+m]["s"], "%s %s: the salt after restart %d", u, m, run)
				assert.NotEqual(t, first["r"], runs[run][u+" "+m]["r"], "%s %s: a fresh nonce", u, m)
			}
		}
		assert.NotEqual(t, runs[0][u+" SCRAM-SHA-1"]["s"], runs[0][u+" SCRAM-SHA-256"]["s"], "%s: one salt per hash", u)
	}
	assert.NotEqual(t, runs[0]["real SCRAM-SHA-256"]["s"], runs[0]["ghost SCRAM-SHA-256"]["s"])
}
