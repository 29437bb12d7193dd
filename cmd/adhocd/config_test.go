package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
)

// writeConfig writes a config file in a new directory and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "adhocd.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// parseCommand parses the flags of a command without running it: cmd is
// "serve", "audit", "user add", "apikey create", ...
func parseCommand(cmd string, args []string) error {
	return parseCommandTo(cmd, args, &bytes.Buffer{})
}

// parseCommandTo is parseCommand with the command's stderr.
func parseCommandTo(cmd string, args []string, stderr *bytes.Buffer) error {
	var err error
	switch name, sub, _ := strings.Cut(cmd, " "); name {
	case "serve":
		_, err = parseServe(args, stderr)
	case "audit":
		_, err = parseAudit(args, stderr)
	case "user":
		_, err = parseUser(sub, args, stderr)
	case "apikey":
		_, err = parseAPIKey(sub, args, stderr)
	default:
		panic("no command " + cmd)
	}
	return err
}

func TestConfigPrecedence(t *testing.T) {
	const file = `# every kind of value
domain: example.org
c2s-tls: "127.0.0.1:5333"
admins: [a@example.org, b@example.org]
pusher-app:
  - app1:key1:secret1
  - app2:key2:secret2:example.net
shutdown-timeout: 7s
rate: 2.5
max-stanza: 1000
`
	type expect struct {
		domain, c2sTLS string
		admins, pusher []string
		shutdown       time.Duration
		rate           float64
		maxStanza      int64
	}
	defaults := expect{domain: "localhost", c2sTLS: ":5223", shutdown: 5 * time.Second, rate: 10, maxStanza: 256 << 10}
	fromFile := expect{domain: "example.org", c2sTLS: "127.0.0.1:5333", admins: []string{"a@example.org", "b@example.org"},
		pusher: []string{"app1@example.org", "app2@example.net"}, shutdown: 7 * time.Second, rate: 2.5, maxStanza: 1000}
	tests := []struct {
		name      string
		givenFile string // "" for none
		givenEnv  map[string]string
		whenArgs  []string // FILE is replaced by the file's path
		expect    expect
	}{
		{name: "defaults", expect: defaults},
		{name: "file over default", givenFile: file, whenArgs: []string{"--config", "FILE"}, expect: fromFile},
		{name: "ADHOCD_CONFIG names the file", givenFile: file, givenEnv: map[string]string{"ADHOCD_CONFIG": "FILE"},
			expect: fromFile},
		{name: "env over file", givenFile: file, whenArgs: []string{"--config", "FILE"},
			givenEnv: map[string]string{"ADHOCD_DOMAIN": "example.net", "ADHOCD_SHUTDOWN_TIMEOUT": "1m",
				"ADHOCD_PUSHER_APP": "app3:key3:secret3", "ADHOCD_ADMINS": "c@example.net", "ADHOCD_C2S_TLS": ""},
			expect: expect{domain: "example.net", c2sTLS: "", admins: []string{"c@example.net"},
				pusher: []string{"app3@example.net"}, shutdown: time.Minute, rate: 2.5, maxStanza: 1000}},
		{name: "flag over env and file", givenFile: file,
			givenEnv: map[string]string{"ADHOCD_DOMAIN": "example.net", "ADHOCD_RATE": "3"},
			whenArgs: []string{"--config", "FILE", "--domain", "example.com", "--pusher-app", "app4:key4:secret4",
				"--rate", "4", "--max-stanza", "2000", "--admins", ""},
			expect: expect{domain: "example.com", c2sTLS: "127.0.0.1:5333", pusher: []string{"app4@example.com"},
				shutdown: 7 * time.Second, rate: 4, maxStanza: 2000}},
		{name: "--config over ADHOCD_CONFIG", givenFile: file,
			givenEnv: map[string]string{"ADHOCD_CONFIG": "/nonexistent/adhocd.yaml"},
			whenArgs: []string{"--config=FILE"}, expect: fromFile},
		{name: "an empty --config reads none", givenFile: file, givenEnv: map[string]string{"ADHOCD_CONFIG": "FILE"},
			whenArgs: []string{"--config", ""}, expect: defaults},
		{name: "a list as a comma-separated string", givenFile: "admins: a@x, b@x\npusher-app: p:k:s:x, q:k:s:x\n",
			whenArgs: []string{"--config", "FILE"},
			expect: expect{domain: "localhost", c2sTLS: ":5223", admins: []string{"a@x", "b@x"}, pusher: []string{"p@x", "q@x"},
				shutdown: 5 * time.Second, rate: 10, maxStanza: 256 << 10}},
		{name: "an empty file", givenFile: "# nothing yet\n", whenArgs: []string{"--config", "FILE"}, expect: defaults},
		{name: "an alias, and an integer for a string", givenFile: "domain: &d example.org\nc2s-tls: 5223\nhttp: *d\n",
			whenArgs: []string{"--config", "FILE"},
			expect:   expect{domain: "example.org", c2sTLS: "5223", shutdown: 5 * time.Second, rate: 10, maxStanza: 256 << 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.givenFile != "" {
				path = writeConfig(t, tc.givenFile)
			}
			for k, v := range tc.givenEnv {
				t.Setenv(k, strings.ReplaceAll(v, "FILE", path))
			}
			var args []string
			for _, a := range tc.whenArgs {
				args = append(args, strings.ReplaceAll(a, "FILE", path))
			}

			cfg, err := parseServe(args, &bytes.Buffer{})
			require.NoError(t, err)
			got := expect{domain: cfg.domain, c2sTLS: cfg.c2sTLSAddr, shutdown: cfg.shutdownGracePeriod,
				rate: cfg.callerRate, maxStanza: cfg.maxStanza}
			for _, a := range cfg.admins {
				got.admins = append(got.admins, a.String())
			}
			for _, p := range cfg.pusherApps {
				got.pusher = append(got.pusher, p.ID+"@"+p.Domain)
			}
			assert.Equal(t, tc.expect, got)
		})
	}
}

func TestConfigPrecedenceOfflineCommands(t *testing.T) {
	t.Run("apikey create", func(t *testing.T) {
		file := writeConfig(t, "data: /srv/adhocd\ndomain: Example.ORG\nhttp: serve's\n")
		opts, err := parseAPIKey("create", []string{"--name", "n", "--config", file}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, apikeyOptions{sub: "create", data: "/srv/adhocd", name: "n", domain: "example.org",
			domainFlag: "Example.ORG"}, opts)

		t.Setenv("ADHOCD_DATA", "/var/lib/adhocd")
		t.Setenv("ADHOCD_DOMAIN", "example.com")
		opts, err = parseAPIKey("create", []string{"--name", "n", "--config", file, "--domain", "example.net"}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, "/var/lib/adhocd", opts.data, "env over file")
		assert.Equal(t, "example.net", opts.domain, "flag over env")
	})
	t.Run("audit", func(t *testing.T) {
		file := writeConfig(t, "data: /srv/adhocd\ndomain: example.org\n")
		opts, err := parseAudit([]string{"--config", file, "--limit", "7", "--json"}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, "/srv/adhocd", opts.data)
		assert.Equal(t, 7, opts.query.Limit)
		assert.True(t, opts.asJSON)
	})
}

// TestConfigSubcommandFlagsReadNoVariable checks that only settings read
// the environment: a shell's ADHOCD_NAME, ADHOCD_JSON or ADHOCD_LIMIT,
// set for something else, changes no subcommand.
func TestConfigSubcommandFlagsReadNoVariable(t *testing.T) {
	for k, v := range map[string]string{"ADHOCD_NAME": "stray", "ADHOCD_READ_ONLY": "maybe", "ADHOCD_QUIET": "true",
		"ADHOCD_JSON": "true", "ADHOCD_LIMIT": "0", "ADHOCD_OFFSET": "x", "ADHOCD_ACTOR": "cli", "ADHOCD_TARGET": "t",
		"ADHOCD_ADMIN": "true"} {
		t.Setenv(k, v)
	}
	key, err := parseAPIKey("create", []string{"--name", "n"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, apikeyOptions{sub: "create", data: "./data", name: "n", domain: "localhost", domainFlag: "localhost"}, key)

	_, err = parseAPIKey("create", nil, &bytes.Buffer{})
	require.Error(t, err)
	assert.Equal(t, "apikey create: missing --name (adhocd apikey create --name N [--domain D] [--read-only] [--quiet | --json] [flags])",
		err.Error(), "ADHOCD_NAME is not --name")

	audit, err := parseAudit(nil, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, auditOptions{data: "./data", query: session.AuditQuery{Limit: session.DefaultAuditLimit}}, audit)

	user, err := parseUser("add", []string{"bob@localhost"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.False(t, user.admin)

	// The settings still do.
	t.Setenv("ADHOCD_DATA", "/srv/adhocd")
	audit, err = parseAudit(nil, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "/srv/adhocd", audit.data)
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name        string
		givenFile   string
		givenEnv    map[string]string
		whenCmd     string   // serve, user add, apikey create, audit, ...
		whenArgs    []string // --config adhocd.yaml is added
		expectError string
	}{
		// Keys.
		{name: "unknown key, like one", whenCmd: "serve", givenFile: "domain: example.org\nc2s_tls: \":5223\"\n",
			expectError: `adhocd.yaml:2: unknown key "c2s_tls" (did you mean "c2s-tls"?)`},
		{name: "unknown key, a typo", whenCmd: "serve", givenFile: "domian: example.org\n",
			expectError: `adhocd.yaml:1: unknown key "domian" (did you mean "domain"?)`},
		{name: "unknown key, like none", whenCmd: "serve", givenFile: "\n\nfrobnicate: 1\n",
			expectError: `adhocd.yaml:3: unknown key "frobnicate"`},
		{name: "unknown key in an offline command", whenCmd: "user add", whenArgs: []string{"bob@localhost"},
			givenFile: "Data: /tmp\n", expectError: `user add: adhocd.yaml:1: unknown key "Data" (did you mean "data"?)`},
		{name: "key of audit read by serve", whenCmd: "serve", givenFile: "limit: 5\n",
			expectError: `adhocd.yaml:1: key "limit" is not a setting but a flag of adhocd audit, given on the command line only (--limit)`},
		{name: "key of audit read by audit", whenCmd: "audit", givenFile: "json: true\n",
			expectError: `audit: adhocd.yaml:1: key "json" is not a setting but a flag of adhocd apikey create, adhocd audit, given on the command line only (--json)`},
		{name: "key of apikey read by apikey", whenCmd: "apikey create", whenArgs: []string{"--name", "n"}, givenFile: "read-only: true\n",
			expectError: `apikey create: adhocd.yaml:1: key "read-only" is not a setting but a flag of adhocd apikey create, given on the command line only (--read-only)`},
		{name: "key of apikey read by user", whenCmd: "user add", whenArgs: []string{"bob@localhost"}, givenFile: "name: ci\n",
			expectError: `user add: adhocd.yaml:1: key "name" is not a setting but a flag of adhocd apikey create, given on the command line only (--name)`},
		{name: "key of user add read by user del", whenCmd: "user del", whenArgs: []string{"bob@localhost"},
			givenFile:   "admin: true\n",
			expectError: `user del: adhocd.yaml:1: key "admin" is not a setting but a flag of adhocd user add, given on the command line only (--admin)`},
		{name: "config in the file", whenCmd: "serve", givenFile: "config: other.yaml\n",
			expectError: `adhocd.yaml:1: key "config": a config file cannot name another`},
		{name: "repeated key", whenCmd: "serve", givenFile: "domain: a.example\nhttp: \":80\"\ndomain: b.example\n",
			expectError: `adhocd.yaml:3: key "domain" repeated (first at line 1)`},

		// The file's shape.
		{name: "not a mapping", whenCmd: "serve", givenFile: "- domain: example.org\n",
			expectError: `adhocd.yaml:1: want a mapping of flag names to values, got a list`},
		{name: "key not a name", whenCmd: "serve", givenFile: "? [a, b]\n: x\n",
			expectError: `adhocd.yaml:1: want a flag name as key, got a list`},
		{name: "two documents", whenCmd: "serve", givenFile: "domain: a.example\n---\ndomain: b.example\n",
			expectError: `adhocd.yaml:2: a second YAML document: the file holds one mapping of flag names to values`},
		{name: "syntax", whenCmd: "serve", givenFile: "domain: a.example\nhttp: x: y\n",
			expectError: `adhocd.yaml:2: mapping values are not allowed in this context`},
		{name: "syntax, no line", whenCmd: "serve", givenFile: "http: *x\n",
			expectError: `adhocd.yaml: unknown anchor 'x' referenced`},

		// Values of the wrong type or shape.
		{name: "list for a string", whenCmd: "serve", givenFile: "c2s-tls: [\":5223\", \":5224\"]\n",
			expectError: `adhocd.yaml:1: c2s-tls: want a string, got a list`},
		{name: "mapping for a string", whenCmd: "serve", givenFile: "domain:\n  name: example.org\n",
			expectError: `adhocd.yaml:2: domain: want a string, got a mapping`},
		{name: "no value", whenCmd: "serve", givenFile: "c2s:\n",
			expectError: `adhocd.yaml:1: c2s: want a string, got no value`},
		{name: "mapping in a list", whenCmd: "serve", givenFile: "pusher-app:\n  - a:k:s\n  - {id: b}\n",
			expectError: `adhocd.yaml:3: pusher-app: want a string in the list, got a mapping`},
		{name: "mapping for a list", whenCmd: "serve", givenFile: "admins: {a: b}\n",
			expectError: `adhocd.yaml:1: admins: want a string or a list of strings, got a mapping`},
		{name: "string for an integer", whenCmd: "serve", givenFile: "max-stanza: big\n",
			expectError: `adhocd.yaml:1: max-stanza: want an integer, got the string "big"`},
		{name: "quoted integer", whenCmd: "serve", givenFile: "rate-burst: \"5\"\n",
			expectError: `adhocd.yaml:1: rate-burst: want an integer, got the string "5"`},
		{name: "float for an integer", whenCmd: "serve", givenFile: "rate-burst: 2.5\n",
			expectError: `adhocd.yaml:1: rate-burst: want an integer, got the number 2.5`},
		{name: "string for a number", whenCmd: "serve", givenFile: "rate: fast\n",
			expectError: `adhocd.yaml:1: rate: want a number, got the string "fast"`},
		{name: "integer for a duration", whenCmd: "serve", givenFile: "shutdown-timeout: 5\n",
			expectError: `adhocd.yaml:1: shutdown-timeout: "5" is not a duration; write 5m or 30s`},

		// Bad values.
		{name: "bad duration", whenCmd: "serve", givenFile: "idle-timeout: 5 minutes\n",
			expectError: `adhocd.yaml:1: idle-timeout: "5 minutes" is not a duration; write 5m or 30s`},
		{name: "integer out of range", whenCmd: "serve", givenFile: "rate-burst: 9999999999999999999\n",
			expectError: `adhocd.yaml:1: rate-burst: "9999999999999999999" is out of range; write a number such as 20`},
		{name: "integer out of YAML's range", whenCmd: "serve", givenFile: "max-stanza: 99999999999999999999\n",
			expectError: `adhocd.yaml:1: max-stanza: "99999999999999999999" is out of range; write a number such as 262144`},
		{name: "bad domain", whenCmd: "serve", givenFile: "domain: admin@example.org\n",
			expectError: `adhocd.yaml:1: domain: "admin@example.org" is not a domain name; write example.org`},
		{name: "bad domain of user", whenCmd: "user list", givenFile: "domain: a/b\n",
			expectError: `user list: adhocd.yaml:1: domain: "a/b" is not a domain name; write example.org`},
		{name: "bad log level", whenCmd: "serve", givenFile: "log-level: loud\n",
			expectError: `adhocd.yaml:1: log-level: "loud" is not a level; write debug, info, warn or error`},
		{name: "bad admin in a list", whenCmd: "serve", givenFile: "domain: example.org\nadmins:\n  - a@example.org\n  - bob\n",
			expectError: `adhocd.yaml:4: admins: "bob" is not a bare JID like admin@example.org`},
		{name: "bad admin in a string", whenCmd: "serve", givenFile: "admins: a@example.org, b@example.org/phone\n",
			expectError: `adhocd.yaml:1: admins: "b@example.org/phone" is not a bare JID like admin@localhost`},
		{name: "bad pusher app", whenCmd: "serve", givenFile: "pusher-app: [\"a:k:s\", \"b:k\"]\n",
			expectError: `adhocd.yaml:1: pusher-app: "b:k:…" is not id:key:secret:domain`},
		{name: "bad number", whenCmd: "serve", givenFile: "rate: 1.5e\n",
			expectError: `adhocd.yaml:1: rate: want a number, got the string "1.5e"`},

		// A bad value is an error even where a flag or a variable overrides it.
		{name: "bad value under a flag", whenCmd: "serve", givenFile: "domain: a@b\n", whenArgs: []string{"--domain", "example.org"},
			expectError: `adhocd.yaml:1: domain: "a@b" is not a domain name; write example.org`},
		{name: "bad value under a variable", whenCmd: "serve", givenFile: "log-level: loud\n",
			givenEnv:    map[string]string{"ADHOCD_LOG_LEVEL": "debug"},
			expectError: `adhocd.yaml:1: log-level: "loud" is not a level; write debug, info, warn or error`},
		{name: "wrong type under a flag", whenCmd: "serve", givenFile: "rate: true\n",
			whenArgs:    []string{"--rate", "5"},
			expectError: `adhocd.yaml:1: rate: want a number, got the boolean true`},

		// The file itself, and the messages of flags and variables, unchanged.
		{name: "missing file", whenCmd: "serve", givenFile: "-", whenArgs: []string{"--config", "missing.yaml"},
			expectError: `--config: open missing.yaml: no such file or directory`},
		{name: "missing file from the environment", whenCmd: "audit", givenFile: "-",
			givenEnv:    map[string]string{"ADHOCD_CONFIG": "missing.yaml"},
			expectError: `audit: ADHOCD_CONFIG: open missing.yaml: no such file or directory`},
		{name: "bad variable", whenCmd: "serve", givenFile: "idle-timeout: 1m\n",
			givenEnv:    map[string]string{"ADHOCD_IDLE_TIMEOUT": "5"},
			expectError: `ADHOCD_IDLE_TIMEOUT: "5" is not a duration; write 5m or 30s`},
		{name: "bad domain flag", whenCmd: "serve", givenFile: "domain: example.org\n", whenArgs: []string{"--domain", "a@b"},
			expectError: `serve: --domain: "a@b" is not a domain name; write example.org`},
		{name: "bad flag", whenCmd: "audit", givenFile: "data: /srv/adhocd\n", whenArgs: []string{"--limit", "0"},
			expectError: `audit: --limit: 0 is less than the minimum of 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // messages name the file as given: adhocd.yaml
			args := tc.whenArgs
			if tc.givenFile != "-" {
				require.NoError(t, os.WriteFile("adhocd.yaml", []byte(tc.givenFile), 0o600))
				args = append([]string{"--config", "adhocd.yaml"}, args...)
			}
			for k, v := range tc.givenEnv {
				t.Setenv(k, v)
			}

			err := parseCommand(tc.whenCmd, args)
			require.Error(t, err)
			assert.Equal(t, tc.expectError, err.Error())
		})
	}
}

func TestConfigIgnoresServeKeysElsewhere(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	// Serve's keys, even a bad value of one, are not the user command's business.
	file := writeConfig(t, "data: "+dir+"\ndomain: example.org\nhttp: \"127.0.0.1:0\"\nlog-level: loud\n"+
		"admins: [root@example.org]\npusher-app: [a:k:s]\n")

	assert.Equal(t, "Account bob@example.org created, admin: false (database "+filepath.Join(dir, "adhocd.db")+")\n",
		mustUser(t, "pw\n", "add", "--config", file, "bob@example.org"))
	assert.Equal(t, "Account carol@example.org created, admin: true (database "+filepath.Join(dir, "adhocd.db")+")\n",
		mustUser(t, "pw\n", "add", "carol@example.org", "--config", file, "--admin"), "flags after the JID")
	assert.Equal(t, "bob@example.org\tfalse\tfalse\t-\t-\t-\ncarol@example.org\ttrue\tfalse\t-\t-\t-\n", mustUser(t, "", "list", "--config", file))
	db := openData(t, dir)
	assert.NoError(t, db.VerifyPassword(t.Context(), jid.MustParse("bob@example.org"), "pw"), "in the file's data directory")

	_, err := userRun(t, "pw\n", "add", "--config", file, "bob@localhost")
	assert.EqualError(t, err, `user add: "bob@localhost": domain localhost is not served here (--domain example.org)`)

	t.Setenv("ADHOCD_CONFIG", file)
	out, _, err := apikeyRun(t, "list")
	require.NoError(t, err, "ADHOCD_CONFIG names the data directory")
	assert.Empty(t, out)
}

func TestConfigUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr))
	assert.Contains(t, stdout.String(), "--config FILE")
	assert.Contains(t, stdout.String(), precedence)

	for _, cmd := range [][]string{{"serve"}, {"user", "add"}, {"apikey", "list"}, {"audit"}} {
		stderr.Reset()
		err := run(t.Context(), append(cmd, "--help"), strings.NewReader(""), &stdout, &stderr)
		require.Error(t, err)
		assert.Contains(t, stderr.String(), "  --config\n    \tYAML file of settings whose keys are the flag names (domain: example.org); "+
			"empty: none (env ADHOCD_CONFIG)\n", cmd)
		assert.True(t, strings.HasSuffix(stderr.String(), "\n"+precedence+"\n"), cmd)
	}
}

func TestServeTrustedProxies(t *testing.T) {
	t.Setenv("ADHOCD_TRUSTED_PROXIES", "")
	cfg, err := parseServe([]string{"--trusted-proxies", "10.1.2.3/8, 192.0.2.7,fd00::/8"}, &bytes.Buffer{})
	require.NoError(t, err)
	var got []string
	for _, p := range cfg.trustedProxies {
		got = append(got, p.String())
	}
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.7/32", "fd00::/8"}, got)

	cfg, err = parseServe(nil, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Empty(t, cfg.trustedProxies, "none by default: the peer is the client")

	_, err = parseServe([]string{"--trusted-proxies", "10.0.0.0/8,proxy.example"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Equal(t, `serve: --trusted-proxies: "proxy.example" is neither an address nor a network; write 10.0.0.0/8, 192.0.2.1 or fd00::/8`, err.Error())
}
