package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/transport/c2s/c2stest"
	"github.com/adhocd/adhocd/transport/httpapi"
)

// TestStalledHTTPConnectionsAreCut: a connection that sends nothing, stops
// in the headers, stops in the body, or keeps alive without a next request
// is closed at its deadline, and its goroutine ends.
func TestStalledHTTPConnectionsAreCut(t *testing.T) {
	srv := httpapi.New(httpapi.Config{
		ReadHeaderTimeout: 300 * time.Millisecond,
		ReadTimeout:       600 * time.Millisecond,
		IdleTimeout:       300 * time.Millisecond,
	}, zerolog.New(zerolog.NewTestWriter(t)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	baseline := runtime.NumGoroutine()

	tests := []struct {
		name       string
		whenSend   string
		expectRead string // a prefix of what the server answers before it closes
	}{
		{"no byte", "", ""},
		{"headers never finished", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", ""},
		{"body never finished", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789", "HTTP/1.1 200 OK"},
		{"kept alive without a next request", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP/1.1 200 OK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			start := time.Now()
			_, err = io.WriteString(conn, tc.whenSend)
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			out, err := io.ReadAll(conn)
			require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the server did not cut the connection; read %q", out)
			assert.Less(t, time.Since(start), 3*time.Second)
			assert.Regexp(t, "^"+tc.expectRead, string(out))
		})
	}
	c2stest.WaitGoroutines(t, baseline)
}
