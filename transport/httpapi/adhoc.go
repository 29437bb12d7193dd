package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// Commands is the ad-hoc command registry as the gateway uses it.
// *adhoc.Registry implements it; the same registry serves XMPP in-band.
type Commands interface {
	Commands(component jid.JID, admin bool) ([]adhoc.Info, error)
	Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error)
}

// componentJID reads the {jid} path segment: echo leaves it escaped, and it
// must be a bare JID (DESIGN: a resource part is jid-malformed).
func componentJID(c echo.Context) (jid.JID, error) {
	raw, err := url.PathUnescape(c.Param("jid"))
	if err != nil {
		return jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed, Text: "The JID in the path is not correctly percent-encoded.", Err: err}
	}
	component, err := jid.Parse(raw)
	if err != nil {
		return jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed, Text: fmt.Sprintf("%q is not a valid JID.", raw), Err: err}
	}
	if component.Resourcepart() != "" {
		return jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed,
			Text: fmt.Sprintf("%q has a resource; address the component by its bare JID, like %s.", raw, component.Bare())}
	}
	return component, nil
}

// responseFormat picks the answer's format (and the request body's) and
// leaves it for the error handler.
func responseFormat(c echo.Context) (codec.Format, error) {
	h := c.Request().Header
	contentType := h.Get(echo.HeaderContentType)
	if c.Request().Method == http.MethodGet {
		contentType = "" // a GET has no body to describe
	}
	f, err := codec.Negotiate(contentType, c.QueryParam("type"), h.Get(echo.HeaderAccept))
	c.Set(formatKey, f)
	return f, err
}

// listCommands answers GET /rest/adhoc/{jid}: the commands the caller may run.
func (s *Server) listCommands(c echo.Context) error {
	f, err := responseFormat(c)
	if err != nil {
		return err
	}
	component, err := componentJID(c)
	if err != nil {
		return err
	}
	who := callerOf(c)
	if err := who.mayUseComponent(component); err != nil {
		return err
	}
	infos, err := s.cfg.Commands.Commands(component, who.admin)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, f.ContentType())
	c.Response().WriteHeader(http.StatusOK)
	return codec.EncodeItems(c.Response(), f, codec.NewItems(component, infos))
}

// executeCommand answers POST /rest/adhoc/{jid}: it runs the command in the
// envelope under a deadline and answers in the envelope's dialect.
func (s *Server) executeCommand(c echo.Context) error {
	f, err := responseFormat(c)
	if err != nil {
		return err
	}
	component, err := componentJID(c)
	if err != nil {
		return err
	}
	body := http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.BodyLimit)
	req, dialect, err := codec.DecodeRequest(body, f)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &adhoc.Error{Condition: stanza.PolicyViolation, Err: errBodyTooLarge,
			Text: fmt.Sprintf("The request body is larger than the limit of %d bytes.", s.cfg.BodyLimit)}
	}
	if err != nil {
		return err
	}
	c.Set(formatKey, dialect)

	who := callerOf(c)
	if err := who.mayUseComponent(component); err != nil {
		return err
	}
	req.To, req.From, req.Admin, req.ReadOnly = component, who.jid, who.admin, who.readOnly
	req.Origin = origin(c, who)
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.CommandTimeout)
	defer cancel()
	resp, err := s.cfg.Commands.Execute(ctx, req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, dialect.ContentType())
	c.Response().WriteHeader(http.StatusOK)
	return codec.EncodeResponse(c.Response(), dialect, component, resp)
}

// mayUseComponent keeps API keys to the components of their domain.
func (who caller) mayUseComponent(component jid.JID) error {
	if who.auth == "apikey" && component.Domainpart() != who.jid.Domainpart() {
		return &adhoc.Error{Condition: stanza.Forbidden, Text: "This API key is for " + who.jid.Domainpart() + " only."}
	}
	return nil
}
