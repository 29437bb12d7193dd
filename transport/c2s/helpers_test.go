package c2s_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/adhocd/adhocd/transport/c2s"
	"github.com/adhocd/adhocd/transport/limit"
)

const domain = "localhost"

// env is a running c2s server with the real registry and account store on
// loopback listeners: STARTTLS, direct TLS and WebSocket.
type env struct {
	srv      *c2s.Server
	reg      *sessman.Registry
	db       *store.DB
	accounts *sessman.Accounts
	cmds     *adhoc.Registry
	manager  *sessman.Manager // the session service, for an HTTP API beside the listener
	addr     string           // STARTTLS
	tlsAddr  string           // direct TLS
	wsURL    string
	client   *tls.Config
}

func newEnv(t *testing.T, configure ...func(*c2s.Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, configure...)
}

// newEnvWith is newEnv with the login limits given (nil: the defaults).
func newEnvWith(t *testing.T, failures *limit.Failures, configure ...func(*c2s.Config)) *env {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	db, err := store.Open(filepath.Join(t.TempDir(), "adhocd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	serverTLS, clientTLS := testCert(t)
	cfg := c2s.Config{Domain: domain, TLS: serverTLS}
	for _, f := range configure {
		f(&cfg)
	}
	reg := sessman.New(sessman.Config{}, logger)
	cmds := adhoc.NewRegistry(adhoc.RegistryConfig{})
	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: domain}, db, logger)
	manager := sessman.NewManager(sessman.ManagerConfig{Domain: domain}, reg, accounts, logger)
	require.NoError(t, manager.Register(cmds))
	srv := c2s.New(cfg, c2s.Deps{Accounts: accounts, Registry: reg, Commands: cmds, Failures: failures, Logger: logger})

	e := &env{srv: srv, reg: reg, db: db, accounts: accounts, cmds: cmds, manager: manager, client: clientTLS}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr, e.tlsAddr = ln.Addr().String(), tln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln, false) }()
	go func() { done <- srv.Serve(tln, true) }()
	hs := httptest.NewServer(srv.WebSocketHandler())
	e.wsURL = "ws" + strings.TrimPrefix(hs.URL, "http")

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		hs.Close()
		for range 2 {
			require.ErrorIs(t, <-done, c2s.ErrServerClosed)
		}
	})
	return e
}

func (e *env) addUser(t *testing.T, local, password string) jid.JID {
	t.Helper()
	return e.addAccount(t, local, password, false)
}

func (e *env) addAccount(t *testing.T, local, password string, admin bool) jid.JID {
	t.Helper()
	user := jid.MustParse(local + "@" + domain)
	require.NoError(t, e.db.AddUser(context.Background(), user, password, admin))
	return user
}

// testCert makes a self-signed certificate for localhost and a client
// config that trusts it.
func testCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{domain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, ServerName: domain, MinVersion: tls.VersionTLS12}
	return server, client
}

// dialMellium logs in with mellium's client over STARTTLS and binds a
// server-chosen resource (mellium cannot request one).
func (e *env) dialMellium(t *testing.T, user jid.JID, password string, mech sasl.Mechanism) (*xmpp.Session, error) {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := xmpp.NewClientSession(ctx, user, conn,
		xmpp.StartTLS(e.client.Clone()),
		xmpp.SASL("", password, mech),
		xmpp.BindResource(),
	)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	t.Cleanup(func() { _ = s.Close(); _ = conn.Close() })
	return s, nil
}

// node is any XML element, decoded generically.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// find returns the first descendant (or n itself) with the local name.
func (n node) find(local string) (node, bool) {
	if n.XMLName.Local == local {
		return n, true
	}
	for _, c := range n.Nodes {
		if f, ok := c.find(local); ok {
			return f, true
		}
	}
	return node{}, false
}

// rawClient is a hand-driven XMPP client for what library clients cannot do:
// choose a resource, misbehave, stop reading, or speak WebSocket framing.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	ws   *websocket.Conn
	dec  *xml.Decoder
	sock *watchedConn // the TCP socket under TLS or WebSocket framing
}

// watchedConn is a client's TCP socket that remembers its first read error,
// so that a test can tell a TLS close_notify (TLS reports EOF before the
// socket does) from a bare FIN.
type watchedConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	return n, err
}

// readErr is the first error a read of the socket returned, or nil.
func (w *watchedConn) readErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (e *env) dialRaw(t *testing.T, directTLS bool) *rawClient {
	t.Helper()
	return e.dialRawFrom(t, "127.0.0.1", directTLS)
}

// dialRawFrom is dialRaw from the loopback address ip (such as 127.0.0.2),
// which the server sees as another remote address.
func (e *env) dialRawFrom(t *testing.T, ip string, directTLS bool) *rawClient {
	t.Helper()
	addr := e.addr
	if directTLS {
		addr = e.tlsAddr
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tcp, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	sock := &watchedConn{Conn: tcp}
	var conn net.Conn = sock
	if directTLS {
		conn = tls.Client(sock, e.client.Clone())
	}
	c := &rawClient{t: t, conn: conn, sock: sock}
	c.dec = xml.NewDecoder(conn)
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (e *env) dialWebSocket(t *testing.T) *rawClient {
	t.Helper()
	return dialWebSocketAt(t, e.wsURL, nil)
}

// dialWebSocketAt opens an XMPP WebSocket at url, sending header with the
// upgrade request.
func dialWebSocketAt(t *testing.T, url string, header http.Header) *rawClient {
	t.Helper()
	var sock *watchedConn
	d := websocket.Dialer{Subprotocols: []string{"xmpp"}, HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			tcp, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			sock = &watchedConn{Conn: tcp}
			return sock, nil
		}}
	ws, resp, err := d.Dial(url, header)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, "xmpp", ws.Subprotocol())
	t.Cleanup(func() { _ = ws.Close() })
	return &rawClient{t: t, ws: ws, sock: sock}
}

func (c *rawClient) send(format string, args ...any) {
	c.t.Helper()
	s := fmt.Sprintf(format, args...)
	if c.ws != nil {
		require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(s)))
		return
	}
	require.NoError(c.t, c.conn.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c.conn, s)
	require.NoError(c.t, err)
}

// next reads the next top-level element (or, over WebSocket, the next
// frame, which must hold exactly one element). Stream headers are skipped.
func (c *rawClient) next() (node, error) {
	c.t.Helper()
	if c.ws != nil {
		require.NoError(c.t, c.ws.SetReadDeadline(time.Now().Add(10*time.Second)))
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			return node{}, err
		}
		require.Equal(c.t, websocket.TextMessage, typ)
		var n node
		d := xml.NewDecoder(strings.NewReader(string(frame)))
		require.NoError(c.t, d.Decode(&n), "frame %q", frame)
		_, err = d.Token()
		require.ErrorIs(c.t, err, io.EOF, "one element per frame: %q", frame)
		return n, nil
	}
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return node{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "stream" {
				continue
			}
			var n node
			if err := c.dec.DecodeElement(&n, &t); err != nil {
				return node{}, err
			}
			return n, nil
		case xml.EndElement:
			return node{}, io.EOF // </stream:stream>
		}
	}
}

func (c *rawClient) expect(local string) node {
	c.t.Helper()
	n, err := c.next()
	require.NoError(c.t, err)
	require.Equal(c.t, local, n.XMLName.Local, "got %+v", n)
	return n
}

// expectStreamError reads until a stream error and returns its condition
// and text, then checks that the server ends the stream.
func (c *rawClient) expectStreamError() (condition, text string) {
	c.t.Helper()
	for {
		n, err := c.next()
		require.NoError(c.t, err)
		if n.XMLName.Local != "error" || n.XMLName.Space != "http://etherx.jabber.org/streams" {
			continue
		}
		for _, ch := range n.Nodes {
			if ch.XMLName.Local == "text" {
				text = ch.Text
			} else {
				condition = ch.XMLName.Local
			}
		}
		return condition, text
	}
}

// expectClosed waits for the server to close the stream and the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	for {
		n, err := c.next()
		if err != nil {
			return
		}
		if c.ws != nil && n.XMLName.Local == "close" {
			_, err := c.next()
			require.Error(c.t, err)
			return
		}
	}
}

func (c *rawClient) open() {
	if c.ws != nil {
		c.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='%s' version='1.0'/>`, domain)
		c.expect("open")
		return
	}
	c.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>`, domain)
}

// starttls opens the stream and upgrades it.
func (c *rawClient) starttls(cfg *tls.Config) {
	c.t.Helper()
	c.open()
	c.expect("features")
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	c.expect("proceed")
	c.conn = tls.Client(c.conn, cfg.Clone())
	c.dec = xml.NewDecoder(c.conn)
}

// login authenticates with mech and returns the mechanisms that were offered.
func (c *rawClient) login(user jid.JID, password string, mech sasl.Mechanism) (offered []string, failure string) {
	c.t.Helper()
	c.open()
	features := c.expect("features")
	mechs, ok := features.find("mechanisms")
	require.True(c.t, ok, "no SASL offered: %+v", features)
	for _, m := range mechs.Nodes {
		offered = append(offered, m.Text)
	}
	return offered, c.auth(user, password, mech)
}

// auth runs one SASL exchange on a stream that offers SASL; it returns the
// failure condition, or "" on success.
func (c *rawClient) auth(user jid.JID, password string, mech sasl.Mechanism) (failure string) {
	c.t.Helper()
	neg := sasl.NewClient(mech, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user.Localpart()), []byte(password), nil
	}))
	_, resp, err := neg.Step(nil)
	require.NoError(c.t, err)
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>`, mech.Name, base64.StdEncoding.EncodeToString(resp))
	for {
		n, err := c.next()
		require.NoError(c.t, err)
		switch n.XMLName.Local {
		case "challenge":
			data, err := base64.StdEncoding.DecodeString(n.Text)
			require.NoError(c.t, err)
			_, resp, err := neg.Step(data)
			require.NoError(c.t, err)
			c.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>`, base64.StdEncoding.EncodeToString(resp))
		case "success":
			return ""
		case "failure":
			for _, ch := range n.Nodes {
				if ch.XMLName.Local != "text" {
					failure = ch.XMLName.Local
				}
			}
			return failure
		default:
			c.t.Fatalf("unexpected %+v during SASL", n)
		}
	}
}

// bind opens the restarted stream and binds resource; it returns the bound JID.
func (c *rawClient) bind(resource string) string {
	c.t.Helper()
	c.open()
	c.expect("features")
	c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>`, resource)
	res := c.expect("iq")
	require.Equal(c.t, "result", res.attr("type"), "%+v", res)
	j, ok := res.find("jid")
	require.True(c.t, ok)
	return j.Text
}

// connect is starttls, PLAIN login and bind in one: a ready session.
func (e *env) connect(t *testing.T, user jid.JID, password, resource string) *rawClient {
	t.Helper()
	c := e.dialRaw(t, false)
	c.starttls(e.client)
	_, failure := c.login(user, password, sasl.Plain)
	require.Empty(t, failure)
	c.bind(resource)
	return c
}

// waitUnbound waits until the registry no longer holds addr.
func (e *env) waitUnbound(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, ok := e.reg.Lookup(jid.MustParse(addr))
		return !ok
	}, 10*time.Second, 5*time.Millisecond)
}

// end ends the sessions of targets through the registry, with reason, and
// returns the full JIDs ended, once they are gone.
func (e *env) end(t *testing.T, reason string, targets ...jid.JID) ([]string, error) {
	t.Helper()
	res, err := e.reg.End(t.Context(), session.EndRequest{Users: targets, All: true, Reason: reason})
	ended := []string{}
	for _, s := range res.Ended {
		ended = append(ended, s.JID)
	}
	return ended, err
}
