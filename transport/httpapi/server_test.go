package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/transport/httpapi"
)

func TestHealthz(t *testing.T) {
	srv := httpapi.New(httpapi.Config{SessionCount: func() int { return 7 }}, zerolog.Nop())
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	assert.Contains(t, rec.Body.String(), `"status":"ok","sessions":7,"goroutines":`)
}

func TestNoWebSocketWithoutHandler(t *testing.T) {
	srv := httpapi.New(httpapi.Config{}, zerolog.Nop())
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/xmpp-websocket", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}
