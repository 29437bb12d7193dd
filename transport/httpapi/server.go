package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/transport/limit"
)

// Config configures the HTTP server. The zero value serves /healthz only.
type Config struct {
	// Domain is the XMPP domain: a Basic auth user name without one is taken
	// as a localpart of it.
	Domain string
	// WebSocket serves XMPP over WebSocket at /xmpp-websocket when set.
	WebSocket http.Handler
	// Local counts the sessions of this node, for /healthz.
	Local session.Sessions
	// Accounts authenticates callers: HTTP Basic and API keys
	// (Authorization: Bearer, Api-Key).
	Accounts Accounts
	// Commands enables the /rest/adhoc gateway.
	Commands Commands
	// Sessions enables the session API (/rest/sessions, /rest/users/…) and,
	// with PusherApps, Pusher's terminate_connections; when it implements
	// Blocks, /rest/users/{jid}/block too.
	Sessions   session.Sessions
	PusherApps []PusherApp
	// PusherReplay remembers the signatures of the Pusher requests accepted,
	// so that none is carried out twice; default a MemoryReplayCache of this
	// node. A cluster passes one that its nodes share.
	PusherReplay ReplayCache
	// Now is the clock of Pusher's auth_timestamp; default time.Now.
	Now func() time.Time
	// Audit enables GET /rest/audit.
	Audit AuditLog
	// Failures throttles failed logins per (account, address), address and
	// account (shared with the XMPP listener); default
	// limit.NewDefaultFailures().
	Failures *limit.Failures
	// Rates limits the calls of accounts that are not admins and of API keys,
	// per caller; AdminRates those of admin accounts. nil: unlimited.
	Rates, AdminRates *limit.Rates
	// BodyLimit is the largest request body accepted; default 1 MiB.
	BodyLimit int64
	// CommandTimeout is the deadline of every call of the API, a command or
	// a route of the session API; default 10s.
	CommandTimeout time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send headers; default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds how long a client may take to send a whole
	// request, headers and body, counted from its first byte. net/http also
	// cancels the context of a request still running when it passes, so it
	// must be longer than any handler runs: default ReadHeaderTimeout +
	// CommandTimeout + 10s, at least 30s. A WebSocket is not bound by it
	// once upgraded: the XMPP listener sets its own deadlines.
	ReadTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection may wait for its
	// next request; default 2m.
	IdleTimeout time.Duration
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For names the client. Without them the client is the
	// network peer, and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// AllowedOrigins are the origins besides the server's own whose pages may
	// send requests that change state, as ParseOrigin writes them; see
	// refuseCrossSite (csrf.go). Empty: none.
	AllowedOrigins []string
}

func (cfg *Config) setDefaults() {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = max(30*time.Second, cfg.ReadHeaderTimeout+cfg.CommandTimeout+10*time.Second)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PusherReplay == nil {
		cfg.PusherReplay = NewMemoryReplayCache(MemoryReplayConfig{Now: cfg.Now})
	}
}

// Server is the HTTP server.
type Server struct {
	cfg        Config
	pusherApps map[string]PusherApp
	allowed    map[string]bool // AllowedOrigins
	echo       *echo.Echo
	srv        *http.Server
	log        zerolog.Logger
}

// New builds the router. It serves nothing until Serve is called.
func New(cfg Config, logger zerolog.Logger) *Server {
	cfg.setDefaults()
	if cfg.Failures == nil {
		cfg.Failures = limit.NewDefaultFailures()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{
		cfg:  cfg,
		echo: e,
		srv: &http.Server{Handler: e, ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout: cfg.ReadTimeout, IdleTimeout: cfg.IdleTimeout},
		log:        logger.With().Str("component", "http").Logger(),
		pusherApps: make(map[string]PusherApp, len(cfg.PusherApps)),
	}
	for _, app := range cfg.PusherApps {
		s.pusherApps[app.ID] = app
	}
	s.allowed = s.allowedOrigins(cfg.AllowedOrigins)
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.Use(requestID)
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogLatency: true, LogRemoteIP: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			// Never the Authorization header or the body: they hold secrets.
			// The request id is ours (requestID), not the request's header.
			s.log.Debug().Str("method", v.Method).Str("path", v.URIPath).Int("http_status", v.Status).
				Str("remote_addr", v.RemoteIP).Str("peer", c.Request().RemoteAddr).
				Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).
				Str("duration", v.Latency.String()).Msg("request")
			return nil
		},
	}))
	e.GET("/healthz", s.health)
	if cfg.WebSocket != nil {
		e.GET("/xmpp-websocket", s.webSocket)
	}
	if cfg.Commands != nil && cfg.Accounts != nil {
		g := e.Group("/rest/adhoc", s.refuseCrossSite, s.withDeadline, s.authenticate)
		g.GET("/:jid", s.listCommands)
		g.POST("/:jid", s.executeCommand)
		g.Match([]string{http.MethodPut, http.MethodPatch, http.MethodDelete}, "/:jid", methodNotAllowed)
	}
	if cfg.Sessions != nil && cfg.Accounts != nil {
		api := e.Group("/rest", jsonAPI, s.refuseCrossSite, s.withDeadline, s.authenticate)
		api.GET("/sessions", s.listSessions)
		api.GET("/users/:jid/sessions", s.listUserSessions)
		api.DELETE("/users/:jid/sessions", s.deleteSessions)
		api.DELETE("/users/:jid/sessions/all", s.deleteAllSessions)
		api.GET("/users/:jid/sessions/:id", s.getSession)
		api.DELETE("/users/:jid/sessions/:id", s.deleteSession)
		if b, ok := cfg.Sessions.(Blocks); ok {
			api.GET("/users/:jid/block", s.getBlock(b))
			api.DELETE("/users/:jid/block", s.deleteBlock(b))
		}
		if cfg.Audit != nil {
			api.GET("/audit", s.listAudit)
		}
	}
	if cfg.Sessions != nil && len(cfg.PusherApps) > 0 {
		e.POST("/apps/:app_id/users/:user_id/terminate_connections", s.terminateConnections, s.refuseCrossSite, s.withDeadline)
	}
	e.GET("/rest/openapi.json", s.openAPI)
	return s
}

// clientIP finds a request's client: the network peer, or, when the peer is
// one of the trusted proxies, the address X-Forwarded-For names after the
// trusted proxies on its right.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// maxRequestID is the longest X-Request-Id taken from a request.
const maxRequestID = 64

// requestID is middleware that gives every request an id, in the response's
// X-Request-Id, the log and the audit: the request's own X-Request-Id when
// it is 1 to 64 letters, digits and ._:+/=-, a new random one otherwise,
// so that no caller writes what it likes into the audit.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			var b [16]byte
			_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
			id = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("._:+/=-", r):
		default:
			return false
		}
	}
	return true
}

// webSocket hands an upgrade to the XMPP listener with the client's address
// as the request's RemoteAddr: behind a trusted proxy, the one it names
// (with port 0, which the proxy does not tell), so that the session lists
// it and the login throttles count it rather than the proxy.
func (s *Server) webSocket(c echo.Context) error {
	r := c.Request()
	if ip := c.RealIP(); ip != "" && ip != hostOf(r.RemoteAddr) {
		r = r.WithContext(r.Context()) // a copy: the request is echo's
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	s.cfg.WebSocket.ServeHTTP(c.Response(), r)
	return nil
}

func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// health is the body of /healthz.
type health struct {
	Status     string `json:"status"`
	Sessions   int    `json:"sessions"`
	Goroutines int    `json:"goroutines"`
}

// health answers GET /healthz: up, with this node's sessions.
func (s *Server) health(c echo.Context) error {
	h := health{Status: "ok", Goroutines: runtime.NumGoroutine()}
	if s.cfg.Local != nil {
		counts, err := s.cfg.Local.Count(c.Request().Context(), session.CountRequest{})
		if err != nil {
			return err
		}
		h.Sessions = counts.Sessions
	}
	return c.JSON(http.StatusOK, h)
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
