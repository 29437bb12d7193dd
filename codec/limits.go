package codec

import (
	"bufio"
	"encoding/xml"
	"io"
	"unicode/utf8"
)

// The limits DecodeRequest puts on an envelope, whatever the caller's body
// limit: a command envelope is shallow and small, and without them a body
// of a few MiB (10,000 attributes, 100,000 levels of nesting, 10^6 JSON
// members) costs hundreds of MiB in encoding/xml and encoding/json.
// Each is refused as a bad-request that names it.
const (
	// MaxDepth is the deepest nesting of XML elements or JSON objects and
	// arrays, the root counted as 1.
	MaxDepth = 64
	// MaxAttributes is the most attributes of one XML element, namespace
	// declarations included.
	MaxAttributes = 64
	// MaxElements is the most XML elements of an envelope.
	MaxElements = 20000
	// MaxJSONValues is the most JSON values (objects, arrays, strings,
	// numbers, booleans and nulls) of an envelope.
	MaxJSONValues = 20000
	// MaxMarkupBytes is the longest XML tag, comment, processing
	// instruction or CDATA section.
	MaxMarkupBytes = 64 << 10
	// MaxTextBytes is the longest XML text between two tags, and the
	// longest JSON string.
	MaxTextBytes = 1 << 20
)

var (
	errTooDeep       = badRequest("The request body is nested deeper than %d levels.", MaxDepth)
	errTooManyAttrs  = badRequest("An XML element has more than %d attributes.", MaxAttributes)
	errTooManyElems  = badRequest("The request body has more than %d XML elements.", MaxElements)
	errMarkupTooLong = badRequest("An XML tag, comment, processing instruction or CDATA section is longer than %d bytes.", MaxMarkupBytes)
	errTextTooLong   = badRequest("An XML text is longer than %d bytes.", MaxTextBytes)
	errTooManyValues = badRequest("The JSON has more than %d values.", MaxJSONValues)
	errStringTooLong = badRequest("A JSON string is longer than %d bytes.", MaxTextBytes)
)

// guard passes tokens on and refuses directives (<!DOCTYPE …>,
// <!ENTITY …>), nesting deeper than MaxDepth, more than MaxAttributes on
// an element and more than MaxElements elements.
// With in set, it also marks where each token starts in in, which then
// bounds the bytes of one token.
type guard struct {
	tr       xml.TokenReader
	in       *tokenBytes
	offset   func() int64
	depth    int
	elements int
}

// Token implements xml.TokenReader.
func (g *guard) Token() (xml.Token, error) {
	tok, err := g.tr.Token()
	if g.in != nil {
		g.in.mark(g.offset())
	}
	switch t := tok.(type) {
	case xml.Directive:
		return nil, errDTD
	case xml.StartElement:
		g.depth++
		g.elements++
		switch {
		case g.depth > MaxDepth:
			return nil, errTooDeep
		case len(t.Attr) > MaxAttributes:
			return nil, errTooManyAttrs
		case g.elements > MaxElements:
			return nil, errTooManyElems
		}
	case xml.EndElement:
		g.depth--
	}
	return tok, err
}

// tokenBytes is the io.ByteReader an xml.Decoder reads its input from
// (it then reads no further ahead than one byte): it refuses a token
// longer than MaxMarkupBytes when it starts with '<', and longer than
// MaxTextBytes otherwise, before encoding/xml holds it, and its attributes,
// in memory.
type tokenBytes struct {
	r     *bufio.Reader
	n     int64 // bytes read
	start int64 // where the current token starts
	last  byte  // the byte at n-1
	limit int64 // of the current token; 0 until its first byte is read
}

func newTokenBytes(r io.Reader) *tokenBytes {
	return &tokenBytes{r: bufio.NewReader(r)}
}

// mark records that the next token starts at offset.
func (b *tokenBytes) mark(offset int64) {
	b.start, b.limit = offset, 0
	if b.n > offset { // the decoder has read the token's first byte already
		b.setLimit(b.last)
	}
}

func (b *tokenBytes) setLimit(first byte) {
	b.limit = MaxTextBytes
	if first == '<' {
		b.limit = MaxMarkupBytes
	}
}

// ReadByte implements io.ByteReader.
func (b *tokenBytes) ReadByte() (byte, error) {
	c, err := b.r.ReadByte()
	if err != nil {
		return c, err
	}
	if b.n == b.start {
		b.setLimit(c)
	}
	b.n++
	b.last = c
	if b.n-b.start > b.limit+1 { // +1: the byte after a text, read ahead

		if b.limit == MaxMarkupBytes {
			return 0, errMarkupTooLong
		}
		return 0, errTextTooLong
	}
	return c, nil
}

// Read implements io.Reader, which xml.NewDecoder asks for; it reads by
// ReadByte.
func (b *tokenBytes) Read(p []byte) (int, error) {
	for i := range p {
		c, err := b.ReadByte()
		if err != nil {
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}

// utf8Reader refuses input that is not UTF-8, which encoding/json would
// replace with U+FFFD silently.
type utf8Reader struct {
	r    io.Reader
	pend []byte // the start of a rune split by the last read
	n    int64  // bytes checked
}

var _ io.Reader = (*utf8Reader)(nil)

// Read implements io.Reader.
func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	chunk := append(u.pend, p[:n]...)
	// Keep a rune that the next read completes.
	keep := 0
	for i := len(chunk) - 1; i >= 0 && i >= len(chunk)-utf8.UTFMax; i-- {
		if utf8.RuneStart(chunk[i]) {
			if !utf8.FullRune(chunk[i:]) {
				keep = len(chunk) - i
			}
			break
		}
	}
	if err == io.EOF {
		keep = 0
	}
	whole := chunk[:len(chunk)-keep]
	if !utf8.Valid(whole) {
		at := u.n
		for len(whole) > 0 {
			r, size := utf8.DecodeRune(whole)
			if r == utf8.RuneError && size == 1 {
				break
			}
			whole, at = whole[size:], at+int64(size)
		}
		return 0, badRequest("The request body is not valid UTF-8 (at byte %d).", at+1)
	}
	u.n += int64(len(whole))
	u.pend = append(u.pend[:0:0], chunk[len(chunk)-keep:]...)
	return n, err
}
