package sessman

import (
	"context"
	"errors"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// An admin action is audited once, where it enters sessman, with the same
// fields whatever the wire: an ad-hoc command as adhoc:<node>
// (command.Execute), an end over the session API as end-sessions
// (Manager.End), a change by the command line as user-* or apikey-*
// (Accounts). The caller acknowledges the action only once the entry is
// written.

// auditTimeout bounds the write of an audit entry.
const auditTimeout = 5 * time.Second

// audit appends an entry to the audit.
// The entry is written even if ctx is done by now: the action was taken
// (an end that ran out of time kicked sessions), so it is recorded, within
// auditTimeout.
func (a *Accounts) audit(ctx context.Context, c adhoc.Caller, action string, targets []string, outcome, detail string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	_, err := a.db.AppendAudit(ctx, auditEntry(c, action, targets, outcome, detail))
	if err != nil {
		return a.auditFailed(action, err)
	}
	return nil
}

// auditEntry is the audit entry of an action by c.
func auditEntry(c adhoc.Caller, action string, targets []string, outcome, detail string) session.AuditEntry {
	name := c.Name
	if name == "" {
		name = c.JID.Bare().String()
	}
	return session.AuditEntry{
		Time: time.Now(), Actor: name, Auth: c.Auth, Action: action, Targets: targets,
		Outcome: outcome, Detail: detail, RemoteAddr: c.RemoteAddr, Peer: c.Peer, RequestID: c.RequestID,
	}
}

// auditFailed logs the failure err to write the audit of action and
// returns the error to answer.
func (a *Accounts) auditFailed(action string, err error) error {
	a.log.Error().Err(err).Str("action", action).Msg("writing the audit failed")
	if errors.Is(err, store.ErrDiskFull) {
		return &adhoc.Error{
			Condition: stanza.ServiceUnavailable,
			Text:      "The server's disk is full, so the audit could not be written and nothing is acknowledged. Try again once space is freed.",
			Err:       err,
		}
	}
	return &adhoc.Error{Condition: stanza.InternalServerError, Text: "The audit log could not be written; nothing is acknowledged.", Err: err}
}

// audited records an action that ended with err, and returns err, or the
// audit's error if the action succeeded but could not be recorded.
func (a *Accounts) audited(ctx context.Context, c adhoc.Caller, action string, targets []string, detail string, err error) error {
	if aerr := a.audit(ctx, c, action, targets, outcome(err), detail); aerr != nil && err == nil {
		return aerr
	}
	return err
}

// outcome names how an action ended, for the audit: ok, or the stanza error
// condition the HTTP API would answer with.
func outcome(err error) string {
	var ae *adhoc.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrNotFound):
		return string(stanza.ItemNotFound)
	case errors.Is(err, store.ErrExists):
		return string(stanza.Conflict)
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrInvalidPassword):
		return string(stanza.BadRequest)
	}
	e := adhoc.AsError(err)
	if e.Specific != "" {
		return strings.Join([]string{string(e.Condition), e.Specific}, "/")
	}
	return string(e.Condition)
}

// Audit returns a page of the audit, newest first, to an admin.
func (m *Manager) Audit(ctx context.Context, q session.AuditQuery) (session.AuditPage, error) {
	if err := m.authorize(q.Caller, readAccounts, nil); err != nil {
		return session.AuditPage{}, err
	}
	page, err := m.accounts.db.Audit(ctx, q)
	if err != nil {
		return session.AuditPage{}, m.storeError(ctx, err)
	}
	return page, nil
}
