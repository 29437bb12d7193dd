package c2s_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
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

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/transport/c2s"
)

func TestLoginWithEachMechanism(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "alice", "correct horse")
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain} {
		t.Run(mech.Name, func(t *testing.T) {
			s, err := e.dialMellium(t, user, "correct horse", mech)
			require.NoError(t, err)
			bound := s.LocalAddr()
			assert.Equal(t, user.String(), bound.Bare().String())
			require.NotEmpty(t, bound.Resourcepart(), "an empty resource request gets a generated one")
			c, ok := e.reg.Lookup(bound)
			require.True(t, ok, "the registry holds the bound resource")
			assert.Equal(t, c2s.TransportTCP, c.Transport())
		})
	}
	acct, err := e.db.User(context.Background(), user)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), acct.LastLogin, time.Minute, "last login is recorded")
}

func TestDirectTLSOffersPlainAndStartTLSPortRequiresTLS(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "alice", "pw")

	c := e.dialRaw(t, true)
	offered, failure := c.login(user, "pw", sasl.ScramSha256)
	require.Empty(t, failure)
	assert.Equal(t, []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, offered, "never a -PLUS mechanism")
	full := c.bind("laptop")
	assert.Equal(t, "alice@localhost/laptop", full, "the requested resource is honoured")
	conn, ok := e.reg.Lookup(jid.MustParse(full))
	require.True(t, ok)
	assert.Equal(t, c2s.TransportTLS, conn.Transport())

	plain := e.dialRaw(t, false)
	plain.open()
	features := plain.expect("features")
	_, hasMechs := features.find("mechanisms")
	assert.False(t, hasMechs, "no SASL before STARTTLS")
	_, required := features.find("required")
	assert.True(t, required, "STARTTLS is required")
	plain.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>`)
	cond, _ := plain.expectStreamError()
	assert.Equal(t, "policy-violation", cond)
}

func TestBadPasswordMayRetry(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "bob", "right")

	_, err := e.dialMellium(t, user, "wrong", sasl.ScramSha256)
	require.Error(t, err, "mellium refuses a wrong password")
	assert.Contains(t, err.Error(), "not-authorized")

	c := e.dialRaw(t, true)
	_, failure := c.login(user, "wrong", sasl.ScramSha256)
	assert.Equal(t, "not-authorized", failure)
	failure = c.auth(user, "wrong", sasl.Plain)
	assert.Equal(t, "not-authorized", failure)
	// Unknown users fail the same way, at the same step.
	failure = c.auth(jid.MustParse("nobody@localhost"), "x", sasl.ScramSha1)
	assert.Equal(t, "not-authorized", failure)
	// A third failure ends the stream.
	cond, _ := c.expectStreamError()
	assert.Equal(t, "policy-violation", cond)

	c = e.dialRaw(t, true)
	_, failure = c.login(user, "wrong", sasl.Plain)
	assert.Equal(t, "not-authorized", failure)
	failure = c.auth(user, "right", sasl.ScramSha256)
	assert.Empty(t, failure, "a retry with the right password succeeds")
	assert.Equal(t, "bob@localhost/r", c.bind("r"))
}

func TestDisabledAccountIsRefused(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "carol", "pw")
	require.NoError(t, e.db.SetDisabled(context.Background(), user, true))
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.Plain} {
		c := e.dialRaw(t, true)
		_, failure := c.login(user, "pw", mech)
		assert.Equal(t, "account-disabled", failure, mech.Name)
	}
}

func TestResourceConflictEndsOlderSession(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "dave", "pw")
	older := e.connect(t, user, "pw", "phone")
	newer := e.connect(t, user, "pw", "phone")

	cond, _ := older.expectStreamError()
	assert.Equal(t, "conflict", cond)
	older.expectClosed()

	c, ok := e.reg.Lookup(jid.MustParse("dave@localhost/phone"))
	require.True(t, ok)
	assert.Equal(t, 1, len(e.reg.Resources(user)))
	// The newer session works.
	newer.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Equal(t, "result", newer.expect("iq").attr("type"))
	assert.NotEmpty(t, c.SessionID())
}

func TestRoutingBetweenClients(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser(t, "alice", "pw")
	bob := e.addUser(t, "bob", "pw")
	a := e.connect(t, alice, "pw", "desk")
	b := e.connect(t, bob, "pw", "phone")

	// A message to a full JID, with a forged from that the server replaces.
	a.send(`<message to='bob@localhost/phone' from='mallory@localhost/x' type='chat' id='m1'><body>hi &amp; bye</body></message>`)
	m := b.expect("message")
	assert.Equal(t, "alice@localhost/desk", m.attr("from"))
	body, _ := m.find("body")
	assert.Equal(t, "hi & bye", body.Text)

	// A message to the bare JID reaches the user's resource.
	a.send(`<message to='bob@localhost' type='chat' id='m2'><body>bare</body></message>`)
	m = b.expect("message")
	assert.Equal(t, "m2", m.attr("id"))

	// An iq to a full JID is forwarded and its result comes back.
	a.send(`<iq to='bob@localhost/phone' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>`)
	q := b.expect("iq")
	assert.Equal(t, "alice@localhost/desk", q.attr("from"))
	b.send(`<iq to='alice@localhost/desk' type='result' id='q1'><query xmlns='jabber:iq:version'><name>raw</name></query></iq>`)
	r := a.expect("iq")
	assert.Equal(t, "result", r.attr("type"))
	assert.Equal(t, "bob@localhost/phone", r.attr("from"))

	// An iq to a resource that is not bound: service-unavailable.
	a.send(`<iq to='bob@localhost/gone' type='get' id='q2'><query xmlns='jabber:iq:version'/></iq>`)
	r = a.expect("iq")
	assert.Equal(t, "error", r.attr("type"))
	_, ok := r.find("service-unavailable")
	assert.True(t, ok, "%+v", r)

	// Presence is tracked per resource.
	b.send(`<presence><show>away</show></presence>`)
	require.Eventually(t, func() bool {
		c, ok := e.reg.Lookup(jid.MustParse("bob@localhost/phone"))
		return ok && c.Presence() == "away"
	}, 5*time.Second, 5*time.Millisecond)
}

func TestMelliumClientsExchangeMessagesAndPing(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser(t, "alice", "pw")
	bob := e.addUser(t, "bob", "pw")
	sa, err := e.dialMellium(t, alice, "pw", sasl.ScramSha256)
	require.NoError(t, err)
	sb, err := e.dialMellium(t, bob, "pw", sasl.ScramSha1)
	require.NoError(t, err)

	received := make(chan stanza.Message, 1)
	go func() {
		_ = sb.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local == "message" {
				msg, err := stanza.NewMessage(*start)
				if err == nil {
					received <- msg
				}
			}
			return nil
		}))
	}()
	go func() { _ = sa.Serve(nil) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ping the server (XEP-0199): a result, not an error.
	resp, err := sa.SendIQ(ctx, stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse(domain)}.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}})))
	require.NoError(t, err)
	tok, err := resp.Token()
	require.NoError(t, err)
	start := tok.(xml.StartElement)
	iq, err := stanza.NewIQ(start)
	require.NoError(t, err)
	assert.Equal(t, stanza.ResultIQ, iq.Type)
	require.NoError(t, resp.Close())

	require.NoError(t, sa.Send(ctx, stanza.Message{To: sb.LocalAddr(), Type: stanza.ChatMessage}.Wrap(nil)))
	select {
	case msg := <-received:
		assert.Equal(t, sa.LocalAddr().String(), msg.From.String())
	case <-ctx.Done():
		t.Fatal("bob did not receive alice's message")
	}
}

func TestStanzaSizeLimit(t *testing.T) {
	e := newEnv(t, func(c *c2s.Config) { c.MaxStanzaSize = 4096 })
	user := e.addUser(t, "eve", "pw")
	c := e.connect(t, user, "pw", "r")
	c.send(`<message to='eve@localhost/r'><body>%s</body></message>`, strings.Repeat("x", 2000))
	c.expect("message")
	go func() {
		// The server stops reading mid-stanza, so this write may fail.
		_, _ = fmt.Fprintf(c.conn, `<message to='eve@localhost/r'><body>%s</body></message>`, strings.Repeat("x", 64<<10))
	}()
	cond, text := c.expectStreamError()
	assert.Equal(t, "policy-violation", cond)
	assert.Contains(t, text, "4096")
	e.waitUnbound(t, "eve@localhost/r")
}

func TestSilentClientHitsNegotiationDeadline(t *testing.T) {
	e := newEnv(t, func(c *c2s.Config) { c.NegotiationTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	out, err := io.ReadAll(conn)
	require.NoError(t, err, "the server closes the connection (not our 10s safety deadline)")
	assert.Contains(t, string(out), "connection-timeout")
}

func TestWhitespaceBetweenElementsDuringNegotiation(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "frank", "pw")
	c := e.dialRaw(t, true)
	c.send("<?xml version='1.0'?>\n<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>\n  ")
	c.expect("features")
	c.send("\n<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZyYW5rAHB3</auth>\n\n")
	c.expect("success")
	c.send("\n <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>\n")
	c.expect("features")
	c.send("\t<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>ws</resource></bind></iq>\n")
	assert.Equal(t, "result", c.expect("iq").attr("type"))
	_, ok := e.reg.Lookup(jid.MustParse("frank@localhost/ws"))
	assert.True(t, ok)
	_ = user
}

func TestClientThatStopsReadingIsDropped(t *testing.T) {
	e := newEnv(t, func(c *c2s.Config) {
		c.WriteTimeout = 300 * time.Millisecond
		c.MaxQueuedBytes = 256 << 10
	})
	alice := e.addUser(t, "alice", "pw")
	bob := e.addUser(t, "bob", "pw")
	a := e.connect(t, alice, "pw", "a")
	e.connect(t, bob, "pw", "stuck") // never read from again

	body := strings.Repeat("y", 8000)
	for i := 0; ; i++ {
		if _, ok := e.reg.Lookup(jid.MustParse("bob@localhost/stuck")); !ok {
			break
		}
		require.Less(t, i, 10000, "bob was never dropped")
		a.send(`<message to='bob@localhost/stuck' type='headline'><body>%s</body></message>`, body)
	}
	// The sender was not held up and still works.
	a.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Equal(t, "result", a.expect("iq").attr("type"))
}

func TestEndUserWithThreeResourcesWhileTheySend(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "gina", "pw")
	clients := make([]*rawClient, 3)
	for i := range clients {
		clients[i] = e.connect(t, user, "pw", fmt.Sprintf("r%d", i))
	}
	// Each client keeps sending to itself from a writer goroutine; its
	// reader below collects what comes back until the stream error.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := fmt.Fprintf(c.conn, `<message to='gina@localhost/r%d' id='%d'><body>x</body></message>`, i, n); err != nil {
					return
				}
			}
		}()
	}
	type result struct{ cond, text string }
	results := make(chan result, len(clients))
	for _, c := range clients {
		go func() {
			for {
				n, err := c.next()
				if err != nil {
					results <- result{}
					return
				}
				if n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams" {
					r := result{}
					for _, ch := range n.Nodes {
						if ch.XMLName.Local == "text" {
							r.text = ch.Text
						} else {
							r.cond = ch.XMLName.Local
						}
					}
					results <- r
					return
				}
			}
		}()
	}

	ended, err := e.end(t, "Spamming.", user)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, []string{"gina@localhost/r0", "gina@localhost/r1", "gina@localhost/r2"}, ended)
	assert.Empty(t, e.reg.Resources(user), "End returns after the sessions are gone")
	for range clients {
		r := <-results
		assert.Equal(t, "policy-violation", r.cond)
		assert.Equal(t, "Spamming.", r.text)
	}

	// Ending a user who is not online returns nothing and is no error.
	ended, err = e.end(t, "", user)
	require.NoError(t, err)
	assert.Empty(t, ended)
}

func TestEndOneResourceByFullJID(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "hal", "pw")
	a := e.connect(t, user, "pw", "a")
	b := e.connect(t, user, "pw", "b")
	ended, err := e.end(t, "", jid.MustParse("hal@localhost/a"))
	require.NoError(t, err)
	assert.Equal(t, []string{"hal@localhost/a"}, ended)
	cond, text := a.expectStreamError()
	assert.Equal(t, "policy-violation", cond)
	assert.Equal(t, session.DefaultEndReason, text)
	b.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Equal(t, "result", b.expect("iq").attr("type"), "the other resource is untouched")
}

func TestMelliumClientSeesEndReason(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "ivy", "pw")
	s, err := e.dialMellium(t, user, "pw", sasl.ScramSha256)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(nil) }()
	_, err = e.end(t, "Account under review.", user)
	require.NoError(t, err)
	select {
	case err := <-served:
		var se stream.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "policy-violation", se.Err)
		require.NotEmpty(t, se.Text)
		assert.Equal(t, "Account under review.", se.Text[0].Value)
	case <-time.After(10 * time.Second):
		t.Fatal("mellium client saw no stream error")
	}
}

func TestWebSocket(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "jay", "pw")
	other := e.connect(t, e.addUser(t, "kim", "pw"), "pw", "tcp")

	ws := e.dialWebSocket(t)
	offered, failure := ws.login(user, "pw", sasl.ScramSha256)
	require.Empty(t, failure)
	assert.NotContains(t, offered, "PLAIN", "no PLAIN on ws:// without TLS")
	assert.Equal(t, "jay@localhost/web", ws.bind("web"))
	c, ok := e.reg.Lookup(jid.MustParse("jay@localhost/web"))
	require.True(t, ok)
	assert.Equal(t, c2s.TransportWebSocket, c.Transport())

	// A large stanza still arrives as one frame (next checks one element per frame).
	big := strings.Repeat("z", 20000)
	other.send(`<message to='jay@localhost/web'><body>%s</body></message>`, big)
	m := ws.expect("message")
	body, _ := m.find("body")
	assert.Len(t, body.Text, len(big))

	// <close/> from the client is answered with <close/>.
	ws.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`)
	ws.expect("close")
	e.waitUnbound(t, "jay@localhost/web")
}

func TestWebSocketEndSendsStreamErrorAndClose(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "lee", "pw")
	ws := e.dialWebSocket(t)
	_, failure := ws.login(user, "pw", sasl.ScramSha1)
	require.Empty(t, failure)
	ws.bind("web")
	_, err := e.end(t, "bye", user)
	require.NoError(t, err)
	cond, text := ws.expectStreamError()
	assert.Equal(t, "policy-violation", cond)
	assert.Equal(t, "bye", text)
	ws.expect("close")
}

func TestShutdownSendsSystemShutdown(t *testing.T) {
	e := newEnv(t)
	user := e.addUser(t, "max", "pw")
	c := e.connect(t, user, "pw", "r")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.srv.Close(ctx))
	cond, _ := c.expectStreamError()
	assert.Equal(t, "system-shutdown", cond)
	counts, err := e.reg.Count(t.Context(), session.CountRequest{})
	require.NoError(t, err)
	assert.Zero(t, counts.Sessions)
}

func TestIdleClientIsPingedThenDropped(t *testing.T) {
	e := newEnv(t, func(c *c2s.Config) {
		c.IdleTimeout = 100 * time.Millisecond
		c.PingTimeout = 200 * time.Millisecond
	})
	user := e.addUser(t, "quiet", "pw")
	answers := e.connect(t, user, "pw", "answers")
	silent := e.connect(t, user, "pw", "silent")

	ping := answers.expect("iq")
	assert.Equal(t, "get", ping.attr("type"))
	_, isPing := ping.find("ping")
	require.True(t, isPing, "%+v", ping)
	answers.send(`<iq type='result' id='%s' to='localhost'/>`, ping.attr("id"))

	silent.expect("iq") // the ping, left unanswered
	cond, _ := silent.expectStreamError()
	assert.Equal(t, "connection-timeout", cond)
	e.waitUnbound(t, "quiet@localhost/silent")

	// The client that answered was kept: its next element is another ping,
	// not a stream error.
	again := answers.expect("iq")
	_, isPing = again.find("ping")
	assert.True(t, isPing, "%+v", again)
}
