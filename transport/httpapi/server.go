package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
)

// Config configures the HTTP server. The zero value is usable.
type Config struct {
	// WebSocket serves XMPP over WebSocket at /xmpp-websocket when set.
	WebSocket http.Handler
	// Sessions reports the number of bound resources, for /healthz.
	Sessions func() int
	// ReadHeaderTimeout bounds how long a client may take to send headers; default 10s.
	ReadHeaderTimeout time.Duration
}

// Server is the HTTP server.
type Server struct {
	echo *echo.Echo
	srv  *http.Server
	log  zerolog.Logger
}

// New builds the router. It serves nothing until Serve is called.
func New(cfg Config, logger zerolog.Logger) *Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{
		echo: e,
		srv:  &http.Server{Handler: e, ReadHeaderTimeout: cfg.ReadHeaderTimeout},
		log:  logger.With().Str("component", "http").Logger(),
	}
	e.GET("/healthz", func(c echo.Context) error {
		h := health{Status: "ok", Goroutines: runtime.NumGoroutine()}
		if cfg.Sessions != nil {
			h.Sessions = cfg.Sessions()
		}
		return c.JSON(http.StatusOK, h)
	})
	if cfg.WebSocket != nil {
		e.GET("/xmpp-websocket", echo.WrapHandler(cfg.WebSocket))
	}
	return s
}

// health is the body of /healthz.
type health struct {
	Status     string `json:"status"`
	Sessions   int    `json:"sessions"`
	Goroutines int    `json:"goroutines"`
}

// Handler returns the router, for tests that drive it with httptest.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve serves HTTP on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for requests in flight, up to ctx.
// Hijacked connections (WebSockets) are not waited for: their sessions are
// ended by the c2s server.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
