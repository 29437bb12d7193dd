package httpapi_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/sessman/session"
)

func TestBlockSeenAndLifted(t *testing.T) {
	a := newSessionAPI(t)
	admin := func(c apiCall) apiCall { c.user, c.password = "admin@localhost", "secret"; return c }
	alice := func(c apiCall) apiCall { c.user, c.password = "alice@localhost", "alicepw"; return c }

	status, _, body := a.do(t, alice(apiCall{method: "GET", path: "/rest/users/alice@localhost/block"}))
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, map[string]any{"blocked": false}, body, "alice may see that she is not blocked")

	status, _, body = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/sessions/all?block=600&reason=Password+reset"}))
	require.Equal(t, 200, status, "%v", body)

	// alice is refused with the block's two sentences.
	status, _, body = a.do(t, alice(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions"}))
	assert.Equal(t, 403, status)
	assert.Regexp(t, regexp.MustCompile(`^Password reset\. You may not log in before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.$`), body["error"])

	// The listing of her sessions and GET …/block say so.
	status, _, body = a.do(t, admin(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions"}))
	require.Equal(t, 200, status, "%v", body)
	blk, ok := body["block"].(map[string]any)
	require.True(t, ok, "the listing has a block: %v", body)
	assert.Equal(t, "Password reset", blk["reason"])
	assert.Equal(t, "alice@localhost", blk["user"])
	until, _ := blk["until"].(string)
	assert.Contains(t, until, "T")
	status, _, body = a.do(t, apiCall{method: "GET", path: "/rest/users/alice@localhost/block", key: a.readKey})
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, map[string]any{"blocked": true, "until": until, "reason": "Password reset"}, body)
	status, _, body = a.do(t, admin(apiCall{method: "GET", path: "/rest/users/bob@localhost/sessions"}))
	require.Equal(t, 200, status)
	assert.NotContains(t, body, "block", "bob is not blocked")

	// A read-only key may not lift it; a full key may.
	status, _, body = a.do(t, apiCall{method: "DELETE", path: "/rest/users/alice@localhost/block", key: a.readKey})
	assert.Equal(t, 403, status)
	assert.Equal(t, "This API key is read-only: it may not lift a block.", body["error"])
	status, _, body = a.do(t, apiCall{method: "DELETE", path: "/rest/users/alice@localhost/block", key: a.writeKey})
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, true, body["unblocked"])
	assert.Equal(t, map[string]any{"user": "alice@localhost", "until": until, "reason": "Password reset"}, body["block"])

	// alice logs in again at once, and is no longer listed as blocked.
	status, _, body = a.do(t, alice(apiCall{method: "GET", path: "/rest/users/alice@localhost/sessions"}))
	require.Equal(t, 200, status, "%v", body)
	assert.NotContains(t, body, "block")
	status, _, body = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/block"}))
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, map[string]any{"unblocked": false}, body, "lifted already")

	// Not for an unknown account, nor by the user herself.
	status, _, body = a.do(t, admin(apiCall{method: "DELETE", path: "/rest/users/nobody@localhost/block"}))
	assert.Equal(t, 404, status)
	assert.Equal(t, "item-not-found", body["condition"])
	status, _, body = a.do(t, admin(apiCall{method: "GET", path: "/rest/users/nobody@localhost/block"}))
	assert.Equal(t, 404, status)
	assert.Equal(t, "item-not-found", body["condition"])
	status, _, body = a.do(t, alice(apiCall{method: "DELETE", path: "/rest/users/alice@localhost/block"}))
	assert.Equal(t, 403, status)
	assert.Equal(t, "Only administrators and API keys may lift a block.", body["error"])

	// Every lift and every refusal is audited.
	page, err := a.db.Audit(context.Background(), session.AuditQuery{Target: "alice@localhost"})
	require.NoError(t, err)
	var got [][]string
	for _, e := range page.Items {
		if e.Action == "user-unblock" {
			got = append(got, []string{e.Actor, e.Outcome})
		}
	}
	assert.Equal(t, [][]string{
		{"alice@localhost", "forbidden"}, {"admin@localhost", "ok"}, {"apikey:writer", "ok"}, {"apikey:reader", "forbidden"},
	}, got)
}
