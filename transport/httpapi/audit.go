package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/adhocd/adhocd/sessman/session"
)

// AuditLog reads the audit of admin actions. *sessman.Manager implements it.
type AuditLog interface {
	Audit(ctx context.Context, q session.AuditQuery) (session.AuditPage, error)
}

// listAudit answers GET /rest/audit?limit&offset&actor&target.
func (s *Server) listAudit(c echo.Context) error {
	offset, limit, err := page(c)
	if err != nil {
		return err
	}
	p, err := s.cfg.Audit.Audit(c.Request().Context(), session.AuditQuery{
		Limit: limit, Offset: offset, Actor: c.QueryParam("actor"), Target: c.QueryParam("target"), Caller: callerOf(c),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}
