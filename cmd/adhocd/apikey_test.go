package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apikeyRun runs `adhocd apikey args...` and returns stdout and stderr.
func apikeyRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runAPIKey(t.Context(), args, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// mustAPIKey runs `adhocd apikey args...`, fails the test on error and
// returns stdout.
func mustAPIKey(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := apikeyRun(t, args...)
	require.NoError(t, err, "adhocd apikey %s", strings.Join(args, " "))
	return out
}

var createdRE = regexp.MustCompile(`^API key ([a-z2-7]{12}) \((.*)\) for (\S+), read-only: (true|false): (adk_[a-z2-7]{12}_[A-Za-z0-9_-]{43})\n` +
	`The secret is shown only this once: only its hash is stored \(database (.+)\)\.\n$`)

// createKey runs `adhocd apikey create args...` and returns the ID and the
// secret it printed.
func createKey(t *testing.T, args ...string) (id, secret string) {
	t.Helper()
	out := mustAPIKey(t, append([]string{"create"}, args...)...)
	m := createdRE.FindStringSubmatch(out)
	require.NotNil(t, m, "output %q", out)
	return m[1], m[5]
}

func TestAPIKeyCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out := mustAPIKey(t, "create", "--name", "deploy bot", "--data", dir, "--read-only")
	m := createdRE.FindStringSubmatch(out)
	require.NotNil(t, m, "output %q", out)
	assert.Equal(t, []string{"deploy bot", "localhost", "true"}, m[2:5])
	assert.True(t, strings.HasPrefix(m[5], "adk_"+m[1]+"_"), "the secret carries the ID")
	assert.Equal(t, filepath.Join(dir, "adhocd.db"), m[6], "the database it wrote to, absolute")

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "create makes the data directory")

	db := openData(t, dir)
	key, err := db.APIKeyBySecret(t.Context(), m[5])
	require.NoError(t, err)
	assert.Equal(t, m[1], key.ID)
	assert.Equal(t, "deploy bot", key.Name)
	assert.Equal(t, "localhost", key.Domain)
	assert.True(t, key.ReadOnly)

	// The secret is not in the list, nor anywhere in the audit.
	list := mustAPIKey(t, "list", "--data", dir)
	assert.NotContains(t, list, m[5][17:])
	var jsonOut bytes.Buffer
	require.NoError(t, runAudit(t.Context(), []string{"--data", dir, "--json"}, &jsonOut, &bytes.Buffer{}))
	assert.NotContains(t, jsonOut.String(), m[5][17:])
}

func TestAPIKeyCreateDomain(t *testing.T) {
	dir := t.TempDir()
	id1, secret1 := createKey(t, "--data", dir, "--name", "a", "--domain", "Example.ORG")
	t.Setenv("ADHOCD_DOMAIN", "example.net")
	id2, secret2 := createKey(t, "--name", "b", "--data", dir)

	db := openData(t, dir)
	for _, c := range []struct{ id, secret, domain string }{
		{id1, secret1, "example.org"}, {id2, secret2, "example.net"},
	} {
		key, err := db.APIKeyBySecret(t.Context(), c.secret)
		require.NoError(t, err)
		assert.Equal(t, c.id, key.ID)
		assert.Equal(t, c.domain, key.Domain)
		assert.False(t, key.ReadOnly)
	}
}

func TestAPIKeyListAndRevoke(t *testing.T) {
	dir := t.TempDir()
	xID, _ := createKey(t, "--data", dir, "--name", "x")
	mustAPIKey(t, "revoke", "--data", dir, xID)

	before := time.Now().UTC().Truncate(time.Second)
	ciID, ciSecret := createKey(t, "--data", dir, "--name", "ci", "--read-only")
	opsID, _ := createKey(t, "--data", dir, "--name", "ops", "--domain", "example.org")

	lines := strings.Split(strings.TrimSuffix(mustAPIKey(t, "list", "--data", dir), "\n"), "\n")
	require.Len(t, lines, 3)
	lineRE := regexp.MustCompile(`^([a-z2-7]{12})\t([^\t]+)\t([^\t]+)\t(read-only|read-write)\t(active|revoked \S+)\tcreated (\S+)$`)
	var got [][]string
	for _, l := range lines {
		m := lineRE.FindStringSubmatch(l)
		require.NotNil(t, m, "line %q", l)
		created, err := time.Parse(time.RFC3339, m[6])
		require.NoError(t, err)
		assert.False(t, created.Before(before.Add(-time.Minute)))
		got = append(got, m[1:6])
	}
	assert.Equal(t, []string{xID, "x", "localhost", "read-write"}, got[0][:4])
	assert.True(t, strings.HasPrefix(got[0][4], "revoked "), "revoked keys are listed: %q", got[0][4])
	_, err := time.Parse(time.RFC3339, strings.TrimPrefix(got[0][4], "revoked "))
	assert.NoError(t, err)
	assert.Equal(t, []string{ciID, "ci", "localhost", "read-only", "active"}, got[1])
	assert.Equal(t, []string{opsID, "ops", "example.org", "read-write", "active"}, got[2])

	db := openData(t, dir)
	_, err = db.APIKeyBySecret(t.Context(), ciSecret)
	require.NoError(t, err)

	assert.Equal(t, "API key "+ciID+" (ci) revoked\n", mustAPIKey(t, "revoke", ciID, "--data", dir))
	key, err := db.APIKeyBySecret(t.Context(), ciSecret)
	assert.ErrorIs(t, err, session.ErrKeyRevoked, "revoked at once")
	assert.Equal(t, ciID, key.ID)
	keys, err := db.APIKeys(t.Context())
	require.NoError(t, err)
	var revokedAt time.Time
	for _, k := range keys {
		if k.ID == ciID {
			revokedAt = k.RevokedAt
		}
	}
	require.False(t, revokedAt.IsZero())
	assert.Equal(t, "API key "+ciID+" (ci) was already revoked, at "+revokedAt.UTC().Format(time.RFC3339)+"\n",
		mustAPIKey(t, "revoke", ciID, "--data", dir), "twice is fine, and says so")

	out := mustAPIKey(t, "list", "--data", dir)
	assert.Contains(t, out, ciID+"\tci\tlocalhost\tread-only\trevoked ")

	// The name of a revoked key can be used again.
	createKey(t, "--data", dir, "--name", "ci")
}

func TestAPIKeyAudit(t *testing.T) {
	dir := t.TempDir()
	id, _ := createKey(t, "--data", dir, "--name", "ci", "--read-only")
	mustAPIKey(t, "revoke", "--data", dir, id)
	_, _, err := apikeyRun(t, "revoke", "--data", dir, "nosuchkey234")
	require.Error(t, err)
	_, _, err = apikeyRun(t, "create", "--data", dir, "--name", "a\tb")
	require.Error(t, err)

	db := openData(t, dir)
	page, err := db.Audit(t.Context(), session.AuditQuery{})
	total, entries := page.Count, page.Items
	require.NoError(t, err)
	require.Equal(t, 4, total)
	type row struct{ actor, auth, action, targets, outcome, detail string }
	var got []row
	for _, e := range entries {
		got = append(got, row{e.Actor, e.Auth, e.Action, strings.Join(e.Targets, ","), e.Outcome, e.Detail})
	}
	assert.Equal(t, []row{
		{"cli", "cli", "apikey-create", "", "bad-request", `name "a\tb", domain localhost, read-write`},
		{"cli", "cli", "apikey-revoke", "nosuchkey234", "item-not-found", ""},
		{"cli", "cli", "apikey-revoke", id, "ok", `name "ci", domain localhost`},
		{"cli", "cli", "apikey-create", id, "ok", `name "ci", domain localhost, read-only`},
	}, got)
}

func TestAPIKeyErrors(t *testing.T) {
	tests := []struct {
		name        string
		givenEnv    map[string]string
		whenArgs    []string // --data is added
		expectError string   // the whole message, or a part of it with expectPart
		expectPart  bool
	}{
		{name: "no command", whenArgs: nil,
			expectError: "apikey: no command given (create, list, revoke)"},
		{name: "unknown command", whenArgs: []string{"delete", "x"},
			expectError: `apikey: unknown command "delete" (create, list, revoke)`},
		{name: "missing name", whenArgs: []string{"create", "--read-only"},
			expectError: "apikey create: missing --name (adhocd apikey create --name N [--domain D] [--read-only] [--quiet | --json] [flags])"},
		{name: "positional name", whenArgs: []string{"create", "ci"},
			expectError: `apikey create: unexpected argument "ci" (the name goes in --name)`},
		{name: "duplicate name", whenArgs: []string{"create", "--name", "taken"},
			expectError: `apikey create: store: an active API key has this name: "taken"`},
		{name: "bad name", whenArgs: []string{"create", "--name", "a\nb"},
			expectError: `apikey create: store: invalid input: API key name "a\nb" has a character that is not printable`},
		{name: "long name", whenArgs: []string{"create", "--name", strings.Repeat("n", 65)},
			expectError: "apikey create: store: invalid input: API key name is longer than 64 characters"},
		{name: "bad domain", whenArgs: []string{"create", "--name", "n", "--domain", "a@b"},
			expectError: `apikey create: --domain: "a@b" is not a domain name; write example.org`},
		{name: "domain flag on list", whenArgs: []string{"list", "--domain", "localhost"},
			expectError: "apikey list: unknown flag --domain; run 'adhocd apikey list --help' for the flags"},
		{name: "list argument", whenArgs: []string{"list", "x"},
			expectError: `apikey list: unexpected argument "x"`},
		{name: "revoke without ID", whenArgs: []string{"revoke"},
			expectError: "apikey revoke: missing ID (adhocd apikey revoke [flags] ID)"},
		{name: "revoke two IDs", whenArgs: []string{"revoke", "a", "b"},
			expectError: `apikey revoke: unexpected argument "b" after the ID`},
		{name: "revoke unknown ID", whenArgs: []string{"revoke", "nosuchkey234"},
			expectError: "apikey revoke: no API key nosuchkey234 (database DIR/adhocd.db); 'adhocd apikey list' shows the keys"},
		{name: "bad boolean", whenArgs: []string{"create", "--name", "n", "--read-only=maybe"},
			expectError: `apikey create: --read-only: "maybe" is not a boolean; write true or false`},
		{name: "quiet and json", whenArgs: []string{"create", "--name", "n", "--quiet", "--json"},
			expectError: `apikey create: --quiet and --json exclude each other: --quiet prints the secret alone, --json one JSON object`},
		{name: "misspelt flag", whenArgs: []string{"create", "--name", "n", "--read-onyl"},
			expectError: `apikey create: unknown flag --read-onyl (did you mean --read-only?); run 'adhocd apikey create --help' for the flags`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			createKey(t, "--data", dir, "--name", "taken")
			before := mustAPIKey(t, "list", "--data", dir)
			for k, v := range tc.givenEnv {
				t.Setenv(k, v)
			}
			args := tc.whenArgs
			if len(args) > 0 {
				args = append(append([]string{}, args...), "--data", dir)
			}

			_, _, err := apikeyRun(t, args...)
			require.Error(t, err)
			if tc.expectPart {
				assert.Contains(t, err.Error(), tc.expectError)
			} else {
				assert.Equal(t, strings.ReplaceAll(tc.expectError, "DIR", dir), err.Error())
			}
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.Equal(t, before, mustAPIKey(t, "list", "--data", dir), "no key created or revoked")
		})
	}
}

func TestAPIKeyNoDatabase(t *testing.T) {
	for _, args := range [][]string{{"list"}, {"revoke", "abc"}} {
		t.Run(args[0], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "typo")
			_, _, err := apikeyRun(t, append(args, "--data", dir)...)
			require.Error(t, err)
			assert.Equal(t, fmt.Sprintf("apikey %s: no database at %s (--data %s); "+
				"'adhocd user add' or 'adhocd serve' creates it", args[0], filepath.Join(dir, "adhocd.db"), dir), err.Error())
			assert.NoDirExists(t, dir)
		})
	}
}

func TestAPIKeyHelp(t *testing.T) {
	for _, sub := range []string{"create", "list", "revoke"} {
		_, stderr, err := apikeyRun(t, sub, "--help")
		assert.ErrorIs(t, err, flag.ErrHelp)
		assert.Contains(t, stderr, "Usage: adhocd apikey "+sub)
		assert.Contains(t, stderr, "(env ADHOCD_DATA")
	}
	out := mustAPIKey(t, "help")
	assert.Contains(t, out, "Usage: adhocd apikey <command>")
}

// TestAPIKeyCreateRefusesADomainNotServed: once a server has run on the
// database, a key for another domain is refused, since that server would
// refuse it; nothing is created.
func TestAPIKeyCreateRefusesADomainNotServed(t *testing.T) {
	dir := t.TempDir()
	createKey(t, "--data", dir, "--name", "before", "--domain", "example.org") // no server ran yet
	db, err := store.Open(filepath.Join(dir, "adhocd.db"))
	require.NoError(t, err)
	require.NoError(t, recordServedDomain(t.Context(), db, "LocalHost"))
	require.NoError(t, db.Close())

	_, _, err = apikeyRun(t, "create", "--data", dir, "--name", "bot", "--domain", "example.org")
	require.Error(t, err)
	assert.Equal(t, "apikey create: the server on "+filepath.Join(dir, "adhocd.db")+" serves localhost, not example.org: a key for example.org would be refused (--domain localhost)", err.Error())
	assert.NotContains(t, mustAPIKey(t, "list", "--data", dir), "bot")
	_, secret := createKey(t, "--data", dir, "--name", "bot", "--domain", "localhost")
	assert.NotEmpty(t, secret)
}
