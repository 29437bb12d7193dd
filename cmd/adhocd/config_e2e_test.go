package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
)

// TestE2EConfigFile starts the binary with nothing but --config: the
// domain, data directory, listen addresses and admins all come from the
// file, which `adhocd user add` reads too.
func TestE2EConfigFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := filepath.Join(dir, "adhocd.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`# one file for serve and for the offline commands
domain: example.test
data: `+data+`
c2s: "127.0.0.1:0"
c2s-tls: "127.0.0.1:0"
http: "127.0.0.1:0"
log-level: debug
admins:
  - ops@example.test
`), 0o600))
	for _, user := range []string{"ops@example.test", "carol@example.test"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, adhocdBinary(t), "user", "add", user, "--config", file)
		cmd.Env = childEnv()
		cmd.Stdin = strings.NewReader(user + "-secret\n")
		out, err := cmd.CombinedOutput()
		cancel()
		require.NoError(t, err, "adhocd user add %s --config: %s", user, out)
	}

	d := startDaemonArgs(t, data, "example.test", "serve", "--config", file)
	for component, addr := range d.addrs {
		assert.True(t, strings.HasPrefix(addr, "127.0.0.1:"), "%s listens on %s, from the file", component, addr)
	}
	assert.FileExists(t, filepath.Join(data, "cert.pem"), "the certificate is made in the file's data directory")

	resp, err := http.Get("http://" + d.addrs["http"] + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// The domain is served over XMPP, with the admin made at first start for it.
	for _, directTLS := range []bool{false, true} {
		s := d.login(t, jid.MustParse("admin@example.test"), e2eAdminPassword, directTLS)
		assert.Equal(t, "example.test", s.LocalAddr().Domainpart())
	}

	// Over HTTP: ops is an admin by the file's admins, carol is not, and localhost is not served.
	get := func(path, user string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+d.addrs["http"]+path, nil)
		require.NoError(t, err)
		req.SetBasicAuth(user, user+"-secret")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, get("/rest/sessions", "ops@example.test"))
	assert.Equal(t, http.StatusForbidden, get("/rest/sessions", "carol@example.test"))
	assert.Equal(t, http.StatusOK, get("/rest/adhoc/example.test", "ops@example.test"))
	assert.Equal(t, http.StatusNotFound, get("/rest/adhoc/localhost", "ops@example.test"))
}
