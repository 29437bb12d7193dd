package c2s

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// Transports, as reported to the registry.
const (
	TransportTCP       = "tcp"       // the c2s port, upgraded with STARTTLS
	TransportTLS       = "tls"       // direct TLS (XEP-0368)
	TransportWebSocket = "websocket" // RFC 7395
)

// readBufferSize is the size of each connection's read buffer. It is small
// because it is held for the whole life of an idle session; a larger stanza
// only takes more reads (TLS already buffers a whole record).
const readBufferSize = 512

var (
	errStreamClosed = errors.New("c2s: stream closed by peer")
	errTooLarge     = errors.New("c2s: stanza over the size limit")
)

// presence values, stored as an index so reads and writes are atomic.
var presenceNames = []string{"unavailable", "available", "away", "chat", "dnd", "xa"}

// conn is one client connection.
type conn struct {
	srv       *Server
	log       zerolog.Logger
	id        string
	transport string
	framed    bool // WebSocket: <open/>/<close/> instead of a stream header, one element per frame
	secure    bool // TLS is in place (PLAIN may be offered)
	remote    net.Addr
	sock      net.Conn // the TCP socket beneath TLS and WebSocket: closing it ends everything, from any goroutine
	nc        net.Conn // what is read and written: the socket, TLS, or WebSocket messages

	in  *inputReader
	rd  *bufio.Reader
	dec *xml.Decoder

	headerSent bool    // our stream header for the current stream is out
	user       jid.JID // after SASL: the bare JID
	addr       jid.JID // after bind: the full JID
	boundAt    time.Time

	counted   bool // counted as unauthenticated under countedAs (Server.unauth)
	countedAs netip.Addr

	lastActive atomic.Int64 // unix nanoseconds
	presence   atomic.Uint32

	out outbox // every write, and how the stream ends

	// commandSlots bounds the in-band commands running at once for this
	// client; made on its first command, only the read loop takes a slot.
	commandSlots chan struct{}
}

func newConn(srv *Server, nc net.Conn, transport string, remote net.Addr) *conn {
	c := &conn{
		srv:       srv,
		id:        newID(),
		transport: transport,
		framed:    transport == TransportWebSocket,
		remote:    remote,
		sock:      socketOf(nc),
		nc:        nc,
	}
	c.out.c = c
	_, c.secure = nc.(*tls.Conn)
	c.log = srv.log.With().Str("session_id", c.id).Str("remote_addr", remote.String()).Logger()
	c.lastActive.Store(time.Now().UnixNano())
	c.in = &inputReader{c: c}
	c.rd = bufio.NewReaderSize(c.in, readBufferSize)
	c.restart()
	return c
}

// lower returns the connection nc is layered on, or nil for a socket.
func lower(nc net.Conn) net.Conn {
	switch t := nc.(type) {
	case *wsConn:
		return t.ws.NetConn()
	case *tls.Conn:
		return t.NetConn()
	case *skipLeadingSpace:
		return t.Conn
	}
	return nil
}

// socketOf returns the socket beneath every layer of nc.
func socketOf(nc net.Conn) net.Conn {
	for l := lower(nc); l != nil; l = lower(nc) {
		nc = l
	}
	return nc
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// restart begins a new XML stream on the same buffered input (RFC 6120 §4.3.3).
func (c *conn) restart() {
	c.dec = xml.NewDecoder(c.rd)
}

// SessionID implements session.Conn.
func (c *conn) SessionID() string { return c.id }

// JID implements session.Conn.
func (c *conn) JID() jid.JID { return c.addr }

// Transport implements session.Conn.
func (c *conn) Transport() string { return c.transport }

// RemoteAddr implements session.Conn.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// BoundAt implements session.Conn.
func (c *conn) BoundAt() time.Time { return c.boundAt }

// LastActive implements session.Conn.
func (c *conn) LastActive() time.Time { return time.Unix(0, c.lastActive.Load()) }

// Presence implements session.Conn.
func (c *conn) Presence() string { return presenceNames[c.presence.Load()] }

func (c *conn) setPresence(p string) {
	for i, name := range presenceNames {
		if name == p {
			c.presence.Store(uint32(i))
			return
		}
	}
}

// Kick implements session.Conn: it queues a stream error and the end of the
// stream, and cuts the connection off if the client has not closed its side
// within the grace period.
func (c *conn) Kick(condition, text string) { c.out.kick(condition, text) }

// Deliver implements session.Conn.
func (c *conn) Deliver(stanza []byte) bool { return c.out.send(stanza) }

// Notify implements session.Conn: a message from the server.
func (c *conn) Notify(m session.Message) bool { return c.out.send(message(m)) }

// closeWrite ends what we send on every layer, outermost first: a
// WebSocket close frame (1000, normal closure), the TLS close_notify, the
// TCP FIN. The client then reads a clean end, not a truncated stream.
// Each layer is tried even if one above it failed.
func (c *conn) closeWrite() {
	for nc := c.nc; nc != nil; nc = lower(nc) {
		switch t := nc.(type) {
		case *wsConn:
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = t.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.srv.cfg.WriteTimeout))
		case interface{ CloseWrite() error }: // *tls.Conn (close_notify, bounded by crypto/tls), *net.TCPConn (FIN)
			_ = t.CloseWrite()
		}
	}
}

// maxDrain bounds what drain reads.
const maxDrain = 1 << 20

// drain reads and drops what the client still sends until it closes its
// side, for at most KickGrace and maxDrain bytes: closing a socket with
// unread input makes the kernel send a reset, which destroys what the
// client has not read yet.
func (c *conn) drain() {
	if c.sock.SetReadDeadline(time.Now().Add(c.srv.cfg.KickGrace)) == nil {
		_, _ = io.CopyN(io.Discard, c.sock, maxDrain) // io.Discard reads with a pooled buffer
	}
}

// inputReader is what the XML decoder reads from. It enforces the stanza size
// limit before a huge token is buffered, and records activity.
type inputReader struct {
	c     *conn
	n     int64 // bytes read so far
	limit int64 // n may not pass this; 0: no limit
}

func (r *inputReader) Read(p []byte) (int, error) {
	if r.limit > 0 && r.n > r.limit {
		return 0, errTooLarge
	}
	n, err := r.c.nc.Read(p)
	r.n += int64(n)
	if n > 0 {
		r.c.lastActive.Store(time.Now().UnixNano())
	}
	return n, err
}
