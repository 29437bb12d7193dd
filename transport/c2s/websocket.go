package c2s

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocketHandler serves the XMPP subprotocol of RFC 7395. Mount it on the
// HTTP server (adhocd uses /xmpp-websocket). A connection counts as secure,
// and is offered PLAIN, only when the HTTP request came over TLS.
func (s *Server) WebSocketHandler() http.Handler {
	up := websocket.Upgrader{
		Subprotocols: []string{"xmpp"},
		// XMPP clients on web pages connect from their own origin; the
		// credentials travel inside the stream, not in cookies.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hasXMPPProtocol(r) {
			http.Error(w, "The WebSocket subprotocol 'xmpp' is required (RFC 7395).", http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the client
		}
		// The stanza size limit is enforced by the connection's input
		// reader, which answers a frame over it with a stream error; the
		// message limit is only a backstop past that point (the library
		// answers it with a bare close frame 1009, no stream error).
		ws.SetReadLimit(2*s.cfg.MaxStanzaSize + 4*readBufferSize)
		remote, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		var addr net.Addr = remote
		if err != nil {
			addr = ws.RemoteAddr()
		}
		s.start(&wsConn{ws: ws}, TransportWebSocket, addr, r.TLS != nil)
	})
}

func hasXMPPProtocol(r *http.Request) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == "xmpp" {
			return true
		}
	}
	return false
}

// wsConn presents a WebSocket as a net.Conn: reads run across messages,
// each Write is one text message (one XML element per frame, RFC 7395 §3.3.3),
// and Close drops the underlying connection at once.
type wsConn struct {
	ws  *websocket.Conn
	cur io.Reader
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.TextMessage {
				return 0, errors.New("c2s: binary WebSocket message")
			}
			c.cur = r
		}
		n, err := c.cur.Read(p)
		if err == io.EOF {
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error                       { return c.ws.NetConn().Close() }
func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
