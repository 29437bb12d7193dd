package main

// End-to-end tests of the /rest/adhoc gateway and of in-band XEP-0050 on the
// built adhocd binary, with mellium sessions and a slixmpp client
// (Debian python3-slixmpp) as the sessions that get ended.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/adhocd/adhocd/transport/c2s/c2stest"
)

const (
	nodeEndUserSession = "http://jabber.org/protocol/admin#end-user-session"
	nodeDisableUser    = "http://jabber.org/protocol/admin#disable-user"
	adminNodePrefix    = "http://jabber.org/protocol/admin#"
	e2eAdmin           = "admin@localhost"
	gatewayWait        = 15 * time.Second // the bound of every wait on the daemon or a client
	// endReplyBound bounds the reply to a command that ends a session: far
	// above the milliseconds it takes, below the daemon's 2s KickGrace.
	endReplyBound = time.Second
)

// seedFile returns a golden envelope of the seed from testdata/codec, with
// the seed's example user replaced by user.
func seedFile(t *testing.T, name, user string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/codec/" + name)
	require.NoError(t, err)
	return strings.ReplaceAll(string(b), "test@domain.com", user)
}

// gatewayResponse is an HTTP answer, read to the end.
type gatewayResponse struct {
	status int
	header http.Header
	body   []byte
}

// mediaType is the response's Content-Type without parameters.
func (r gatewayResponse) mediaType(t *testing.T) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	require.NoError(t, err, "Content-Type %q", r.header.Get("Content-Type"))
	return mt
}

// gatewayCall sends one request to the daemon's HTTP listener. user == ""
// sends no Authorization header; header holds "Key: value" pairs.
func (d *daemon) gatewayCall(t *testing.T, method, path, user, password string, body string, header ...string) gatewayResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+d.addrs["http"]+path, strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	for _, h := range header {
		k, v, ok := strings.Cut(h, ":")
		require.True(t, ok, h)
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "reading the answer to %s %s", method, path)
	t.Logf("%s %s -> %d %s", method, path, resp.StatusCode, b)
	return gatewayResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// tigaseXMLResponse is a response envelope of the Tigase XML dialect. A
// value is either text or several <item>s.
type tigaseXMLResponse struct {
	XMLName xml.Name `xml:"command"`
	JID     string   `xml:"jid"`
	Node    string   `xml:"node"`
	Fields  []struct {
		Var   string `xml:"var"`
		Type  string `xml:"type"`
		Value struct {
			Text  string   `xml:",chardata"`
			Items []string `xml:"item"`
		} `xml:"value"`
	} `xml:"fields>item"`
}

// values returns the values of field name, or nil when there is no such field.
func (r tigaseXMLResponse) values(name string) []string {
	for _, f := range r.Fields {
		if f.Var != name {
			continue
		}
		if len(f.Value.Items) > 0 {
			return f.Value.Items
		}
		if text := strings.TrimSpace(f.Value.Text); text != "" {
			return []string{text}
		}
		return []string{}
	}
	return nil
}

// gatewayError is the body of an error answer in JSON.
type gatewayError struct {
	Error     string `json:"error"`
	Condition string `json:"condition"`
	Type      string `json:"type"`
	Specific  string `json:"specific"`
}

// gatewayItems is the body of a JSON command listing.
type gatewayItems struct {
	Items []struct {
		JID  string `json:"jid"`
		Node string `json:"node"`
		Name string `json:"name"`
	} `json:"items"`
}

func (l gatewayItems) nodes() []string {
	nodes := make([]string, len(l.Items))
	for i, it := range l.Items {
		nodes[i] = it.Node
	}
	return nodes
}

// notesJSON is the JSON response of end-user-session (and of the account
// commands) with one Notes line per JID.
func notesJSON(t *testing.T, component, node string, jids ...string) string {
	t.Helper()
	lines := make([]string, len(jids))
	for i, j := range jids {
		lines[i] = "Operation successful for user " + j
	}
	fields := []any{}
	if len(lines) > 0 {
		fields = append(fields, map[string]any{"var": "Notes", "type": "text-multi", "value": lines})
	}
	b, err := json.Marshal(map[string]any{"command": map[string]any{"jid": component, "node": node, "fields": fields}})
	require.NoError(t, err)
	return string(b)
}

// commandJSON is a Tigase JSON request of node with one multi-valued field.
func commandJSON(t *testing.T, node, field string, values ...string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"command": map[string]any{"node": node,
		"fields": []any{map[string]any{"var": field, "value": values}}}})
	require.NoError(t, err)
	return string(b)
}

// served runs s.Serve and delivers its result. The daemon ending the
// session makes Serve return a stream.Error.
func served(s *xmpp.Session) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Serve(nil) }()
	return done
}

// expectStreamError waits for the session served on done to end with a
// stream error of condition; text is checked unless empty. It returns the
// error's text.
func expectStreamError(t *testing.T, who jid.JID, done <-chan error, condition, text string) string {
	t.Helper()
	select {
	case err := <-done:
		var se stream.Error
		require.ErrorAs(t, err, &se, "the session of %s ended without a stream error", who)
		assert.Equal(t, condition, se.Err, "stream error condition seen by %s", who)
		var got string
		if len(se.Text) > 0 {
			got = se.Text[0].Value
		}
		if text != "" {
			assert.Equal(t, text, got, "stream error text seen by %s", who)
		}
		return got
	case <-time.After(gatewayWait):
		t.Fatalf("the session of %s saw no stream error within %s", who, gatewayWait)
		return ""
	}
}

// expectServing checks that the session served on done has not ended.
func expectServing(t *testing.T, who jid.JID, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("the session of %s ended, and it should not have: %v", who, err)
	default:
	}
}

// pingServer sends a XEP-0199 ping to the domain and requires a result IQ:
// the session is still bound and routed.
func pingServer(t *testing.T, s *xmpp.Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	ping := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}})
	resp, err := s.SendIQElement(ctx, ping, stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse("localhost")})
	require.NoError(t, err, "ping from %s", s.LocalAddr())
	defer resp.Close()
	var iq stanza.IQ
	require.NoError(t, xml.NewTokenDecoder(resp).Decode(&iq), "decoding the answer to the ping of %s", s.LocalAddr())
	assert.Equal(t, stanza.ResultIQ, iq.Type, "answer to the ping of %s", s.LocalAddr())
}

// tryLogin is login without the require: it returns mellium's error.
func (d *daemon) tryLogin(t *testing.T, user jid.JID, password string) (*xmpp.Session, error) {
	t.Helper()
	conn, err := net.Dial("tcp", d.addrs["c2s"])
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	s, err := xmpp.NewClientSession(ctx, user, conn,
		xmpp.StartTLS(d.clientTLS(t)), xmpp.SASL("", password, sasl.ScramSha256), xmpp.BindResource())
	if err != nil {
		_ = conn.Close() // the session failed: only the socket is left
		return nil, err
	}
	t.Cleanup(func() { _ = s.Close(); _ = conn.Close() })
	return s, nil
}

// saslCondition finds the condition of a SASL <failure/> in err. mellium's
// error type for it is internal and its Error method prints the failure's
// text instead of its condition when there is a text, so its exported
// Condition field (a fmt.Stringer) is read by reflection.
func saslCondition(err error) string {
	if err == nil {
		return ""
	}
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Condition"); f.IsValid() && f.CanInterface() {
			if s, ok := f.Interface().(fmt.Stringer); ok {
				return s.String()
			}
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return saslCondition(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if c := saslCondition(e); c != "" {
				return c
			}
		}
	}
	return ""
}

// startSlixmpp logs in as full with slixmpp over STARTTLS on the daemon's
// c2s port, trusting the daemon's certificate.
func (d *daemon) startSlixmpp(t *testing.T, python string, full jid.JID, password string) *c2stest.Slixmpp {
	t.Helper()
	return c2stest.StartSlixmpp(t, c2stest.SlixmppConfig{
		Python: python, Addr: d.addrs["c2s"], JID: full, Password: password,
		CAFile: d.dir + "/cert.pem", Timeout: gatewayWait,
	})
}

// healthSessions is the number of bound resources /healthz reports.
func (d *daemon) healthSessions(t *testing.T) int {
	t.Helper()
	resp := d.gatewayCall(t, http.MethodGet, "/healthz", "", "", "")
	require.Equal(t, http.StatusOK, resp.status)
	var h struct {
		Sessions int `json:"sessions"`
	}
	require.NoError(t, json.Unmarshal(resp.body, &h))
	return h.Sessions
}

func TestE2EGatewayEndsMelliumAndSlixmppSessions(t *testing.T) {
	python := c2stest.SlixmppPython(t)
	dir := t.TempDir()
	userAdd(t, dir, "test@localhost", "test-secret")
	d := startDaemon(t, dir)
	user := jid.MustParse("test@localhost")

	m1 := d.login(t, user, "test-secret", false)
	m2 := d.login(t, user, "test-secret", true)
	m1Done, m2Done := served(m1), served(m2)
	slixJID := jid.MustParse("test@localhost/slix")
	slix := d.startSlixmpp(t, python, slixJID, "test-secret")
	assert.Equal(t, "AUTH SCRAM-SHA-256", slix.Next())
	require.Equal(t, "READY test@localhost/slix", slix.Next())
	require.NotEqual(t, m1.LocalAddr().String(), m2.LocalAddr().String(), "the server chose one resource twice")
	require.Equal(t, 3, d.healthSessions(t), "bound resources before the request")

	// The seed's XML request, verbatim but for the user, with a reason.
	reason := "Ended over HTTP."
	body := seedFile(t, "seed_request.xml", user.String())
	require.Contains(t, body, "  </fields>")
	body = strings.Replace(body, "  </fields>",
		"    <item><var>reason</var><value>"+reason+"</value></item>\n  </fields>", 1)
	resp := d.gatewayCall(t, http.MethodPost, "/rest/adhoc/sess-man@localhost", e2eAdmin, e2eAdminPassword, body,
		"Content-Type: application/xml")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "application/xml", resp.mediaType(t))
	var got tigaseXMLResponse
	require.NoError(t, xml.Unmarshal(resp.body, &got), "%s", resp.body)
	assert.Equal(t, "sess-man@localhost", got.JID)
	assert.Equal(t, nodeEndUserSession, got.Node)
	require.Len(t, got.Fields, 1, "%s", resp.body)
	assert.Equal(t, "Notes", got.Fields[0].Var)
	assert.Equal(t, "text-multi", got.Fields[0].Type)
	assert.ElementsMatch(t, []string{
		"Operation successful for user " + m1.LocalAddr().String(),
		"Operation successful for user " + m2.LocalAddr().String(),
		"Operation successful for user " + slixJID.String(),
	}, got.values("Notes"), "%s", resp.body)
	// DESIGN: "the reply is sent after the sessions are gone, not before".
	assert.Equal(t, 0, d.healthSessions(t), "bound resources right after the reply")

	expectStreamError(t, m1.LocalAddr(), m1Done, "policy-violation", reason)
	expectStreamError(t, m2.LocalAddr(), m2Done, "policy-violation", reason)
	assert.Equal(t, "STREAM_ERROR policy-violation "+reason, slix.Next())
	assert.Equal(t, "DISCONNECTED", slix.Next())
	slix.ExpectExit()

	// The seed's JSON request, verbatim but for the user: nobody is left.
	resp = d.gatewayCall(t, http.MethodPost, "/rest/adhoc/sess-man%40localhost", e2eAdmin, e2eAdminPassword,
		seedFile(t, "seed_request.json", user.String()), "Content-Type: application/json")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "application/json", resp.mediaType(t))
	want := strings.ReplaceAll(seedFile(t, "seed_response_empty.json", user.String()), "sess-man@domain.com", "sess-man@localhost")
	assert.JSONEq(t, want, string(resp.body))
}

func TestE2EGatewayFullJIDEndsOneResource(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "test@localhost", "test-secret")
	d := startDaemon(t, dir)
	user := jid.MustParse("test@localhost")

	ended := d.login(t, user, "test-secret", false)
	kept := d.login(t, user, "test-secret", false)
	endedDone, keptDone := served(ended), served(kept)
	require.NotEqual(t, ended.LocalAddr().String(), kept.LocalAddr().String(), "the server chose one resource twice")

	start := time.Now()
	resp := d.gatewayCall(t, http.MethodPost, "/rest/adhoc/localhost", e2eAdmin, e2eAdminPassword,
		commandJSON(t, nodeEndUserSession, "accountjids", ended.LocalAddr().String()), "Content-Type: application/json")
	took := time.Since(start)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	// mellium answers the stream error with </stream:stream> at once but,
	// like most client libraries, leaves closing the socket to its caller.
	// Both streams are then closed (RFC 6120 §4.4): the server may close the
	// TCP connection, and the reply should not wait for the client's FIN.
	assert.Less(t, took, endReplyBound,
		"POST end-user-session of one mellium session took %s: the reply waits for the ended client's TCP FIN. "+
			"transport/c2s/negotiate.go: after the client's </stream:stream> (errStreamClosed), teardown must unbind before it "+
			"drains until EOF or KickGrace (2s); mellium's Session.Close does not close the socket, so a drain first would "+
			"unbind the session, and return sessman.Registry.End, only after KickGrace", took)
	assert.Equal(t, "application/json", resp.mediaType(t))
	assert.JSONEq(t, notesJSON(t, "localhost", nodeEndUserSession, ended.LocalAddr().String()), string(resp.body))

	text := expectStreamError(t, ended.LocalAddr(), endedDone, "policy-violation", "")
	assert.NotEmpty(t, text, "without a reason the stream error carries a default text")
	expectServing(t, kept.LocalAddr(), keptDone)
	pingServer(t, kept)
	assert.Equal(t, 1, d.healthSessions(t), "bound resources after ending one of two")
}

func TestE2EGatewayDisableUser(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "victim@localhost", "victim-secret")
	d := startDaemon(t, dir)
	victim := jid.MustParse("victim@localhost")

	s := d.login(t, victim, "victim-secret", false)
	done := served(s)
	// The victim's credentials are verified, and cached, before the account is disabled.
	resp := d.gatewayCall(t, http.MethodGet, "/rest/adhoc/sess-man@localhost", victim.String(), "victim-secret", "",
		"Accept: application/json")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)

	resp = d.gatewayCall(t, http.MethodPost, "/rest/adhoc/sess-man@localhost", e2eAdmin, e2eAdminPassword,
		commandJSON(t, nodeDisableUser, "accountjids", victim.String()), "Content-Type: application/json")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.JSONEq(t, notesJSON(t, "sess-man@localhost", nodeDisableUser, victim.String()), string(resp.body))
	expectStreamError(t, s.LocalAddr(), done, "policy-violation", "")

	_, err := d.tryLogin(t, victim, "victim-secret")
	require.Error(t, err, "a disabled account logged in with its right password")
	t.Logf("login of the disabled account: %v (SASL condition %q)", err, saslCondition(err))
	assert.True(t, saslCondition(err) == "account-disabled" || strings.Contains(err.Error(), "account-disabled"),
		"the login should fail with the SASL condition account-disabled; got condition %q, error %q", saslCondition(err), err)

	// The cached credentials are invalidated by the disable.
	resp = d.gatewayCall(t, http.MethodGet, "/rest/adhoc/sess-man@localhost", victim.String(), "victim-secret", "",
		"Accept: application/json")
	assert.Equal(t, http.StatusForbidden, resp.status, "HTTP Basic of a disabled account (cached before the disable): %s", resp.body)

	// The CLI reads the same database while the server runs. Last logins
	// are written in batches once a second, so the line is polled.
	var line []string
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, adhocdBinary(t), "user", "list", "--data", dir)
		cmd.Env = childEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "adhocd user list: %s", stderr.String())
		line = nil
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if cols := strings.Split(l, "\t"); cols[0] == victim.String() {
				line = cols
			}
		}
		require.Len(t, line, 6, "no line jid, admin, disabled, last login, blocked until, block reason for %s in:\n%s", victim, out)
		return line[3] != "-"
	}, 10*time.Second, 50*time.Millisecond, "last login: the victim did log in")
	assert.Equal(t, "false", line[1], "admin")
	assert.Equal(t, "true", line[2], "disabled")
}

func TestE2EGatewayAuth(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "test@localhost", "test-secret")
	d := startDaemon(t, dir)
	user := jid.MustParse("test@localhost")
	s := d.login(t, user, "test-secret", false)
	done := served(s)
	seed := seedFile(t, "seed_request.json", user.String())
	someoneElse := seedFile(t, "seed_request.json", "other@localhost")

	tests := []struct {
		name            string
		givenBody       string // default: the seed request for the user's own JID
		givenPath       string
		givenUser       string // "" sends no credentials
		givenPassword   string
		expectStatus    int
		expectCondition string
	}{
		{name: "no credentials", givenPath: "/rest/adhoc/sess-man@localhost",
			expectStatus: http.StatusUnauthorized, expectCondition: "not-authorized"},
		{name: "wrong password", givenPath: "/rest/adhoc/sess-man@localhost", givenUser: e2eAdmin, givenPassword: "not-the-password",
			expectStatus: http.StatusUnauthorized, expectCondition: "not-authorized"},
		{name: "not an admin, someone else's sessions", givenBody: someoneElse, givenPath: "/rest/adhoc/sess-man@localhost", givenUser: user.String(), givenPassword: "test-secret",
			expectStatus: http.StatusForbidden, expectCondition: "forbidden"},
		{name: "resource in the path", givenPath: "/rest/adhoc/sess-man@localhost%2Fx", givenUser: e2eAdmin, givenPassword: e2eAdminPassword,
			expectStatus: http.StatusBadRequest, expectCondition: "jid-malformed"},
		{name: "unknown component", givenPath: "/rest/adhoc/pubsub.localhost", givenUser: e2eAdmin, givenPassword: e2eAdminPassword,
			expectStatus: http.StatusNotFound, expectCondition: "item-not-found"},
		{name: "unknown user as component", givenPath: "/rest/adhoc/nobody@localhost", givenUser: e2eAdmin, givenPassword: e2eAdminPassword,
			expectStatus: http.StatusNotFound, expectCondition: "item-not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.givenBody
			if body == "" {
				body = seed
			}
			resp := d.gatewayCall(t, http.MethodPost, tc.givenPath, tc.givenUser, tc.givenPassword, body,
				"Content-Type: application/json")
			require.Equal(t, tc.expectStatus, resp.status, "%s", resp.body)
			assert.Equal(t, "application/json", resp.mediaType(t))
			var e gatewayError
			require.NoError(t, json.Unmarshal(resp.body, &e), "%s", resp.body)
			assert.Equal(t, tc.expectCondition, e.Condition)
			assert.NotEmpty(t, e.Error, "an error carries a sentence")
			assert.NotEmpty(t, e.Type, "an error carries a stanza error type")
			if tc.expectStatus == http.StatusUnauthorized {
				assert.True(t, strings.HasPrefix(resp.header.Get("WWW-Authenticate"), `Basic realm="adhocd"`),
					"WWW-Authenticate: %q", resp.header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("user is offered only what they may run on themselves", func(t *testing.T) {
		resp := d.gatewayCall(t, http.MethodGet, "/rest/adhoc/sess-man@localhost", user.String(), "test-secret", "",
			"Accept: application/json")
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		assert.Equal(t, "application/json", resp.mediaType(t))
		var l gatewayItems
		require.NoError(t, json.Unmarshal(resp.body, &l), "%s", resp.body)
		assert.Equal(t, []string{nodeEndUserSession}, l.nodes(), "a non-admin may only end their own sessions")
	})
	t.Run("admin lists end-user-session", func(t *testing.T) {
		for _, path := range []string{"/rest/adhoc/sess-man@localhost", "/rest/adhoc/sess-man%40localhost", "/rest/adhoc/localhost"} {
			resp := d.gatewayCall(t, http.MethodGet, path, e2eAdmin, e2eAdminPassword, "", "Accept: application/json")
			require.Equal(t, http.StatusOK, resp.status, "GET %s: %s", path, resp.body)
			var l gatewayItems
			require.NoError(t, json.Unmarshal(resp.body, &l), "%s", resp.body)
			assert.Contains(t, l.nodes(), nodeEndUserSession, "GET %s", path)
			assert.Contains(t, l.nodes(), nodeDisableUser, "GET %s", path)
		}
	})

	// None of the refused requests ended the user's session.
	expectServing(t, s.LocalAddr(), done)
	pingServer(t, s)
}

// inBandCommand is the answer to a XEP-0050 IQ.
type inBandCommand struct {
	XMLName xml.Name `xml:"iq"`
	Type    string   `xml:"type,attr"`
	Command struct {
		Node   string `xml:"node,attr"`
		Status string `xml:"status,attr"`
		Form   struct {
			Type   string `xml:"type,attr"`
			Fields []struct {
				Var    string   `xml:"var,attr"`
				Type   string   `xml:"type,attr"`
				Values []string `xml:"value"`
			} `xml:"field"`
		} `xml:"jabber:x:data x"`
	} `xml:"http://jabber.org/protocol/commands command"`
	Error struct {
		Type  string `xml:"type,attr"`
		Inner []byte `xml:",innerxml"`
	} `xml:"error"`
}

// xmlPayload reads s as tokens without the xmlns attributes the decoder
// reports: encoding/xml's encoder writes the namespace from the element name
// and would write them a second time.
func xmlPayload(s string) xml.TokenReader {
	return xmlstream.Map(func(tok xml.Token) xml.Token {
		start, ok := tok.(xml.StartElement)
		if !ok {
			return tok
		}
		attrs := start.Attr[:0:0]
		for _, a := range start.Attr {
			if a.Name.Space != "xmlns" && (a.Name.Space != "" || a.Name.Local != "xmlns") {
				attrs = append(attrs, a)
			}
		}
		start.Attr = attrs
		return start
	})(xml.NewDecoder(strings.NewReader(s)))
}

func TestE2EInBandEndUserSessionWithMellium(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "victim@localhost", "victim-secret")
	d := startDaemon(t, dir)

	victim := d.login(t, jid.MustParse("victim@localhost"), "victim-secret", false)
	victimDone := served(victim)
	admin := d.login(t, jid.MustParse(e2eAdmin), e2eAdminPassword, true)
	adminDone := served(admin)

	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	payload := xmlPayload(`<command xmlns='http://jabber.org/protocol/commands' node='` + nodeEndUserSession + `' action='execute'>` +
		`<x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>victim@localhost</value></field></x></command>`)
	resp, err := admin.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ, To: jid.MustParse("sess-man@localhost")})
	require.NoError(t, err, "sending the command IQ")
	var got inBandCommand
	err = xml.NewTokenDecoder(resp).Decode(&got)
	require.NoError(t, resp.Close())
	require.NoError(t, err, "decoding the answer to the command IQ")
	require.Equal(t, "result", got.Type, "IQ answer type; error: %s", got.Error.Inner)
	assert.Equal(t, nodeEndUserSession, got.Command.Node)
	assert.Equal(t, "completed", got.Command.Status)
	assert.Equal(t, "result", got.Command.Form.Type)
	var notes []string
	for _, f := range got.Command.Form.Fields {
		if f.Var == "Notes" {
			assert.Equal(t, "text-multi", f.Type)
			notes = append(notes, f.Values...)
		}
	}
	assert.Equal(t, []string{"Operation successful for user " + victim.LocalAddr().String()}, notes)

	expectStreamError(t, victim.LocalAddr(), victimDone, "policy-violation", "")
	// The admin's own session goes on.
	expectServing(t, admin.LocalAddr(), adminDone)
	pingServer(t, admin)
}
