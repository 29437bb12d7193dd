package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// userRun runs `adhocd user args...` with stdin and returns stdout.
func userRun(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runUser(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), err
}

// mustUser runs `adhocd user args...` and fails the test on error.
func mustUser(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := userRun(t, stdin, args...)
	require.NoError(t, err, "adhocd user %s", strings.Join(args, " "))
	return out
}

// openData opens the database of a data directory, closed at cleanup.
func openData(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "adhocd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, db.Close()) })
	return db
}

func TestUserAddList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	assert.Equal(t, "Account bob@localhost created, admin: true (database "+filepath.Join(dir, "adhocd.db")+")\n",
		mustUser(t, "pw-bob\n", "add", "bob@localhost", "--data", dir, "--admin"))
	assert.Equal(t, "Account carol@localhost created, admin: false (database "+filepath.Join(dir, "adhocd.db")+")\n",
		mustUser(t, "pw-carol\r\nignored\n", "add", "--data", dir, "Carol@LOCALHOST"))

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	out := mustUser(t, "", "list", "--data", dir)
	assert.Equal(t, "bob@localhost\ttrue\tfalse\t-\t-\t-\ncarol@localhost\tfalse\tfalse\t-\t-\t-\n", out)

	db := openData(t, dir)
	assert.NoError(t, db.VerifyPassword(t.Context(), jid.MustParse("bob@localhost"), "pw-bob"))
	assert.NoError(t, db.VerifyPassword(t.Context(), jid.MustParse("carol@localhost"), "pw-carol"), "CRLF stripped")
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, db.RecordLogin(t.Context(), jid.MustParse("carol@localhost"), at))

	out = mustUser(t, "", "list", "--data", dir)
	assert.Equal(t, "bob@localhost\ttrue\tfalse\t-\t-\t-\ncarol@localhost\tfalse\tfalse\t2025-01-02T03:04:05Z\t-\t-\n", out)
}

func TestUserGeneratedPassword(t *testing.T) {
	for _, sub := range []string{"add", "passwd"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			if sub == "passwd" {
				mustUser(t, "old\n", "add", "--data", dir, "bob@localhost")
			}
			out := mustUser(t, "", sub, "--data", dir, "bob@localhost")
			if sub == "add" {
				created := "Account bob@localhost created, admin: false (database " + filepath.Join(dir, "adhocd.db") + ")\n"
				require.True(t, strings.HasPrefix(out, created), "got %q", out)
				out = strings.TrimPrefix(out, created)
			}
			prefix := "Generated password for bob@localhost: "
			require.True(t, strings.HasPrefix(out, prefix), "got %q", out)
			password := strings.TrimSuffix(strings.TrimPrefix(out, prefix), "\n")
			assert.Len(t, password, 24)
			assert.Equal(t, 1, strings.Count(out, "\n"), "one line")

			db := openData(t, dir)
			assert.NoError(t, db.VerifyPassword(t.Context(), jid.MustParse("bob@localhost"), password))
		})
	}
}

func TestUserPasswd(t *testing.T) {
	dir := t.TempDir()
	bob := jid.MustParse("bob@localhost")
	mustUser(t, "old\n", "add", "--data", dir, "bob@localhost")
	assert.Empty(t, mustUser(t, "new\n", "passwd", "bob@localhost", "--data", dir))

	db := openData(t, dir)
	assert.NoError(t, db.VerifyPassword(t.Context(), bob, "new"))
	assert.ErrorIs(t, db.VerifyPassword(t.Context(), bob, "old"), session.ErrBadPassword)
}

func TestUserDisableEnableDel(t *testing.T) {
	dir := t.TempDir()
	mustUser(t, "pw\n", "add", "--data", dir, "bob@localhost")

	mustUser(t, "", "disable", "--data", dir, "bob@localhost")
	assert.Equal(t, "bob@localhost\tfalse\ttrue\t-\t-\t-\n", mustUser(t, "", "list", "--data", dir))
	mustUser(t, "", "enable", "bob@localhost", "--data", dir)
	assert.Equal(t, "bob@localhost\tfalse\tfalse\t-\t-\t-\n", mustUser(t, "", "list", "--data", dir))

	mustUser(t, "", "del", "--data", dir, "bob@localhost")
	assert.Empty(t, mustUser(t, "", "list", "--data", dir))
}

func TestUserDomains(t *testing.T) {
	dir := t.TempDir()
	mustUser(t, "pw\n", "add", "--data", dir, "--domain", "Example.ORG", "bob@example.org")
	t.Setenv("ADHOCD_DOMAIN", "example.net")
	mustUser(t, "pw\n", "add", "--data", dir, "carol@example.net")
	_, err := userRun(t, "pw\n", "add", "--data", dir, "dave@localhost")
	assert.ErrorContains(t, err, `domain localhost is not served here (--domain example.net)`)
	out := mustUser(t, "", "list", "--data", dir)
	assert.Equal(t, "bob@example.org\tfalse\tfalse\t-\t-\t-\ncarol@example.net\tfalse\tfalse\t-\t-\t-\n", out)
}

func TestUserErrors(t *testing.T) {
	tests := []struct {
		name        string
		givenStdin  string
		whenArgs    []string // --data is added
		expectError string   // the whole message, or a part of it with expectPart
		expectPart  bool
	}{
		{name: "add duplicate", givenStdin: "x\n", whenArgs: []string{"add", "bob@localhost"},
			expectError: "user add: store: account already exists: bob@localhost"},
		{name: "del missing", whenArgs: []string{"del", "nobody@localhost"},
			expectError: "user del: no account nobody@localhost (database DIR/adhocd.db); 'adhocd user list' shows the accounts"},
		{name: "passwd missing", givenStdin: "x\n", whenArgs: []string{"passwd", "nobody@localhost"},
			expectError: "user passwd: no account nobody@localhost (database DIR/adhocd.db); 'adhocd user list' shows the accounts"},
		{name: "disable missing", whenArgs: []string{"disable", "nobody@localhost"},
			expectError: "user disable: no account nobody@localhost (database DIR/adhocd.db); 'adhocd user list' shows the accounts"},
		{name: "enable missing", whenArgs: []string{"enable", "nobody@localhost"},
			expectError: "user enable: no account nobody@localhost (database DIR/adhocd.db); 'adhocd user list' shows the accounts"},
		{name: "malformed JID", givenStdin: "x\n", whenArgs: []string{"add", "@localhost"},
			expectError: `user add: "@localhost" is not a valid JID: `, expectPart: true},
		{name: "malformed domain", givenStdin: "x\n", whenArgs: []string{"add", "bob@"},
			expectError: `user add: "bob@" is not a valid JID: `, expectPart: true},
		{name: "resource", givenStdin: "x\n", whenArgs: []string{"add", "bob@localhost/phone"},
			expectError: `user add: "bob@localhost/phone": an account JID has no resource, use bob@localhost`},
		{name: "no localpart", whenArgs: []string{"del", "localhost"},
			expectError: `user del: "localhost": an account JID needs a user part, like user@localhost`},
		{name: "foreign domain", givenStdin: "x\n", whenArgs: []string{"add", "bob@example.org"},
			expectError: `user add: "bob@example.org": domain example.org is not served here (--domain localhost)`},
		{name: "unknown command", whenArgs: []string{"frob", "bob@localhost"},
			expectError: `user: unknown command "frob" (add, del, passwd, list, disable, enable, unblock)`},
		{name: "no command", whenArgs: nil,
			expectError: "user: no command given (add, del, passwd, list, disable, enable, unblock)"},
		{name: "missing JID", whenArgs: []string{"add", "--admin"},
			expectError: "user add: missing JID (adhocd user add [--admin] [flags] JID)"},
		{name: "two JIDs", whenArgs: []string{"del", "bob@localhost", "carol@localhost"},
			expectError: `user del: unexpected argument "carol@localhost" after the JID`},
		{name: "list argument", whenArgs: []string{"list", "bob@localhost"},
			expectError: `user list: unexpected argument "bob@localhost"`},
		{name: "bad domain flag", whenArgs: []string{"del", "--domain", "a@b", "bob@localhost"},
			expectError: `user del: --domain: "a@b" is not a domain name; write example.org`},
		{name: "admin flag on del", whenArgs: []string{"del", "--admin", "bob@localhost"},
			expectError: "user del: unknown flag --admin; run 'adhocd user del --help' for the flags"},
		{name: "admin with a value", givenStdin: "x\n", whenArgs: []string{"add", "--admin=yes", "carol@localhost"},
			expectError: `user add: --admin: "yes" is not a boolean; write true or false`},
		{name: "invalid password", givenStdin: "a\xffb\n", whenArgs: []string{"passwd", "bob@localhost"},
			expectError: "user passwd: store: invalid password: it is not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustUser(t, "pw\n", "add", "--data", dir, "bob@localhost")
			args := tc.whenArgs
			if len(args) > 0 {
				args = append(append([]string{}, args...), "--data", dir)
			}

			_, err := userRun(t, tc.givenStdin, args...)
			require.Error(t, err)
			if tc.expectPart {
				assert.Contains(t, err.Error(), tc.expectError)
			} else {
				assert.Equal(t, strings.ReplaceAll(tc.expectError, "DIR", dir), err.Error())
			}
			assert.NotContains(t, err.Error(), "\n", "one line")

			// Nothing changed.
			assert.Equal(t, "bob@localhost\tfalse\tfalse\t-\t-\t-\n", mustUser(t, "", "list", "--data", dir))
			db := openData(t, dir)
			assert.NoError(t, db.VerifyPassword(t.Context(), jid.MustParse("bob@localhost"), "pw"))
		})
	}
}

func TestUserNoDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	_, err := userRun(t, "", "list", "--data", dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no database at ")
	assert.NoDirExists(t, dir)
}

func TestUserHelp(t *testing.T) {
	_, err := userRun(t, "", "add", "--help")
	assert.ErrorIs(t, err, flag.ErrHelp)
	out := mustUser(t, "", "help")
	assert.Contains(t, out, "Usage: adhocd user")
}

func TestUserUnblock(t *testing.T) {
	dir := t.TempDir()
	mustUser(t, "pw\n", "add", "--data", dir, "bob@localhost")
	mustUser(t, "pw\n", "add", "--data", dir, "carol@localhost")
	db := openData(t, dir)
	until := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	require.NoError(t, db.SetBlock(t.Context(), jid.MustParse("bob@localhost"), until, "Password\treset"))
	stamp := until.Format(time.RFC3339)

	assert.Equal(t, "bob@localhost\tfalse\tfalse\t-\t"+stamp+"\tPassword reset\ncarol@localhost\tfalse\tfalse\t-\t-\t-\n",
		mustUser(t, "", "list", "--data", dir), "the block's end and reason, the reason kept on its column")
	mustUser(t, "", "enable", "--data", dir, "bob@localhost")
	assert.Contains(t, mustUser(t, "", "list", "--data", dir), "\t"+stamp+"\t", "enable does not lift a block")

	assert.Equal(t, "Block lifted for bob@localhost (it was until "+stamp+")\n", mustUser(t, "", "unblock", "bob@localhost", "--data", dir))
	assert.NoError(t, db.VerifyPassword(t.Context(), jid.MustParse("bob@localhost"), "pw"))
	_, blocked, err := db.ActiveBlock(t.Context(), jid.MustParse("bob@localhost"), time.Now())
	require.NoError(t, err)
	assert.False(t, blocked)
	assert.Equal(t, "bob@localhost\tfalse\tfalse\t-\t-\t-\ncarol@localhost\tfalse\tfalse\t-\t-\t-\n", mustUser(t, "", "list", "--data", dir))
	assert.Equal(t, "carol@localhost was not blocked\n", mustUser(t, "", "unblock", "--data", dir, "carol@localhost"))

	_, err = userRun(t, "", "unblock", "--data", dir, "nobody@localhost")
	require.Error(t, err)
	assert.Equal(t, "user unblock: no account nobody@localhost (database "+filepath.Join(dir, "adhocd.db")+"); 'adhocd user list' shows the accounts", err.Error())
	_, err = userRun(t, "", "unblock", "--data", dir)
	assert.ErrorContains(t, err, "user unblock: missing JID (adhocd user unblock [flags] JID)")

	page, err := db.Audit(t.Context(), session.AuditQuery{Actor: "cli"})
	require.NoError(t, err)
	require.NotEmpty(t, page.Items)
	assert.Equal(t, []string{"user-unblock", "item-not-found"}, []string{page.Items[0].Action, page.Items[0].Outcome})
	assert.Equal(t, []string{"user-unblock", "ok", "carol@localhost was not blocked"}, []string{page.Items[1].Action, page.Items[1].Outcome, page.Items[1].Detail})
	assert.Equal(t, "user-unblock", page.Items[2].Action)
	assert.Contains(t, page.Items[2].Detail, "lifted bob@localhost until "+stamp)
}
