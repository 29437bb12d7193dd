package c2s

// An internal test: the writer is unexported, and every element the listener
// sends goes through it.

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

func TestXMLWriterEscapes(t *testing.T) {
	tests := []struct {
		name        string
		givenValue  string
		expectAttr  string // as an attribute value, between single quotes
		expectText  string // as character data
		expectValue string // what a parser reads back from either
	}{
		{"plain", "alice@localhost/phone", "alice@localhost/phone", "alice@localhost/phone", "alice@localhost/phone"},
		{"markup", `<a href="x">&amp;</a>`, `&lt;a href="x"&gt;&amp;amp;&lt;/a&gt;`, `&lt;a href="x"&gt;&amp;amp;&lt;/a&gt;`, `<a href="x">&amp;</a>`},
		{"quotes", `it's "q"`, `it&apos;s "q"`, `it's "q"`, `it's "q"`},
		{"cdata end", "]]>", "]]&gt;", "]]&gt;", "]]>"},
		{"white space", "a\nb\tc\r\nd", "a&#xA;b&#x9;c&#xD;&#xA;d", "a\nb\tc&#xD;\nd", "a\nb\tc\r\nd"},
		{"controls", "a\x00b\x01c\x1fd\x7fe", "a\uFFFDb\uFFFDc\uFFFDd\x7fe", "a\uFFFDb\uFFFDc\uFFFDd\x7fe", "a\uFFFDb\uFFFDc\uFFFDd\x7fe"},
		{"non-characters", "\uFFFE\uFFFF", "\uFFFD\uFFFD", "\uFFFD\uFFFD", "\uFFFD\uFFFD"},
		{"invalid UTF-8", "a\xffb\xed\xa0\x80c\xe2\x82", "a\uFFFDb\uFFFD\uFFFD\uFFFDc\uFFFD\uFFFD", "a\uFFFDb\uFFFD\uFFFD\uFFFDc\uFFFD\uFFFD", "a\uFFFDb\uFFFD\uFFFD\uFFFDc\uFFFD\uFFFD"},
		{"unicode kept", "Ünïcødé ✓ 😀 \uFFFD \u00a0", "Ünïcødé ✓ 😀 \uFFFD \u00a0", "Ünïcødé ✓ 😀 \uFFFD \u00a0", "Ünïcødé ✓ 😀 \uFFFD \u00a0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w xmlWriter
			w.elem("x", tc.givenValue, "v", tc.givenValue)
			got := string(w.bytes())
			assert.Equal(t, "<x v='"+tc.expectAttr+"'>"+tc.expectText+"</x>", got)

			var back struct {
				V    string `xml:"v,attr"`
				Text string `xml:",chardata"`
			}
			require.NoError(t, xml.Unmarshal(w.bytes(), &back), got)
			assert.Equal(t, tc.expectValue, back.V, "attribute read back")
			assert.Equal(t, tc.expectValue, back.Text, "text read back")

			var fromBytes xmlWriter
			fromBytes.charData([]byte(tc.givenValue))
			assert.Equal(t, tc.expectText, string(fromBytes.bytes()), "charData escapes as text does")
		})
	}
}

func TestXMLWriterElements(t *testing.T) {
	var w xmlWriter
	w.start("a", "xmlns", "urn:a")
	w.optAttr("empty", "")
	w.optAttr("set", "1")
	w.prefixedAttr("xml", "lang", "en")
	w.empty("b")
	w.start("c")
	w.text("")
	w.end("c")
	w.raw([]byte("<d/>"))
	w.end("a")
	assert.Equal(t, `<a xmlns='urn:a' set='1' xml:lang='en'><b/><c></c><d/></a>`, string(w.bytes()))

	var h xmlWriter
	h.decl()
	h.start("stream:stream", "xmlns", nsClient)
	h.content()
	h.end("stream:stream")
	assert.Equal(t, `<?xml version='1.0'?><stream:stream xmlns='jabber:client'></stream:stream>`, string(h.bytes()))
}

func TestMessageFromServer(t *testing.T) {
	m := session.Message{
		From:    jid.MustParse("localhost"),
		To:      jid.MustParse("alice@localhost/phone"),
		Type:    "headline",
		Subject: "Maintenance <tonight> & 'tomorrow'",
		Body:    "Line one & <two>\nline 'three'\r\n\x00end",
	}
	got := string(message(m))
	assert.Equal(t, `<message xmlns='jabber:client' from='localhost' to='alice@localhost/phone' type='headline'>`+
		`<subject>Maintenance &lt;tonight&gt; &amp; 'tomorrow'</subject>`+
		"<body>Line one &amp; &lt;two&gt;\nline 'three'&#xD;\n\uFFFDend</body></message>", got)

	var back struct {
		XMLName xml.Name
		From    string `xml:"from,attr"`
		To      string `xml:"to,attr"`
		Type    string `xml:"type,attr"`
		Subject string `xml:"subject"`
		Body    string `xml:"body"`
	}
	require.NoError(t, xml.Unmarshal([]byte(got), &back))
	assert.Equal(t, xml.Name{Space: nsClient, Local: "message"}, back.XMLName)
	assert.Equal(t, "localhost", back.From)
	assert.Equal(t, "alice@localhost/phone", back.To)
	assert.Equal(t, "headline", back.Type)
	assert.Equal(t, m.Subject, back.Subject)
	assert.Equal(t, strings.Replace(m.Body, "\x00", "\uFFFD", 1), back.Body)

	plain := string(message(session.Message{From: m.From, To: m.To, Body: "hi"}))
	assert.Equal(t, `<message xmlns='jabber:client' from='localhost' to='alice@localhost/phone'><body>hi</body></message>`, plain,
		"no type or subject when they are empty")
}
