package codec_test

import (
	"bytes"
	"fmt"
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

var allFormats = []codec.Format{codec.TigaseXML, codec.TigaseJSON, codec.NativeXML}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		givenReq adhoc.Request
	}{
		{"node only", adhoc.Request{Node: nodeEnd}},
		{"seed", adhoc.Request{Node: nodeEnd, Fields: []adhoc.Field{{Var: "accountjids", Values: []string{"test@domain.com"}}}}},
		{"session", adhoc.Request{Node: nodeWizard, SessionID: "abc", Action: adhoc.ActionPrev}},
		{"every action", adhoc.Request{Node: nodeWizard, SessionID: "abc", Action: adhoc.ActionCancel}},
		{"values", adhoc.Request{Node: nodeWizard, Fields: []adhoc.Field{
			{Var: "none"},
			{Var: "empty", Values: []string{""}},
			{Var: "two empty", Values: []string{"", ""}},
			{Var: "many", Values: []string{"a", "b", "c"}},
			{Var: "markup", Values: []string{`<a href="x">&amp;</a>`, "]]>", "'\""}},
			{Var: "white space", Values: []string{"  padded  ", "\n", "\ttab", "line\r\nbreak", "\r"}},
			{Var: "unicode", Values: []string{"Ünïcødé ✓ 😀", "\u00a0"}},
			{Var: "ünï & <var>", Values: []string{"x"}},
		}}},
	}
	for _, tc := range tests {
		for _, f := range allFormats {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				var buf bytes.Buffer
				require.NoError(t, codec.EncodeRequest(&buf, f, tc.givenReq))
				got, gotFormat, err := codec.DecodeRequest(&buf, f)
				require.NoError(t, err)
				assert.Equal(t, f, gotFormat)
				assert.Equal(t, tc.givenReq, got)
			})
		}
	}
	t.Run("lang in native", func(t *testing.T) {
		req := adhoc.Request{Node: nodeEnd, Lang: "de-CH"}
		var buf bytes.Buffer
		require.NoError(t, codec.EncodeRequest(&buf, codec.NativeXML, req))
		got, _, err := codec.DecodeRequest(&buf, codec.NativeXML)
		require.NoError(t, err)
		assert.Equal(t, req, got)
	})
}

func TestDecodeRequestLimits(t *testing.T) {
	var manyFields, manyValues strings.Builder
	manyFields.WriteString(`{"command":{"node":"n","fields":[`)
	for i := range codec.MaxFields + 1 {
		if i > 0 {
			manyFields.WriteString(",")
		}
		fmt.Fprintf(&manyFields, `{"var":"f%d"}`, i)
	}
	manyFields.WriteString(`]}}`)
	manyValues.WriteString(`<command><node>n</node><fields><item><var>v</var><value>`)
	for range adhoc.MaxFieldValues + 1 {
		manyValues.WriteString("<item>x</item>")
	}
	manyValues.WriteString(`</value></item></fields></command>`)
	var nativeValues strings.Builder
	nativeValues.WriteString(`<command xmlns="http://jabber.org/protocol/commands" node="n"><x xmlns="jabber:x:data" type="submit"><field var="v">`)
	for range adhoc.MaxFieldValues + 1 {
		nativeValues.WriteString("<value>x</value>")
	}
	nativeValues.WriteString(`</field></x></command>`)
	jsonValues := `{"command":{"node":"n","fields":[{"var":"v","value":[` + strings.Repeat(`"x",`, adhoc.MaxFieldValues) + `"x"]}]}}`

	tests := []struct {
		name       string
		givenBody  string
		whenFormat codec.Format
		expectText string
	}{
		{"json fields", manyFields.String(), codec.TigaseJSON, "The command has more than 1000 fields."},
		{"json values", jsonValues, codec.TigaseJSON, "Field v has more than 1000 values."},
		{"xml values", manyValues.String(), codec.TigaseXML, "Field v has more than 1000 values."},
		{"native values", nativeValues.String(), codec.NativeXML, "Field v has more than 1000 values."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := codec.DecodeRequest(strings.NewReader(tc.givenBody), tc.whenFormat)
			require.Error(t, err)
			assert.Equal(t, tc.expectText, adhoc.AsError(err).Text)
		})
	}
}

func TestDecodeRequestXMLCases(t *testing.T) {
	tests := []struct {
		name         string
		givenBody    string
		expectReq    adhoc.Request
		expectFormat codec.Format
		expectText   string
	}{
		{
			name:         "directive inside the root",
			givenBody:    `<command><!DOCTYPE x><node>n</node></command>`,
			expectFormat: codec.TigaseXML,
			expectText:   "The request body has a document type declaration; DTDs are not allowed.",
		},
		{
			name:         "text before root",
			givenBody:    `hello <command><node>n</node></command>`,
			expectFormat: codec.TigaseXML,
			expectText:   "The request body has text before the root element.",
		},
		{
			name:         "text after root",
			givenBody:    `<command><node>n</node></command> trailing`,
			expectFormat: codec.TigaseXML,
			expectText:   "The request body has text after the root element.",
		},
		{
			name:         "unsupported charset",
			givenBody:    `<?xml version="1.0" encoding="ISO-8859-1"?><command><node>n</node></command>`,
			expectFormat: codec.TigaseXML,
			expectText:   `The request body is not well-formed XML: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil.`,
		},
		{
			name:         "json body as xml",
			givenBody:    `{"command":{"node":"n"}}`,
			expectFormat: codec.TigaseXML,
			expectText:   "The request body is not XML; JSON needs the Content-Type application/json.",
		},
		{
			name:         "truncated",
			givenBody:    `<command><node>n</node>`,
			expectFormat: codec.TigaseXML,
			expectText:   "The request body is not well-formed XML: XML syntax error on line 1: unexpected EOF.",
		},
		{
			name:         "comments, processing instructions and cdata",
			givenBody:    "<?xml version='1.0'?>\n<!-- c --><command><node> n </node><fields><item><var>v</var><value><![CDATA[<x>&]]></value></item></fields></command>\n<!-- end -->\n",
			expectFormat: codec.TigaseXML,
			expectReq:    adhoc.Request{Node: "n", Fields: []adhoc.Field{{Var: "v", Values: []string{"<x>&"}}}},
		},
		{
			name:         "several value elements",
			givenBody:    `<command><node>n</node><fields><item><var>v</var><value>a</value><value><item>b</item><item>c</item></value></item></fields></command>`,
			expectFormat: codec.TigaseXML,
			expectReq:    adhoc.Request{Node: "n", Fields: []adhoc.Field{{Var: "v", Values: []string{"a", "b", "c"}}}},
		},
		{
			name:         "tigase command in another namespace",
			givenBody:    `<command xmlns="urn:other"><node>n</node></command>`,
			expectFormat: codec.TigaseXML,
			expectReq:    adhoc.Request{Node: "n"},
		},
		{
			name:         "native with prefix and unknown attributes",
			givenBody:    `<c:command xmlns:c="http://jabber.org/protocol/commands" node="n" foo="bar"><x xmlns="jabber:x:data" type="submit"><field var="v" type="text-single"><value>1</value></field></x><x xmlns="jabber:x:data" type="submit"><field var="ignored"/></x></c:command>`,
			expectFormat: codec.NativeXML,
			expectReq:    adhoc.Request{Node: "n", Fields: []adhoc.Field{{Var: "v", Values: []string{"1"}}}},
		},
		{
			name:         "native without form",
			givenBody:    `<command xmlns="http://jabber.org/protocol/commands" node="n" sessionid="s" action="cancel"><x xmlns="urn:not-a-form"><field var="v"/></x></command>`,
			expectFormat: codec.NativeXML,
			expectReq:    adhoc.Request{Node: "n", SessionID: "s", Action: adhoc.ActionCancel},
		},
		{
			name:         "native field without var",
			givenBody:    `<command xmlns="http://jabber.org/protocol/commands" node="n"><x xmlns="jabber:x:data" type="submit"><field><value>1</value></field></x></command>`,
			expectFormat: codec.NativeXML,
			expectText:   "Field 1 has no var.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, f, err := codec.DecodeRequest(strings.NewReader(tc.givenBody), codec.TigaseXML)
			assert.Equal(t, tc.expectFormat, f)
			if tc.expectText != "" {
				require.Error(t, err)
				e := adhoc.AsError(err)
				assert.Equal(t, stanza.BadRequest, e.Condition)
				assert.Equal(t, tc.expectText, e.Text)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expectReq, req)
		})
	}
}

func TestDecodeRequestJSONCases(t *testing.T) {
	tests := []struct {
		name       string
		givenBody  string
		expectReq  adhoc.Request
		expectText string
	}{
		{"nulls are absent", `{"command":{"node":"n","sessionid":null,"action":null,"fields":null}}`, adhoc.Request{Node: "n"}, ""},
		{"trailing white space", "{\"command\":{\"node\":\"n\"}}\n\n\t ", adhoc.Request{Node: "n"}, ""},
		{"keys are case-sensitive", `{"Command":{"node":"n"}}`, adhoc.Request{}, `The request body must be a JSON object with a "command" object.`},
		{"command not object", `{"command":"n"}`, adhoc.Request{}, `The request body must be a JSON object with a "command" object.`},
		{"empty node", `{"command":{"node":"  "}}`, adhoc.Request{}, "The command envelope has no node."},
		{"sessionid type", `{"command":{"node":"n","sessionid":1}}`, adhoc.Request{}, "The sessionid must be a string."},
		{"action type", `{"command":{"node":"n","action":true}}`, adhoc.Request{}, "The action must be a string."},
		{"unknown action", `{"command":{"node":"n","action":"jump"}}`, adhoc.Request{}, `The action "jump" is not one of execute, next, prev, complete or cancel.`},
		{"field not object", `{"command":{"node":"n","fields":["accountjids"]}}`, adhoc.Request{}, "Field 1 must be an object."},
		{"var type", `{"command":{"node":"n","fields":[{"var":1}]}}`, adhoc.Request{}, "Field 1: var must be a string."},
		{"number value", `{"command":{"node":"n","fields":[{"var":"max_items","value":25}]}}`, adhoc.Request{}, "Field max_items: value must be a string or an array of strings."},
		{"null in array", `{"command":{"node":"n","fields":[{"var":"v","value":["a",null]}]}}`, adhoc.Request{}, "Field v: value must be a string or an array of strings."},
		{"empty array", `{"command":{"node":"n","fields":[{"var":"v","value":[]}]}}`, adhoc.Request{Node: "n", Fields: []adhoc.Field{{Var: "v"}}}, ""},
		{"unterminated", `{"command":{"node":"n"`, adhoc.Request{}, "The request body is not valid JSON: it ends too early."},
		{"xml body as json", `<command/>`, adhoc.Request{}, "The request body is not valid JSON: invalid character '<' looking for beginning of value (at byte 1)."},
		{"escapes", `{"command":{"node":"n","fields":[{"var":"v","value":"\u003cb\u003e \"q\" \\ \n"}]}}`, adhoc.Request{Node: "n", Fields: []adhoc.Field{{Var: "v", Values: []string{"<b> \"q\" \\ \n"}}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, f, err := codec.DecodeRequest(strings.NewReader(tc.givenBody), codec.TigaseJSON)
			assert.Equal(t, codec.TigaseJSON, f)
			if tc.expectText != "" {
				require.Error(t, err)
				e := adhoc.AsError(err)
				assert.Equal(t, stanza.BadRequest, e.Condition)
				assert.Equal(t, tc.expectText, e.Text)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expectReq, req)
		})
	}
}

// addCorpus seeds a fuzz target with the test inputs of testdata/codec.
func addCorpus(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(f, err)
	require.NotEmpty(f, files)
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(b)
	}
}

// fuzzDecode decodes data; whatever decodes must re-encode and decode to the
// same request, and whatever fails must fail with a bad-request *adhoc.Error.
func fuzzDecode(t *testing.T, data []byte, format codec.Format) {
	req, f, err := codec.DecodeRequest(bytes.NewReader(data), format)
	if err != nil {
		var e *adhoc.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, stanza.BadRequest, e.Condition)
		require.NotEmpty(t, e.Text)
		return
	}
	var buf bytes.Buffer
	require.NoError(t, codec.EncodeRequest(&buf, f, req))
	again, f2, err := codec.DecodeRequest(bytes.NewReader(buf.Bytes()), f)
	require.NoError(t, err, "re-encoded:\n%s", buf.String())
	require.Equal(t, f, f2)
	require.Equal(t, req, again, "re-encoded:\n%s", buf.String())

	var out bytes.Buffer
	require.NoError(t, codec.EncodeResponse(&out, f, sessMan, adhoc.Response{
		Node: req.Node, SessionID: req.SessionID,
		Form: &adhoc.Form{Fields: req.Fields},
	}))
}

func FuzzDecodeTigaseXML(f *testing.F) {
	addCorpus(f, "*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, codec.TigaseXML)
	})
}

func FuzzDecodeTigaseJSON(f *testing.F) {
	addCorpus(f, "*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, codec.TigaseJSON)
	})
}

func FuzzDecodeNative(f *testing.F) {
	addCorpus(f, "native_*.xml")
	addCorpus(f, "invalid_native_*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, codec.NativeXML)
		fuzzNativeTokens(t, data)
	})
}

// fuzzNativeTokens checks DecodeNativeCommand against DecodeRequest: a
// native command DecodeRequest decodes from data decodes the same from the
// tokens of data's root element, and a failure is a bad-request.
func fuzzNativeTokens(t *testing.T, data []byte) {
	toks, ok := rootTokens(data)
	if !ok {
		return
	}
	got, err := codec.DecodeNativeCommand(toks)
	want, f, wantErr := codec.DecodeRequest(bytes.NewReader(data), codec.NativeXML)
	if wantErr == nil && f == codec.NativeXML {
		require.NoError(t, err)
		require.Equal(t, want, got)
		return
	}
	if err != nil {
		var e *adhoc.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, stanza.BadRequest, e.Condition)
		require.NotEmpty(t, e.Text)
	}
}
