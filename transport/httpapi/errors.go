package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// httpStatus maps stanza error conditions to HTTP status codes. It is the
// only such table: every error answered over HTTP goes through statusOf.
var httpStatus = map[stanza.Condition]int{
	stanza.BadRequest:            http.StatusBadRequest,
	stanza.JIDMalformed:          http.StatusBadRequest,
	stanza.NotAcceptable:         http.StatusBadRequest,
	stanza.PolicyViolation:       http.StatusBadRequest,
	stanza.NotAuthorized:         http.StatusUnauthorized,
	stanza.Forbidden:             http.StatusForbidden,
	stanza.NotAllowed:            http.StatusForbidden,
	stanza.ItemNotFound:          http.StatusNotFound,
	stanza.Conflict:              http.StatusConflict,
	stanza.UnexpectedRequest:     http.StatusConflict,
	stanza.Gone:                  http.StatusGone,
	stanza.ResourceConstraint:    http.StatusTooManyRequests,
	stanza.FeatureNotImplemented: http.StatusNotImplemented,
	stanza.RemoteServerNotFound:  http.StatusBadGateway,
	stanza.ServiceUnavailable:    http.StatusServiceUnavailable,
	stanza.RemoteServerTimeout:   http.StatusGatewayTimeout,
}

// errBodyTooLarge is the cause of the error for a body over the limit.
var errBodyTooLarge = errors.New("httpapi: request body too large")

// statusOf is the HTTP status of a command error. The XEP-0050 specific
// condition session-expired and the two body errors that have no stanza
// condition of their own are the overrides; anything unknown is 500.
func statusOf(e *adhoc.Error) int {
	switch {
	case errors.Is(e, codec.ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(e, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case e.Specific == adhoc.ErrSessionExpired.Specific:
		return http.StatusGone
	}
	if s, ok := httpStatus[e.Condition]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// echoConditions turns echo's own errors (no route, wrong method) into
// stanza conditions so that they are answered like every other error.
var echoConditions = map[int]stanza.Condition{
	http.StatusNotFound:              stanza.ItemNotFound,
	http.StatusMethodNotAllowed:      stanza.NotAllowed,
	http.StatusRequestEntityTooLarge: stanza.PolicyViolation,
	http.StatusUnauthorized:          stanza.NotAuthorized,
	http.StatusForbidden:             stanza.Forbidden,
	http.StatusBadRequest:            stanza.BadRequest,
	http.StatusServiceUnavailable:    stanza.ServiceUnavailable,
}

// formatKey is where a handler leaves the format its errors are answered in.
const formatKey = "adhocd.format"

// handleError is echo's error handler: the one place errors become HTTP
// answers, in the request's format, with a status from statusOf.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if !errors.As(err, &he) || errors.As(err, new(*adhoc.Error)) {
		he = nil
	}
	if he != nil {
		cond, ok := echoConditions[he.Code]
		if !ok {
			cond = stanza.InternalServerError
		}
		text := http.StatusText(he.Code) + "."
		if he.Code == http.StatusNotFound {
			text = "There is nothing at " + c.Request().URL.Path + "."
		}
		err = &adhoc.Error{Condition: cond, Text: text, Err: err}
	}
	e := adhoc.AsError(err)
	status := statusOf(e)
	if he != nil && he.Code >= 400 {
		status = he.Code // echo's own: no route, wrong method
	}
	if status >= 500 {
		s.log.Error().Err(err).Str("condition", string(e.Condition)).Int("http_status", status).Msg("request failed")
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="adhocd", charset="UTF-8"`)
	}
	if status == http.StatusRequestEntityTooLarge {
		s.drainBody(c)
	}
	f, set := c.Get(formatKey).(codec.Format)
	if !set {
		// Failed before the handler chose (authentication, routing): answer
		// in the request's format as far as it can be told.
		f, _ = responseFormat(c)
	}
	c.Response().Header().Set(echo.HeaderContentType, f.ContentType())
	c.Response().WriteHeader(status)
	if c.Request().Method == http.MethodHead {
		return
	}
	if err := codec.EncodeError(c.Response(), f, e); err != nil {
		s.log.Debug().Err(err).Msg("writing error response failed")
	}
}
