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
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	raw       net.Conn // the socket as accepted: closing it ends everything, from any goroutine
	nc        net.Conn // what is read and written: raw, or the TLS conn after STARTTLS

	in  *inputReader
	rd  *bufio.Reader
	dec *xml.Decoder

	headerSent bool    // our stream header for the current stream is out
	user       jid.JID // after SASL: the bare JID
	addr       jid.JID // after bind: the full JID
	boundAt    time.Time

	lastActive atomic.Int64 // unix nanoseconds
	presence   atomic.Uint32

	qmu        sync.Mutex
	queueing   bool // bound: writes go through the queue
	closing    bool // nothing more is queued
	queue      [][]byte
	queued     int
	writerDone chan struct{} // closed when the current writer goroutine exits
	closeAfter bool          // close the socket once the queue has been written
	grace      *time.Timer
	idle       *time.Timer // keepalive
	pingedAt   time.Time   // when the outstanding keepalive ping was sent; zero if none

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
		raw:       nc,
		nc:        nc,
	}
	_, c.secure = nc.(*tls.Conn)
	c.log = srv.log.With().Str("session_id", c.id).Str("remote_addr", remote.String()).Logger()
	c.lastActive.Store(time.Now().UnixNano())
	c.in = &inputReader{c: c}
	c.rd = bufio.NewReaderSize(c.in, readBufferSize)
	c.restart()
	return c
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
func (c *conn) Kick(condition, text string) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.kickLocked(condition, text)
}

func (c *conn) kickLocked(condition, text string) {
	if c.closing {
		return
	}
	if !c.queueing {
		// Still negotiating: its own goroutine writes, so just hang up.
		c.closing = true
		_ = c.raw.Close() // the read loop sees the error and cleans up
		return
	}
	c.enqueueLocked(streamError(condition, text), false)
	c.enqueueLocked(streamEnd(c.framed), false)
	c.closing = true
	c.grace = time.AfterFunc(c.srv.cfg.KickGrace, func() { _ = c.raw.Close() })
}

// Deliver implements session.Conn.
func (c *conn) Deliver(stanza []byte) bool { return c.send(stanza) }

// Notify implements session.Conn: a message from the server.
func (c *conn) Notify(m session.Message) bool { return c.send(message(m)) }

// send queues one complete element for the client. It reports false if the
// connection is closing or was dropped because its queue overflowed.
func (c *conn) send(b []byte) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closing {
		return false
	}
	if c.queued+len(b) > c.srv.cfg.MaxQueuedBytes {
		c.log.Warn().Msg("client does not read, dropping it")
		c.closing = true
		c.queue, c.queued = nil, 0
		_ = c.raw.Close()
		return false
	}
	c.enqueueLocked(b, false)
	return true
}

// enqueueLocked appends b and makes sure a writer goroutine runs. c.qmu is held.
func (c *conn) enqueueLocked(b []byte, closeAfter bool) {
	c.queue = append(c.queue, b)
	c.queued += len(b)
	c.closeAfter = c.closeAfter || closeAfter
	if c.writerDone == nil {
		done := make(chan struct{})
		c.writerDone = done
		c.srv.wg.Add(1)
		go c.writeLoop(done)
	}
}

// writeLoop writes the queue until it is empty, then exits.
func (c *conn) writeLoop(done chan struct{}) {
	defer c.srv.wg.Done()
	defer close(done)
	var buf []byte
	for {
		c.qmu.Lock()
		batch := c.queue
		c.queue, c.queued = nil, 0
		if len(batch) == 0 {
			c.writerDone = nil
			closeAfter := c.closeAfter
			c.qmu.Unlock()
			if closeAfter {
				_ = c.raw.Close()
			}
			return
		}
		c.qmu.Unlock()

		if err := c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
			_ = c.raw.Close()
			continue
		}
		var err error
		if c.framed {
			for _, b := range batch {
				if _, err = c.nc.Write(b); err != nil {
					break
				}
			}
		} else {
			buf = buf[:0]
			for _, b := range batch {
				buf = append(buf, b...)
			}
			_, err = c.nc.Write(buf)
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.log.Warn().Msg("write deadline exceeded, dropping client")
			}
			c.qmu.Lock()
			c.closing = true
			c.qmu.Unlock()
			_ = c.raw.Close() // the read loop fails and tears the session down
		}
	}
}

// writeNow writes elements directly; only the connection's own goroutine
// calls it, and only before the session is bound.
func (c *conn) writeNow(items ...[]byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	for _, b := range items {
		if _, err := c.nc.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// finish ends the stream from our side with final (a stream error and the
// closing tag, or just the tag), waits for it to be written, and closes.
// After a stream error it lingers so the client can read it; when the client
// has closed its stream too, or final was already sent by Kick, the socket
// closes at once.
func (c *conn) finish(linger bool, final ...[]byte) {
	c.qmu.Lock()
	sent := !c.closing && len(final) > 0
	if !c.queueing {
		c.closing = true
		c.qmu.Unlock()
		if sent && c.writeNow(final...) == nil && linger {
			c.lingerClose()
		}
		_ = c.raw.Close()
		return
	}
	if sent {
		for _, b := range final {
			c.enqueueLocked(b, false)
		}
	}
	c.closing = true
	done := c.writerDone
	c.qmu.Unlock()
	if done != nil {
		t := time.NewTimer(c.srv.cfg.KickGrace)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	if sent && linger {
		c.lingerClose()
	}
	_ = c.raw.Close()
}

// lingerClose half-closes a TCP connection and drains what the client still
// sends for a moment: closing with unread input makes the kernel send a
// reset, and the client could lose the stream error we just wrote.
func (c *conn) lingerClose() {
	nc := c.raw
	if tc, ok := nc.(*tls.Conn); ok { // direct TLS
		nc = tc.NetConn()
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok || tcp.CloseWrite() != nil {
		return
	}
	if tcp.SetReadDeadline(time.Now().Add(c.srv.cfg.KickGrace)) == nil {
		_, _ = io.CopyN(io.Discard, tcp, 1<<20) // ends at EOF, the deadline, or 1 MiB
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

// keepalive runs on a timer while the session is bound: after IdleTimeout of
// silence it pings the client (XEP-0199), and ends the session if the client
// stays silent for PingTimeout more. It costs no goroutine while idle.
func (c *conn) keepalive() {
	cfg := c.srv.cfg
	last := c.LastActive()
	idle := time.Since(last)
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if !c.pingedAt.IsZero() && last.After(c.pingedAt) {
		c.pingedAt = time.Time{} // the client spoke after the ping
	}
	switch {
	case c.closing:
		return
	case idle < cfg.IdleTimeout:
		c.idle.Reset(cfg.IdleTimeout - idle)
	case c.pingedAt.IsZero():
		c.pingedAt = time.Now()
		c.enqueueLocked(pingRequest(cfg.Domain, c.addr.String(), c.id), false)
		c.idle.Reset(cfg.PingTimeout)
	default:
		c.log.Info().Str("duration", idle.String()).Msg("client did not answer the keepalive ping")
		c.kickLocked("connection-timeout", "The client did not answer a ping.")
	}
}
