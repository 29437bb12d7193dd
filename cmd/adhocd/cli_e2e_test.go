package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
)

// TestE2ECommandLineChangesReachTheRunningServer runs `adhocd user` beside
// a running `adhocd serve`, on the same data directory: a new password
// turns the old one away over HTTP although the server had it cached, and
// disabling an account ends its live XMPP session at once, as the ad-hoc
// commands do; neither waits for the 30 s credential cache. Each change is
// in the audit as the command line's.
func TestE2ECommandLineChangesReachTheRunningServer(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "hana@localhost", "hana-old")
	userAdd(t, dir, "ivan@localhost", "ivan-pw")
	d := startDaemonWith(t, dir, "--rate", "0") // the test polls faster than a non-admin may call
	hana, ivan := jid.MustParse("hana@localhost"), jid.MustParse("ivan@localhost")
	own := func(user, password string) gatewayResponse {
		return d.sessCall(t, sessBasic(user, password), http.MethodGet, "/rest/users/"+user+"/sessions", "")
	}
	require.Equal(t, http.StatusOK, own(hana.String(), "hana-old").status, "cached from now on")
	s := d.login(t, ivan, "ivan-pw", false)
	done := served(s)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	passwd := exec.CommandContext(ctx, adhocdBinary(t), "user", "passwd", "--data", dir, hana.String())
	passwd.Env = childEnv()
	passwd.Stdin = strings.NewReader("hana-new\n")
	out, err := passwd.CombinedOutput()
	require.NoError(t, err, "adhocd user passwd: %s", out)
	require.Eventually(t, func() bool { return own(hana.String(), "hana-old").status == http.StatusUnauthorized },
		5*time.Second, 10*time.Millisecond, "the old password is turned away well before the cache would expire")
	assert.Equal(t, http.StatusOK, own(hana.String(), "hana-new").status)

	sessCLI(t, "user", "disable", "--data", dir, ivan.String())
	expectStreamError(t, ivan, done, "policy-violation", "Your account was disabled.")
	_, err = d.tryLogin(t, ivan, "ivan-pw")
	assert.Equal(t, "account-disabled", saslCondition(err))

	audit := sessCLI(t, "audit", "--data", dir, "--actor", "cli")
	for _, want := range []string{"\tuser-password\thana@localhost\tok\t", "\tuser-disable\tivan@localhost\tok\t"} {
		assert.Contains(t, audit, want)
	}
}

// TestE2EScriptedAPIKey runs `KEY=$(adhocd apikey create --name bot --quiet)`
// as a script would, beside a running server on the same data directory:
// stdout is the secret alone and the server takes it; --json is one object
// naming the database.
// A bad flag is one line on stderr, without the usage text.
func TestE2EScriptedAPIKey(t *testing.T) {
	dir := t.TempDir()
	d := startDaemonWith(t, dir)

	key := strings.TrimSuffix(sessCLI(t, "apikey", "create", "--data", dir, "--name", "bot", "--quiet"), "\n")
	assert.Regexp(t, `^adk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$`, key)
	assert.Equal(t, http.StatusOK, d.sessCall(t, sessBearer(key), http.MethodGet, "/rest/sessions", "").status)

	var created map[string]any
	require.NoError(t, json.Unmarshal([]byte(sessCLI(t, "apikey", "create", "--data", dir, "--name", "dash", "--read-only", "--json")), &created))
	assert.Equal(t, "dash", created["name"])
	assert.Equal(t, true, created["read_only"])
	assert.Equal(t, filepath.Join(dir, "adhocd.db"), created["database"])
	assert.Equal(t, http.StatusOK, d.sessCall(t, sessBearer(created["secret"].(string)), http.MethodGet, "/rest/sessions", "").status)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bad := exec.CommandContext(ctx, adhocdBinary(t), "serve", "--data", dir, "--idle-timeout", "5")
	bad.Env = childEnv("ADHOCD_NAME=stray")
	var stdout, stderr strings.Builder
	bad.Stdout, bad.Stderr = &stdout, &stderr
	err := bad.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, "adhocd: --idle-timeout: \"5\" is not a duration; write 5m or 30s\n", stderr.String())
	assert.Empty(t, stdout.String())
}

// TestE2EUnblockLetsABlockedUserIn blocks a user through the session API of
// a running server, sees the block over SASL (two sentences) and in
// `adhocd user list`, and lifts it with `adhocd user unblock`: the user
// logs in again at once, and the lift is in the audit.
func TestE2EUnblockLetsABlockedUserIn(t *testing.T) {
	dir := t.TempDir()
	userAdd(t, dir, "jo@localhost", "jo-pw")
	d := startDaemonWith(t, dir)
	jo := jid.MustParse("jo@localhost")
	s := d.login(t, jo, "jo-pw", false)
	done := served(s)

	resp := d.sessCall(t, sessAdmin, http.MethodDelete, "/rest/users/jo@localhost/sessions/all?block=3600&reason=Password+reset", "")
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	expectStreamError(t, jo, done, "policy-violation", "Password reset")

	_, err := d.tryLogin(t, jo, "jo-pw")
	require.Error(t, err, "jo is blocked")
	assert.Equal(t, "account-disabled", saslCondition(err))
	text := regexp.MustCompile(`Password reset\. You may not log in before (\S+Z)\.`).FindStringSubmatch(err.Error())
	require.Len(t, text, 2, "the SASL text reads as two sentences: %v", err)
	until := text[1]

	assert.Contains(t, sessCLI(t, "user", "list", "--data", dir), "jo@localhost\tfalse\tfalse\t", "jo's line")
	assert.Contains(t, sessCLI(t, "user", "list", "--data", dir), "\t"+until+"\tPassword reset\n",
		"user list shows the block's end and reason")

	assert.Equal(t, "Block lifted for jo@localhost (it was until "+until+")\n", sessCLI(t, "user", "unblock", "--data", dir, "jo@localhost"))
	_, err = d.tryLogin(t, jo, "jo-pw")
	require.NoError(t, err, "jo logs in again right after the unblock")
	assert.Equal(t, "jo@localhost was not blocked\n", sessCLI(t, "user", "unblock", "--data", dir, "jo@localhost"))

	audit := sessCLI(t, "audit", "--data", dir, "--actor", "cli")
	assert.Contains(t, audit, "\tuser-unblock\tjo@localhost\tok\t")
}
