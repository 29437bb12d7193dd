package codec_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// tokens is an xml.TokenReader over tokens already read, as an XMPP stream
// reader holds them.
type tokens []xml.Token

func (ts *tokens) Token() (xml.Token, error) {
	if len(*ts) == 0 {
		return nil, io.EOF
	}
	t := (*ts)[0]
	*ts = (*ts)[1:]
	return t, nil
}

// rootTokens reads data with encoding/xml and returns copies of the tokens
// of its first element, from its start to its end; false if data has no
// complete, well-formed first element.
func rootTokens(data []byte) (*tokens, bool) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var out tokens
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, false
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.Directive:
			return nil, false // DecodeRequest refuses it wherever it is
		}
		if depth > 0 || len(out) > 0 {
			out = append(out, xml.CopyToken(tok))
		}
		if depth == 0 && len(out) > 0 {
			return &out, true
		}
	}
}

// TestDecodeNativeCommandAsDecodeRequest decodes every native document of
// testdata/codec both from its bytes and from its tokens.
func TestDecodeNativeCommandAsDecodeRequest(t *testing.T) {
	var files []string
	for _, pattern := range []string{"native_*.xml", "invalid_native_*.xml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		require.NoError(t, err)
		for _, name := range m {
			if !strings.HasPrefix(filepath.Base(name), "invalid_") || !strings.HasSuffix(name, ".golden.xml") { // those are error envelopes
				files = append(files, name)
			}
		}
	}
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			want, f, wantErr := codec.DecodeRequest(bytes.NewReader(data), codec.NativeXML)
			require.Equal(t, codec.NativeXML, f)
			toks, ok := rootTokens(data)
			require.True(t, ok)
			got, err := codec.DecodeNativeCommand(toks)
			if wantErr != nil {
				require.Error(t, err)
				assert.Equal(t, adhoc.AsError(wantErr).Text, adhoc.AsError(err).Text)
				assert.Equal(t, adhoc.AsError(wantErr).Condition, adhoc.AsError(err).Condition)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestDecodeNativeCommandCases(t *testing.T) {
	var manyValues strings.Builder
	manyValues.WriteString(`<command xmlns="http://jabber.org/protocol/commands" node="n"><x xmlns="jabber:x:data" type="submit"><field var="v">`)
	for range adhoc.MaxFieldValues + 1 {
		manyValues.WriteString("<value>x</value>")
	}
	manyValues.WriteString(`</field></x></command>`)

	tests := []struct {
		name       string
		givenXML   string
		expectReq  adhoc.Request
		expectText string
	}{
		{
			name:      "prefix, unknown attributes and a second form",
			givenXML:  `<c:command xmlns:c="http://jabber.org/protocol/commands" node=" n " foo="bar" xml:lang="de"><x xmlns="jabber:x:data" type="submit"><field var="v" type="text-single"><value>1</value></field></x><x xmlns="jabber:x:data" type="submit"><field var="ignored"/></x></c:command>`,
			expectReq: adhoc.Request{Node: "n", Lang: "de", Fields: []adhoc.Field{{Var: "v", Values: []string{"1"}}}},
		},
		{
			name:      "markup in values",
			givenXML:  `<command xmlns="http://jabber.org/protocol/commands" node="n" sessionid="s" action="next"><x xmlns="jabber:x:data"><field var="v"><value>&lt;a&gt; &amp; ' "</value><value/></field></x></command>`,
			expectReq: adhoc.Request{Node: "n", SessionID: "s", Action: adhoc.ActionNext, Fields: []adhoc.Field{{Var: "v", Values: []string{`<a> & ' "`, ""}}}},
		},
		{"no node", `<command xmlns="http://jabber.org/protocol/commands" action="execute"/>`, adhoc.Request{}, "The command envelope has no node."},
		{"field without var", `<command xmlns="http://jabber.org/protocol/commands" node="n"><x xmlns="jabber:x:data"><field><value>1</value></field></x></command>`, adhoc.Request{}, "Field 1 has no var."},
		{"unknown action", `<command xmlns="http://jabber.org/protocol/commands" node="n" action="jump"/>`, adhoc.Request{}, `The action "jump" is not one of execute, next, prev, complete or cancel.`},
		{"too many values", manyValues.String(), adhoc.Request{}, "Field v has more than 1000 values."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			toks, ok := rootTokens([]byte(tc.givenXML))
			require.True(t, ok)
			got, err := codec.DecodeNativeCommand(toks)
			want, _, wantErr := codec.DecodeRequest(strings.NewReader(tc.givenXML), codec.NativeXML)
			if tc.expectText != "" {
				require.Error(t, err)
				e := adhoc.AsError(err)
				assert.Equal(t, stanza.BadRequest, e.Condition)
				assert.Equal(t, tc.expectText, e.Text)
				require.Error(t, wantErr)
				assert.Equal(t, adhoc.AsError(wantErr).Text, e.Text, "as DecodeRequest")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expectReq, got)
			require.NoError(t, wantErr)
			assert.Equal(t, want, got, "as DecodeRequest")
		})
	}

	notNative := []struct {
		name       string
		givenToks  tokens
		expectText string
	}{
		{"nothing", nil, "The request body is empty."},
		{"tigase command", tokens{
			xml.StartElement{Name: xml.Name{Local: "command"}},
			xml.EndElement{Name: xml.Name{Local: "command"}},
		}, "The root element must be command in the namespace http://jabber.org/protocol/commands, not command."},
		{"another element", tokens{
			xml.StartElement{Name: xml.Name{Space: adhoc.NS, Local: "x"}},
			xml.EndElement{Name: xml.Name{Space: adhoc.NS, Local: "x"}},
		}, "The root element must be command in the namespace http://jabber.org/protocol/commands, not x."},
		{"unclosed", tokens{
			xml.StartElement{Name: xml.Name{Space: adhoc.NS, Local: "command"}, Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: "n"}}},
		}, "The request body is not well-formed XML: XML syntax error on line 1: unexpected EOF."}, // as DecodeRequest says of a truncated body
	}
	for _, tc := range notNative {
		t.Run(tc.name, func(t *testing.T) {
			_, err := codec.DecodeNativeCommand(&tc.givenToks)
			require.Error(t, err)
			e := adhoc.AsError(err)
			assert.Equal(t, stanza.BadRequest, e.Condition)
			assert.Equal(t, tc.expectText, e.Text)
		})
	}
}
