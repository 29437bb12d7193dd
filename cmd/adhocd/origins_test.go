package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigAllowedOrigins(t *testing.T) {
	const file = "allowed-origins:\n  - https://console.example.org\n  - HTTP://127.0.0.1:8080\n"
	tests := []struct {
		name      string
		givenFile string // "" for none
		givenEnv  map[string]string
		whenArgs  []string
		expect    []string
	}{
		{name: "default: none"},
		{name: "file over default, as browsers write them", givenFile: file,
			expect: []string{"https://console.example.org", "http://127.0.0.1:8080"}},
		{name: "a comma-separated string in the file", givenFile: "allowed-origins: https://a.example:443, http://b.example:81\n",
			expect: []string{"https://a.example", "http://b.example:81"}},
		{name: "env over file", givenFile: file, givenEnv: map[string]string{"ADHOCD_ALLOWED_ORIGINS": "https://env.example"},
			expect: []string{"https://env.example"}},
		{name: "empty env over file", givenFile: file, givenEnv: map[string]string{"ADHOCD_ALLOWED_ORIGINS": ""}},
		{name: "flag over env and file", givenFile: file, givenEnv: map[string]string{"ADHOCD_ALLOWED_ORIGINS": "https://env.example"},
			whenArgs: []string{"--allowed-origins", "https://flag.example,https://[::1]:9443"},
			expect:   []string{"https://flag.example", "https://[::1]:9443"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.whenArgs
			if tc.givenFile != "" {
				args = append([]string{"--config", writeConfig(t, tc.givenFile)}, args...)
			}
			for k, v := range tc.givenEnv {
				t.Setenv(k, v)
			}
			cfg, err := parseServe(args, &bytes.Buffer{})
			require.NoError(t, err)
			assert.Equal(t, tc.expect, cfg.allowedOrigins)
		})
	}
}

func TestConfigAllowedOriginsErrors(t *testing.T) {
	const like = " is not an origin like https://admin.example.org or http://127.0.0.1:8080: "
	tests := []struct {
		name        string
		givenFile   string // "" for none
		givenEnv    map[string]string
		whenArgs    []string
		expectError string
	}{
		{name: "a path in the file", givenFile: "domain: example.org\nallowed-origins:\n  - https://ok.example\n  - https://console.example.org/admin\n",
			expectError: `adhocd.yaml:4: allowed-origins: "https://console.example.org/admin"` + like + "an origin has no path, query or fragment, not even a trailing /"},
		{name: "a trailing slash in the file, under a flag", givenFile: "allowed-origins: https://console.example.org/\n",
			whenArgs:    []string{"--allowed-origins", "https://ok.example"},
			expectError: `adhocd.yaml:1: allowed-origins: "https://console.example.org/"` + like + "an origin has no path, query or fragment, not even a trailing /"},
		{name: "no scheme in the environment", givenEnv: map[string]string{"ADHOCD_ALLOWED_ORIGINS": "console.example.org"},
			expectError: `serve: --allowed-origins: "console.example.org"` + like + "the scheme must be http or https"},
		{name: "a bad port on the command line", whenArgs: []string{"--allowed-origins", "https://ok.example,http://127.0.0.1:0"},
			expectError: `serve: --allowed-origins: "http://127.0.0.1:0"` + like + "the port must be a number from 1 to 65535"},
		{name: "null", whenArgs: []string{"--allowed-origins", "null"},
			expectError: `serve: --allowed-origins: "null"` + like + "the scheme must be http or https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // messages name the file as given: adhocd.yaml
			args := tc.whenArgs
			if tc.givenFile != "" {
				require.NoError(t, os.WriteFile("adhocd.yaml", []byte(tc.givenFile), 0o600))
				args = append([]string{"--config", "adhocd.yaml"}, args...)
			}
			for k, v := range tc.givenEnv {
				t.Setenv(k, v)
			}
			_, err := parseServe(args, &bytes.Buffer{})
			require.Error(t, err)
			assert.Equal(t, tc.expectError, err.Error())
		})
	}
}
