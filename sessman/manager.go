package sessman

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// DefaultActiveWindow is how recently a session must have sent something to
// count as active when ManagerConfig.ActiveWindow is zero.
const DefaultActiveWindow = 10 * time.Minute

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Domain is the domain served, e.g. example.org; the commands live at
	// sess-man@<Domain> and <Domain>, and act only on users of this domain.
	Domain string
	// ActiveWindow is how recently a session must have sent something to
	// count as active (XEP-0133 active users); a user whose sessions are all
	// older is idle. Default DefaultActiveWindow.
	ActiveWindow time.Duration
}

// Manager is the session manager: the session service every caller goes
// through, over the sessions of one node (a Registry) or of a cluster.
// On that one path it decides who may do what (authorize), stores blocks
// and writes the audit. It also owns the XEP-0133 commands, which take the
// same path.
// It is safe for concurrent use.
type Manager struct {
	cfg       ManagerConfig
	domain    jid.JID // zero when cfg.Domain does not parse
	domainErr error
	sessions  session.Sessions
	accounts  *Accounts
	log       zerolog.Logger
}

var _ session.Sessions = (*Manager)(nil)

// NewManager returns the session manager of cfg.Domain over sessions and
// accounts. It ends the sessions of the accounts that another process
// disables or deletes.
// A domain that is not a valid bare domain JID is reported by Register.
func NewManager(cfg ManagerConfig, sessions session.Sessions, accounts *Accounts, logger zerolog.Logger) *Manager {
	if cfg.ActiveWindow <= 0 {
		cfg.ActiveWindow = DefaultActiveWindow
	}
	m := &Manager{
		cfg:      cfg,
		sessions: sessions,
		accounts: accounts,
		log:      logger.With().Str("component", "sessman").Logger(),
	}
	m.domain, m.domainErr = jid.Parse(cfg.Domain)
	if m.domainErr == nil && (m.domain.Localpart() != "" || m.domain.Resourcepart() != "") {
		m.domainErr = errors.New("not a bare domain")
	}
	accounts.OnChange(m.accountsChanged)
	return m
}

// JID returns the component JID of the session manager, sess-man@<domain>.
func (m *Manager) JID() (jid.JID, error) {
	if m.domainErr != nil {
		return jid.JID{}, fmt.Errorf("sessman: domain %q: %w", m.cfg.Domain, m.domainErr)
	}
	return jid.New("sess-man", m.domain.Domainpart(), "")
}

// Register registers every command on the component sess-man@<domain> of r
// and makes the bare domain an alias of it.
func (m *Manager) Register(r *adhoc.Registry) error {
	comp, err := m.JID()
	if err != nil {
		return err
	}
	for _, c := range m.commands() {
		if err := r.Register(comp, c); err != nil {
			return fmt.Errorf("sessman: %w", err)
		}
	}
	if err := r.Guard(comp, m.admit); err != nil {
		return fmt.Errorf("sessman: %w", err)
	}
	if err := r.Alias(m.domain, comp); err != nil {
		return fmt.Errorf("sessman: %w", err)
	}
	return nil
}

// End implements session.Sessions for the session API: it ends what req
// selects, as end does, and audits it as end-sessions; a request refused
// as forbidden did nothing and is audited as such, other bad requests are
// not.
func (m *Manager) End(ctx context.Context, req session.EndRequest) (session.EndResult, error) {
	if err := m.prepareEnd(ctx, req); err != nil {
		if adhoc.AsError(err).Condition == stanza.Forbidden {
			if aerr := m.accounts.audit(ctx, req.Caller, "end-sessions", jidStrings(req.Users), outcome(err), "refused"); aerr != nil {
				return session.EndResult{}, aerr
			}
		}
		return session.EndResult{}, err
	}
	res, err := m.endPrepared(ctx, req)
	targets := jidStrings(req.Users)
	for _, s := range res.Ended {
		targets = append(targets, s.ID)
	}
	detail := fmt.Sprintf("ended %d sessions", len(res.Ended))
	if req.Block > 0 {
		detail += ", blocked " + strconv.FormatFloat(req.Block.Seconds(), 'f', -1, 64) + "s"
	}
	if aerr := m.accounts.audit(ctx, req.Caller, "end-sessions", targets, outcome(err), detail); aerr != nil {
		return res, aerr
	}
	return res, err
}

// end is the one path of every end a caller asks for, End's and the
// commands': prepareEnd, then endPrepared.
func (m *Manager) end(ctx context.Context, req session.EndRequest) (session.EndResult, error) {
	if err := m.prepareEnd(ctx, req); err != nil {
		return session.EndResult{}, err
	}
	return m.endPrepared(ctx, req)
}

// prepareEnd checks that the caller may end the sessions of req.Users and
// that they are users of this domain, and stores the block before anyone
// is kicked (a client reconnecting at once is already refused). An error
// means nothing was done.
func (m *Manager) prepareEnd(ctx context.Context, req session.EndRequest) error {
	if req.Everyone {
		return forbidden("Sessions are ended user by user.")
	}
	if req.Condition != "" && req.Condition != session.ConditionPolicyViolation {
		return badRequest("Sessions are ended with %s; %q is the node's own.", session.ConditionPolicyViolation, req.Condition)
	}
	if err := m.authorize(req.Caller, endSessions, req.Users); err != nil {
		return err
	}
	for _, u := range req.Users {
		if err := m.checkUser("user", u); err != nil {
			return err
		}
	}
	if req.Block < 0 || req.Block > session.MaxBlock {
		return badRequest("A block lasts from 0 to %d seconds.", int(session.MaxBlock.Seconds()))
	}
	if req.Block > 0 {
		if err := m.accounts.block(ctx, req.Users, time.Now().Add(req.Block), req.Reason); err != nil {
			return m.storeError(ctx, err, req.Users...)
		}
	}
	return nil
}

// endPrepared ends the sessions. One that runs out of time is
// remote-server-timeout, with the sessions ended so far.
func (m *Manager) endPrepared(ctx context.Context, req session.EndRequest) (session.EndResult, error) {
	res, err := m.sessions.End(ctx, req)
	if errors.Is(err, context.DeadlineExceeded) {
		return res, notAllEnded(len(res.Ended), err)
	}
	return res, err
}

// List implements session.Sessions: a page of the sessions of req.User,
// with the user's block if one is in force, or of everyone for an admin.
func (m *Manager) List(ctx context.Context, req session.ListRequest) (session.Page, error) {
	var users []jid.JID
	if req.User.Domainpart() != "" {
		users = []jid.JID{req.User}
	}
	if err := m.authorize(req.Caller, readSessions, users); err != nil {
		return session.Page{}, err
	}
	page, err := m.sessions.List(ctx, req)
	if err != nil || len(users) == 0 {
		return page, err
	}
	return page, m.listBlock(ctx, req.User.Bare(), &page)
}

// Get implements session.Sessions: one session of req.User, item-not-found
// if it has none with that id.
func (m *Manager) Get(ctx context.Context, req session.GetRequest) (session.Session, error) {
	if err := m.authorize(req.Caller, readSessions, []jid.JID{req.User}); err != nil {
		return session.Session{}, err
	}
	s, err := m.sessions.Get(ctx, req)
	if errors.Is(err, session.ErrNoSession) {
		return s, &adhoc.Error{Condition: stanza.ItemNotFound, Text: fmt.Sprintf("%s has no session with that id.", req.User.Bare()), Err: err}
	}
	return s, err
}

// Count implements session.Sessions, for admins.
func (m *Manager) Count(ctx context.Context, req session.CountRequest) (session.Counts, error) {
	if err := m.authorize(req.Caller, readSessions, nil); err != nil {
		return session.Counts{}, err
	}
	return m.sessions.Count(ctx, req)
}

// Announce implements session.Sessions for admins, from the domain, and
// audits it as announce.
func (m *Manager) Announce(ctx context.Context, req session.AnnounceRequest) (session.AnnounceResult, error) {
	res, err := m.announce(ctx, req)
	if aerr := m.accounts.audit(ctx, req.Caller, "announce", nil, outcome(err),
		fmt.Sprintf("sent to %d of %d sessions", res.Sent, res.Online)); aerr != nil && err == nil {
		return res, aerr
	}
	return res, err
}

func (m *Manager) announce(ctx context.Context, req session.AnnounceRequest) (session.AnnounceResult, error) {
	if err := m.authorize(req.Caller, announce, nil); err != nil {
		return session.AnnounceResult{}, err
	}
	req.From = m.domain
	return m.sessions.Announce(ctx, req)
}

// accountsChanged ends the sessions of the accounts that another process
// (the command line) deleted or disabled, as the XEP-0133 commands do.
func (m *Manager) accountsChanged(changes []session.AccountChange) {
	for _, c := range changes {
		if !c.Ends() {
			continue
		}
		user, err := jid.Parse(c.User)
		if err != nil {
			continue
		}
		reason := "Your account was disabled."
		if c.Kind == session.ChangeDeleted {
			reason = "Your account was deleted."
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := m.sessions.End(ctx, session.EndRequest{Users: []jid.JID{user}, All: true, Reason: reason, Caller: CommandLine})
		cancel()
		if err != nil {
			m.log.Warn().Err(err).Str("jid", c.User).Msg("ending the sessions of a changed account failed")
		} else if len(res.Ended) > 0 {
			m.log.Info().Str("jid", c.User).Int("count", len(res.Ended)).Msg("sessions of a changed account ended")
		}
	}
}

// notAllEnded is the error of an end that ran out of time after n sessions
// had ended.
func notAllEnded(n int, err error) *adhoc.Error {
	return &adhoc.Error{
		Condition: stanza.RemoteServerTimeout,
		Text:      fmt.Sprintf("Not every session ended in time; %d did.", n),
		Err:       err,
	}
}

// checkUser checks that addr, a value of field, names a user of this domain.
func (m *Manager) checkUser(field string, addr jid.JID) error {
	switch {
	case addr.Localpart() == "":
		return badRequest("Field %s: %s is not a user JID (it has no localpart).", field, addr)
	case addr.Domainpart() != m.domain.Domainpart():
		return badRequest("Field %s: %s is not a user of %s.", field, addr, m.domain)
	}
	return nil
}

// storeError turns an error of the account store about users into an
// *adhoc.Error; context errors are returned as they are, so that the
// registry reports a timeout.
func (m *Manager) storeError(ctx context.Context, err error, users ...jid.JID) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, store.ErrDiskFull):
		return errDiskFull(err)
	case errors.Is(err, store.ErrNotFound):
		return &adhoc.Error{Condition: stanza.ItemNotFound, Text: m.missing(ctx, users), Err: err}
	case errors.Is(err, store.ErrInvalidPassword):
		return &adhoc.Error{
			Condition: stanza.BadRequest,
			Text:      "Field " + fieldPassword + ": a password is 1 to 1024 bytes long.",
			Err:       err,
		}
	}
	return &adhoc.Error{Condition: stanza.InternalServerError, Text: "The account store failed.", Err: err}
}

// errDiskFull is the error of a write the account store refused because
// its disk is full: the write was rolled back, so it may simply be tried
// again once space is freed.
func errDiskFull(err error) *adhoc.Error {
	return &adhoc.Error{
		Condition: stanza.ServiceUnavailable,
		Text:      "The server's disk is full; nothing was changed. Try again once space is freed.",
		Err:       err,
	}
}

// missing names the first of users that has no account, for an
// item-not-found text.
func (m *Manager) missing(ctx context.Context, users []jid.JID) string {
	if len(users) > 1 {
		for _, u := range users {
			if _, err := m.accounts.User(ctx, u); errors.Is(err, store.ErrNotFound) {
				users = []jid.JID{u}
				break
			}
		}
	}
	if len(users) != 1 {
		return "One of the accounts does not exist."
	}
	return fmt.Sprintf("There is no account %s.", users[0].Bare())
}

func badRequest(format string, args ...any) *adhoc.Error {
	return &adhoc.Error{Condition: stanza.BadRequest, Text: fmt.Sprintf(format, args...)}
}
