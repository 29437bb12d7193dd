package c2s

import (
	"encoding/xml"
	"io"
	"strconv"
)

// Namespaces used on the client stream.
const (
	nsClient   = "jabber:client"
	nsStream   = "http://etherx.jabber.org/streams"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsFraming  = "urn:ietf:params:xml:ns:xmpp-framing"
	nsXML      = "http://www.w3.org/XML/1998/namespace"
	nsPing     = "urn:xmpp:ping"
	nsDiscoInf = "http://jabber.org/protocol/disco#info"
	nsDiscoIts = "http://jabber.org/protocol/disco#items"
	nsRoster   = "jabber:iq:roster"
)

// element is one complete top-level element read from a stream: its start
// tag first, its matching end tag last. Tokens are copies and safe to keep.
type element []xml.Token

func (e element) start() xml.StartElement { return e[0].(xml.StartElement) }

func (e element) name() xml.Name { return e.start().Name }

func (e element) is(space, local string) bool {
	n := e.name()
	return n.Space == space && n.Local == local
}

// attr returns the value of an unprefixed attribute of the start tag.
func (e element) attr(local string) string {
	for _, a := range e.start().Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// reader returns the tokens of e one by one, then io.EOF.
func (e element) reader() xml.TokenReader {
	r := elementReader(e)
	return &r
}

type elementReader element

// Token implements xml.TokenReader.
func (r *elementReader) Token() (xml.Token, error) {
	if len(*r) == 0 {
		return nil, io.EOF
	}
	t := (*r)[0]
	*r = (*r)[1:]
	return t, nil
}

// child returns the first child element, or false if there is none.
func (e element) child() (element, bool) {
	for i := 1; i < len(e)-1; i++ {
		if _, ok := e[i].(xml.StartElement); ok {
			return e[i:subtreeEnd(e, i)], true
		}
	}
	return nil, false
}

// children returns the direct child elements.
func (e element) children() []element {
	var out []element
	for i := 1; i < len(e)-1; {
		if _, ok := e[i].(xml.StartElement); ok {
			end := subtreeEnd(e, i)
			out = append(out, e[i:end])
			i = end
			continue
		}
		i++
	}
	return out
}

// text returns the character data directly inside the element.
func (e element) text() string {
	var b []byte
	depth := 0
	for _, t := range e[1 : len(e)-1] {
		switch t := t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				b = append(b, t...)
			}
		}
	}
	return string(b)
}

// subtreeEnd returns the index just past the end tag matching the start tag at i.
func subtreeEnd(toks []xml.Token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch toks[j].(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(toks)
}

// stamped returns the element with from set (RFC 6120 §8.1.2.1: the server
// stamps the sender's full JID) and, when to is not empty, to replaced.
func (e element) stamped(from, to string) element {
	start := e.start()
	attrs := make([]xml.Attr, 0, len(start.Attr)+1)
	for _, a := range start.Attr {
		if a.Name.Space == "" && (a.Name.Local == "from" || (to != "" && a.Name.Local == "to")) {
			continue
		}
		attrs = append(attrs, a)
	}
	attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "from"}, Value: from})
	if to != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "to"}, Value: to})
	}
	start.Attr = attrs
	out := make(element, len(e))
	copy(out, e)
	out[0] = start
	return out
}

// marshal writes e as XML with every namespace declared on the element that
// uses it, so the bytes stand alone: the same bytes are valid on a TCP stream
// and as a WebSocket frame. Comments, processing instructions and the
// client's own namespace declarations are dropped.
func (e element) marshal() []byte {
	w := xmlWriter{b: make([]byte, 0, e.sizeHint())}
	var spaces [8]string // default namespace in scope, per depth; deeper ones spill to the heap
	inScope := spaces[:0]
	for _, t := range e {
		switch t := t.(type) {
		case xml.StartElement:
			parent := ""
			if len(inScope) > 0 {
				parent = inScope[len(inScope)-1]
			}
			w.start(t.Name.Local)
			if t.Name.Space != parent {
				w.attr("xmlns", t.Name.Space)
			}
			inScope = append(inScope, t.Name.Space)
			prefixes := 0
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
					// Declarations are regenerated above.
				case a.Name.Space == "":
					w.attr(a.Name.Local, a.Value)
				case a.Name.Space == nsXML || a.Name.Space == "xml":
					w.prefixedAttr("xml", a.Name.Local, a.Value)
				default:
					prefixes++
					p := "ns" + strconv.Itoa(prefixes)
					w.prefixedAttr("xmlns", p, a.Name.Space)
					w.prefixedAttr(p, a.Name.Local, a.Value)
				}
			}
			w.content() // an empty element stays <x></x>, as marshal always wrote it
		case xml.EndElement:
			inScope = inScope[:len(inScope)-1]
			w.end(t.Name.Local)
		case xml.CharData:
			w.charData(t)
		}
	}
	return w.bytes()
}

// sizeHint guesses the length of e marshalled, so that marshal seldom grows
// its buffer: names twice, values, and some room for quotes and escapes.
func (e element) sizeHint() int {
	n := 64
	for _, t := range e {
		switch t := t.(type) {
		case xml.StartElement:
			n += 2*len(t.Name.Local) + len(t.Name.Space) + 16
			for _, a := range t.Attr {
				n += len(a.Name.Local) + len(a.Value) + 8
			}
		case xml.CharData:
			n += len(t) + len(t)/8
		}
	}
	return n
}
