package c2s_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s"
	"github.com/adhocd/adhocd/transport/c2s/c2stest"
	"github.com/adhocd/adhocd/transport/httpapi"
)

// stallTimeout is the negotiation deadline of the stall tests: short, so
// that each stall is cut quickly.
const stallTimeout = 300 * time.Millisecond

// halfClientHello is the start of a TLS ClientHello: a handshake record
// header announcing 512 bytes, and the first bytes of the message.
var halfClientHello = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x00, 0x00}

// goroutineBaseline waits for the goroutine count to stay the same for
// two polls after setup, and returns it.
func goroutineBaseline(t *testing.T) int {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for n := runtime.NumGoroutine(); ; {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the goroutine count does not settle: %d", runtime.NumGoroutine())
		}
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
}

// openFiles counts this process's file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// expectCut reads conn until the server closes it, which must happen before
// a safety deadline well past the stall timeout; it returns what was read.
func expectCut(t *testing.T, conn net.Conn, since time.Time) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	out, err := io.ReadAll(conn)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the server did not cut the connection; read %q", out)
	assert.Less(t, time.Since(since), 3*time.Second)
	return string(out)
}

// TestStallsAreCutAtTheNegotiationDeadline: a connection that stops in any
// phase before it is bound is cut at the negotiation deadline, with a
// <connection-timeout/> stream error wherever a stream was opened, and
// leaves no goroutine or file behind.
func TestStallsAreCutAtTheNegotiationDeadline(t *testing.T) {
	e := newEnv(t, func(c *c2s.Config) { c.NegotiationTimeout = stallTimeout })
	user := e.addUser(t, "stall", "pw")
	baseline, files := goroutineBaseline(t), openFiles(t)

	dial := func(t *testing.T, addr string) net.Conn {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	header := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'`
	tests := []struct {
		name          string
		whenStall     func(t *testing.T) (string, error) // returns what was read until the cut, or a stream error condition
		expectTimeout bool                               // a <connection-timeout/> is sent
	}{
		{"starttls port, no byte", func(t *testing.T) (string, error) {
			start := time.Now()
			return expectCut(t, dial(t, e.addr), start), nil
		}, true},
		{"starttls port, header without its closing >", func(t *testing.T) (string, error) {
			conn := dial(t, e.addr)
			start := time.Now()
			_, err := io.WriteString(conn, header)
			require.NoError(t, err)
			return expectCut(t, conn, start), nil
		}, true},
		{"starttls port, half a ClientHello after proceed", func(t *testing.T) (string, error) {
			// Nothing can be said once TLS has started and failed: a bare close.
			c := e.dialRaw(t, false)
			c.open()
			c.expect("features")
			c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
			c.expect("proceed")
			start := time.Now()
			_, err := c.sock.Write(halfClientHello)
			require.NoError(t, err)
			return expectCut(t, c.sock, start), nil
		}, false},
		{"direct TLS, no byte", func(t *testing.T) (string, error) {
			start := time.Now()
			return expectCut(t, dial(t, e.tlsAddr), start), nil
		}, false},
		{"direct TLS, half a ClientHello", func(t *testing.T) (string, error) {
			conn := dial(t, e.tlsAddr)
			start := time.Now()
			_, err := conn.Write(halfClientHello)
			require.NoError(t, err)
			return expectCut(t, conn, start), nil
		}, false},
		{"direct TLS, header without its closing >", func(t *testing.T) (string, error) {
			c := e.dialRaw(t, true)
			start := time.Now()
			c.send("%s", header)
			return expectCut(t, c.conn, start), nil
		}, true},
		{"direct TLS, mid-SCRAM after the server's challenge", func(t *testing.T) (string, error) {
			c := e.dialRaw(t, true)
			c.open()
			c.expect("features")
			neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
				return []byte(user.Localpart()), []byte("pw"), nil
			}))
			_, first, err := neg.Step(nil)
			require.NoError(t, err)
			c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>%s</auth>`, base64.StdEncoding.EncodeToString(first))
			c.expect("challenge")
			start := time.Now()
			cond, _ := c.expectStreamError()
			c.expectClosed()
			assert.Less(t, time.Since(start), 3*time.Second)
			return "", errors.New(cond)
		}, true},
		{"websocket, upgraded but silent", func(t *testing.T) (string, error) {
			c := e.dialWebSocket(t)
			start := time.Now()
			cond, _ := c.expectStreamError()
			c.expectClosed()
			assert.Less(t, time.Since(start), 3*time.Second)
			return "", errors.New(cond)
		}, true},
		{"websocket, open sent, mid-SCRAM", func(t *testing.T) (string, error) {
			c := e.dialWebSocket(t)
			c.open()
			c.expect("features")
			c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>%s</auth>`,
				base64.StdEncoding.EncodeToString([]byte("n,,n=stall,r=0123456789abcdef")))
			c.expect("challenge")
			cond, _ := c.expectStreamError()
			c.expectClosed()
			return "", errors.New(cond)
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, cond := tc.whenStall(t)
			if cond != nil {
				assert.Equal(t, "connection-timeout", cond.Error())
				return
			}
			if tc.expectTimeout {
				assert.Contains(t, out, "<connection-timeout")
			}
		})
	}
	c2stest.WaitGoroutines(t, baseline)
	assert.LessOrEqual(t, openFiles(t), files)
}

// dialFrom connects to addr from the loopback address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// dialWebSocketFrom opens an XMPP WebSocket at url from the loopback
// address ip; it returns the connection, unopened.
func dialWebSocketFrom(t *testing.T, ip, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"xmpp"}, HandshakeTimeout: 5 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			return nd.Dial(network, addr)
		}}
	ws, resp, err := d.Dial(url, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// refusalOf reads a refused connection to its end and returns the stream
// error's condition and text.
func refusalOf(t *testing.T, r io.Reader) (condition, text string) {
	t.Helper()
	dec := xml.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if err != nil {
			return condition, text
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Local != "error" {
			continue
		}
		var n node
		require.NoError(t, dec.DecodeElement(&n, &start))
		for _, ch := range n.Nodes {
			if ch.XMLName.Local == "text" {
				text = ch.Text
			} else {
				condition = ch.XMLName.Local
			}
		}
	}
}

const refusal = "Too many connections from your address are not yet logged in; try again later."

// TestUnauthenticatedConnectionsPerAddress: the connections of one address
// that have not authenticated are counted across the STARTTLS port, direct
// TLS and WebSocket; one over the limit is refused with
// <policy-violation/> (direct TLS: hung up on), other addresses are not
// affected, and a connection stops counting when it authenticates or closes.
func TestUnauthenticatedConnectionsPerAddress(t *testing.T) {
	e := newEnv(t, func(c *c2s.Config) { c.MaxUnauthenticatedPerAddress = 3 })
	user := e.addUser(t, "many", "pw")
	baseline := goroutineBaseline(t)
	parent := t

	// One of each transport from 127.0.0.2: the address is at its limit.
	held := dialFrom(t, "127.0.0.2", e.addr)
	tlsHeld := e.dialRawFrom(t, "127.0.0.2", true)
	tlsHeld.open()
	tlsHeld.expect("features")
	dialWebSocketFrom(t, "127.0.0.2", e.wsURL)

	t.Run("starttls port refuses with a stream error", func(t *testing.T) {
		conn := dialFrom(t, "127.0.0.2", e.addr)
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err := fmt.Fprintf(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
		require.NoError(t, err)
		cond, text := refusalOf(t, conn)
		assert.Equal(t, "policy-violation", cond)
		assert.Equal(t, refusal, text)
	})
	t.Run("websocket refuses with a stream error", func(t *testing.T) {
		ws := dialWebSocketFrom(t, "127.0.0.2", e.wsURL)
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
		var frames []string
		for {
			_, frame, err := ws.ReadMessage()
			if err != nil {
				break
			}
			frames = append(frames, string(frame))
		}
		require.Len(t, frames, 3, "%q", frames)
		assert.Contains(t, frames[0], "<open ")
		cond, text := refusalOf(t, strings.NewReader(frames[1]))
		assert.Equal(t, "policy-violation", cond)
		assert.Equal(t, refusal, text)
		assert.Contains(t, frames[2], "<close ")
	})
	t.Run("direct TLS hangs up before the handshake", func(t *testing.T) {
		conn := dialFrom(t, "127.0.0.2", e.tlsAddr)
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		out, err := io.ReadAll(conn)
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded))
		assert.Empty(t, out)
	})
	t.Run("another address is not affected", func(t *testing.T) {
		c := e.dialRawFrom(t, "127.0.0.3", false)
		c.starttls(e.client)
		_, failure := c.login(user, "pw", sasl.Plain)
		require.Empty(t, failure)
		c.bind("other")
	})
	t.Run("an authenticated connection no longer counts", func(t *testing.T) {
		failure := tlsHeld.auth(user, "pw", sasl.ScramSha256)
		require.Empty(t, failure)
		c := e.dialRawFrom(parent, "127.0.0.2", true) // held until the end of the test
		c.open()
		c.expect("features") // not refused: the slot was freed
	})
	t.Run("a closed connection no longer counts", func(t *testing.T) {
		assert.Contains(t, greeting(t, "127.0.0.2", e.addr), refusal, "at the limit again")
		require.NoError(t, held.Close())
		require.Eventually(t, func() bool {
			return strings.Contains(greeting(t, "127.0.0.2", e.addr), "starttls")
		}, 5*time.Second, 20*time.Millisecond)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e.srv.Close(ctx)) // ends the held connections
	c2stest.WaitGoroutines(t, baseline)
}

// greeting is what the STARTTLS port at addr answers to a stream header
// from ip: features, or a stream error.
func greeting(t *testing.T, ip, addr string) string {
	t.Helper()
	conn := dialFrom(t, ip, addr)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "</stream:features>") && !strings.Contains(got.String(), "</stream:error>") {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return got.String()
}

// TestLoginAndAdminCallWhileIdleConnectionsAreHeld: 300 idle connections
// from 127.0.0.2-7, spread over the STARTTLS port, direct TLS, WebSocket
// and plain HTTP, each silent or stopped mid-handshake, do not keep a real
// client from logging in and binding, nor an admin's HTTP call from
// answering, each within its normal time.
func TestLoginAndAdminCallWhileIdleConnectionsAreHeld(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "real", "pw")
	e.addAccount(t, "admin", "secret", true)
	api := httpapi.New(httpapi.Config{Domain: domain, WebSocket: e.srv.WebSocketHandler(),
		Accounts: e.accounts, Sessions: e.manager, Local: e.reg}, zerolog.Nop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- api.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, api.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	httpAddr := ln.Addr().String()
	httpURL, wsURL := "http://"+httpAddr, "ws://"+httpAddr+"/xmpp-websocket"
	baseline := goroutineBaseline(t)

	const perAddress, addresses = 50, 6 // under the default limit of 64 per address
	var held []net.Conn
	for a := range addresses {
		ip := fmt.Sprintf("127.0.0.%d", a+2)
		for i := range perAddress {
			switch i % 5 {
			case 0:
				held = append(held, dialFrom(t, ip, e.addr))
			case 1:
				conn := dialFrom(t, ip, e.tlsAddr)
				_, err := conn.Write(halfClientHello)
				require.NoError(t, err)
				held = append(held, conn)
			case 2:
				ws := dialWebSocketFrom(t, ip, wsURL)
				held = append(held, ws.NetConn())
			case 3:
				conn := dialFrom(t, ip, httpAddr)
				_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
				require.NoError(t, err)
				held = append(held, conn)
			case 4:
				conn := dialFrom(t, ip, e.addr)
				_, err := io.WriteString(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:client'`)
				require.NoError(t, err)
				held = append(held, conn)
			}
		}
	}
	require.Len(t, held, perAddress*addresses)

	start := time.Now()
	s, err := e.dialMellium(t, user, "pw", sasl.ScramSha256)
	require.NoError(t, err)
	t.Logf("login and bind with %d connections held: %s", len(held), time.Since(start))
	assert.Less(t, time.Since(start), 2*time.Second, "login and bind")
	_, ok := e.reg.Lookup(s.LocalAddr())
	assert.True(t, ok, "bound as %s", s.LocalAddr())

	start = time.Now()
	req, err := http.NewRequest(http.MethodGet, httpURL+"/rest/sessions", nil)
	require.NoError(t, err)
	req.SetBasicAuth("admin", "secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	t.Logf("admin call with %d connections held: %s", len(held), time.Since(start))
	assert.Less(t, time.Since(start), 2*time.Second, "admin call")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), jid.MustParse(s.LocalAddr().String()).Localpart()+"@"+domain)

	// Every held connection is still open: none was refused or cut early.
	for _, conn := range held {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Millisecond)))
		_, err := conn.Read(make([]byte, 1))
		if !assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "from %s", conn.LocalAddr()) {
			break
		}
	}
	require.NoError(t, s.Close())
	for _, conn := range held {
		_ = conn.Close() // the client's side; the server notices at once
	}
	http.DefaultClient.CloseIdleConnections()
	c2stest.WaitGoroutines(t, baseline)
}
