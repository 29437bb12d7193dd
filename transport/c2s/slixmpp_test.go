package c2s_test

// Interop with slixmpp (Debian python3-slixmpp), driven by c2stest through
// the line protocol of testdata/clients/slixmpp_client.py.

import (
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s"
	"github.com/adhocd/adhocd/transport/c2s/c2stest"
)

// serverCertFile captures the certificate newEnv gives the server; call the
// returned function after newEnv to write it to a PEM file.
func serverCertFile(t *testing.T) (configure func(*c2s.Config), path func() string) {
	t.Helper()
	var cfg *tls.Config
	configure = func(c *c2s.Config) { cfg = c.TLS }
	path = func() string {
		t.Helper()
		require.NotNil(t, cfg)
		require.NotEmpty(t, cfg.Certificates)
		p := filepath.Join(t.TempDir(), "ca.pem")
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cfg.Certificates[0].Certificate[0]})
		require.NoError(t, os.WriteFile(p, block, 0o600))
		return p
	}
	return configure, path
}

// expectMessage reads from a raw client until a message arrives.
func expectMessage(c *rawClient) node {
	c.t.Helper()
	for {
		n, err := c.next()
		require.NoError(c.t, err)
		if n.XMLName.Local == "message" {
			return n
		}
	}
}

func TestSlixmppSessionIsEnded(t *testing.T) {
	capture, certFile := serverCertFile(t)
	e := newEnv(t, capture)
	carol := e.addUser(t, "carol", "carol-secret")
	dave := e.connect(t, e.addUser(t, "dave", "dave-secret"), "dave-secret", "raw")

	slix := c2stest.StartSlixmpp(t, c2stest.SlixmppConfig{
		Addr: e.addr, JID: jid.MustParse("carol@localhost/slix"), Password: "carol-secret", CAFile: certFile(),
	})
	assert.Equal(t, "AUTH SCRAM-SHA-256", slix.Next())
	require.Equal(t, "READY carol@localhost/slix", slix.Next())

	conn, ok := e.reg.Lookup(jid.MustParse("carol@localhost/slix"))
	require.True(t, ok, "carol@localhost/slix is not in the registry")
	assert.Equal(t, c2s.TransportTCP, conn.Transport())

	// dave -> carol.
	dave.send(`<message to='carol@localhost/slix' type='chat' id='d1'><body>Hello carol, from dave.</body></message>`)
	assert.Equal(t, "MESSAGE dave@localhost/raw Hello carol, from dave.", slix.Next())

	// carol -> dave.
	slix.Command("SEND dave@localhost/raw Hello dave, from slixmpp.")
	m := expectMessage(dave)
	assert.Equal(t, "carol@localhost/slix", m.attr("from"))
	assert.Equal(t, "chat", m.attr("type"))
	body, ok := m.find("body")
	require.True(t, ok, "%+v", m)
	assert.Equal(t, "Hello dave, from slixmpp.", body.Text)

	ended, err := e.end(t, "Ended by the e2e test.", carol)
	require.NoError(t, err)
	assert.Len(t, ended, 1)
	assert.Equal(t, "STREAM_ERROR policy-violation Ended by the e2e test.", slix.Next())
	assert.Equal(t, "DISCONNECTED", slix.Next())
	slix.ExpectExit()
	e.waitUnbound(t, "carol@localhost/slix")
}

func TestSlixmppDirectTLSAndClientClose(t *testing.T) {
	capture, certFile := serverCertFile(t)
	e := newEnv(t, capture)
	e.addUser(t, "erin", "erin-secret")

	slix := c2stest.StartSlixmpp(t, c2stest.SlixmppConfig{
		Addr: e.tlsAddr, JID: jid.MustParse("erin@localhost/slix-tls"), Password: "erin-secret", CAFile: certFile(),
		DirectTLS: true, Mech: "SCRAM-SHA-1",
	})
	assert.Equal(t, "AUTH SCRAM-SHA-1", slix.Next())
	require.Equal(t, "READY erin@localhost/slix-tls", slix.Next())
	conn, ok := e.reg.Lookup(jid.MustParse("erin@localhost/slix-tls"))
	require.True(t, ok, "erin@localhost/slix-tls is not in the registry")
	assert.Equal(t, c2s.TransportTLS, conn.Transport())

	// The client closes its stream: the server answers and unbinds it.
	slix.Command("QUIT")
	assert.Equal(t, "DISCONNECTED", slix.Next())
	slix.ExpectExit()
	e.waitUnbound(t, "erin@localhost/slix-tls")
}
