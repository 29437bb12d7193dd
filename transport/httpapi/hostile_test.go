package httpapi_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s/c2stest"
	"github.com/adhocd/adhocd/transport/httpapi"
)

// hostileBody is a request body sent instead of a command envelope, in one
// dialect, and the answer it must get.
type hostileBody struct {
	name         string
	givenType    string // Content-Type
	givenBody    string
	expectStatus int
	expectText   string // contained in the error's text
}

const (
	tigaseXML = "application/xml"
	nativeNS  = "http://jabber.org/protocol/commands"
)

// hostileBodies are the hostile inputs of issue 12 in each dialect they
// apply to: the XML ones as Tigase XML and as native XEP-0050 XML (a root
// in the commands namespace), the JSON ones as Tigase JSON.
func hostileBodies() []hostileBody {
	mib := strings.Repeat("a", 1<<20)
	attrs := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " "+format, i)
		}
		return b.String()
	}
	members := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `"f%d":0,`, i)
		}
		return b.String()
	}
	var out []hostileBody
	for _, d := range []struct{ name, open, inner, close string }{
		{"tigase", `<command`, `><node>n</node>`, `</command>`},
		{"native", `<command xmlns='` + nativeNS + `' node='n'`, `>`, `</command>`},
	} {
		envelope := func(attrs, body string) string { return d.open + attrs + d.inner + body + d.close }
		for _, tc := range []hostileBody{
			{name: "doctype", givenBody: `<!DOCTYPE command [<!ELEMENT command ANY>]>` + envelope("", ""),
				expectStatus: 400, expectText: "The request body has a document type declaration; DTDs are not allowed."},
			{name: "entity declaration", givenBody: `<!ENTITY lol "lol">` + envelope("", ""),
				expectStatus: 400, expectText: "DTDs are not allowed."},
			{name: "billion laughs", givenBody: `<!DOCTYPE command [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
				`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>` + envelope("", "<x>&lol2;</x>"),
				expectStatus: 400, expectText: "DTDs are not allowed."},
			{name: "entity reference", givenBody: envelope("", "<x>&lol9;</x>"),
				expectStatus: 400, expectText: "invalid character entity &lol9;"},
			{name: "entity reference in an attribute", givenBody: envelope(` a='&xxe;'`, ""),
				expectStatus: 400, expectText: "invalid character entity &xxe;"},
			{name: "100000 levels of nesting", givenBody: envelope("", strings.Repeat("<a>", 100000)),
				expectStatus: 400, expectText: "The request body is nested deeper than 64 levels."},
			{name: "100000 levels of nesting, closed", givenBody: envelope("", strings.Repeat("<a>", 100000)+strings.Repeat("</a>", 100000)),
				expectStatus: 400, expectText: "The request body is nested deeper than 64 levels."},
			{name: "1 MiB attribute value", givenBody: envelope(` a='`+mib+`'`, ""),
				expectStatus: 400, expectText: "An XML tag, comment, processing instruction or CDATA section is longer than 65536 bytes."},
			{name: "1 MiB attribute name", givenBody: envelope(" "+mib+"='x'", ""),
				expectStatus: 400, expectText: "is longer than 65536 bytes."},
			{name: "1 MiB element name", givenBody: envelope("", "<"+mib+"/>"),
				expectStatus: 400, expectText: "is longer than 65536 bytes."},
			{name: "1 MiB comment", givenBody: envelope("", "<!--"+mib+"-->"),
				expectStatus: 400, expectText: "is longer than 65536 bytes."},
			{name: "2 MiB of text", givenBody: envelope("", "<x>"+mib+mib+"</x>"),
				expectStatus: 400, expectText: "An XML text is longer than 1048576 bytes."},
			{name: "100 attributes", givenBody: envelope(attrs(100, "a%d=''"), ""),
				expectStatus: 400, expectText: "An XML element has more than 64 attributes."},
			{name: "10000 attributes", givenBody: envelope(attrs(10000, "a%d=''"), ""),
				expectStatus: 400, expectText: "is longer than 65536 bytes."},
			{name: "10000 namespace declarations", givenBody: envelope(attrs(10000, "xmlns:a%d='b'"), ""),
				expectStatus: 400, expectText: "is longer than 65536 bytes."},
			{name: "attributes filling 8 MiB", givenBody: envelope(strings.Repeat(" a=''", (8<<20-64)/5), ""),
				expectStatus: 400, expectText: "is longer than 65536 bytes."},
			{name: "elements filling 8 MiB", givenBody: envelope("", strings.Repeat("<a/>", (8<<20-128)/4)),
				expectStatus: 400, expectText: "The request body has more than 20000 XML elements."},
			{name: "invalid UTF-8 in text", givenBody: envelope("", "<x>\xff\xfe</x>"),
				expectStatus: 400, expectText: "invalid UTF-8"},
			{name: "invalid UTF-8 in an attribute", givenBody: envelope(" a='\xc3\x28'", ""),
				expectStatus: 400, expectText: "invalid UTF-8"},
			{name: "NUL in text", givenBody: envelope("", "<x>a\x00b</x>"),
				expectStatus: 400, expectText: "illegal character code U+0000"},
			{name: "NUL in a name", givenBody: envelope("", "<x\x00y/>"),
				expectStatus: 400, expectText: "not well-formed XML"},
			{name: "over the body limit", givenBody: envelope("", "<x>"+strings.Repeat(mib+"<y/>", 9)+"</x>"),
				expectStatus: 413, expectText: "The request body is larger than the limit of 8388608 bytes."},
		} {
			tc.name = d.name + "/" + tc.name
			tc.givenType = tigaseXML
			out = append(out, tc)
		}
	}
	for _, tc := range []hostileBody{
		{name: "100000 levels of arrays", givenBody: `{"command":` + strings.Repeat("[", 100000),
			expectStatus: 400, expectText: "The request body is nested deeper than 64 levels."},
		{name: "100000 levels of objects", givenBody: strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000),
			expectStatus: 400, expectText: "The request body is nested deeper than 64 levels."},
		{name: "10^6 members", givenBody: `{"command":{"node":"n",` + members(1000000) + `"x":0}}`,
			expectStatus: 400, expectText: "The JSON has more than 20000 values."}, // 11 MiB, refused before the body limit
		{name: "members filling 8 MiB", givenBody: `{"command":{"node":"n",` + members(690000) + `"x":0}}`,
			expectStatus: 400, expectText: "The JSON has more than 20000 values."},
		{name: "fields filling 8 MiB", givenBody: `{"command":{"node":"n","fields":[` + strings.Repeat(`{},`, (8<<20-64)/3) + `{}]}}`,
			expectStatus: 400, expectText: "The JSON has more than 20000 values."},
		{name: "1 MiB key", givenBody: `{"command":{"node":"n","` + mib + `":1}}`,
			expectStatus: 404, expectText: ""}, // decoded: no command n
		{name: "2 MiB string", givenBody: `{"command":{"node":"n","x":"` + mib + mib + `"}}`,
			expectStatus: 400, expectText: "A JSON string is longer than 1048576 bytes."},
		{name: "invalid UTF-8", givenBody: "{\"command\":{\"node\":\"n\xff\"}}",
			expectStatus: 400, expectText: "The request body is not valid UTF-8 (at byte 22)."},
		{name: "NUL", givenBody: "{\"command\":{\"node\":\"n\x00\"}}",
			expectStatus: 400, expectText: "invalid character '\\x00' in string literal"},
	} {
		tc.name = "json/" + tc.name
		tc.givenType = "application/json"
		out = append(out, tc)
	}
	return out
}

// TestHostileBodiesOnAdhoc posts each hostile body as an admin through the
// real router, with an 8 MiB body limit so that the decoder's own limits
// are reached, and checks the answer, the peak heap growth while it runs
// (under 16 MiB over the baseline), its time, and that bob's session is
// still bound.
func TestHostileBodiesOnAdhoc(t *testing.T) {
	const budget = 16 << 20
	s := newSecuredWith(t, func(cfg *httpapi.Config) { cfg.BodyLimit = 8 << 20 })
	for _, tc := range hostileBodies() {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/rest/adhoc/sess-man@localhost", strings.NewReader(tc.givenBody))
			req.Header.Set("Content-Type", tc.givenType)
			req.Header.Set("Authorization", basicAdmin)
			rec := httptest.NewRecorder()
			heap := c2stest.StartHeapSampler()
			start := time.Now()
			s.handler.ServeHTTP(rec, req)
			took := time.Since(start)
			peak := heap.Stop()

			assert.Equal(t, tc.expectStatus, rec.Code, rec.Body.String())
			expectCond := map[int]string{400: "bad-request", 413: "policy-violation", 404: "item-not-found"}[tc.expectStatus]
			if tc.givenType == tigaseXML {
				var body struct {
					Condition string `xml:"condition"`
					Text      string `xml:"text"`
				}
				require.NoError(t, xml.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
				assert.Equal(t, expectCond, body.Condition, rec.Body.String())
				assert.Contains(t, body.Text, tc.expectText)
			} else {
				var body struct{ Condition, Error string }
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
				assert.Equal(t, expectCond, body.Condition, rec.Body.String())
				assert.Contains(t, body.Error, tc.expectText)
			}
			t.Logf("peak heap growth %.2f MiB in %v (body %d bytes)", float64(peak)/(1<<20), took, len(tc.givenBody))
			assert.Less(t, peak, uint64(budget), "peak heap growth over the baseline")
			assert.Less(t, took, 5*time.Second)
			assert.Empty(t, s.bob.reason, "bob's session was not ended")
			_, bound := s.svc.reg.Lookup(jid.MustParse("bob@localhost/x"))
			assert.True(t, bound, "bob is still bound")
		})
	}
}
