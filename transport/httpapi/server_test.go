package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/transport/httpapi"
)

func TestHealthz(t *testing.T) {
	svc := newServices(t)
	for i := range 7 {
		require.NoError(t, svc.reg.Bind(&boundConn{reg: svc.reg, id: fmt.Sprint(i), addr: jid.MustParse(fmt.Sprintf("u%d@localhost/r", i))}))
	}
	srv := httpapi.New(httpapi.Config{Local: svc.reg}, zerolog.Nop())
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
