package main

import (
	"bytes"
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFlagValueErrors checks the one line of a bad value of every kind of
// flag, given as a flag or as its variable: the flag or variable, the value,
// and a valid one; and that no usage text comes with it.
func TestFlagValueErrors(t *testing.T) {
	tests := []struct {
		name        string
		whenCmd     string // serve, user add, apikey create, audit, ...
		whenArgs    []string
		givenEnv    map[string]string
		expectError string
	}{
		{name: "duration", whenCmd: "serve", whenArgs: []string{"--idle-timeout", "5"},
			expectError: `--idle-timeout: "5" is not a duration; write 5m or 30s`},
		{name: "duration variable", whenCmd: "serve", givenEnv: map[string]string{"ADHOCD_IDLE_TIMEOUT": "5"},
			expectError: `ADHOCD_IDLE_TIMEOUT: "5" is not a duration; write 5m or 30s`},
		{name: "int", whenCmd: "serve", whenArgs: []string{"--rate-burst", "lots"},
			expectError: `--rate-burst: "lots" is not a whole number; write a number such as 20`},
		{name: "int out of range", whenCmd: "serve", whenArgs: []string{"--rate-burst", "99999999999999999999"},
			expectError: `--rate-burst: "99999999999999999999" is out of range; write a number such as 20`},
		{name: "int64", whenCmd: "serve", whenArgs: []string{"--max-stanza=256k"},
			expectError: `--max-stanza: "256k" is not a whole number; write a number such as 262144`},
		{name: "int64 variable", whenCmd: "serve", givenEnv: map[string]string{"ADHOCD_BODY_LIMIT": "1MB"},
			expectError: `ADHOCD_BODY_LIMIT: "1MB" is not a whole number; write a number such as 1048576`},
		{name: "float", whenCmd: "serve", whenArgs: []string{"--rate", "fast"},
			expectError: `--rate: "fast" is not a number; write a number such as 10 or 0.5`},
		{name: "float out of range", whenCmd: "serve", givenEnv: map[string]string{"ADHOCD_ADMIN_RATE": "1e999"},
			expectError: `ADHOCD_ADMIN_RATE: "1e999" is out of range; write a number such as 0 or 0.5`},
		{name: "bool", whenCmd: "audit", whenArgs: []string{"--json=yes"},
			expectError: `audit: --json: "yes" is not a boolean; write true or false`},
		{name: "level", whenCmd: "serve", whenArgs: []string{"--log-level", "loud"},
			expectError: `serve: --log-level: "loud" is not a level; write debug, info, warn or error`},
		{name: "level variable", whenCmd: "serve", givenEnv: map[string]string{"ADHOCD_LOG_LEVEL": "loud"},
			expectError: `serve: --log-level: "loud" is not a level; write debug, info, warn or error`},
		{name: "comma list of JIDs", whenCmd: "serve", whenArgs: []string{"--admins", "a@localhost,bob"},
			expectError: `serve: --admins: "bob" is not a bare JID like admin@localhost`},
		{name: "comma list of networks", whenCmd: "serve", whenArgs: []string{"--trusted-proxies", "10.0.0.0/8,10.0.0.300"},
			expectError: `serve: --trusted-proxies: "10.0.0.300" is neither an address nor a network; write 10.0.0.0/8, 192.0.2.1 or fd00::/8`},
		{name: "comma list of origins", whenCmd: "serve", whenArgs: []string{"--allowed-origins", "ftp://x"},
			expectError: `serve: --allowed-origins: "ftp://x" is not an origin like https://admin.example.org or http://127.0.0.1:8080: the scheme must be http or https`},
		{name: "repeatable list", whenCmd: "serve", givenEnv: map[string]string{"ADHOCD_PUSHER_APP": "a:k:s,b:k"},
			expectError: `serve: --pusher-app: "b:k:…" is not id:key:secret:domain`},
		{name: "domain", whenCmd: "user list", whenArgs: []string{"--domain", "a@b"},
			expectError: `user list: --domain: "a@b" is not a domain name; write example.org`},
		{name: "audit limit", whenCmd: "audit", whenArgs: []string{"--limit", "501"},
			expectError: `audit: --limit: 501 is more than the maximum of 500`},

		// Not a value.
		{name: "missing value", whenCmd: "serve", whenArgs: []string{"--idle-timeout"},
			expectError: `--idle-timeout needs a value; write --idle-timeout 5m`},
		{name: "missing string", whenCmd: "apikey create", whenArgs: []string{"--name"},
			expectError: `apikey create: --name needs a value; write --name NAME`},
		{name: "unknown flag", whenCmd: "serve", whenArgs: []string{"--idel-timeout", "5m"},
			expectError: `unknown flag --idel-timeout (did you mean --idle-timeout?); run 'adhocd serve --help' for the flags`},
		{name: "unknown flag, nothing near", whenCmd: "user add", whenArgs: []string{"--password", "x", "bob@localhost"},
			expectError: `user add: unknown flag --password; run 'adhocd user add --help' for the flags`},
		{name: "flag of another command", whenCmd: "user del", whenArgs: []string{"--admin", "bob@localhost"},
			expectError: `user del: unknown flag --admin; run 'adhocd user del --help' for the flags`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.givenEnv {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			err := parseCommandTo(tc.whenCmd, tc.whenArgs, &stderr)
			require.Error(t, err)
			assert.Equal(t, tc.expectError, err.Error())
			assert.Empty(t, stderr.String(), "no usage text")
		})
	}
}

func TestFlagHelpPrintsUsage(t *testing.T) {
	for _, cmd := range []string{"serve", "user add", "apikey create", "audit"} {
		t.Run(cmd, func(t *testing.T) {
			var stderr bytes.Buffer
			err := parseCommandTo(cmd, []string{"--help"}, &stderr)
			assert.ErrorIs(t, err, flag.ErrHelp)
			assert.Contains(t, stderr.String(), "Usage: adhocd "+cmd)
			assert.Contains(t, stderr.String(), "  --data\n")
		})
	}
}

func TestFlagUsageNamesOnlySettingsVariables(t *testing.T) {
	var stderr bytes.Buffer
	require.ErrorIs(t, parseCommandTo("apikey create", []string{"-h"}, &stderr), flag.ErrHelp)
	usage := stderr.String()
	assert.Contains(t, usage, "  --domain\n    \tthe XMPP domain the key acts on (env ADHOCD_DOMAIN, default \"localhost\")\n")
	assert.Contains(t, usage, "  --name\n    \tthe key's name: 1 to 64 printable characters, unique among active keys\n")
	assert.Contains(t, usage, "  --quiet\n    \tprint the secret alone, for KEY=$(adhocd apikey create --name bot --quiet) (default \"false\")\n")
	assert.NotContains(t, usage, "ADHOCD_NAME")
	assert.NotContains(t, usage, "ADHOCD_QUIET")
}
