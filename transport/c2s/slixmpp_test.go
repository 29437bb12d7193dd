package c2s_test

// Interop with slixmpp (Debian python3-slixmpp), driven through the line
// protocol of testdata/clients/slixmpp_client.py.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s"
)

const slixmppScript = "../../testdata/clients/slixmpp_client.py"

// slixmppPython returns a Python interpreter that can import slixmpp. The
// Debian package installs it for /usr/bin/python3, which may not be the
// python3 first on PATH (pyenv, virtualenvs). Without one, the test is
// skipped, or fails when the environment variable CI is set.
func slixmppPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"python3", "/usr/bin/python3"}
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = exec.CommandContext(ctx, path, "-c", "import slixmpp").Run()
		cancel()
		if err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("no python3 among %v can import slixmpp: install the Debian package python3-slixmpp (apt-get install python3-slixmpp)", candidates)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

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

// slixClient is a running slixmpp_client.py.
type slixClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // stdout lines, closed at EOF
	exited chan struct{} // closed once the process has exited
}

// startSlixmpp runs the script as full (user@domain/resource) against addr.
func startSlixmpp(t *testing.T, addr string, full jid.JID, password, cafile string, extra ...string) *slixClient {
	t.Helper()
	python := slixmppPython(t)
	host, port, ok := strings.Cut(addr, ":")
	require.True(t, ok, addr)
	args := append([]string{slixmppScript, "--jid", full.String(), "--host", host, "--port", port, "--cafile", cafile}, extra...)
	if testing.Verbose() {
		args = append(args, "--debug")
	}
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), "XMPP_PASSWORD="+password, "PYTHONUNBUFFERED=1")
	cmd.Stderr = slixLog{t}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	c := &slixClient{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		_ = cmd.Wait() // after the last read, as Wait closes the pipe; the status is in cmd.ProcessState
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = stdin.Close() // the script may be gone already
		select {
		case <-c.exited:
		default:
			// Still connected: the test failed before the end. Stop it.
			_ = cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// slixLog copies the script's stderr (Python logging) into the test log.
type slixLog struct{ t *testing.T }

func (w slixLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
	}
	return len(p), nil
}

// next returns the next stdout line of the script.
func (c *slixClient) next() string {
	c.t.Helper()
	select {
	case line, ok := <-c.lines:
		require.True(c.t, ok, "slixmpp_client.py closed its output")
		c.t.Logf("slixmpp_client.py: %s", line)
		return line
	case <-time.After(15 * time.Second):
		c.t.Fatal("slixmpp_client.py printed nothing for 15s")
		return ""
	}
}

func (c *slixClient) command(format string, args ...any) {
	c.t.Helper()
	_, err := fmt.Fprintf(c.stdin, format+"\n", args...)
	require.NoError(c.t, err)
}

// expectExit waits for the script to exit by itself and checks its status.
func (c *slixClient) expectExit() {
	c.t.Helper()
	select {
	case <-c.exited:
		assert.Equal(c.t, 0, c.cmd.ProcessState.ExitCode(), "exit status: %s", c.cmd.ProcessState)
	case <-time.After(10 * time.Second):
		c.t.Fatal("slixmpp_client.py did not exit after it was disconnected")
	}
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

	slix := startSlixmpp(t, e.addr, jid.MustParse("carol@localhost/slix"), "carol-secret", certFile())
	assert.Equal(t, "AUTH SCRAM-SHA-256", slix.next())
	require.Equal(t, "READY carol@localhost/slix", slix.next())

	conn, ok := e.reg.Lookup(jid.MustParse("carol@localhost/slix"))
	require.True(t, ok, "carol@localhost/slix is not in the registry")
	assert.Equal(t, c2s.TransportTCP, conn.Transport())

	// dave -> carol.
	dave.send(`<message to='carol@localhost/slix' type='chat' id='d1'><body>Hello carol, from dave.</body></message>`)
	assert.Equal(t, "MESSAGE dave@localhost/raw Hello carol, from dave.", slix.next())

	// carol -> dave.
	slix.command("SEND dave@localhost/raw Hello dave, from slixmpp.")
	m := expectMessage(dave)
	assert.Equal(t, "carol@localhost/slix", m.attr("from"))
	assert.Equal(t, "chat", m.attr("type"))
	body, ok := m.find("body")
	require.True(t, ok, "%+v", m)
	assert.Equal(t, "Hello dave, from slixmpp.", body.Text)

	ended, err := e.reg.End(context.Background(), []jid.JID{carol}, "", "Ended by the e2e test.")
	require.NoError(t, err)
	assert.Len(t, ended, 1)
	assert.Equal(t, "STREAM_ERROR policy-violation Ended by the e2e test.", slix.next())
	assert.Equal(t, "DISCONNECTED", slix.next())
	slix.expectExit()
	e.waitUnbound(t, "carol@localhost/slix")
}

func TestSlixmppDirectTLSAndClientClose(t *testing.T) {
	capture, certFile := serverCertFile(t)
	e := newEnv(t, capture)
	e.addUser(t, "erin", "erin-secret")

	slix := startSlixmpp(t, e.tlsAddr, jid.MustParse("erin@localhost/slix-tls"), "erin-secret", certFile(),
		"--direct-tls", "--mech", "SCRAM-SHA-1")
	assert.Equal(t, "AUTH SCRAM-SHA-1", slix.next())
	require.Equal(t, "READY erin@localhost/slix-tls", slix.next())
	conn, ok := e.reg.Lookup(jid.MustParse("erin@localhost/slix-tls"))
	require.True(t, ok, "erin@localhost/slix-tls is not in the registry")
	assert.Equal(t, c2s.TransportTLS, conn.Transport())

	// The client closes its stream: the server answers and unbinds it.
	slix.command("QUIT")
	assert.Equal(t, "DISCONNECTED", slix.next())
	slix.expectExit()
	e.waitUnbound(t, "erin@localhost/slix-tls")
}
