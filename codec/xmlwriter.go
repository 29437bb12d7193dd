package codec

import (
	"strings"
	"unicode/utf8"

	"github.com/adhocd/adhocd/adhoc"
)

// xmlWriter builds an indented XML document in memory with a fixed
// attribute order, so that the output is deterministic.
// Attributes are given as name, value pairs; empty values are left out.
type xmlWriter struct {
	b     strings.Builder
	depth int
}

func (w *xmlWriter) indent() {
	for range w.depth {
		w.b.WriteString("  ")
	}
}

func (w *xmlWriter) tag(name string, attrs []string) {
	w.b.WriteByte('<')
	w.b.WriteString(name)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" {
			continue
		}
		w.b.WriteByte(' ')
		w.b.WriteString(attrs[i])
		w.b.WriteString(`="`)
		escape(&w.b, attrs[i+1], true)
		w.b.WriteByte('"')
	}
}

// open starts an element whose children follow on their own lines.
func (w *xmlWriter) open(name string, attrs ...string) {
	w.indent()
	w.tag(name, attrs)
	w.b.WriteString(">\n")
	w.depth++
}

// close ends the element that open started.
func (w *xmlWriter) close(name string) {
	w.depth--
	w.indent()
	w.b.WriteString("</")
	w.b.WriteString(name)
	w.b.WriteString(">\n")
}

// empty writes an element without content.
func (w *xmlWriter) empty(name string, attrs ...string) {
	w.indent()
	w.tag(name, attrs)
	w.b.WriteString("/>\n")
}

// text writes an element whose content is text, on one line.
func (w *xmlWriter) text(name, value string, attrs ...string) {
	w.indent()
	w.tag(name, attrs)
	w.b.WriteByte('>')
	escape(&w.b, value, false)
	w.b.WriteString("</")
	w.b.WriteString(name)
	w.b.WriteString(">\n")
}

// escape writes s as XML text or attribute value: markup characters become
// references, and characters XML cannot carry become U+FFFD.
// Text keeps newlines and tabs; carriage returns are written as references
// so that parsers do not normalise them away.
func escape(b *strings.Builder, s string, attr bool) {
	for _, r := range s { // an invalid UTF-8 byte comes as U+FFFD, and is written as such
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"' && attr:
			b.WriteString("&quot;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == '\n' && attr:
			b.WriteString("&#xA;")
		case r == '\t' && attr:
			b.WriteString("&#x9;")
		case !adhoc.IsXMLChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
}
