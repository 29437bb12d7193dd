package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/c2s/c2stest"
)

// readmeBlocks returns the fenced code blocks of README.md that follow a
// "<!-- README test: NAME -->" line, by NAME.
func readmeBlocks(t *testing.T) map[string]string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks := map[string]string{}
	lines := strings.Split(string(readme), "\n")
	marker := regexp.MustCompile(`^<!-- README test: (.+) -->$`)
	for i := 0; i < len(lines); i++ {
		m := marker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		require.Less(t, i+1, len(lines), "marker %q ends the README", m[1])
		require.True(t, strings.HasPrefix(lines[i+1], "```"), "marker %q is not followed by a code block", m[1])
		var body []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		blocks[m[1]] = strings.Join(body, "\n")
	}
	return blocks
}

// TestE2EReadmeQuickStart runs the README's quick start and its first curl
// examples as written, against the built binary: the serve command (with
// loopback port 0 flags added, and the binary for `go run ./cmd/adhocd`),
// then each curl command (with the HTTP address it really got for
// 127.0.0.1:5280), comparing what it prints with the answer the README
// shows. The README cannot drift from the product without this failing.
func TestE2EReadmeQuickStart(t *testing.T) {
	requireTool(t, "curl", "curl")
	blocks := readmeBlocks(t)
	for _, name := range []string{"serve", "healthz", "request xml", "answer xml", "request json", "answer json"} {
		require.Contains(t, blocks, name, "README.md lost its %q example", name)
	}

	// ADHOCD_ADMIN_PASSWORD=secret go run ./cmd/adhocd serve
	var env, args []string
	fields := strings.Fields(blocks["serve"])
	for len(fields) > 0 && strings.Contains(fields[0], "=") {
		env, fields = append(env, fields[0]), fields[1:]
	}
	cmdline := strings.Join(fields, " ")
	require.True(t, strings.HasPrefix(cmdline, "go run ./cmd/adhocd serve"), "the quick start runs %q", cmdline)
	dir := t.TempDir()
	args = append(strings.Fields(strings.TrimPrefix(cmdline, "go run ./cmd/adhocd ")), loopbackArgs(dir)...)
	d := startDaemonEnv(t, dir, "localhost", env, args...)
	httpBase := "http://" + d.addrs["http"]
	local := func(s string) string { return strings.ReplaceAll(s, "http://127.0.0.1:5280", httpBase) }

	// $ curl -s http://127.0.0.1:5280/healthz, before anyone logs in.
	prompt, shown, ok := strings.Cut(blocks["healthz"], "\n")
	require.True(t, ok && strings.HasPrefix(prompt, "$ "), "the healthz example is a prompt and its output")
	goroutines := regexp.MustCompile(`"goroutines":\d+`)
	assert.Equal(t, goroutines.ReplaceAllString(shown, `"goroutines":N`),
		goroutines.ReplaceAllString(strings.TrimSpace(runShell(t, local(strings.TrimPrefix(prompt, "$ ")))), `"goroutines":N`))

	// test@localhost, logged in from two clients (slixmpp, which binds the
	// resource it asks for).
	userAdd(t, d.dir, "test@localhost", "test-secret")
	python := c2stest.SlixmppPython(t)
	for _, r := range []string{"laptop", "phone"} {
		slix := d.startSlixmpp(t, python, jid.MustParse("test@localhost/"+r), "test-secret")
		require.Equal(t, "AUTH SCRAM-SHA-256", slix.Next())
		require.Equal(t, "READY test@localhost/"+r, slix.Next())
	}
	assert.Equal(t, canonicalXML(t, blocks["answer xml"]), canonicalXML(t, runShell(t, local(blocks["request xml"]))),
		"the XML example answers as the README shows")

	var want, got any
	require.NoError(t, json.Unmarshal([]byte(blocks["answer json"]), &want))
	out := runShell(t, local(blocks["request json"]))
	require.NoError(t, json.Unmarshal([]byte(out), &got), "the JSON example's answer: %s", out)
	assert.Equal(t, want, got, "the JSON example answers as the README shows")
}

// runShell runs script with bash and returns its standard output; it fails
// the test if the script fails.
func runShell(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s\nstderr: %s", script, stderr.String())
	return stdout.String()
}

// canonicalXML re-encodes an XML document without the whitespace between
// elements, so that indentation does not count.
func canonicalXML(t *testing.T, doc string) string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "XML: %s", doc)
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) == 0 {
			continue
		}
		require.NoError(t, enc.EncodeToken(xml.CopyToken(tok)))
	}
	require.NoError(t, enc.Flush())
	return out.String()
}
