package sessman

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/store"
)

// EndRequest asks to end sessions of one user. It is a plain value so that
// a cluster layer can send it to every node.
type EndRequest struct {
	User   jid.JID       `json:"user"`             // any resource is ignored
	IDs    []string      `json:"ids,omitempty"`    // these sessions; unknown ids are ignored
	All    bool          `json:"all,omitempty"`    // every session of User (IDs ignored)
	Except string        `json:"except,omitempty"` // with All: keep this session
	Reason string        `json:"reason,omitempty"` // stream error text; default DefaultEndReason
	Block  time.Duration `json:"block,omitempty"`  // refuse new logins this long
	Origin adhoc.Origin  `json:"origin"`
}

// EndResult lists the sessions that were ended, as they were.
type EndResult struct {
	Ended []Session `json:"ended"`
}

// MaxBlock bounds EndRequest.Block.
const MaxBlock = 365 * 24 * time.Hour

// EndSessions ends sessions of one user as req says. A block is stored
// before anyone is kicked, so that a client reconnecting at once is already
// refused; the audit entry is written before EndSessions returns.
func (m *Manager) EndSessions(ctx context.Context, req EndRequest) (EndResult, error) {
	user := req.User.Bare()
	if err := m.checkUser("user", user); err != nil {
		return EndResult{}, err
	}
	if req.Block < 0 || req.Block > MaxBlock {
		return EndResult{}, badRequest("A block lasts from 0 to %d seconds.", int(MaxBlock.Seconds()))
	}
	if err := m.block(ctx, []jid.JID{user}, req.Block, req.Reason); err != nil {
		return EndResult{}, err
	}
	var victims []Conn
	for _, c := range m.reg.Resources(user) {
		id := c.SessionID()
		if req.All && id != req.Except || !req.All && slices.Contains(req.IDs, id) {
			victims = append(victims, c)
		}
	}
	sessions := make(map[string]Session, len(victims))
	for _, c := range victims {
		sessions[c.JID().String()] = SessionOf(c)
	}
	ended, endErr := m.reg.EndConns(ctx, victims, ConditionPolicyViolation, req.Reason)
	res := EndResult{Ended: make([]Session, 0, len(ended))}
	targets := []string{user.String()}
	for _, e := range ended {
		s := sessions[e.String()]
		res.Ended = append(res.Ended, s)
		targets = append(targets, s.ID)
	}
	detail := fmt.Sprintf("ended %d sessions", len(res.Ended))
	if req.Block > 0 {
		detail += ", blocked " + strconv.FormatFloat(req.Block.Seconds(), 'f', -1, 64) + "s"
	}
	if err := m.audit(ctx, req.Origin, "end-sessions", targets, outcome(endErr), detail); err != nil {
		return res, err
	}
	if endErr != nil {
		return res, notAllEnded(len(res.Ended), endErr)
	}
	return res, nil
}

// auditTimeout bounds the write of an audit entry.
const auditTimeout = 5 * time.Second

// audit appends an entry to the audit log; the caller acknowledges the
// action only if this succeeds.
// The entry is written even if ctx is done by now: the action was taken
// (an end that ran out of time kicked sessions), so it is recorded, within
// auditTimeout.
func (m *Manager) audit(ctx context.Context, origin adhoc.Origin, action string, targets []string, outcome, detail string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	_, err := m.db.AppendAudit(ctx, store.AuditEntry{
		Time: time.Now(), Actor: origin.Caller, Auth: origin.Auth, Action: action, Targets: targets,
		Outcome: outcome, Detail: detail, RemoteAddr: origin.RemoteAddr, RequestID: origin.RequestID,
	})
	if err != nil {
		m.log.Error().Err(err).Str("action", action).Msg("writing the audit failed")
		return &adhoc.Error{Condition: stanza.InternalServerError, Text: "The audit log could not be written; nothing is acknowledged.", Err: err}
	}
	return nil
}

// outcome names how an action ended, for the audit.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	e := adhoc.AsError(err)
	if e.Specific != "" {
		return strings.Join([]string{string(e.Condition), e.Specific}, "/")
	}
	return string(e.Condition)
}

// Session returns one session of user by id; false if user has no such session.
func (m *Manager) Session(user jid.JID, id string) (Session, bool) {
	c, ok := m.reg.LookupID(id)
	if !ok || !c.JID().Bare().Equal(user.Bare()) {
		return Session{}, false
	}
	return SessionOf(c), true
}
