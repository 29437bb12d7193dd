package c2s

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// This file tests unexported parsers directly, without a socket.

// bytesConn is a net.Conn that reads from a buffer and discards writes.
type bytesConn struct {
	net.Conn // nil: only the methods below are called
	r        *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

const fuzzHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`

// FuzzStreamReader feeds arbitrary bytes to the stream reader after a valid
// stream header (or, framed, an RFC 7395 <open/>): it must not panic, and
// must yield well-formed elements within the limits until it returns an
// error.
func FuzzStreamReader(f *testing.F) {
	for _, seed := range []string{
		`<message to='a@localhost/r' type='chat'><body>hi &amp; &#x41;</body></message>`,
		`<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq> <presence/>`,
		`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`,
		`<message xmlns:x='urn:x' x:a='1' xml:lang='en'><x:y/></message>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><message>&a;</message>`,
		`<message><!-- c --><?pi x?></message>`,
		`<message>` + strings.Repeat(`<a>`, 300),
		`<message ` + strings.Repeat(`a='' `, 200) + `/>`,
		"<message><body>\xff\x00</body></message>",
		`</stream:stream>`,
		`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`,
		`text<message/>`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, framed bool) {
		srv := New(Config{Domain: "localhost", MaxStanzaSize: 4096}, Deps{Logger: zerolog.Nop()})
		in := fuzzHeader
		if framed {
			in = `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`
		}
		nc := &bytesConn{r: bytes.NewReader(append([]byte(in), data...))}
		transport := TransportTCP
		if framed {
			transport = TransportWebSocket
		}
		c := newConn(srv, nc, transport, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err := c.readHeader(); err != nil {
			t.Fatalf("valid header refused: %v", err)
		}
		for range len(data) + 1 { // each element consumes at least one byte
			el, err := c.readElement()
			if err != nil {
				var se *streamErr
				switch {
				case errors.As(err, &se):
					if !isStreamCondition(se.condition) || se.text == "" {
						t.Fatalf("stream error without a condition or text: %+v", se)
					}
				case errors.Is(err, errStreamClosed), errors.Is(err, errTooLarge), isClosedErr(err):
				default:
					var syn *xml.SyntaxError
					if !errors.As(err, &syn) {
						t.Fatalf("unexpected error %T %v", err, err)
					}
					if c.streamErrorFor(err) == nil && syn.Msg != "unexpected EOF" {
						t.Fatalf("syntax error %q gets no stream error", syn.Msg)
					}
				}
				return
			}
			checkElement(t, el)
		}
		t.Fatal("the reader yielded more elements than there are bytes")
	})
}

// checkElement checks that el is balanced and within the limits, and that
// it marshals to XML that parses back to the same names.
func checkElement(t *testing.T, el element) {
	t.Helper()
	if len(el) < 2 {
		t.Fatalf("element of %d tokens", len(el))
	}
	depth := 0
	var names []string
	for i, tok := range el {
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDepth || len(tok.Attr) > maxAttrs {
				t.Fatalf("element past the limits: depth %d, %d attributes", depth, len(tok.Attr))
			}
			names = append(names, tok.Name.Local)
		case xml.EndElement:
			depth--
		case xml.CharData:
		default:
			t.Fatalf("token %T in an element", tok)
		}
		if depth == 0 && i != len(el)-1 {
			t.Fatalf("element ends at token %d of %d", i, len(el))
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced element, depth %d", depth)
	}
	out := el.marshal()
	dec := xml.NewDecoder(bytes.NewReader(out))
	var again []string
	for {
		tok, err := dec.Token()
		if err != nil {
			if len(again) != len(names) {
				t.Fatalf("marshalled %q: %v after %d of %d elements", out, err, len(again), len(names))
			}
			break
		}
		if s, ok := tok.(xml.StartElement); ok {
			again = append(again, s.Name.Local)
		}
	}
	for i := range names {
		if names[i] != again[i] {
			t.Fatalf("marshalled %q: element %d is %q, was %q", out, i, again[i], names[i])
		}
	}
}

// escapeSASLName is the inverse of unescapeSASLName (RFC 5802 saslname).
func escapeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// FuzzSCRAMClientMessages parses a client-first and a client-final message
// as the server does: no panics, and what parses is consistent with the
// bytes it came from.
func FuzzSCRAMClientMessages(f *testing.F) {
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	f.Add("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "c=biws,r=fyko+d2lbbFgONRv9qkxdawLsrv,p="+proof)
	f.Add("y,,n=us=3Der=2C,r=abc", "c=eSws,r=abcsrv,p="+proof)
	f.Add("n,a=admin=40x,n=user,r=abc,ext=1", "c=bixhPWFkbWluPTQweCw=,r=abcsrv,ext,p="+proof)
	f.Add("p=tls-unique,,n=user,r=abc", "c=biws,r=abc,p=")
	f.Add("n,,n=bad=2X,r=abc", "c=biws,r=abcsrv,p=AAAA")
	f.Add("n,,n=,r=", ",p=")
	f.Add("n,", "p=,p=,p=")
	f.Fuzz(func(t *testing.T, first, final string) {
		if name, ok := unescapeSASLName(first); ok && !strings.Contains(first, ",") {
			if escapeSASLName(name) != first {
				t.Fatalf("unescape(%q) = %q does not escape back", first, name)
			}
		}
		if header, bare, ok := splitGS2(first); ok && header+bare != first {
			t.Fatalf("splitGS2(%q) = %q + %q", first, header, bare)
		}
		cf, err := parseClientFirst(first)
		if err != nil {
			var f *saslFailure
			if !errors.As(err, &f) || f.condition != "malformed-request" {
				t.Fatalf("parseClientFirst(%q): %v", first, err)
			}
			return
		}
		if cf.gs2Header+cf.bare != first || !strings.HasPrefix(cf.bare, "n="+escapeSASLName(cf.username)+",r="+cf.nonce) || cf.nonce == "" {
			t.Fatalf("parseClientFirst(%q) = %+v", first, cf)
		}
		fullNonce := cf.nonce + "srv"
		withoutProof, p, err := parseClientFinal(final, cf.gs2Header, fullNonce, 32)
		if err != nil {
			var f *saslFailure
			if !errors.As(err, &f) || f.condition != "malformed-request" {
				t.Fatalf("parseClientFinal(%q): %v", final, err)
			}
			return
		}
		cbind := "c=" + base64.StdEncoding.EncodeToString([]byte(cf.gs2Header)) + ",r=" + fullNonce
		if len(p) != 32 || !strings.HasPrefix(final, withoutProof+",p=") || !strings.HasPrefix(withoutProof, cbind) {
			t.Fatalf("parseClientFinal(%q) = %q, %d bytes of proof", final, withoutProof, len(p))
		}
	})
}
