package httpapi

import (
	_ "embed"
	"net/http"

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
