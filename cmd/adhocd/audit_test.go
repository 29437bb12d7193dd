package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditRun runs `adhocd audit args...` and returns stdout and stderr.
func auditRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runAudit(t.Context(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// mustAudit runs `adhocd audit args...`, fails the test on error and
// returns stdout.
func mustAudit(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := auditRun(t, args...)
	require.NoError(t, err, "adhocd audit %s", strings.Join(args, " "))
	return out
}

// auditColumns returns the given tab-separated columns of each line of out.
func auditColumns(t *testing.T, out string, cols ...int) [][]string {
	t.Helper()
	var rows [][]string
	for l := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
		require.Len(t, f, 7, "line %q", l)
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = f[c]
		}
		rows = append(rows, row)
	}
	return rows
}

func TestAuditListsCLIActions(t *testing.T) {
	dir := t.TempDir()
	ciID, _ := createKey(t, "--data", dir, "--name", "ci")
	opsID, _ := createKey(t, "--data", dir, "--name", "ops", "--read-only")
	mustAPIKey(t, "revoke", "--data", dir, ciID)
	db := openData(t, dir)
	_, err := db.AppendAudit(t.Context(), session.AuditEntry{Actor: "admin@localhost", Auth: "basic",
		Action: "end-sessions", Targets: []string{"bob@localhost", "s1"}, Outcome: "ok", Detail: "ended 1 session"})
	require.NoError(t, err)

	before := time.Now().Add(-time.Minute)
	out := mustAudit(t, "--data", dir)
	// Newest first; columns: actor, auth, action, targets, outcome, detail.
	assert.Equal(t, [][]string{
		{"admin@localhost", "basic", "end-sessions", "bob@localhost,s1", "ok", "ended 1 session"},
		{"cli", "cli", "apikey-revoke", ciID, "ok", `name "ci", domain localhost`},
		{"cli", "cli", "apikey-create", opsID, "ok", `name "ops", domain localhost, read-only`},
		{"cli", "cli", "apikey-create", ciID, "ok", `name "ci", domain localhost, read-write`},
	}, auditColumns(t, out, 1, 2, 3, 4, 5, 6))
	for _, row := range auditColumns(t, out, 0) {
		at, err := time.Parse(time.RFC3339, row[0])
		require.NoError(t, err)
		assert.True(t, at.After(before), "time %s", row[0])
		assert.True(t, strings.HasSuffix(row[0], "Z"), "UTC: %s", row[0])
	}

	tests := []struct {
		name          string
		whenArgs      []string
		expectActions [][]string // action, targets
		expectStderr  string
	}{
		{name: "actor", whenArgs: []string{"--actor", "cli"},
			expectActions: [][]string{{"apikey-revoke", ciID}, {"apikey-create", opsID}, {"apikey-create", ciID}}},
		{name: "target", whenArgs: []string{"--target", ciID},
			expectActions: [][]string{{"apikey-revoke", ciID}, {"apikey-create", ciID}}},
		{name: "actor and target", whenArgs: []string{"--actor", "admin@localhost", "--target", "s1"},
			expectActions: [][]string{{"end-sessions", "bob@localhost,s1"}}},
		{name: "target is exact", whenArgs: []string{"--target", "bob"},
			expectStderr: "adhocd audit: no entries (database " + filepath.Join(dir, "adhocd.db") + ")\n"},
		{name: "limit", whenArgs: []string{"--limit", "1"},
			expectActions: [][]string{{"end-sessions", "bob@localhost,s1"}},
			expectStderr:  "adhocd audit: 3 more entries; --offset 1 for the next page\n"},
		{name: "limit and offset", whenArgs: []string{"--limit", "2", "--offset", "1", "--actor", "cli"},
			expectActions: [][]string{{"apikey-create", opsID}, {"apikey-create", ciID}}},
		{name: "offset past the end", whenArgs: []string{"--offset", "10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := auditRun(t, append(tc.whenArgs, "--data", dir)...)
			require.NoError(t, err)
			assert.Equal(t, tc.expectActions, auditColumns(t, out, 3, 4))
			assert.Equal(t, tc.expectStderr, stderr)
		})
	}

	t.Setenv("ADHOCD_ACTOR", "admin@localhost")
	assert.Len(t, auditColumns(t, mustAudit(t, "--data", dir), 0), 4, "ADHOCD_ACTOR is not --actor")
}

func TestAuditJSON(t *testing.T) {
	dir := t.TempDir()
	db := openData(t, dir)
	at := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	id1, err := db.AppendAudit(t.Context(), session.AuditEntry{Time: at, Actor: "apikey:ci", Auth: "apikey",
		Action: "end-sessions", Outcome: "forbidden", RemoteAddr: "192.0.2.1:1234", RequestID: "r1"})
	require.NoError(t, err)
	id2, err := db.AppendAudit(t.Context(), session.AuditEntry{Time: at.Add(time.Second), Actor: "cli", Auth: "cli",
		Action: "apikey-create", Targets: []string{"k1"}, Outcome: "ok", Detail: `name "<x>"`})
	require.NoError(t, err)

	out := mustAudit(t, "--data", dir, "--json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 2)
	assert.JSONEq(t, fmt.Sprintf(`{"id":%d,"time":"2025-01-02T03:04:06.006Z","actor":"cli","auth":"cli",
		"action":"apikey-create","targets":["k1"],"outcome":"ok","detail":"name \"<x>\"","remote_addr":"","peer":"","request_id":""}`, id2),
		lines[0])
	assert.JSONEq(t, fmt.Sprintf(`{"id":%d,"time":"2025-01-02T03:04:05.006Z","actor":"apikey:ci","auth":"apikey",
		"action":"end-sessions","targets":[],"outcome":"forbidden","detail":"","remote_addr":"192.0.2.1:1234","peer":"","request_id":"r1"}`, id1),
		lines[1])
	assert.Contains(t, lines[0], `<x>`, "no HTML escaping")
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &v))

	// The same entries as text.
	assert.Equal(t, "2025-01-02T03:04:06.006Z\tcli\tcli\tapikey-create\tk1\tok\tname \"<x>\"\n"+
		"2025-01-02T03:04:05.006Z\tapikey:ci\tapikey\tend-sessions\t-\tforbidden\t-\n",
		mustAudit(t, "--data", dir))
}

func TestAuditFieldsStayOnOneLine(t *testing.T) {
	dir := t.TempDir()
	db := openData(t, dir)
	_, err := db.AppendAudit(t.Context(), session.AuditEntry{Time: time.UnixMilli(0), Actor: "bob@localhost",
		Action: "end-sessions", Targets: []string{"a\tb"}, Detail: "reason: spam\nand\tmore\r"})
	require.NoError(t, err)
	assert.Equal(t, "1970-01-01T00:00:00.000Z\tbob@localhost\t-\tend-sessions\ta b\t-\treason: spam and more \n",
		mustAudit(t, "--data", dir))
}

func TestAuditErrors(t *testing.T) {
	tests := []struct {
		name        string
		whenArgs    []string // --data is added
		expectError string
	}{
		{name: "zero limit", whenArgs: []string{"--limit", "0"}, expectError: "audit: --limit: 0 is less than the minimum of 1"},
		{name: "big limit", whenArgs: []string{"--limit", "501"}, expectError: "audit: --limit: 501 is more than the maximum of 500"},
		{name: "negative offset", whenArgs: []string{"--offset", "-1"}, expectError: "audit: --offset: -1 is less than the minimum of 0"},
		{name: "not a number", whenArgs: []string{"--limit", "ten"},
			expectError: `audit: --limit: "ten" is not a whole number; write a number such as 50`},
		{name: "out of range", whenArgs: []string{"--offset", "99999999999999999999"},
			expectError: `audit: --offset: "99999999999999999999" is out of range; write a number such as 0`},
		{name: "argument", whenArgs: []string{"list"},
			expectError: `audit: unexpected argument "list" (` + auditSynopsis + `)`},
		{name: "unknown flag", whenArgs: []string{"--user", "x"},
			expectError: "audit: unknown flag --user; run 'adhocd audit --help' for the flags"},
		{name: "misspelt flag", whenArgs: []string{"--limt", "5"},
			expectError: "audit: unknown flag --limt (did you mean --limit?); run 'adhocd audit --help' for the flags"},
		{name: "json with a value", whenArgs: []string{"--json=yes"},
			expectError: `audit: --json: "yes" is not a boolean; write true or false`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			openData(t, dir)
			_, stderr, err := auditRun(t, append(tc.whenArgs, "--data", dir)...)
			require.Error(t, err)
			assert.Equal(t, tc.expectError, err.Error())
			assert.Empty(t, stderr, "no usage text")
		})
	}
}

func TestAuditNoDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	_, _, err := auditRun(t, "--data", dir)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("audit: no database at %s (--data %s); 'adhocd user add' or 'adhocd serve' creates it",
		dbPath(dir), dir), err.Error())
	assert.NoDirExists(t, dir)
}

func TestAuditHelp(t *testing.T) {
	_, stderr, err := auditRun(t, "--help")
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, stderr, "Usage: "+auditSynopsis)
	assert.Contains(t, stderr, "  --data\n    \tdata directory; the database is DIR/adhocd.db (env ADHOCD_DATA, default \"./data\")\n")
	assert.Contains(t, stderr, "  --target\n    \tonly the entries with this target (a JID, session id or key id)\n",
		"a flag of audit alone has no variable")
}
