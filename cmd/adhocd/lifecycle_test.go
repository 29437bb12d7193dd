package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
)

func TestLifecycleStopsInReverse(t *testing.T) {
	var logs bytes.Buffer
	parts := newLifecycle(zerolog.New(&logs))
	var stopped []string
	for _, name := range []string{"store", "accounts", "c2s"} {
		parts.add(name, func(ctx context.Context) error {
			_, hasDeadline := ctx.Deadline()
			assert.True(t, hasDeadline, "%s stops under the shutdown timeout", name)
			stopped = append(stopped, name)
			if name == "accounts" {
				return errors.New("boom")
			}
			return nil
		})
	}
	parts.stop(time.Second)
	assert.Equal(t, []string{"c2s", "accounts", "store"}, stopped, "a failed stop does not stop the others")
	assert.Contains(t, logs.String(), `"level":"warn","error":"boom","component":"accounts","message":"stop failed"`)

	parts.stop(time.Second)
	assert.Len(t, stopped, 3, "stopped once")
}

func TestLifecycleListenerFailure(t *testing.T) {
	parts := newLifecycle(zerolog.New(zerolog.NewTestWriter(t)))
	failing := errors.New("accept failed")
	release := make(chan struct{})
	require.NoError(t, parts.serve("x", func(context.Context) error { close(release); return nil },
		listener{"x1", "127.0.0.1:0", func(net.Listener) error { return failing }},
		listener{"x2", "", func(net.Listener) error { panic("an empty address is not served") }},
		listener{"x3", "127.0.0.1:0", func(net.Listener) error { <-release; return failing }},
	))
	err := parts.wait(t.Context())
	require.ErrorIs(t, err, failing)
	assert.Equal(t, "x1: accept failed", err.Error())
	parts.stop(time.Second) // the second failure, after stop, is not waited for
}

// logLine is the part of a log line the tests look at.
type logLine struct {
	Component  string `json:"component"`
	ListenAddr string `json:"listen_addr"`
	Message    string `json:"message"`
}

// inProcess is `adhocd serve` run by run in this process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned, with err
	err    error
	stdout *lockedBuffer

	mu    sync.Mutex
	lines []logLine
}

// lockedBuffer is a bytes.Buffer for writers in several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveInProcess starts `adhocd serve args...`; started is closed once it
// logs "started".
func serveInProcess(t *testing.T, args ...string) (p *inProcess, started <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	p = &inProcess{cancel: cancel, done: make(chan struct{}), stdout: &lockedBuffer{}}
	startedc := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			t.Logf("adhocd: %s", sc.Text())
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			p.mu.Unlock()
			if l.Component == "adhocd" && l.Message == "started" {
				close(startedc)
			}
		}
	}()
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), p.stdout, pw)
		_ = pw.Close() // ends the scanner
		<-scanned
		p.err = err
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Error("run did not return within 10s of its cancel")
		}
	})
	return p, startedc
}

// listening returns the addresses logged as "listening", by component.
func (p *inProcess) listening() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	addrs := map[string]string{}
	for _, l := range p.lines {
		if l.Message == "listening" {
			addrs[l.Component] = l.ListenAddr
		}
	}
	return addrs
}

// messages returns the messages logged by component.
func (p *inProcess) messages(component string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var msgs []string
	for _, l := range p.lines {
		if l.Component == component {
			msgs = append(msgs, l.Message)
		}
	}
	return msgs
}

// loopbackArgs are serve's flags for a data directory and loopback port 0.
func loopbackArgs(dir string) []string {
	return []string{"--data", dir, "--c2s", "127.0.0.1:0", "--c2s-tls", "127.0.0.1:0", "--http", "127.0.0.1:0"}
}

func TestServeStopsOnCancel(t *testing.T) {
	t.Setenv("ADHOCD_ADMIN_PASSWORD", "in-process-secret")
	p, started := serveInProcess(t, loopbackArgs(t.TempDir())...)
	select {
	case <-started:
	case <-p.done:
		t.Fatalf("serve returned before it started: %v", p.err)
	}
	addrs := p.listening()
	require.Len(t, addrs, 3)
	resp, err := http.Get("http://" + addrs["http"] + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Admin account admin@localhost is ready.\n", p.stdout.String())

	p.cancel()
	<-p.done
	require.NoError(t, p.err, "a cancel is a clean exit")
	assert.Equal(t, []string{"started", "shutting down"}, p.messages("adhocd"))
	for component, addr := range addrs {
		_, err := net.Dial("tcp", addr)
		assert.Error(t, err, "%s (%s) is closed", component, addr)
	}
}

func TestServeStartFailureStopsStartedParts(t *testing.T) {
	t.Setenv("ADHOCD_ADMIN_PASSWORD", "in-process-secret")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	args := append(loopbackArgs(t.TempDir()), "--http", taken.Addr().String())

	p, _ := serveInProcess(t, args...)
	<-p.done
	require.Error(t, p.err)
	assert.Regexp(t, `^http: listen tcp 127\.0\.0\.1:\d+: bind: address already in use$`, p.err.Error())
	assert.Empty(t, p.messages("adhocd"), "neither started nor shutting down")

	addrs := p.listening()
	require.Len(t, addrs, 2, "both c2s listeners had started")
	for component, addr := range addrs {
		_, err := net.Dial("tcp", addr)
		assert.Error(t, err, "%s (%s) was closed", component, addr)
	}
}

// TestAdminPasswordVariableOnlyWhileNoAdminExists: ADHOCD_ADMIN_PASSWORD
// makes the first admin; on a database with an admin it changes nothing,
// and serve says so instead of leaving the newcomer to guess.
func TestAdminPasswordVariableOnlyWhileNoAdminExists(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "adhocd.db"))
	require.NoError(t, err)
	defer db.Close()
	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: "localhost"}, db, zerolog.Nop())
	var out bytes.Buffer

	t.Setenv("ADHOCD_ADMIN_PASSWORD", "first")
	require.NoError(t, ensureAdmin(t.Context(), accounts, &out))
	assert.Equal(t, "Admin account admin@localhost is ready.\n", out.String())

	out.Reset()
	t.Setenv("ADHOCD_ADMIN_PASSWORD", "second")
	require.NoError(t, ensureAdmin(t.Context(), accounts, &out))
	assert.Equal(t, "ADHOCD_ADMIN_PASSWORD is ignored: an admin account exists already. "+
		"Set a password with 'adhocd user passwd admin@localhost', or start afresh with another --data.\n", out.String())
	_, err = accounts.Login(t.Context(), jid.MustParse("admin@localhost"), "first")
	assert.NoError(t, err, "the first password stays")
}
