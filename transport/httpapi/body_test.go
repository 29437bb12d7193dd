package httpapi_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/transport/httpapi"
)

// smallBuffers is a listener whose connections have a fixed, small receive
// buffer: without one, Linux grows it to up to tcp_rmem's maximum (32 MiB on
// some machines), which could swallow a whole body unread and hide a reset.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetReadBuffer(64 << 10); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, err
}

// serveLoopback serves srv on a 127.0.0.1 port of the system's choosing
// until the test ends, and returns its address.
func serveLoopback(t *testing.T, srv *httpapi.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(smallBuffers{ln}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
		assert.NoError(t, <-done)
	})
	return ln.Addr().String()
}

// oversized is a body well over the gateway's 4096-byte limit, and over
// what net/http discards by itself after a handler (256 KiB) plus what the
// socket buffers hold (the server's 64 KiB, the client's up to tcp_wmem's
// maximum, 4 MiB by default), so that only adhocd's draining (8 MiB) lets
// the client finish sending it.
func oversized(prefix string) string {
	return prefix + strings.Repeat(" ", 6<<20)
}

var basicAdmin = "Basic " + base64.StdEncoding.EncodeToString([]byte("admin@localhost:secret"))

// TestBodyOverLimitSentAtOnce sends, on a raw TCP connection, a request
// whose Content-Length is over the limit, with the whole body in one write
// and no Expect: 100-continue, and reads the answer as such a client does:
// after it has sent everything.
func TestBodyOverLimitSentAtOnce(t *testing.T) {
	g := newGateway(t, func(cfg *httpapi.Config) {
		cfg.Sessions = newServices(t).mgr
		cfg.PusherApps = []httpapi.PusherApp{{ID: "app1", Key: pusherKey, Secret: pusherSecret, Domain: "localhost"}}
	})
	addr := serveLoopback(t, g.srv)
	tests := []struct {
		name         string
		givenMethod  string
		givenPath    string
		givenType    string
		givenBody    string
		expectType   string
		expectErrSub string
	}{
		{name: "JSON command", givenMethod: http.MethodPost, givenPath: "/rest/adhoc/localhost", givenType: "application/json",
			givenBody: oversized(`{"command":{"node":"ok"}}`), expectType: "application/json; charset=utf-8", expectErrSub: "4096"},
		{name: "XML command", givenMethod: http.MethodPost, givenPath: "/rest/adhoc/localhost", givenType: "application/xml",
			givenBody: oversized(`<command><node>ok</node></command>`), expectType: "application/xml; charset=utf-8", expectErrSub: "4096"},
		{name: "session API", givenMethod: http.MethodDelete, givenPath: "/rest/users/user@localhost/sessions", givenType: "application/json",
			givenBody: oversized(`{"sessions":["a"]}`), expectType: "application/json; charset=utf-8", expectErrSub: "4096"},
		{name: "Pusher", givenMethod: http.MethodPost, givenPath: "/apps/app1/users/zed/terminate_connections", givenType: "application/json",
			givenBody: oversized(`{}`), expectType: "application/json", expectErrSub: "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
				tc.givenMethod, tc.givenPath, addr, basicAdmin, tc.givenType, len(tc.givenBody), tc.givenBody)
			// The client sends everything before it reads, as urllib does.
			_, err = io.WriteString(conn, req)
			require.NoError(t, err, "the server must take the whole body")

			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err, "the whole error body, not a reset")
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
			assert.Equal(t, tc.expectType, resp.Header.Get("Content-Type"))
			assert.True(t, resp.Close, "Connection: close")
			e := decodeError(t, string(body))
			if tc.name != "Pusher" { // Pusher's errors are {"error"} alone
				assert.Equal(t, "policy-violation", e["condition"])
			}
			assert.Contains(t, e["error"], tc.expectErrSub)
			_, err = conn.Read(make([]byte, 1))
			assert.ErrorIs(t, err, io.EOF, "then the server closes, without a reset")
		})
	}
}

// pythonPost is a POST by Python's urllib, a client that sends the whole
// body before it reads the answer and sends no Expect: 100-continue;
// it prints the status and the body of the answer.
const pythonPost = `
import sys, urllib.request, urllib.error
url, ctype, auth, prefix = sys.argv[1:5]
data = prefix.encode() + b" " * (6 << 20)
req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": ctype, "Authorization": auth})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(r.status)
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
    sys.stdout.write(e.read().decode())
`

func TestBodyOverLimitPythonURLLib(t *testing.T) {
	python, err := exec.LookPath("python3")
	require.NoError(t, err, "python3 is part of the test environment")
	g := newGateway(t)
	addr := serveLoopback(t, g.srv)
	for _, tc := range []struct{ name, contentType, prefix string }{
		{"JSON", "application/json", `{"command":{"node":"ok"}}`},
		{"XML", "application/xml", `<command><node>ok</node></command>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "-c", pythonPost, "http://"+addr+"/rest/adhoc/localhost", tc.contentType, basicAdmin, tc.prefix)
			out, err := cmd.Output()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Logf("python3 stderr:\n%s", ee.Stderr)
			}
			require.NoError(t, err, "urllib must get an answer, not a connection reset")
			status, body, _ := strings.Cut(string(out), "\n")
			assert.Equal(t, "413", status)
			e := decodeError(t, body)
			assert.Equal(t, "policy-violation", e["condition"])
			assert.Contains(t, e["error"], "4096")
		})
	}
}

// startOversized dials addr and sends the head of a POST whose
// Content-Length is far over every bound, and the first KiB of its body.
func startOversized(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprintf(conn, "POST /rest/adhoc/localhost HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, basicAdmin, 1<<40, oversized(`{"command":{"node":"ok"}}`)[:1024])
	require.NoError(t, err)
	return conn
}

// TestBodyOverLimitStalledSender: a client that stops sending its body
// still gets the 413, once the drain's 2 s are over, not never.
func TestBodyOverLimitStalledSender(t *testing.T) {
	t.Parallel()
	g := newGateway(t, func(cfg *httpapi.Config) { cfg.BodyLimit = 512 })
	conn := startOversized(t, serveLoopback(t, g.srv))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the answer comes before the client's 5 s deadline")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	assert.True(t, resp.Close, "Connection: close")
	assert.Contains(t, decodeError(t, string(body))["error"], "512")
	assert.Less(t, time.Since(start), 4*time.Second)
}

// TestBodyOverLimitEndlessSender: a client that never stops sending is read
// for 8 MiB, not for as long as it sends.
func TestBodyOverLimitEndlessSender(t *testing.T) {
	g := newGateway(t)
	conn := startOversized(t, serveLoopback(t, g.srv))
	var sent int64
	chunk := []byte(strings.Repeat(" ", 64<<10))
	for {
		n, err := conn.Write(chunk)
		sent += int64(n)
		if err != nil {
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server stops reading: %v", err)
			break
		}
		require.Less(t, sent, int64(32<<20), "the server reads no more than the drain's 8 MiB and the buffers")
	}
	t.Logf("sent %d bytes before the server closed", sent)
}
