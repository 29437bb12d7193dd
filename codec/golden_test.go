package codec_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

var update = flag.Bool("update", false, "update golden files")

const (
	dir        = "../testdata/codec"
	nodeEnd    = "http://jabber.org/protocol/admin#end-user-session"
	nodeWizard = "urn:example:wizard"
)

var (
	seedJID = jid.MustParse("sess-man@domain.com")
	sessMan = jid.MustParse("sess-man@localhost")
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return b
}

// golden compares got with testdata/codec/name, or rewrites the file with
// -update.
// XML is compared byte for byte, JSON with assert.JSONEq.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./codec -update to create it")
	if strings.HasSuffix(name, ".json") {
		assert.JSONEq(t, string(want), string(got))
		return
	}
	assert.Equal(t, string(want), string(got))
}

// ext is the file extension of a format.
func ext(f codec.Format) string {
	if f == codec.TigaseJSON {
		return ".json"
	}
	return ".xml"
}

// xmlNode is an XML element with its text trimmed of the white space that
// indentation adds, for structural comparison.
type xmlNode struct {
	Name     xml.Name
	Attrs    []xml.Attr
	Text     string
	Children []xmlNode
}

func parseXMLTree(t *testing.T, b []byte) xmlNode {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xmlNode
	var root xmlNode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch tk := tok.(type) {
		case xml.StartElement:
			n := xmlNode{Name: tk.Name}
			for _, a := range tk.Attr {
				if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
					n.Attrs = append(n.Attrs, a)
				}
			}
			slices.SortFunc(n.Attrs, func(a, b xml.Attr) int { return strings.Compare(a.Name.Local, b.Name.Local) })
			stack = append(stack, &n)
		case xml.EndElement:
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			n.Text = strings.TrimSpace(n.Text)
			if len(stack) == 0 {
				root = *n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, *n)
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tk)
			}
		}
	}
	return root
}

func TestDecodeRequestGolden(t *testing.T) {
	seedReq := adhoc.Request{
		Node:   nodeEnd,
		Fields: []adhoc.Field{{Var: "accountjids", Values: []string{"test@domain.com"}}},
	}
	multistage := adhoc.Request{
		Node:      nodeWizard,
		SessionID: "S3SSI0N",
		Action:    adhoc.ActionNext,
		Fields: []adhoc.Field{
			{Var: "accountjids", Values: []string{"a@example.org", "b@example.org/phone"}},
			{Var: "reason", Values: []string{"Maintenance & upgrade <now>"}},
			{Var: "notify", Values: []string{""}},
			{Var: "empty"},
		},
	}
	tests := []struct {
		name         string
		givenFile    string
		whenFormat   codec.Format
		expectFormat codec.Format
		expectReq    adhoc.Request
	}{
		{"seed xml", "seed_request.xml", codec.TigaseXML, codec.TigaseXML, seedReq},
		{"seed json", "seed_request.json", codec.TigaseJSON, codec.TigaseJSON, seedReq},
		{"form xml", "form_request.xml", codec.TigaseXML, codec.TigaseXML, adhoc.Request{Node: nodeEnd}},
		{"form json", "form_request.json", codec.TigaseJSON, codec.TigaseJSON, adhoc.Request{Node: nodeEnd}},
		{"multistage xml", "multistage_request.xml", codec.TigaseXML, codec.TigaseXML, multistage},
		{"multistage json", "multistage_request.json", codec.TigaseJSON, codec.TigaseJSON, multistage},
		{
			"native", "native_request.xml", codec.TigaseXML, codec.NativeXML,
			adhoc.Request{
				Node:      nodeEnd,
				SessionID: "S3SSI0N",
				Action:    adhoc.ActionComplete,
				Lang:      "en",
				Fields: []adhoc.Field{
					{Var: "FORM_TYPE", Values: []string{"http://jabber.org/protocol/admin"}},
					{Var: "accountjids", Values: []string{"test@domain.com", "other@domain.com/resource"}},
					{Var: "reason", Values: []string{"Spamming"}},
				},
			},
		},
		{
			"native form", "native_form_request.xml", codec.NativeXML, codec.NativeXML,
			adhoc.Request{Node: nodeEnd, Action: adhoc.ActionExecute},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, f, err := codec.DecodeRequest(bytes.NewReader(readFile(t, tc.givenFile)), tc.whenFormat)
			require.NoError(t, err)
			assert.Equal(t, tc.expectFormat, f)
			assert.Equal(t, tc.expectReq, req)

			var buf bytes.Buffer
			require.NoError(t, codec.EncodeRequest(&buf, f, req))
			base := strings.TrimSuffix(tc.givenFile, filepath.Ext(tc.givenFile))
			golden(t, base+".golden"+ext(f), buf.Bytes())

			again, f2, err := codec.DecodeRequest(&buf, f)
			require.NoError(t, err)
			assert.Equal(t, f, f2)
			assert.Equal(t, req, again, "decode(encode(x)) == x")
		})
	}
}

// Responses used by the golden tests.
var (
	seedResponse = adhoc.Response{
		Node:   nodeEnd,
		Status: adhoc.StatusCompleted,
		Form: &adhoc.Form{Type: adhoc.FormTypeResult, Fields: []adhoc.Field{
			{Var: "Notes", Type: adhoc.FieldTextMulti, Values: []string{"Operation successful for user test@domain.com/resource"}},
		}},
	}
	seedResponseEmpty = adhoc.Response{Node: nodeEnd, Status: adhoc.StatusCompleted, Form: &adhoc.Form{Type: adhoc.FormTypeResult}}
	threeNotes        = adhoc.Response{
		Node:   nodeEnd,
		Status: adhoc.StatusCompleted,
		Form: &adhoc.Form{Type: adhoc.FormTypeResult, Fields: []adhoc.Field{
			{Var: "Notes", Type: adhoc.FieldTextMulti, Values: []string{
				"Operation successful for user user@localhost/phone",
				"Operation successful for user user@localhost/laptop",
				"Operation successful for user user@localhost/slixmpp",
			}},
		}},
	}
	endUserSessionForm = &adhoc.Form{
		Type:         adhoc.FormTypeForm,
		Title:        "Ending a User Session",
		Instructions: "Fill out this form to end a user's session.",
		Fields: []adhoc.Field{
			{Var: "FORM_TYPE", Type: adhoc.FieldHidden, Values: []string{"http://jabber.org/protocol/admin"}},
			{Var: "accountjids", Type: adhoc.FieldJIDMulti, Label: "The Jabber ID(s) for which to end sessions", Required: true},
			{Var: "reason", Type: adhoc.FieldTextSingle, Label: "Reason", Desc: "Sent to the ended clients."},
		},
	}
	formResponse = adhoc.Response{
		Node:      nodeEnd,
		SessionID: "S3SSI0N",
		Status:    adhoc.StatusExecuting,
		Actions:   []adhoc.Action{adhoc.ActionComplete},
		Default:   adhoc.ActionComplete,
		Form:      endUserSessionForm,
	}
	multistageResponse = adhoc.Response{
		Node:      nodeWizard,
		SessionID: "S3SSI0N",
		Status:    adhoc.StatusExecuting,
		Actions:   []adhoc.Action{adhoc.ActionPrev, adhoc.ActionNext, adhoc.ActionComplete},
		Default:   adhoc.ActionNext,
		Notes: []adhoc.Note{
			{Type: adhoc.NoteInfo, Text: "Step 2 of 3."},
			{Type: adhoc.NoteWarn, Text: "Users will be disconnected."},
		},
		Form: &adhoc.Form{
			Title: "Step 2",
			Fields: []adhoc.Field{
				{Type: adhoc.FieldFixed, Values: []string{"Choose carefully."}},
				{Var: "max_items", Type: adhoc.FieldListSingle, Label: "Maximum number of items", Values: []string{"25"}, Options: []adhoc.Option{
					{Label: "25", Value: "25"}, {Label: "50", Value: "50"}, {Value: "none"},
				}},
				{Var: "features", Type: adhoc.FieldListMulti, Values: []string{"a"}, Options: []adhoc.Option{{Label: "A", Value: "a"}, {Label: "B", Value: "b"}}},
				{Var: "notify", Type: adhoc.FieldBoolean, Label: "Notify users", Values: []string{"true"}},
				{Var: "password", Type: adhoc.FieldTextPrivate, Label: "Password"},
			},
		},
	}
	canceledResponse = adhoc.Response{Node: nodeWizard, SessionID: "S3SSI0N", Status: adhoc.StatusCanceled}
	escapeResponse   = adhoc.Response{
		Node:   "urn:example:escape?a=1&b=2",
		Status: adhoc.StatusCompleted,
		Notes:  []adhoc.Note{{Type: adhoc.NoteError, Text: `<b>"quoted" & 'apostrophe'</b>`}},
		Form: &adhoc.Form{
			Type:         adhoc.FormTypeResult,
			Title:        "Ünïcødé ✓ <title>",
			Instructions: "Line 1\nLine 2\twith tab\r\nand CR",
			Fields: []adhoc.Field{
				{Var: "x&y", Type: adhoc.FieldTextMulti, Label: `"label" <&>`, Values: []string{"<xml>&amp;</xml>", "]]>", ""}},
				{Var: "single", Values: []string{"a\u00a0b"}},
			},
		},
	}
	nativeResultResponse = adhoc.Response{
		Node:   nodeEnd,
		Status: adhoc.StatusCompleted,
		Notes:  []adhoc.Note{{Text: "Done."}},
		Form: &adhoc.Form{Fields: []adhoc.Field{
			{Var: "Notes", Type: adhoc.FieldTextMulti, Values: []string{"Operation successful for user test@domain.com/resource"}},
		}},
	}
)

func TestEncodeResponseGolden(t *testing.T) {
	tests := []struct {
		name        string
		givenResp   adhoc.Response
		givenFormat codec.Format
		expectSeed  string // the seed's text of the same response, compared structurally
	}{
		{"seed_response", seedResponse, codec.TigaseXML, "seed_response.xml"},
		{"seed_response", seedResponse, codec.TigaseJSON, "seed_response.json"},
		{"seed_response_empty", seedResponseEmpty, codec.TigaseXML, "seed_response_empty.xml"},
		{"seed_response_empty", seedResponseEmpty, codec.TigaseJSON, "seed_response_empty.json"},
		{"seed_response_nil_form", adhoc.Response{Node: nodeEnd}, codec.TigaseXML, "seed_response_empty.xml"},
		{"seed_response_nil_form", adhoc.Response{Node: nodeEnd}, codec.TigaseJSON, "seed_response_empty.json"},
		{"three_notes", threeNotes, codec.TigaseXML, ""},
		{"three_notes", threeNotes, codec.TigaseJSON, ""},
		{"form_response", formResponse, codec.TigaseXML, ""},
		{"form_response", formResponse, codec.TigaseJSON, ""},
		{"multistage_response", multistageResponse, codec.TigaseXML, ""},
		{"multistage_response", multistageResponse, codec.TigaseJSON, ""},
		{"canceled_response", canceledResponse, codec.TigaseXML, ""},
		{"canceled_response", canceledResponse, codec.TigaseJSON, ""},
		{"escape_response", escapeResponse, codec.TigaseXML, ""},
		{"escape_response", escapeResponse, codec.TigaseJSON, ""},
		{"native_form_response", formResponse, codec.NativeXML, ""},
		{"native_result_response", nativeResultResponse, codec.NativeXML, ""},
		{"native_multistage_response", multistageResponse, codec.NativeXML, ""},
		{"native_canceled_response", canceledResponse, codec.NativeXML, ""},
		{"native_escape_response", escapeResponse, codec.NativeXML, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name+ext(tc.givenFormat), func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, codec.EncodeResponse(&buf, tc.givenFormat, seedJID, tc.givenResp))
			golden(t, tc.name+".golden"+ext(tc.givenFormat), buf.Bytes())

			if tc.expectSeed == "" {
				return
			}
			seed := readFile(t, tc.expectSeed)
			if tc.givenFormat == codec.TigaseJSON {
				assert.JSONEq(t, string(seed), buf.String(), "the seed's response")
				return
			}
			assert.Equal(t, parseXMLTree(t, seed), parseXMLTree(t, buf.Bytes()), "the seed's response")
		})
	}
}

// TestEncodeResponseShapes checks the rules of the wire contract on decoded
// output rather than on golden bytes.
func TestEncodeResponseShapes(t *testing.T) {
	t.Run("multi types carry arrays in json", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, codec.EncodeResponse(&buf, codec.TigaseJSON, sessMan, multistageResponse))
		var got struct {
			Command struct {
				Fields []struct {
					Var   string `json:"var"`
					Value any    `json:"value"`
				} `json:"fields"`
			} `json:"command"`
		}
		require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
		values := map[string]any{}
		for _, fd := range got.Command.Fields {
			values[fd.Var] = fd.Value
		}
		assert.Equal(t, []any{"a"}, values["features"], "list-multi with one value")
		assert.Equal(t, "25", values["max_items"], "list-single")
		assert.Equal(t, "true", values["notify"], "boolean")
		assert.Nil(t, values["password"], "no value")
	})
	t.Run("values escaped exactly once", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, codec.EncodeResponse(&buf, codec.TigaseJSON, sessMan, escapeResponse))
		assert.Contains(t, buf.String(), `"<xml>&amp;</xml>"`)
		buf.Reset()
		require.NoError(t, codec.EncodeResponse(&buf, codec.TigaseXML, sessMan, escapeResponse))
		assert.Contains(t, buf.String(), `<item>&lt;xml&gt;&amp;amp;&lt;/xml&gt;</item>`)
		tree := parseXMLTree(t, buf.Bytes())
		var values []string
		for _, c := range tree.Children {
			if c.Name.Local != "fields" {
				continue
			}
			for _, v := range c.Children[0].Children {
				if v.Name.Local == "value" {
					for _, it := range v.Children {
						values = append(values, it.Text)
					}
				}
			}
		}
		assert.Equal(t, []string{"<xml>&amp;</xml>", "]]>", ""}, values)
	})
	t.Run("characters XML cannot carry become U+FFFD", func(t *testing.T) {
		resp := adhoc.Response{Node: "n", Status: adhoc.StatusCompleted, Notes: []adhoc.Note{{Type: adhoc.NoteInfo, Text: "a\xffb\x01c\uFFFDd\U0001F600"}}}
		for _, f := range []codec.Format{codec.TigaseXML, codec.NativeXML} {
			var buf bytes.Buffer
			require.NoError(t, codec.EncodeResponse(&buf, f, sessMan, resp))
			assert.Contains(t, buf.String(), "a\uFFFDb\uFFFDc\uFFFDd\U0001F600", "an invalid byte, a control character, a real U+FFFD; others are kept")
			parseXMLTree(t, buf.Bytes())
		}
	})
	t.Run("no state, no cause on the wire", func(t *testing.T) {
		resp := seedResponse
		resp.State = "secret-state"
		for _, f := range []codec.Format{codec.TigaseXML, codec.TigaseJSON, codec.NativeXML} {
			var buf bytes.Buffer
			require.NoError(t, codec.EncodeResponse(&buf, f, sessMan, resp))
			assert.NotContains(t, buf.String(), "secret-state")
		}
	})
}

func TestDecodeRequestInvalidGolden(t *testing.T) {
	tests := []struct {
		givenFile      string
		whenFormat     codec.Format
		expectText     string
		expectSpecific string
	}{
		{"invalid_malformed.xml", codec.TigaseXML, "The request body is not well-formed XML: XML syntax error on line 4: unexpected EOF.", ""},
		{"invalid_doctype.xml", codec.TigaseXML, "The request body has a document type declaration; DTDs are not allowed.", ""},
		{"invalid_entity.xml", codec.TigaseXML, "The request body is not well-formed XML: XML syntax error on line 2: invalid character entity &xxe;.", ""},
		{"invalid_no_node.xml", codec.TigaseXML, "The command envelope has no node.", ""},
		{"invalid_no_var.xml", codec.TigaseXML, "Field 3 has no var.", ""},
		{"invalid_root.xml", codec.TigaseXML, "The root element must be command, not iq.", ""},
		{"invalid_trailing.xml", codec.TigaseXML, "The request body has more than one root element.", ""},
		{"invalid_action.xml", codec.TigaseXML, `The action "jump" is not one of execute, next, prev, complete or cancel.`, "malformed-action"},
		{"invalid_empty.xml", codec.TigaseXML, "The request body is empty.", ""},
		{"invalid_native_no_node.xml", codec.NativeXML, "The command envelope has no node.", ""},
		{"invalid_malformed.json", codec.TigaseJSON, "The request body is not valid JSON: invalid character '}' looking for beginning of value (at byte 86).", ""},
		{"invalid_no_node.json", codec.TigaseJSON, "The command envelope has no node.", ""},
		{"invalid_no_var.json", codec.TigaseJSON, "Field 3 has no var.", ""},
		{"invalid_value_type.json", codec.TigaseJSON, "Field accountjids: value must be a string or an array of strings.", ""},
		{"invalid_value_number.json", codec.TigaseJSON, "Field accountjids: value must be a string or an array of strings.", ""}, // 1e400: no float64 holds it
		{"invalid_value_item_type.json", codec.TigaseJSON, "Field accountjids: value must be a string or an array of strings.", ""},
		{"invalid_node_type.json", codec.TigaseJSON, "The node must be a string.", ""},
		{"invalid_fields_type.json", codec.TigaseJSON, "The fields must be an array.", ""},
		{"invalid_trailing.json", codec.TigaseJSON, "The request body has data after the JSON object.", ""},
		{"invalid_not_object.json", codec.TigaseJSON, `The request body must be a JSON object with a "command" object.`, ""},
		{"invalid_empty.json", codec.TigaseJSON, "The request body is empty.", ""},
	}
	for _, tc := range tests {
		t.Run(tc.givenFile, func(t *testing.T) {
			_, f, err := codec.DecodeRequest(bytes.NewReader(readFile(t, tc.givenFile)), tc.whenFormat)
			require.Error(t, err)
			var e *adhoc.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, stanza.BadRequest, e.Condition)
			assert.Equal(t, tc.expectSpecific, e.Specific)
			assert.Equal(t, tc.expectText, e.Text)

			var buf bytes.Buffer
			require.NoError(t, codec.EncodeError(&buf, f, e))
			base := strings.TrimSuffix(tc.givenFile, filepath.Ext(tc.givenFile))
			golden(t, base+".golden"+ext(f), buf.Bytes())
		})
	}
}

func TestEncodeErrorGolden(t *testing.T) {
	tests := []struct {
		name     string
		givenErr error
	}{
		{"error_forbidden", &adhoc.Error{Condition: stanza.Forbidden, Text: "Only administrators may run this command."}},
		{"error_bad_sessionid", adhoc.ErrBadSessionID},
		{"error_session_expired", adhoc.ErrSessionExpired},
		{"error_bad_action", &adhoc.Error{Condition: stanza.BadRequest, Specific: "bad-action", Text: "The action prev is not allowed at this stage."}},
		{"error_bad_payload", &adhoc.Error{Condition: stanza.BadRequest, Specific: "bad-payload", Text: `Field accountjids: "a@b@c" is not a valid JID.`}},
		{"error_item_not_found", &adhoc.Error{Condition: stanza.ItemNotFound, Text: `There is no command "urn:x" at sess-man@localhost.`}},
		{"error_jid_malformed", &adhoc.Error{Condition: stanza.JIDMalformed, Text: "The component JID must not have a resource."}},
		{"error_not_authorized", &adhoc.Error{Condition: stanza.NotAuthorized, Text: "Authentication is required."}},
		{"error_conflict", &adhoc.Error{Condition: stanza.Conflict, Text: "Another request of this session is still running."}},
		{"error_resource_constraint", &adhoc.Error{Condition: stanza.ResourceConstraint, Text: "Too many command sessions are open; try again later."}},
		{"error_timeout", &adhoc.Error{Condition: stanza.RemoteServerTimeout, Text: "The command did not finish in time.", Err: assert.AnError}},
		{"error_internal", io.ErrClosedPipe},
		{"error_unsupported_media_type", func() error { _, err := codec.Negotiate("text/plain", "", ""); return err }()},
	}
	for _, tc := range tests {
		for _, f := range []codec.Format{codec.TigaseXML, codec.TigaseJSON} {
			t.Run(tc.name+ext(f), func(t *testing.T) {
				var buf bytes.Buffer
				require.NoError(t, codec.EncodeError(&buf, f, adhoc.AsError(tc.givenErr)))
				golden(t, tc.name+".golden"+ext(f), buf.Bytes())
				assert.NotContains(t, buf.String(), "closed pipe", "the cause is never written")
				assert.NotContains(t, buf.String(), assert.AnError.Error())

				if f == codec.TigaseXML {
					var native bytes.Buffer
					require.NoError(t, codec.EncodeError(&native, codec.NativeXML, adhoc.AsError(tc.givenErr)))
					assert.Equal(t, buf.String(), native.String(), "the native dialect uses the XML error")
				}
			})
		}
	}
}

func TestEncodeErrorNil(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, codec.EncodeError(&buf, codec.TigaseJSON, nil))
	assert.JSONEq(t, `{"error":"The command failed.","condition":"internal-server-error","type":"cancel"}`, buf.String())
}

func TestEncodeItemsGolden(t *testing.T) {
	infos := []adhoc.Info{
		{Node: nodeEnd, Name: "End User Session"},
		{Node: "http://jabber.org/protocol/admin#get-online-users-num", Name: "Get Number of Online Users"},
	}
	tests := []struct {
		name       string
		givenItems []codec.Item
	}{
		{"items", codec.NewItems(sessMan, infos)},
		{"items_empty", nil},
	}
	for _, tc := range tests {
		for _, f := range []codec.Format{codec.TigaseXML, codec.TigaseJSON} {
			t.Run(tc.name+ext(f), func(t *testing.T) {
				var buf bytes.Buffer
				require.NoError(t, codec.EncodeItems(&buf, f, tc.givenItems))
				golden(t, tc.name+".golden"+ext(f), buf.Bytes())
			})
		}
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestEncodeWriteError(t *testing.T) {
	for _, f := range []codec.Format{codec.TigaseXML, codec.TigaseJSON, codec.NativeXML} {
		assert.ErrorIs(t, codec.EncodeResponse(failWriter{}, f, sessMan, seedResponse), io.ErrShortWrite)
		assert.ErrorIs(t, codec.EncodeRequest(failWriter{}, f, adhoc.Request{Node: nodeEnd}), io.ErrShortWrite)
		assert.ErrorIs(t, codec.EncodeError(failWriter{}, f, adhoc.ErrBadAction), io.ErrShortWrite)
		assert.ErrorIs(t, codec.EncodeItems(failWriter{}, f, nil), io.ErrShortWrite)
	}
}
