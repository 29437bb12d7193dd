package httpapi

import (
	_ "embed"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// openAPIDoc describes the whole HTTP API (OpenAPI 3). A test checks it
// against the routes the server has.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI answers GET /rest/openapi.json.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}

// Route is a method and path the server answers.
type Route struct{ Method, Path string }

// Routes lists the routes of the API, for the OpenAPI check. Echo's
// catch-alls of groups and the refusals of unsupported methods are left out.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.echo.Routes() {
		if strings.HasSuffix(r.Path, "/*") || r.Path == "/rest" || r.Path == "/rest/adhoc" ||
			strings.HasSuffix(r.Name, ".methodNotAllowed") {
			continue
		}
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	return out
}

// methodNotAllowed answers a method a path does not support.
func methodNotAllowed(echo.Context) error { return echo.ErrMethodNotAllowed }
