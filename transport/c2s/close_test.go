package c2s_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s"
)

// trailer is what a client still sends after its last element. It is far
// more than the server reads ahead, so some of it is unread in the kernel
// when the server closes: closing such a socket sends a TCP reset, which
// can destroy what the client has not read yet.
var trailer = strings.Repeat(" ", 256<<10)

// TestCloseIsClean ends streams in each way on each transport, with data of
// the client's still in flight. The client must read the server's last
// elements, then the end of TLS (close_notify) or a WebSocket close frame
// 1000, then the TCP FIN; never a reset.
func TestCloseIsClean(t *testing.T) {
	// A long grace: a test that passes did not wait for it.
	e := newEnv(t, func(c *c2s.Config) { c.KickGrace = time.Minute })
	transports := []struct {
		name    string
		connect func(t *testing.T, user jid.JID) *rawClient
	}{
		{"starttls", func(t *testing.T, user jid.JID) *rawClient { return e.connect(t, user, "pw", "r") }},
		{"tls", func(t *testing.T, user jid.JID) *rawClient {
			c := e.dialRaw(t, true)
			_, failure := c.login(user, "pw", sasl.Plain)
			require.Empty(t, failure)
			c.bind("r")
			return c
		}},
		{"websocket", func(t *testing.T, user jid.JID) *rawClient {
			c := e.dialWebSocket(t)
			_, failure := c.login(user, "pw", sasl.ScramSha256)
			require.Empty(t, failure)
			c.bind("r")
			return c
		}},
	}
	tests := []struct {
		name            string
		whenKicked      bool   // ended by the server first; the client then closes its stream
		givenLast       string // the client's last element; "" for its stream end
		expectCondition string // the stream error the client reads, if any
	}{
		{"stream error", false, `<foo xmlns='urn:example:not-a-stanza'/>`, "unsupported-stanza-type"},
		{"client closes its stream", false, "", ""},
		{"kicked client closes its stream", true, "", "policy-violation"},
	}
	n := 0
	for _, tr := range transports {
		for _, tc := range tests {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				n++
				user := e.addUser(t, fmt.Sprintf("close%d", n), "pw")
				c := tr.connect(t, user)
				full := user.String() + "/r"
				last := tc.givenLast
				if last == "" {
					last = "</stream:stream>"
					if c.ws != nil {
						last = `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`
					}
				}

				var ended chan error
				var condition string
				if tc.whenKicked {
					ended = make(chan error, 1)
					go func() {
						_, err := e.end(t, "Closing test.", user)
						ended <- err
					}()
					condition = c.readUntilStreamEnd()
				}
				if c.ws != nil {
					c.send("%s", last)
					c.send("%s", trailer)
				} else {
					c.send("%s%s", last, trailer)
				}
				if tc.whenKicked {
					// The session is gone once the stream is closed, before
					// the client closes its socket.
					select {
					case err := <-ended:
						require.NoError(t, err)
					case <-time.After(10 * time.Second):
						t.Fatal("End waited for the client to close its socket")
					}
				} else {
					condition = c.readUntilStreamEnd()
				}
				assert.Equal(t, tc.expectCondition, condition)
				c.expectCleanEnd()
				e.waitUnbound(t, full)
			})
		}
	}
}

// readUntilStreamEnd reads up to the server's stream end (or <close/>) and
// returns the condition of the stream error read before it, if any.
func (c *rawClient) readUntilStreamEnd() (condition string) {
	c.t.Helper()
	for {
		n, err := c.next()
		if errors.Is(err, io.EOF) && c.ws == nil {
			return condition // </stream:stream>
		}
		require.NoError(c.t, err, "before the stream end")
		if c.ws != nil && n.XMLName.Local == "close" {
			return condition
		}
		if n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams" {
			for _, ch := range n.Nodes {
				if ch.XMLName.Local != "text" {
					condition = ch.XMLName.Local
				}
			}
		}
	}
}

// expectCleanEnd checks what follows the stream end: a TLS close_notify or
// a WebSocket close frame 1000, then the TCP FIN, and no reset.
func (c *rawClient) expectCleanEnd() {
	c.t.Helper()
	require.NoError(c.t, c.sock.SetReadDeadline(time.Now().Add(10*time.Second)))
	if c.ws != nil {
		_, _, err := c.ws.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(c.t, err, &ce, "a WebSocket close frame after <close/>")
		assert.Equal(c.t, websocket.CloseNormalClosure, ce.Code)
	} else {
		var buf [512]byte
		n, err := c.conn.Read(buf[:])
		assert.False(c.t, errors.Is(err, syscall.ECONNRESET), "reset instead of TLS close: %v", err)
		require.ErrorIs(c.t, err, io.EOF, "TLS ends after the stream end (read %q)", buf[:n])
		assert.NoError(c.t, c.sock.readErr(), "TLS reported EOF without a close_notify: the socket reached EOF first")
	}
	_, err := io.Copy(io.Discard, c.sock)
	assert.False(c.t, errors.Is(err, syscall.ECONNRESET), "TCP reset instead of FIN: %v", err)
	assert.NoError(c.t, err, "the socket ends with a FIN")
	if err := c.sock.readErr(); err != nil {
		assert.ErrorIs(c.t, err, io.EOF, "the first read error of the socket")
	}
}
