package c2s_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s/c2stest"
	"github.com/adhocd/adhocd/transport/limit"
)

// defaultMaxStanza is c2s.Config's default MaxStanzaSize.
const defaultMaxStanza = 256 << 10

// hostileInput is XML a client sends instead of a stanza, and the stream
// error it must be answered with.
type hostileInput struct {
	name         string
	given        string
	expectCond   string
	expectText   string // contained in the stream error's text
	expectMemory bool   // among the worst cases, whose memory is measured
}

func hostileInputs() []hostileInput {
	overLimit := func(body string) string { return `<message to='x@localhost'><body>` + body + `</body></message>` }
	wrapper := len(overLimit(""))
	attrs := make([]string, 10000)
	for i := range attrs {
		attrs[i] = fmt.Sprintf("a%d=''", i)
	}
	mib := strings.Repeat("a", 1<<20)
	return []hostileInput{
		{name: "doctype", given: `<!DOCTYPE message [<!ELEMENT message ANY>]><message/>`,
			expectCond: "restricted-xml", expectText: "DTD"},
		{name: "entity declaration", given: `<!ENTITY lol "lol">`,
			expectCond: "restricted-xml", expectText: "DTD"},
		{name: "billion laughs", given: `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
			`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><message><body>&lol2;</body></message>`,
			expectCond: "restricted-xml", expectText: "DTD"},
		{name: "entity reference", given: `<message to='x@localhost'><body>&lol9;</body></message>`,
			expectCond: "restricted-xml", expectText: "Entity references"},
		{name: "entity reference in an attribute", given: `<message to='&xxe;'/>`,
			expectCond: "restricted-xml", expectText: "Entity references"},
		{name: "comment", given: `<message><!-- hi --></message>`,
			expectCond: "restricted-xml", expectText: "Comments"},
		{name: "processing instruction", given: `<?evil x?>`,
			expectCond: "restricted-xml", expectText: "Processing instructions"},
		{name: "100000 levels of nesting", given: `<message>` + strings.Repeat("<a>", 100000),
			expectCond: "policy-violation", expectText: "nested", expectMemory: true},
		{name: "1 MiB attribute value", given: `<message to='x@localhost' a='` + mib + `'/>`,
			expectCond: "policy-violation", expectText: "262144", expectMemory: true},
		{name: "1 MiB attribute name", given: `<message ` + mib + `='x'/>`,
			expectCond: "policy-violation", expectText: "262144", expectMemory: true},
		{name: "1 MiB element name", given: `<` + mib + `/>`,
			expectCond: "policy-violation", expectText: "262144", expectMemory: true},
		{name: "1 MiB of text", given: overLimit(mib),
			expectCond: "policy-violation", expectText: "262144", expectMemory: true},
		{name: "10000 attributes", given: `<message ` + strings.Join(attrs, " ") + `/>`,
			expectCond: "policy-violation", expectText: "attributes", expectMemory: true},
		{name: "10000 namespace declarations", given: `<message ` + strings.ReplaceAll(strings.Join(attrs, " "), "a", "xmlns:a") + `/>`,
			expectCond: "policy-violation", expectText: "attributes", expectMemory: true},
		{name: "attributes filling the limit", given: `<message` + strings.Repeat(" a=''", (defaultMaxStanza-16)/5) + `/>`,
			expectCond: "policy-violation", expectText: "attributes", expectMemory: true},
		{name: "namespace declarations filling the limit", given: `<message` + strings.Repeat(" xmlns:a='b'", (defaultMaxStanza-16)/12) + `/>`,
			expectCond: "policy-violation", expectText: "attributes", expectMemory: true},
		{name: "invalid UTF-8 in text", given: "<message to='x@localhost'><body>\xff\xfe</body></message>",
			expectCond: "not-well-formed", expectText: "UTF-8"},
		{name: "invalid UTF-8 in an attribute", given: "<message to='\xc3\x28'/>",
			expectCond: "not-well-formed", expectText: "UTF-8"},
		{name: "NUL in text", given: "<message to='x@localhost'><body>a\x00b</body></message>",
			expectCond: "not-well-formed", expectText: "U+0000"},
		{name: "NUL in a name", given: "<mess\x00age/>",
			expectCond: "not-well-formed", expectText: "not well-formed"},
		{name: "a name that is not an NCName", given: "<message to='x@localhost'><p:0 xmlns:p='urn:x'/></message>",
			expectCond: "not-well-formed", expectText: "not a valid XML name"},
		{name: "a stanza just over the limit", given: overLimit(strings.Repeat("x", defaultMaxStanza-wrapper+1)),
			expectCond: "policy-violation", expectText: "262144", expectMemory: true},
	}
}

// hostilePhase brings a fresh client to the point where the hostile input
// is sent.
type hostilePhase struct {
	name string
	when func(t *testing.T, e *env, user jid.JID, resource string) *rawClient
}

func hostilePhases() []hostilePhase {
	return []hostilePhase{
		{"before TLS", func(t *testing.T, e *env, _ jid.JID, _ string) *rawClient {
			c := e.dialRaw(t, false)
			c.open()
			c.expect("features")
			return c
		}},
		{"after STARTTLS", func(t *testing.T, e *env, _ jid.JID, _ string) *rawClient {
			c := e.dialRaw(t, false)
			c.starttls(e.client)
			c.open()
			c.expect("features")
			return c
		}},
		{"during SASL", func(t *testing.T, e *env, user jid.JID, _ string) *rawClient {
			c := e.dialRaw(t, false)
			c.starttls(e.client)
			c.open()
			c.expect("features")
			first, failure := c.scramFirst(user.Localpart())
			require.Empty(t, failure)
			require.Contains(t, first, ",s=")
			return c
		}},
		{"after bind", func(t *testing.T, e *env, user jid.JID, resource string) *rawClient {
			return e.connect(t, user, "pw", resource)
		}},
		{"WebSocket after bind", func(t *testing.T, e *env, user jid.JID, resource string) *rawClient {
			c := e.dialWebSocket(t)
			_, failure := c.login(user, "pw", sasl.ScramSha256)
			require.Empty(t, failure)
			c.bind(resource)
			return c
		}},
	}
}

// sendHostile writes given in the background, as one WebSocket message or
// on the stream: the server stops reading part of the way through the
// larger inputs, so the write may block until the server closes the
// connection, and may fail. The returned func waits for the write.
func (c *rawClient) sendHostile(given []byte) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.ws != nil {
			_ = c.ws.WriteMessage(websocket.TextMessage, given) // fails once the server has closed
			return
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.conn.Write(given) // fails once the server has closed
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			c.t.Error("the hostile write did not end")
		}
	}
}

// witness is a bound session that must not notice the hostile clients:
// it pings the server and sends itself a message.
func (c *rawClient) witness(t *testing.T, addr string, n int) {
	t.Helper()
	c.send(`<iq type='get' id='ping%d' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`, n)
	iq := c.expect("iq")
	assert.Equal(t, "result", iq.attr("type"), "%+v", iq)
	assert.Equal(t, fmt.Sprintf("ping%d", n), iq.attr("id"))
	c.send(`<message to='%s' id='m%d'><body>still here</body></message>`, addr, n)
	m := c.expect("message")
	assert.Equal(t, fmt.Sprintf("m%d", n), m.attr("id"))
}

func TestHostileXMLGetsAStreamErrorAndTouchesNoOtherSession(t *testing.T) {
	for _, phase := range hostilePhases() {
		t.Run(phase.name, func(t *testing.T) {
			// Each exchange abandoned during SASL counts against the
			// address; these are not the limits under test.
			e := newEnvWith(t, limit.NewFailures(limit.Limits{Address: 1000, Pair: 1000, Account: 1000}))
			mallory := e.addUser(t, "mallory", "pw")
			bob := e.addUser(t, "bob", "pw")
			witness := e.connect(t, bob, "pw", "witness")
			for i, tc := range hostileInputs() {
				t.Run(tc.name, func(t *testing.T) {
					resource := fmt.Sprintf("r%d", i)
					c := phase.when(t, e, mallory, resource)
					wait := c.sendHostile([]byte(tc.given))
					cond, text := c.expectStreamError()
					assert.Equal(t, tc.expectCond, cond, "text %q", text)
					assert.Contains(t, text, tc.expectText)
					c.expectClosed()
					wait()
					if strings.HasSuffix(phase.name, "after bind") {
						e.waitUnbound(t, "mallory@localhost/"+resource)
					}
					witness.witness(t, "bob@localhost/witness", i)
				})
			}
		})
	}
}

// TestHostileXMLCostsBoundedMemory samples the heap while each of the worst
// inputs is sent after bind, over TCP and WebSocket, and checks the peak
// stays under 16 MiB over the baseline.
func TestHostileXMLCostsBoundedMemory(t *testing.T) {
	const budget = 16 << 20
	e := newEnv(t)
	mallory := e.addUser(t, "mallory", "pw")
	for _, phase := range hostilePhases()[3:] {
		for i, tc := range hostileInputs() {
			if !tc.expectMemory {
				continue
			}
			t.Run(phase.name+"/"+tc.name, func(t *testing.T) {
				c := phase.when(t, e, mallory, fmt.Sprintf("m%d", i))
				given := []byte(tc.given) // before the baseline: the client's copy is not the server's cost
				heap := c2stest.StartHeapSampler()
				wait := c.sendHostile(given)
				cond, _ := c.expectStreamError()
				assert.Equal(t, tc.expectCond, cond)
				c.expectClosed()
				wait()
				peak := heap.Stop()
				t.Logf("peak heap growth %.2f MiB (input %d bytes)", float64(peak)/(1<<20), len(tc.given))
				assert.Less(t, peak, uint64(budget), "peak heap growth over the baseline")
			})
		}
	}
}

func TestHostileXMLBeforeTheStreamHeader(t *testing.T) {
	header := `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'`
	tests := []struct {
		name       string
		given      string
		expectCond string
		expectText string
	}{
		{"doctype", `<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol "lol">]>` + header + `>`, "restricted-xml", "DTD"},
		{"comment", `<!-- hi -->` + header + `>`, "restricted-xml", "Comments"},
		{"1 MiB comment", `<!--` + strings.Repeat("x", 1<<20) + `-->` + header + `>`, "policy-violation", "262144"},
		{"processing instruction", `<?evil?>` + header + `>`, "restricted-xml", "Processing instructions"},
		{"1 MiB of whitespace", strings.Repeat(" ", 1<<20) + header + `>`, "policy-violation", "262144"},
		{"1 MiB attribute in the header", header + ` a='` + strings.Repeat("x", 1<<20) + `'>`, "policy-violation", "262144"},
		{"10000 attributes in the header", header + strings.Repeat(" a=''", 10000) + `>`, "policy-violation", "attributes"},
		{"entity reference in the header", header + ` id='&xxe;'>`, "restricted-xml", "Entity references"},
		{"NUL", "\x00" + header + `>`, "not-well-formed", "not well-formed"},
	}
	e := newEnv(t)
	witness := e.connect(t, e.addUser(t, "bob", "pw"), "pw", "witness")
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, directTLS := range []bool{false, true} {
				c := e.dialRaw(t, directTLS)
				wait := c.sendHostile([]byte(tc.given))
				cond, text := c.expectStreamError()
				assert.Equal(t, tc.expectCond, cond, "text %q", text)
				assert.Contains(t, text, tc.expectText)
				c.expectClosed()
				wait()
			}
			witness.witness(t, "bob@localhost/witness", i)
		})
	}
}
