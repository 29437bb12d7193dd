package c2s_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/sasl"

	"github.com/adhocd/adhocd/transport/limit"
)

// scramFirst sends a SCRAM-SHA-256 client-first-message for user and returns
// the server-first-message, or the failure condition if the server refuses.
func (c *rawClient) scramFirst(user string) (serverFirst, failure string) {
	c.t.Helper()
	first := base64.StdEncoding.EncodeToString([]byte("n,,n=" + user + ",r=probe-nonce"))
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>%s</auth>`, first)
	n, err := c.next()
	require.NoError(c.t, err)
	switch n.XMLName.Local {
	case "challenge":
		msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(n.Text))
		require.NoError(c.t, err)
		return string(msg), ""
	case "failure":
		return "", failureCondition(n)
	}
	c.t.Fatalf("unexpected %+v after <auth/>", n)
	return "", ""
}

// failureCondition is the condition of a SASL <failure/>.
func failureCondition(n node) string {
	for _, ch := range n.Nodes {
		if ch.XMLName.Local != "text" {
			return ch.XMLName.Local
		}
	}
	return ""
}

func TestAbortedAndAbandonedSCRAMCountAgainstTheAddress(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	failures := limit.NewDefaultFailures()
	failures.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	e := newEnvWith(t, failures)
	bob := e.addUser(t, "bob", "bob-pw")
	alice := e.addUser(t, "alice", "alice-pw")

	// Bob has logged in from 127.0.0.1 before.
	_, failure := e.dialRaw(t, true).login(bob, "bob-pw", sasl.ScramSha256)
	require.Empty(t, failure)

	// An enumerator at 127.0.0.1 asks for salts and never sends a proof:
	// half its probes abort, half hang up.
	probe := func(i int) {
		c := e.dialRaw(t, true)
		c.open()
		c.expect("features")
		first, failure := c.scramFirst(fmt.Sprintf("user%d", i))
		require.Empty(t, failure, "probe %d", i)
		require.Contains(t, first, ",s=", "probe %d is told a salt", i)
		if i%2 == 0 {
			c.send(`<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
			assert.Equal(t, "aborted", failureCondition(c.expect("failure")), "RFC 6120 §6.4.6: <abort/> is answered <aborted/>")
		}
		require.NoError(t, c.conn.Close())
	}
	for i := range limit.DefaultAddressFailures {
		probe(i)
	}
	// The server counts a hang-up when it reads the end of the socket.
	require.Eventually(t, func() bool { return failures.CheckAddr("127.0.0.1") > 0 }, 10*time.Second, 5*time.Millisecond)

	// Now the address is refused before it is told any salt, for real and
	// unknown accounts alike.
	c := e.dialRaw(t, true)
	c.open()
	c.expect("features")
	for _, user := range []string{"alice", "nobody"} {
		first, failure := c.scramFirst(user)
		assert.Equal(t, "temporary-auth-failure", failure, "probe for %s", user)
		assert.Empty(t, first)
	}
	_, failure = e.dialRaw(t, true).login(alice, "alice-pw", sasl.ScramSha256)
	assert.Equal(t, "temporary-auth-failure", failure, "alice, who never logged in from the address, waits")

	// Bob, who logged in from it before, and alice from elsewhere do not.
	_, failure = e.dialRaw(t, true).login(bob, "bob-pw", sasl.ScramSha256)
	assert.Empty(t, failure, "bob from his known address")
	_, failure = e.dialRawFrom(t, "127.0.0.2", true).login(alice, "alice-pw", sasl.ScramSha256)
	assert.Empty(t, failure, "alice from another address")

	// The window ends.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	_, failure = e.dialRaw(t, true).login(alice, "alice-pw", sasl.ScramSha256)
	assert.Empty(t, failure, "alice once the window ended")
}

func TestMalformedFinalMessageCountsAgainstTheAddress(t *testing.T) {
	failures := limit.NewFailures(limit.Limits{Address: 1})
	e := newEnvWith(t, failures)
	alice := e.addUser(t, "alice", "alice-pw")

	// A client-final-message with a nonce of its own is no proof either.
	c := e.dialRaw(t, true)
	c.open()
	c.expect("features")
	_, failure := c.scramFirst("alice")
	require.Empty(t, failure)
	final := base64.StdEncoding.EncodeToString([]byte("c=biws,r=other-nonce,p=AAAA"))
	c.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>`, final)
	assert.Equal(t, "malformed-request", failureCondition(c.expect("failure")))

	_, failure = e.dialRaw(t, true).login(alice, "alice-pw", sasl.ScramSha256)
	assert.Equal(t, "temporary-auth-failure", failure, "the address reached its limit of one")
}
