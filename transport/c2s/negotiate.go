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
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.nc = tc
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
func (c *conn) teardown(err error) {
	var final [][]byte
	linger := false
	if se := c.streamErrorFor(err); se != nil {
		linger = true
		if se.condition == "connection-timeout" || se.condition == "not-well-formed" {
			c.log.Debug().Err(err).Str("condition", se.condition).Msg("closing stream")
		} else {
			c.log.Warn().Err(err).Str("condition", se.condition).Msg("closing stream")
		}
		if !c.headerSent {
			final = append(final, c.streamHeader())
		}
		final = append(final, streamError(se.condition, se.text), streamEnd(c.framed))
	} else if errors.Is(err, errStreamClosed) {
		final = append(final, streamEnd(c.framed))
	} else if err != nil && !isClosedErr(err) {
		c.log.Debug().Err(err).Msg("connection failed")
	}
	// After a stream error we linger so the client can read it; when the
	// client has closed its stream too, or a kick sent the error, the socket
	// closes at once.
	if c.out.end(final...) && linger {
		c.lingerClose()
	}
	wasBound := c.out.shut()
	_ = c.sock.Close()
	if wasBound {
		c.srv.reg.Unbind(c)
		if c.Presence() != "unavailable" {
			c.srv.broadcastUnavailable(c)
		}
	}
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
