package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EUnauthenticatedLimitPerAddress: ADHOCD_MAX_UNAUTHENTICATED_PER_ADDRESS
// (--max-unauthenticated-per-address) reaches the listener: the address's
// next connection over it is refused with <policy-violation/>, another
// address's is not.
func TestE2EUnauthenticatedLimitPerAddress(t *testing.T) {
	dir := t.TempDir()
	d := startDaemonEnv(t, dir, "localhost",
		[]string{"ADHOCD_ADMIN_PASSWORD=" + e2eAdminPassword, "ADHOCD_MAX_UNAUTHENTICATED_PER_ADDRESS=2"},
		"serve", "--data", dir, "--c2s", "127.0.0.1:0", "--c2s-tls", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "debug")
	defer d.stop(t)

	answer := func(ip string) string {
		conn, err := loopbackDialer(ip).Dial("tcp", d.addrs["c2s"])
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = io.WriteString(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
		require.NoError(t, err)
		var got strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(got.String(), "</stream:features>") && !strings.Contains(got.String(), "</stream:error>") {
			n, err := conn.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return got.String()
	}
	for range 2 {
		assert.Contains(t, answer("127.0.0.2"), "<starttls")
	}
	refused := answer("127.0.0.2")
	assert.Contains(t, refused, "<policy-violation")
	assert.Contains(t, refused, "Too many connections from your address are not yet logged in; try again later.")
	assert.Contains(t, answer("127.0.0.3"), "<starttls")
}

// TestMaxUnauthenticatedPerAddressFlag: the flag's default, and 0 for no
// limit, parse.
func TestMaxUnauthenticatedPerAddressFlag(t *testing.T) {
	cfg, err := parseServe(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.maxUnauthPerAddr)
	cfg, err = parseServe([]string{"--max-unauthenticated-per-address", "0"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 0, cfg.maxUnauthPerAddr)
}
