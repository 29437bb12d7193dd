package c2s

import (
	"unicode/utf8"

	"github.com/adhocd/adhocd/adhoc"
)

// xmlWriter appends XML to a byte slice. Everything the listener sends is
// written with it, so that escaping is done in one place.
//
// Names (of elements, attributes, prefixes) are the caller's: constants, or
// names read from a stream. Attribute values and text are escaped, and
// attribute values are single-quoted. A start tag stays open for more
// attributes until content or its end follows; an element without content
// is written as <name/>.
type xmlWriter struct {
	b    []byte
	open bool // a start tag still needs its '>' or '/>'
}

// writerStart is the first allocation of a writer: most of what the
// listener writes (features, SASL steps, results, errors) fits, so an
// element costs one allocation instead of a series of doublings.
const writerStart = 256

// grow gives an empty writer its first buffer.
func (w *xmlWriter) grow() {
	if w.b == nil {
		w.b = make([]byte, 0, writerStart)
	}
}

// decl writes the XML declaration.
func (w *xmlWriter) decl() {
	w.grow()
	w.b = append(w.b, "<?xml version='1.0'?>"...)
}

// start begins an element with attrs given as name, value pairs.
func (w *xmlWriter) start(name string, attrs ...string) {
	w.grow()
	w.content()
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
	w.open = true
	for i := 0; i+1 < len(attrs); i += 2 {
		w.attr(attrs[i], attrs[i+1])
	}
}

// attr adds an attribute to the start tag just begun.
func (w *xmlWriter) attr(name, value string) { w.prefixedAttr("", name, value) }

// optAttr is attr, but leaves out an empty value.
func (w *xmlWriter) optAttr(name, value string) {
	if value != "" {
		w.attr(name, value)
	}
}

// prefixedAttr adds the attribute prefix:name, or name when prefix is empty.
func (w *xmlWriter) prefixedAttr(prefix, name, value string) {
	w.b = append(w.b, ' ')
	if prefix != "" {
		w.b = append(w.b, prefix...)
		w.b = append(w.b, ':')
	}
	w.b = append(w.b, name...)
	w.b = append(w.b, "='"...)
	w.b = appendEscaped(w.b, value, true)
	w.b = append(w.b, '\'')
}

// content ends the start tag just begun: what follows is its content.
// The other methods call it themselves; a start tag that is never ended
// (the stream header) needs it.
func (w *xmlWriter) content() {
	if w.open {
		w.b = append(w.b, '>')
		w.open = false
	}
}

// text writes character data.
func (w *xmlWriter) text(s string) {
	w.content()
	w.b = appendEscaped(w.b, s, false)
}

// charData is text for character data read from a stream.
func (w *xmlWriter) charData(s []byte) {
	w.content()
	w.b = appendEscaped(w.b, s, false)
}

// raw writes content that is already XML (codec's output).
func (w *xmlWriter) raw(xml []byte) {
	w.content()
	w.b = append(w.b, xml...)
}

// end ends the element name; one without content becomes <name/>.
func (w *xmlWriter) end(name string) {
	if w.open {
		w.b = append(w.b, "/>"...)
		w.open = false
		return
	}
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

// empty writes an element without content.
func (w *xmlWriter) empty(name string, attrs ...string) {
	w.start(name, attrs...)
	w.end(name)
}

// elem writes an element whose content is text.
func (w *xmlWriter) elem(name, text string, attrs ...string) {
	w.start(name, attrs...)
	w.text(text)
	w.end(name)
}

// bytes returns what was written.
func (w *xmlWriter) bytes() []byte { return w.b }

// appendEscaped appends s as text or as a single-quoted attribute value:
// markup characters become references, and characters XML cannot carry
// (controls, invalid UTF-8, U+FFFE, U+FFFF) become U+FFFD, as codec does.
// Text keeps newlines and tabs; a carriage return is written as a reference
// so that parsers do not normalise it away. In an attribute, newline and
// tab are references too, or parsers would turn them into spaces.
func appendEscaped[T string | []byte](b []byte, s T, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		width := 1
		switch {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '\r':
			esc = "&#xD;"
		case c == '\'' && attr:
			esc = "&apos;"
		case c == '\n' && attr:
			esc = "&#xA;"
		case c == '\t' && attr:
			esc = "&#x9;"
		case c < utf8.RuneSelf:
			if c >= 0x20 || c == '\n' || c == '\t' {
				i++
				continue
			}
			esc = "\uFFFD"
		default:
			r, n := decodeRune(s[i:])
			if (r != utf8.RuneError || n > 1) && adhoc.IsXMLChar(r) {
				i += n
				continue
			}
			esc, width = "\uFFFD", n
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i += width
		last = i
	}
	return append(b, s[last:]...)
}

// decodeRune is utf8.DecodeRune for a string or a byte slice, without
// converting (and copying) the whole rest of s.
func decodeRune[T string | []byte](s T) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s)
	return utf8.DecodeRune(buf[:n])
}
