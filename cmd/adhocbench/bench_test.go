package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchSmall runs the whole benchmark against a freshly built adhocd
// with 20 sessions on loopback, so that CI notices when the tool or the
// server's login breaks. It checks outcomes, never timings.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs adhocd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildAdhocd(ctx, t.TempDir())
	require.NoError(t, err)

	cfg := config{
		adhocd: bin, data: t.TempDir(), users: 10, sessions: 20, concurrency: 4, sources: 3,
		settle: 2 * time.Second, tlsOnly: true, password: "test-password",
	}
	rep, err := bench(ctx, cfg, t.Logf)
	require.NoError(t, err)
	require.NotNil(t, rep)

	assert.Equal(t, 10, rep.AccountsCreated)
	assert.Equal(t, 20, rep.Login.OK, "login errors: %v", rep.Login.Errors)
	assert.Zero(t, rep.Login.Failed)
	assert.Equal(t, 20, rep.Alive)
	require.NotNil(t, rep.TLSOnly)
	assert.Equal(t, 20, rep.TLSOnly.OK, "TLS errors: %v", rep.TLSOnly.Errors)
	assert.Positive(t, rep.Baseline.RSSKiB)
	assert.Positive(t, rep.Held.RSSKiB)
	assert.Zero(t, rep.ServerErrors, "server log: %v", rep.ServerLogSample)
	if rep.Held.Sessions != nil {
		assert.Equal(t, 20, *rep.Held.Sessions)
	}
	if rep.GoroutinesPerSess != nil {
		// One goroutine per idle session, with some slack for the server's own.
		assert.InDelta(t, 1.0, *rep.GoroutinesPerSess, 0.5)
	}

	var out strings.Builder
	rep.print(&out)
	assert.Contains(t, out.String(), "logins:   20 ok, 0 failed")

	// A second run on the same data directory reuses the accounts.
	cfg.tlsOnly = false
	rep, err = bench(ctx, cfg, t.Logf)
	require.NoError(t, err)
	assert.Zero(t, rep.AccountsCreated)
	assert.Equal(t, 20, rep.Login.OK, "login errors: %v", rep.Login.Errors)
}
