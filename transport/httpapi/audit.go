package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

// AuditLog reads the audit of admin actions.
type AuditLog interface {
	Audit(ctx context.Context, q AuditQuery) (total int, entries []AuditEntry, err error)
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Limit, Offset int
	Actor, Target string
}

// AuditEntry is one recorded action.
type AuditEntry struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	Auth       string    `json:"auth"`
	Action     string    `json:"action"`
	Targets    []string  `json:"targets"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail,omitempty"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
}

type auditList struct {
	Count int          `json:"count"`
	Items []AuditEntry `json:"items"`
}

// listAudit answers GET /rest/audit?limit&offset&actor&target, for admins.
func (s *Server) listAudit(c echo.Context) error {
	if !callerOf(c).admin {
		return &adhoc.Error{Condition: stanza.Forbidden, Text: "Only administrators may read the audit."}
	}
	offset, limit, err := page(c)
	if err != nil {
		return err
	}
	total, entries, err := s.cfg.Audit.Audit(c.Request().Context(), AuditQuery{
		Limit: limit, Offset: offset, Actor: c.QueryParam("actor"), Target: c.QueryParam("target"),
	})
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []AuditEntry{}
	}
	return c.JSON(http.StatusOK, auditList{Count: total, Items: entries})
}
