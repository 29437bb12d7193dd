package main

// End-to-end tests of the built adhocd binary, with mellium and with
// third-party clients from Debian (go-sendxmpp).

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

const e2eAdminPassword = "e2e-admin-secret"

// The binary is built once per test run, on first use, and removed by TestMain.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir) // best effort: a leftover temp dir is harmless
	}
	os.Exit(code)
}

// adhocdBinary returns the path of the adhocd binary built from this package.
func adhocdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "adhocd-e2e-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go tool is needed to build adhocd: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildBin = filepath.Join(buildDir, "adhocd")
		out, err := exec.CommandContext(ctx, goTool, "build", "-o", buildBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildBin
}

// childEnv is the environment of the processes the tests start: ours without
// any ADHOCD_* variable, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ADHOCD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// testLogWriter copies a child's output into the test log, line by line.
type testLogWriter struct {
	t      *testing.T
	prefix string
}

func (w testLogWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Logf("%s: %s", w.prefix, line)
	}
	return len(p), nil
}

// userAdd runs `adhocd user add --data dir user` with the password on stdin.
func userAdd(t *testing.T, dir, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, adhocdBinary(t), "user", "add", "--data", dir, user)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "adhocd user add %s: %s", user, out)
}

// daemon is a running `adhocd serve` process.
type daemon struct {
	cmd    *exec.Cmd
	dir    string
	domain string
	addrs  map[string]string // listener component (c2s, c2s-tls, http) -> address
	exited chan struct{}     // closed once the process has exited and its output is drained

	logMu  sync.Mutex
	errors []string // the lines logged at error level, so far
}

// loggedError reports whether a line logged at error level so far holds s.
func (d *daemon) loggedError(s string) bool {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	for _, line := range d.errors {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// startDaemon runs `adhocd serve` on loopback port 0 with data in dir and
// returns once it has logged "started". It is stopped at cleanup.
func startDaemon(t *testing.T, dir string) *daemon {
	t.Helper()
	return startDaemonWith(t, dir)
}

// startDaemonWith is startDaemon with extra `adhocd serve` flags (such as
// --pusher-app or --rate).
func startDaemonWith(t *testing.T, dir string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"serve", "--data", dir,
		"--c2s", "127.0.0.1:0", "--c2s-tls", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "debug"}, extra...)
	return startDaemonArgs(t, dir, "localhost", args...)
}

// startDaemonArgs runs `adhocd args...`, which must serve domain with its
// data in dir, on loopback port 0, and log at info level or below.
func startDaemonArgs(t *testing.T, dir, domain string, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, dir, domain, []string{"ADHOCD_ADMIN_PASSWORD=" + e2eAdminPassword}, args...)
}

// startDaemonEnv is startDaemonArgs with the environment variables env
// (NAME=value) instead of the tests' admin password.
func startDaemonEnv(t *testing.T, dir, domain string, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(adhocdBinary(t), args...)
	cmd.Env = childEnv(env...)
	cmd.Stdout = testLogWriter{t, "adhocd stdout"}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d := &daemon{cmd: cmd, dir: dir, domain: domain, exited: make(chan struct{})}

	started := make(chan map[string]string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		addrs := map[string]string{}
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.Logf("adhocd: %s", sc.Text())
			var entry struct {
				Component  string `json:"component"`
				ListenAddr string `json:"listen_addr"`
				Message    string `json:"message"`
				Level      string `json:"level"`
			}
			if json.Unmarshal(sc.Bytes(), &entry) != nil {
				continue
			}
			if entry.Level == "error" {
				d.logMu.Lock()
				d.errors = append(d.errors, sc.Text())
				d.logMu.Unlock()
			}
			if addrs == nil {
				continue
			}
			switch {
			case entry.Message == "listening" && entry.ListenAddr != "":
				addrs[entry.Component] = entry.ListenAddr
			case entry.Component == "adhocd" && entry.Message == "started":
				started <- addrs
				addrs = nil // keep draining, parse no more
			}
		}
	}()
	go func() {
		<-drained      // Wait closes the pipe: read it to the end first
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t) })

	select {
	case d.addrs = <-started:
	case <-d.exited:
		t.Fatalf("adhocd %s exited before it started: %s", strings.Join(args, " "), cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatal("adhocd serve did not log \"started\" within 30s")
	}
	for _, c := range []string{"c2s", "c2s-tls", "http"} {
		require.NotEmpty(t, d.addrs[c], "no listen_addr logged for %s", c)
	}
	return d
}

// stop ends the process with SIGTERM (SIGKILL after 10s) and waits for it.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.exited:
		return
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Logf("SIGTERM: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Error("adhocd did not exit within 10s of SIGTERM; killing it")
		_ = d.cmd.Process.Kill() // it is stuck: the test already failed
		<-d.exited
	}
}

// clientTLS trusts the certificate adhocd generated in its data directory.
func (d *daemon) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(d.dir, "cert.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem), "cert.pem holds no certificate")
	return &tls.Config{RootCAs: pool, ServerName: d.domain, MinVersion: tls.VersionTLS12}
}

// login opens a mellium client session over STARTTLS (on the c2s port) or
// direct TLS (on c2s-tls), authenticated with SCRAM-SHA-256.
func (d *daemon) login(t *testing.T, user jid.JID, password string, directTLS bool) *xmpp.Session {
	t.Helper()
	addr := d.addrs["c2s"]
	if directTLS {
		addr = d.addrs["c2s-tls"]
	}
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	features := []xmpp.StreamFeature{xmpp.SASL("", password, sasl.ScramSha256), xmpp.BindResource()}
	if directTLS {
		conn = tls.Client(conn, d.clientTLS(t))
	} else {
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(d.clientTLS(t))}, features...)
	}
	s, err := xmpp.NewClientSession(ctx, user, conn, features...)
	if err != nil {
		_ = conn.Close() // the session failed: only the socket is left
	}
	require.NoError(t, err, "mellium login as %s on %s", user, addr)
	t.Cleanup(func() { _ = s.Close(); _ = conn.Close() })
	return s
}

// requireTool fails the test when a third-party client is missing:
// ./test.sh installs it.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	c2stest.ToolMissing(t, fmt.Sprintf("%s not found: install the Debian package %s (apt-get install %s)", name, debianPackage, debianPackage))
	return ""
}

func uniqueText(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + " " + hex.EncodeToString(b)
}

// chatMessage is a message stanza with its body.
type chatMessage struct {
	stanza.Message
	Body string `xml:"body"`
}

// collectMessages serves s and delivers every message it receives.
func collectMessages(s *xmpp.Session) <-chan chatMessage {
	msgs := make(chan chatMessage, 16)
	go func() {
		// Serve ends when the test closes the session; its error is not the point.
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			// r holds what follows the start element: put it back in front.
			var m chatMessage
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&m); err != nil {
				return fmt.Errorf("decoding a message: %w", err)
			}
			msgs <- m
			return nil
		}))
	}()
	return msgs
}

func TestE2EBinaryLifecycle(t *testing.T) {
	dir := t.TempDir()
	bob := jid.MustParse("bob@localhost")
	userAdd(t, dir, bob.String(), "bob-secret") // before serve: the database is created by `user add`
	d := startDaemon(t, dir)

	resp, err := http.Get("http://" + d.addrs["http"] + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// One session per client port; the admin account made at first start logs in too.
	sessions := []*xmpp.Session{
		d.login(t, bob, "bob-secret", false),
		d.login(t, bob, "bob-secret", true),
		d.login(t, jid.MustParse("admin@localhost"), e2eAdminPassword, false),
	}
	served := make([]chan error, len(sessions))
	for i, s := range sessions {
		assert.Equal(t, "localhost", s.LocalAddr().Domainpart())
		assert.NotEmpty(t, s.LocalAddr().Resourcepart())
		served[i] = make(chan error, 1)
		go func() { served[i] <- s.Serve(nil) }()
	}

	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	for i, s := range sessions {
		select {
		case err := <-served[i]:
			var se stream.Error
			require.ErrorAs(t, err, &se, "session %s", s.LocalAddr())
			assert.Equal(t, "system-shutdown", se.Err, "session %s", s.LocalAddr())
		case <-time.After(10 * time.Second):
			t.Fatalf("session %s saw no stream error within 10s of SIGTERM", s.LocalAddr())
		}
	}
	select {
	case <-d.exited:
		assert.Equal(t, 0, d.cmd.ProcessState.ExitCode(), "exit status: %s", d.cmd.ProcessState)
	case <-time.After(10 * time.Second):
		t.Fatal("adhocd did not exit within 10s of SIGTERM")
	}
}

func TestE2EGoSendxmpp(t *testing.T) {
	sendxmpp := requireTool(t, "go-sendxmpp", "go-sendxmpp")
	dir := t.TempDir()
	userAdd(t, dir, "alice@localhost", "alice-secret")
	d := startDaemon(t, dir)
	userAdd(t, dir, "bob@localhost", "bob-secret") // while serve has the database open
	bobSession := d.login(t, jid.MustParse("bob@localhost"), "bob-secret", false)
	msgs := collectMessages(bobSession)
	home := t.TempDir() // no ~/.config/go-sendxmpp of the machine is read

	tests := []struct {
		name      string
		givenArgs []string
		hint      string // what a failure most likely means
	}{
		{
			name:      "direct TLS",
			givenArgs: []string{"--tls", "--jserver", d.addrs["c2s-tls"]},
		},
		{
			name:      "STARTTLS",
			givenArgs: []string{"--jserver", d.addrs["c2s"]},
			hint: "go-sendxmpp (go-xmpp) writes \"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\\n\": " +
				"the trailing newline is still buffered after <proceed/>, transport/c2s/negotiate.go (negotiateTLS) " +
				"refuses any buffered byte with \"c2s: data after starttls\" (logged only at debug level) and closes the socket, " +
				"so the client's TLS handshake reads EOF. Whitespace after <starttls/> should be discarded, not refused.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := uniqueText(t, "go-sendxmpp over "+tc.name)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"--username", "alice@localhost", "--password", "alice-secret"}, tc.givenArgs...)
			cmd := exec.CommandContext(ctx, sendxmpp, append(args, "bob@localhost")...)
			// The generated certificate is verified: it is the only trusted root.
			cmd.Env = childEnv("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
				"SSL_CERT_FILE="+filepath.Join(dir, "cert.pem"), "SSL_CERT_DIR="+home)
			cmd.Stdin = strings.NewReader(body + "\n")
			out, err := cmd.CombinedOutput()
			shown := strings.ReplaceAll(strings.Join(cmd.Args[1:], " "), "alice-secret", "[REDACTED]")
			require.NoError(t, err, "go-sendxmpp %s failed: %s\n%s", shown, out, tc.hint)

			for {
				select {
				case m := <-msgs:
					if m.Body != body {
						continue // from an earlier subtest
					}
					assert.Equal(t, "alice@localhost", m.From.Bare().String())
					assert.NotEmpty(t, m.From.Resourcepart(), "from must be alice's full JID")
					assert.Equal(t, "bob@localhost", m.To.Bare().String())
					return
				case <-ctx.Done():
					t.Fatalf("bob did not receive %q", body)
				}
			}
		})
	}
}
