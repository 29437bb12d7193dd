package c2stest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
)

// slixmppWait bounds each wait on the script when SlixmppConfig.Timeout is zero.
const slixmppWait = 15 * time.Second

// SlixmppPython returns a Python interpreter that can import slixmpp.
// The Debian package installs it for /usr/bin/python3, which may not be the
// python3 first on PATH (pyenv, virtualenvs).
// Without one the test fails: ./test.sh installs the package.
func SlixmppPython(t testing.TB) string {
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
	ToolMissing(t, fmt.Sprintf("no python3 among %v can import slixmpp: install the Debian package python3-slixmpp (apt-get install python3-slixmpp)", candidates))
	return ""
}

// slixmppScript is the path of slixmpp_client.py.
// It is found from this file, not the working directory, which is the directory of whichever package's test runs.
func slixmppScript(t testing.TB) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok, "no source path for c2stest")
	script := filepath.Join(filepath.Dir(self), "..", "..", "..", "testdata", "clients", "slixmpp_client.py")
	_, err := os.Stat(script)
	require.NoError(t, err, "slixmpp_client.py not found from the c2stest source (built with -trimpath?)")
	return script
}

// SlixmppConfig says how StartSlixmpp runs slixmpp_client.py.
type SlixmppConfig struct {
	Python    string        // interpreter from SlixmppPython; empty: looked up by StartSlixmpp
	Addr      string        // host:port of the c2s listener
	JID       jid.JID       // full JID to log in as; its resource is the one to bind
	Password  string        // passed in XMPP_PASSWORD, never on the command line
	CAFile    string        // PEM certificate to trust; empty turns verification off
	DirectTLS bool          // XEP-0368 direct TLS instead of STARTTLS
	Mech      string        // the only SASL mechanism to use; empty: SCRAM-SHA-256
	Timeout   time.Duration // bound of each wait for a line or for the exit; zero: 15s
}

// Slixmpp is a running slixmpp_client.py.
// The process is stopped in t.Cleanup if it has not exited by then.
type Slixmpp struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	timeout time.Duration
	lines   chan string   // stdout lines, closed at EOF
	exited  chan struct{} // closed once the process has exited
}

// StartSlixmpp runs slixmpp_client.py as cfg says.
// With go test -v the script also logs its XML stream (SASL redacted) into the test log.
func StartSlixmpp(t testing.TB, cfg SlixmppConfig) *Slixmpp {
	t.Helper()
	python := cfg.Python
	if python == "" {
		python = SlixmppPython(t)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	require.NoError(t, err)
	args := []string{slixmppScript(t), "--jid", cfg.JID.String(), "--host", host, "--port", port}
	if cfg.CAFile != "" {
		args = append(args, "--cafile", cfg.CAFile)
	}
	if cfg.DirectTLS {
		args = append(args, "--direct-tls")
	}
	if cfg.Mech != "" {
		args = append(args, "--mech", cfg.Mech)
	}
	if testing.Verbose() {
		args = append(args, "--debug")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = slixmppWait
	}

	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), "XMPP_PASSWORD="+cfg.Password, "PYTHONUNBUFFERED=1")
	cmd.Stderr = stderrLog{t}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	c := &Slixmpp{t: t, cmd: cmd, stdin: stdin, timeout: timeout, lines: make(chan string, 1024), exited: make(chan struct{})}
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

// stderrLog copies the script's stderr (Python logging) into the test log.
type stderrLog struct{ t testing.TB }

func (w stderrLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
	}
	return len(p), nil
}

// Next returns the next stdout line of the script, such as "READY carol@localhost/slix".
// It fails the test if none comes within the timeout or the output ends.
func (c *Slixmpp) Next() string {
	c.t.Helper()
	select {
	case line, ok := <-c.lines:
		require.True(c.t, ok, "slixmpp_client.py closed its output")
		c.t.Logf("slixmpp_client.py: %s", line)
		return line
	case <-time.After(c.timeout):
		c.t.Fatalf("slixmpp_client.py printed nothing for %s", c.timeout)
		return ""
	}
}

// Command writes one line of the script's stdin protocol, such as "SEND <to> <body>" or "QUIT".
func (c *Slixmpp) Command(format string, args ...any) {
	c.t.Helper()
	_, err := fmt.Fprintf(c.stdin, format+"\n", args...)
	require.NoError(c.t, err)
}

// ExpectExit waits for the script to exit by itself and checks that its status is 0.
func (c *Slixmpp) ExpectExit() {
	c.t.Helper()
	select {
	case <-c.exited:
		assert.Equal(c.t, 0, c.cmd.ProcessState.ExitCode(), "slixmpp_client.py exit status: %s", c.cmd.ProcessState)
	case <-time.After(c.timeout):
		c.t.Fatal("slixmpp_client.py did not exit after it was disconnected")
	}
}
