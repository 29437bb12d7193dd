package c2s

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"mellium.im/xmpp/jid"
)

// serve runs the connection from its first byte to its teardown.
func (c *conn) serve() {
	err := c.sock.SetDeadline(time.Now().Add(c.srv.cfg.NegotiationTimeout))
	if err == nil {
		err = c.negotiate()
	}
	if err == nil {
		err = c.readLoop()
	}
	c.teardown(err)
}

// refuseText is what a connection over the per-address limit of
// unauthenticated connections is told.
const refuseText = "Too many connections from your address are not yet logged in; try again later."

// refuse answers a connection over the per-address limit without reading
// it: our stream header (or <open/>), <policy-violation/> with refuseText,
// and the end of the stream (RFC 6120 §4.9.1.1 allows a stream error
// before TLS). Teardown then waits at most KickGrace for the client to
// close; it logs the refusal.
// Direct TLS is not refused this way: see Server.start.
func (c *conn) refuse() {
	if err := c.sock.SetDeadline(time.Now().Add(c.srv.cfg.KickGrace)); err != nil {
		_ = c.sock.Close()
		return
	}
	c.teardown(newStreamErr("policy-violation", refuseText))
}

// negotiate takes the stream from its header to a bound resource
// (RFC 6120 §5, §6, §7).
func (c *conn) negotiate() error {
	for {
		if err := c.readHeader(); err != nil {
			return err
		}
		switch {
		case !c.secure && c.transport == TransportTCP:
			if err := c.negotiateTLS(); err != nil {
				return err
			}
		case c.user.Domainpart() == "":
			if err := c.negotiateSASL(); err != nil {
				return err
			}
		default:
			return c.negotiateBind()
		}
		c.headerSent = false
		c.restart()
	}
}

// negotiateTLS requires STARTTLS (RFC 6120 §5) and upgrades the connection.
func (c *conn) negotiateTLS() error {
	var w xmlWriter
	w.start("stream:features", "xmlns:stream", nsStream)
	w.start("starttls", "xmlns", nsTLS)
	w.empty("required")
	w.end("starttls")
	w.end("stream:features")
	if err := c.out.write(w.bytes()); err != nil {
		return err
	}
	el, err := c.readElement()
	if err != nil {
		return err
	}
	if !el.is(nsTLS, "starttls") {
		return newStreamErr("policy-violation", "STARTTLS is required before anything else.")
	}
	var proceed xmlWriter
	proceed.empty("proceed", "xmlns", nsTLS)
	if err := c.out.write(proceed.bytes()); err != nil {
		return err
	}
	if rest, _ := c.rd.Peek(c.rd.Buffered()); len(bytes.TrimSpace(rest)) > 0 {
		// Plain-text data sent after <starttls/> would be read as if it came
		// over TLS (a command injection): refuse it.
		return errors.New("c2s: data after starttls")
	}
	// Some clients (go-sendxmpp) send a newline after <starttls/>; it may
	// even arrive after <proceed/>, so it is skipped on the socket too.
	tc := tls.Server(&skipLeadingSpace{Conn: c.sock}, c.srv.cfg.TLS)
	// From here on nothing is written in plain text: if the handshake
	// fails (or stalls past the deadline), teardown's writes fail on tc
	// and the socket is simply closed.
	c.nc = tc
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.secure = true
	c.rd.Reset(c.in)
	return nil
}

// negotiateBind offers resource binding and binds the requested resource
// (RFC 6120 §7), or a generated one when none is requested.
func (c *conn) negotiateBind() error {
	var w xmlWriter
	w.start("stream:features", "xmlns:stream", nsStream)
	w.empty("bind", "xmlns", nsBind)
	w.start("session", "xmlns", nsSession)
	w.empty("optional")
	w.end("session")
	w.end("stream:features")
	if err := c.out.write(w.bytes()); err != nil {
		return err
	}
	for {
		el, err := c.readElement()
		if err != nil {
			return err
		}
		bind, ok := el.child()
		if !el.is(nsClient, "iq") || el.attr("type") != "set" || !ok || !bind.is(nsBind, "bind") {
			return newStreamErr("not-authorized", "Bind a resource before sending anything else.")
		}
		var resource string
		for _, ch := range bind.children() {
			if ch.is(nsBind, "resource") {
				resource = ch.text()
			}
		}
		if resource == "" {
			resource = "adhocd-" + newID()[:12]
		}
		addr, err := jid.New(c.user.Localpart(), c.user.Domainpart(), resource)
		if err != nil {
			if err := c.out.write(stanzaError(el, "", "modify", "bad-request", "The resource is not valid: "+err.Error(), "")); err != nil {
				return err
			}
			continue
		}
		c.addr = addr
		c.boundAt = time.Now()
		c.log = c.srv.log.With().Str("session_id", c.id).Str("remote_addr", c.remote.String()).
			Stringer("jid", addr).Str("transport", c.transport).Logger()
		// From here on the write queue sets write deadlines and the
		// keepalive timer watches for silence.
		if err := c.sock.SetDeadline(time.Time{}); err != nil {
			return err
		}
		// By the time the client reads the result the registry holds it, and
		// nothing routed to it can overtake the result.
		var result xmlWriter
		result.start("iq", "xmlns", nsClient, "type", "result", "id", el.attr("id"))
		result.start("bind", "xmlns", nsBind)
		result.elem("jid", addr.String())
		result.end("bind")
		result.end("iq")
		return c.out.bind(result.bytes(), func() error { return c.srv.reg.Bind(c) })
	}
}

// teardown ends the stream as err calls for, closes the connection and
// removes it from the registry.
//
// A stream closed on the XMPP level is closed cleanly: what is queued (the
// stream error, the stream end) is written, then closeWrite sends the
// WebSocket close frame, the TLS close_notify and the TCP FIN; the session
// is unbound, so that a waiting End returns; and only then drain waits for
// the client's side to close, as closing with unread input would reset the
// connection.
func (c *conn) teardown(err error) {
	kicked := c.out.isClosing() // the kick sent the stream error and the end: nothing more is sent
	se := c.streamErrorFor(err)
	ended := se != nil || errors.Is(err, errStreamClosed) // the client may still be sending
	var final [][]byte
	switch {
	case kicked:
	case se != nil:
		if se.condition == "connection-timeout" || se.condition == "not-well-formed" {
			c.log.Debug().Err(err).Str("condition", se.condition).Msg("closing stream")
		} else {
			c.log.Warn().Err(err).Str("condition", se.condition).Msg("closing stream")
		}
		if !c.headerSent {
			final = append(final, c.streamHeader())
		}
		final = append(final, streamError(se.condition, se.text), streamEnd(c.framed))
	case ended:
		final = append(final, streamEnd(c.framed))
	case err != nil && !isClosedErr(err):
		c.log.Debug().Err(err).Msg("connection failed")
	}
	flushed := c.out.end(final...)
	wasBound, cutOff := c.out.shut()
	unbind := func() {
		if wasBound {
			c.srv.reg.Unbind(c)
			if c.Presence() != "unavailable" {
				c.srv.broadcastUnavailable(c)
			}
		}
	}
	switch {
	case !flushed: // hung up, or a write failed: nothing clean is possible
		_ = c.sock.Close()
		unbind()
	case cutOff:
		// A client that did not close its stream may not read either, and
		// a close_notify could wait for it: unbind first.
		unbind()
		c.closeWrite()
	default:
		c.closeWrite()
		unbind()
		if ended {
			c.drain()
		}
	}
	_ = c.sock.Close()
}

// skipLeadingSpace drops whitespace before the first other byte read.
type skipLeadingSpace struct {
	net.Conn
	started bool
}

func (s *skipLeadingSpace) Read(p []byte) (int, error) {
	for !s.started {
		n, err := s.Conn.Read(p)
		i := 0
		for i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
			i++
		}
		if i < n {
			s.started = true
			return copy(p, p[i:n]), err
		}
		if err != nil {
			return 0, err
		}
	}
	return s.Conn.Read(p)
}
