package main

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adhocdBin is the adhocd binary the tests run, built once.
var adhocdBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if adhocdBin.dir != "" {
		_ = os.RemoveAll(adhocdBin.dir) // a temporary directory
	}
	os.Exit(code)
}

// buildOnce builds ./cmd/adhocd for the tests of this package.
func buildOnce(ctx context.Context, t *testing.T) string {
	t.Helper()
	adhocdBin.once.Do(func() {
		if adhocdBin.dir, adhocdBin.err = os.MkdirTemp("", "adhocbench-test-"); adhocdBin.err == nil {
			adhocdBin.path, adhocdBin.err = buildAdhocd(ctx, adhocdBin.dir)
		}
	})
	require.NoError(t, adhocdBin.err)
	return adhocdBin.path
}

// TestBenchSmall runs the whole benchmark against a freshly built adhocd
// with 20 sessions on loopback, so that CI notices when the tool or the
// server's login breaks. It checks outcomes, never timings.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs adhocd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildOnce(ctx, t)

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
	// The server built here reports sessions and goroutines in /healthz.
	require.NotNil(t, rep.Held.Sessions)
	assert.Equal(t, 20, *rep.Held.Sessions)
	require.NotNil(t, rep.GoroutinesPerSess)
	// One goroutine per idle session, with some slack for the server's own.
	assert.InDelta(t, 1.0, *rep.GoroutinesPerSess, 0.5)

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

// TestBenchEndUserSession runs --mode end-user-session with 20 users and 4
// callers, then one caller with --relogin, against a freshly built adhocd.
// It checks that every user is ended with the right answer and that every
// client sees its stream error and its socket closed, never timings.
func TestBenchEndUserSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs adhocd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildOnce(ctx, t)

	cfg := config{
		mode: modeEndUserSession, adhocd: bin, data: t.TempDir(), users: 20, sessions: 20, concurrency: 4, sources: 3,
		settle: 2 * time.Second, password: "test-password", adminPassword: "test-admin-password",
		callers: 4, clientClose: true, warmup: true, floor: true,
	}
	rep, err := bench(ctx, cfg, t.Logf)
	require.NoError(t, err)
	require.NotNil(t, rep)
	e := rep.EndUserSession
	require.NotNil(t, e)

	assert.Equal(t, 20, rep.Login.OK, "login errors: %v", rep.Login.Errors)
	assert.Equal(t, 20, e.Requests)
	assert.Equal(t, 20, e.Adhocd.OK, "errors: %v", e.Adhocd.Errors)
	assert.Zero(t, e.Adhocd.Failed)
	assert.LessOrEqual(t, e.AdhocdConns, int64(4), "keep-alive: at most one connection per caller")
	assert.Equal(t, 20, e.StreamError.N, "missing stream errors: %v", e.StreamError.Why)
	assert.Equal(t, 20, e.SocketClosed.N, "missing socket closes: %v", e.SocketClosed.Why)
	assert.Zero(t, e.StreamError.Missing)
	assert.Positive(t, e.SocketClosed.P50MS)
	require.NotNil(t, e.OnlineBefore)
	require.NotNil(t, e.OnlineAfter)
	assert.Equal(t, 20, *e.OnlineBefore)
	assert.Equal(t, 0, *e.OnlineAfter)
	require.NotNil(t, e.Floor)
	assert.Equal(t, 20, e.Floor.OK, "no-op errors: %v", e.Floor.Errors)
	assert.Positive(t, e.RatioPct)
	assert.Zero(t, rep.ServerErrors, "server log: %v", rep.ServerLogSample)

	var out strings.Builder
	rep.print(&out)
	assert.Contains(t, out.String(), "adhocd:   20 ok, 0 failed")
	assert.Contains(t, out.String(), "no-op:    20 ok, 0 failed")

	// One caller, more requests than users: ended users log in again, and
	// the number online stays the same. The data directory (and the admin
	// account in it) is reused.
	cfg.users, cfg.sessions, cfg.callers, cfg.requests, cfg.relogin, cfg.floor = 5, 5, 1, 12, true, false
	rep, err = bench(ctx, cfg, t.Logf)
	require.NoError(t, err)
	e = rep.EndUserSession
	require.NotNil(t, e)
	assert.Equal(t, 12, e.Adhocd.OK, "errors: %v", e.Adhocd.Errors)
	assert.Equal(t, 12, e.SocketClosed.N, "missing socket closes: %v", e.SocketClosed.Why)
	assert.Equal(t, int64(1), e.AdhocdConns)
	assert.Nil(t, e.Floor)
	require.NotNil(t, e.OnlineAfter)
	assert.Equal(t, 5, *e.OnlineAfter)
}

func TestParseFlagsEndUserSession(t *testing.T) {
	cfg, err := parseFlags([]string{"--mode", "end-user-session", "--users", "50"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 50, cfg.users)
	assert.Equal(t, 50, cfg.sessions, "one session per user")
	assert.Equal(t, 50, cfg.requests, "one request per user")
	assert.Equal(t, 16, cfg.callers)
	assert.True(t, cfg.clientClose)

	_, err = parseFlags([]string{"--mode", "end-user-session", "--users", "10", "--requests", "200"}, io.Discard)
	assert.ErrorContains(t, err, "--relogin")
	cfg, err = parseFlags([]string{"--mode", "end-user-session", "--users", "10", "--requests", "200", "--relogin", "--callers", "1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 200, cfg.requests)

	cfg, err = parseFlags([]string{"--mode", "churn", "--sessions", "40"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 40, cfg.users, "one account per slot")
	assert.Equal(t, 2*time.Minute, cfg.duration)
	_, err = parseFlags([]string{"--mode", "churn", "--duration", "0s"}, io.Discard)
	assert.ErrorContains(t, err, "--duration")

	_, err = parseFlags([]string{"--mode", "nonsense"}, io.Discard)
	assert.Error(t, err)
}

func TestToolCeiling(t *testing.T) {
	// 2 CPUs, 110 us of tool CPU per request: at most 18,182 requests/s,
	// which is 50% of a 36,364 requests/s no-op.
	perSecond, pct := toolCeiling(2, 110, 36364)
	assert.InDelta(t, 18182, perSecond, 1)
	assert.InDelta(t, 50, pct, 0.01)

	perSecond, pct = toolCeiling(2, 0, 36364) // under one 10 ms tick: not measured
	assert.Zero(t, perSecond)
	assert.Zero(t, pct)
}

func TestBenchChurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildOnce(ctx, t)

	cfg := config{
		mode: modeChurn, adhocd: bin, data: t.TempDir(), users: 30, sessions: 30, concurrency: 4, sources: 3,
		settle: 2 * time.Second, password: "test-password", adminPassword: "test-admin-password",
		callers: 2, duration: 2 * time.Second,
	}
	rep, err := bench(ctx, cfg, t.Logf)
	require.NoError(t, err)
	c := rep.Churn
	require.NotNil(t, c)
	assert.Positive(t, c.Connected)
	assert.Zero(t, c.LoginFails)
	assert.Positive(t, c.Clean)
	assert.Positive(t, c.Dropped)
	assert.Positive(t, c.Kept)
	assert.Positive(t, c.Ends)
	assert.Positive(t, c.Lists)
	assert.Positive(t, c.Counts)
	assert.Zero(t, c.APIFails, "%v", c.APIErrors)
	assert.Empty(t, c.Ghosts)
	assert.Empty(t, c.Missing)
	assert.Equal(t, c.Open, c.Listed)
	require.NotNil(t, c.GoroutinesBefore)
	require.NotNil(t, c.GoroutinesAfter)
	assert.LessOrEqual(t, *c.GoroutinesAfter, *c.GoroutinesBefore+2)
	assert.LessOrEqual(t, c.FDsAfter, c.FDsBefore+2)
	assert.Zero(t, rep.ServerErrors, "server log: %v", rep.ServerLogSample)

	var out strings.Builder
	rep.print(&out)
	assert.Contains(t, out.String(), "0 ghosts, 0 missing")
}
