package c2s

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// streamErr is a stream-level error (RFC 6120 §4.9): the stream is closed
// after it is sent.
type streamErr struct {
	condition string
	text      string
}

func (e *streamErr) Error() string { return "c2s: stream error " + e.condition + ": " + e.text }

func newStreamErr(condition, text string) error { return &streamErr{condition: condition, text: text} }

// streamErrorFor maps a read or negotiation failure to the stream error the
// client is sent, or nil when the connection is simply gone.
func (c *conn) streamErrorFor(err error) *streamErr {
	var se *streamErr
	var syn *xml.SyntaxError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, errTooLarge):
		return &streamErr{"policy-violation", fmt.Sprintf("A stanza is larger than the limit of %d bytes.", c.srv.cfg.MaxStanzaSize)}
	case isTimeout(err):
		return &streamErr{"connection-timeout", "The connection was idle for too long."}
	case errors.As(err, &syn) && syn.Msg == "unexpected EOF":
		return nil // the client hung up mid-stream
	case errors.As(err, &syn) && isEntityReference(syn.Msg):
		return &streamErr{"restricted-xml", "Entity references other than the five predefined ones are not allowed."}
	case errors.As(err, &syn):
		return &streamErr{"not-well-formed", "The XML is not well-formed: " + syn.Msg}
	}
	return nil
}

// isTimeout reports a read that ran past its deadline. gorilla/websocket
// replaces the socket's error with one of its own that only says Timeout(),
// so os.ErrDeadlineExceeded alone would miss a silent WebSocket.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// isEntityReference reports encoding/xml's error for a reference to an
// entity it does not know ("invalid character entity &name;"). RFC 6120
// §11.1 restricts those; a bad character reference (&#0;) is not
// well-formed.
func isEntityReference(msg string) bool {
	rest, ok := strings.CutPrefix(msg, "invalid character entity &")
	return ok && !strings.HasPrefix(rest, "#")
}

// Limits on the shape of what a client sends, beside MaxStanzaSize: the
// decoder keeps a stack entry per open element and every attribute of a
// start tag at once, so both are bounded well below what the size limit
// allows.
const (
	maxDepth = 256 // nesting levels of a stanza, the stanza itself included
	maxAttrs = 128 // attributes of one start tag, namespace declarations included
)

// checkStart enforces maxDepth and maxAttrs on a start tag at depth, and
// checks its names: encoding/xml accepts a local name that is not an
// NCName after a prefix (<p:0/>), which the stanza's recipient could not
// parse once it is forwarded without the prefix.
func checkStart(t xml.StartElement, depth int) error {
	if !isNCName(t.Name.Local) {
		return newStreamErr("not-well-formed", "An element name is not a valid XML name.")
	}
	for _, a := range t.Attr {
		if !isNCName(a.Name.Local) {
			return newStreamErr("not-well-formed", "An attribute name is not a valid XML name.")
		}
	}
	if depth > maxDepth {
		return newStreamErr("policy-violation", fmt.Sprintf("Elements are nested deeper than the limit of %d levels.", maxDepth))
	}
	if len(t.Attr) > maxAttrs {
		return newStreamErr("policy-violation", fmt.Sprintf("An element has more than the limit of %d attributes.", maxAttrs))
	}
	return nil
}

// isNCName reports whether a name the decoder accepted is an NCName: not
// empty, without a colon, and not starting with a character that may only
// follow the first (XML 1.0 NameChar minus NameStartChar).
func isNCName(s string) bool {
	if s == "" || strings.IndexByte(s, ':') >= 0 {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s)
	switch {
	case r >= '0' && r <= '9', r == '-', r == '.', r == 0xB7,
		r >= 0x300 && r <= 0x36F, r == 0x203F, r == 0x2040:
		return false
	}
	return true
}

// readHeader reads the client's stream header (or RFC 7395 <open/>), checks
// it, and answers with our own.
func (c *conn) readHeader() error {
	var start xml.StartElement
	if c.framed {
		el, err := c.readElement()
		if err != nil {
			return err
		}
		if !el.is(nsFraming, "open") {
			return newStreamErr("invalid-namespace", "Expected <open xmlns='"+nsFraming+"'/>.")
		}
		start = el.start()
	} else {
		// Only the XML declaration and whitespace may come before the
		// header, which is bounded like a stanza.
		max := c.srv.cfg.MaxStanzaSize
		offset := c.dec.InputOffset()
		c.in.limit = c.in.n + max + readBufferSize
		for start.Name.Local == "" {
			tok, err := c.dec.Token()
			if err != nil {
				return err
			}
			if c.dec.InputOffset()-offset > max {
				return errTooLarge
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if err := checkStart(t, 1); err != nil {
					return err
				}
				start = t.Copy()
			case xml.CharData:
				if len(strings.TrimSpace(string(t))) != 0 {
					return newStreamErr("not-well-formed", "Text before the stream header.")
				}
			case xml.ProcInst:
				if t.Target != "xml" {
					return newStreamErr("restricted-xml", "Processing instructions are not allowed.")
				}
			case xml.Comment, xml.Directive:
				return newStreamErr("restricted-xml", "Comments and DTDs are not allowed.")
			}
		}
		if start.Name.Space != nsStream || start.Name.Local != "stream" {
			return newStreamErr("invalid-namespace", "Expected a <stream:stream> header in namespace "+nsStream+".")
		}
	}
	if err := c.out.write(c.streamHeader()); err != nil {
		return err
	}
	c.headerSent = true
	if !c.framed {
		if ns := attrValue(start, "", "xmlns"); ns != nsClient {
			return newStreamErr("invalid-namespace", "The stream's default namespace must be "+nsClient+".")
		}
	}
	if v := attrValue(start, "", "version"); v == "" || v[0] < '1' {
		return newStreamErr("unsupported-version", "XMPP version 1.0 is required.")
	}
	if to := attrValue(start, "", "to"); to != "" {
		addr, err := jid.Parse(to)
		if err != nil || addr.Domainpart() != c.srv.cfg.Domain {
			return newStreamErr("host-unknown", "This server does not serve "+to+".")
		}
	}
	return nil
}

func attrValue(start xml.StartElement, space, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// streamHeader is our half of the stream opening.
func (c *conn) streamHeader() []byte {
	var w xmlWriter
	if c.framed {
		w.empty("open", "xmlns", nsFraming, "id", c.id, "from", c.srv.cfg.Domain, "version", "1.0", "xml:lang", "en")
		return w.bytes()
	}
	w.decl()
	w.start("stream:stream", "xmlns", nsClient, "xmlns:stream", nsStream,
		"id", c.id, "from", c.srv.cfg.Domain, "version", "1.0", "xml:lang", "en")
	w.content()
	return w.bytes()
}

// streamError encodes a stream error. The stream prefix is declared on the
// element itself so that it also stands alone as a WebSocket frame.
// A condition RFC 6120 does not define (a kick may come from another node)
// is sent as undefined-condition.
func streamError(condition, text string) []byte {
	if !isStreamCondition(condition) {
		condition = "undefined-condition"
	}
	var w xmlWriter
	w.start("stream:error", "xmlns:stream", nsStream)
	w.empty(condition, "xmlns", nsStreams)
	if text != "" {
		w.elem("text", text, "xmlns", nsStreams, "xml:lang", "en")
	}
	w.end("stream:error")
	return w.bytes()
}

// isStreamCondition reports the stream error conditions of RFC 6120 §4.9.3.
func isStreamCondition(s string) bool {
	switch s {
	case "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone", "host-unknown",
		"improper-addressing", "internal-server-error", "invalid-from", "invalid-namespace", "invalid-xml",
		"not-authorized", "not-well-formed", "policy-violation", "remote-connection-failed", "reset",
		"resource-constraint", "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
		"unsupported-encoding", "unsupported-feature", "unsupported-stanza-type", "unsupported-version":
		return true
	}
	return false
}

// streamEnd closes our side of the stream.
func streamEnd(framed bool) []byte {
	var w xmlWriter
	if framed {
		w.empty("close", "xmlns", nsFraming)
	} else {
		w.end("stream:stream")
	}
	return w.bytes()
}

// readElement reads the next complete top-level element of the stream,
// skipping whitespace between elements. It returns errStreamClosed when the
// client ends its stream, and errTooLarge when an element passes the limit.
func (c *conn) readElement() (element, error) {
	max := c.srv.cfg.MaxStanzaSize
	start := c.dec.InputOffset()
	// The reader may run ahead of the decoder by at most one buffer.
	c.in.limit = c.in.n + max + readBufferSize
	var el element
	depth := 0
	for {
		tok, err := c.dec.Token()
		if err != nil {
			if err == io.EOF && depth == 0 && !c.framed {
				return nil, io.EOF
			}
			return nil, err
		}
		if c.dec.InputOffset()-start > max {
			return nil, errTooLarge
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if err := checkStart(t, depth); err != nil {
				return nil, err
			}
			t = t.Copy()
			if c.framed && t.Name.Space == "" {
				// A frame stands alone, so it has no stream default namespace
				// to inherit: an unqualified element is jabber:client.
				t.Name.Space = nsClient
			}
			el = append(el, t)
		case xml.EndElement:
			if depth == 0 {
				return nil, errStreamClosed
			}
			depth--
			if c.framed && t.Name.Space == "" {
				t.Name.Space = nsClient
			}
			el = append(el, t)
			if depth == 0 {
				if c.framed && el.is(nsFraming, "close") {
					return nil, errStreamClosed
				}
				return el, nil
			}
		case xml.CharData:
			if depth > 0 {
				el = append(el, t.Copy())
			} else if len(strings.TrimSpace(string(t))) != 0 {
				return nil, newStreamErr("not-well-formed", "Text outside of any element.")
			}
		case xml.Comment, xml.Directive:
			return nil, newStreamErr("restricted-xml", "Comments and DTDs are not allowed.")
		case xml.ProcInst:
			return nil, newStreamErr("restricted-xml", "Processing instructions are not allowed.")
		}
	}
}

// isClosedErr reports errors that mean the connection is simply gone.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}
