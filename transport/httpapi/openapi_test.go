package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/transport/httpapi"
)

// TestOpenAPIMatchesRoutes checks the served document against the routes of
// a server with every feature enabled: each route is documented, and each
// documented operation exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	svc := newServices(t)
	srv := httpapi.New(httpapi.Config{
		Domain:     "localhost",
		WebSocket:  http.NotFoundHandler(),
		Local:      svc.reg,
		Commands:   svc.cmds,
		Accounts:   svc.accounts,
		Sessions:   svc.mgr,
		Audit:      svc.mgr,
		PusherApps: []httpapi.PusherApp{{ID: "a", Key: "k", Secret: "s", Domain: "localhost"}},
	}, zerolog.Nop())

	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/rest/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."))

	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	param := regexp.MustCompile(`:(\w+)`)
	var routed []string
	for _, r := range srv.Routes() {
		routed = append(routed, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(documented)
	sort.Strings(routed)
	assert.Equal(t, routed, documented)
}
