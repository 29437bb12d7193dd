package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// Commands is the ad-hoc command registry as the gateway uses it.
// *adhoc.Registry implements it; the same registry serves XMPP in-band.
type Commands interface {
	// Admit reports whether the caller may address the component at all.
	Admit(component jid.JID, caller adhoc.Caller) error
	Commands(component jid.JID, caller adhoc.Caller) ([]adhoc.Info, error)
	Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error)
}

// pathJID reads the {jid} path segment, which echo leaves escaped.
// A JID that does not parse is jid-malformed with the text invalid, a
// format with one %q for the segment; the segment is returned for the
// caller's further checks.
func pathJID(c echo.Context, invalid string) (string, jid.JID, error) {
	raw, err := url.PathUnescape(c.Param("jid"))
	if err != nil {
		return "", jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed, Text: "The JID in the path is not correctly percent-encoded.", Err: err}
	}
	addr, err := jid.Parse(raw)
	if err != nil {
		return raw, jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed, Text: fmt.Sprintf(invalid, raw), Err: err}
	}
	return raw, addr, nil
}

// componentJID reads the {jid} path segment as a component: it must be a
// bare JID (DESIGN: a resource part is jid-malformed).
func componentJID(c echo.Context) (jid.JID, error) {
	raw, component, err := pathJID(c, "%q is not a valid JID.")
	if err != nil {
		return jid.JID{}, err
	}
	if component.Resourcepart() != "" {
		return jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed,
			Text: fmt.Sprintf("%q has a resource; address the component by its bare JID, like %s.", raw, component.Bare())}
	}
	return component, nil
}

// responseFormat picks the answer's format (and the request body's) and
// leaves it for the error handler.
// A GET's Content-Type chooses the format as a POST's does (curl users
// copying the Tigase examples send it on every request), but a GET has no
// body to refuse: a Content-Type adhocd does not decode is ignored there
// (and on HEAD), and ?type= and Accept decide.
func responseFormat(c echo.Context) (codec.Format, error) {
	h := c.Request().Header
	typeParam, accept := c.QueryParam("type"), h.Get(echo.HeaderAccept)
	f, err := codec.Negotiate(h.Get(echo.HeaderContentType), typeParam, accept)
	if m := c.Request().Method; err != nil && (m == http.MethodGet || m == http.MethodHead) && errors.Is(err, codec.ErrUnsupportedMediaType) {
		f, err = codec.Negotiate("", typeParam, accept)
	}
	c.Set(formatKey, f)
	return f, err
}

// listCommands answers GET /rest/adhoc/{jid}: the commands the caller may run.
func (s *Server) listCommands(c echo.Context) error {
	f, component, who, err := commandTarget(c)
	if err != nil {
		return err
	}
	infos, err := s.cfg.Commands.Commands(component, who)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, f.ContentType())
	c.Response().WriteHeader(http.StatusOK)
	return codec.EncodeItems(c.Response(), f, codec.NewItems(component, infos))
}

// executeCommand answers POST /rest/adhoc/{jid}: it runs the command in the
// envelope and answers in the envelope's dialect.
func (s *Server) executeCommand(c echo.Context) error {
	f, component, who, err := commandTarget(c)
	if err != nil {
		return err
	}
	// A caller the component refuses is told before its body is read.
	if err := s.cfg.Commands.Admit(component, who); err != nil {
		return err
	}
	req, dialect, err := codec.DecodeRequest(s.body(c), f)
	if err != nil {
		return s.bodyError(err)
	}
	c.Set(formatKey, dialect)
	req.To, req.Caller = component, who
	resp, err := s.cfg.Commands.Execute(c.Request().Context(), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, dialect.ContentType())
	c.Response().WriteHeader(http.StatusOK)
	return codec.EncodeResponse(c.Response(), dialect, component, resp)
}

// commandTarget reads what both /rest/adhoc handlers start with: the
// format of the answer, the component in the path, and the caller.
func commandTarget(c echo.Context) (codec.Format, jid.JID, adhoc.Caller, error) {
	f, err := responseFormat(c)
	if err != nil {
		return f, jid.JID{}, adhoc.Caller{}, err
	}
	component, err := componentJID(c)
	if err != nil {
		return f, jid.JID{}, adhoc.Caller{}, err
	}
	return f, component, callerOf(c), nil
}

// body is the request body, limited to BodyLimit: a read past it fails
// with an *http.MaxBytesError, which bodyError turns into 413.
func (s *Server) body(c echo.Context) io.Reader {
	return http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.BodyLimit)
}

// The bounds of drainBody.
// They let a client that sends a body somewhat over the limit read the 413,
// yet no client can make the server read forever: 8 MiB past the limit is
// well under a second on a fast link, and 2 s bounds a slow or stalled one.
const (
	maxDrain     = 8 << 20
	drainTimeout = 2 * time.Second
)

// drainBody reads and discards what is left of a body refused as too large,
// up to maxDrain bytes or for drainTimeout, whichever comes first, and
// marks the answer Connection: close, as nginx's lingering close does.
// net/http discards at most 256 KiB of a body the handler left, then closes;
// the kernel answers the rest of the body still arriving with a reset, so a
// client that sends its whole body before it reads (no Expect:
// 100-continue, like Python's urllib) got ECONNRESET instead of the 413.
// A body longer than the bounds still ends that way.
func (s *Server) drainBody(c echo.Context) {
	c.Response().Header().Set(echo.HeaderConnection, "close")
	rc := http.NewResponseController(c.Response())
	// ErrNotSupported: a writer that is no connection (httptest's); maxDrain
	// still bounds the read.
	if err := rc.SetReadDeadline(time.Now().Add(drainTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Debug().Err(err).Msg("setting the drain deadline failed")
		return // an unbounded read is worse than a reset
	}
	// An error (the deadline, a client gone) ends the draining; the answer is
	// written all the same.
	if _, err := io.CopyN(io.Discard, c.Request().Body, maxDrain); !errors.Is(err, io.EOF) {
		s.log.Debug().Err(err).Str("remote_addr", c.RealIP()).Msg("body over the limit not drained to its end")
	}
}

// bodyError is err, or the error for a body over the limit when err comes
// from reading past it.
func (s *Server) bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &adhoc.Error{Condition: stanza.PolicyViolation, Err: errBodyTooLarge,
			Text: fmt.Sprintf("The request body is larger than the limit of %d bytes.", s.cfg.BodyLimit)}
	}
	return err
}
