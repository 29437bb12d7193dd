package sessman

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
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
	// Admins are administrators named in the configuration, besides the
	// accounts marked admin in the store.
	// Only the bare JID counts.
	Admins []jid.JID
	// ActiveWindow is how recently a session must have sent something to
	// count as active (XEP-0133 active users); a user whose sessions are all
	// older is idle. Default DefaultActiveWindow.
	ActiveWindow time.Duration
	// OnAccountChange, if set, is called with the bare JID of every account
	// that a command added, deleted, disabled, re-enabled, blocked or gave a
	// new password, right after the store committed the change, so that
	// cached credentials can be dropped.
	OnAccountChange func(user jid.JID)
}

// Manager is the session manager component: it owns the XEP-0133 commands,
// which act on the registry of bound resources and on the account store.
// It is safe for concurrent use.
type Manager struct {
	cfg       ManagerConfig
	domain    jid.JID // zero when cfg.Domain does not parse
	domainErr error
	admins    map[string]bool // bare JIDs
	reg       *Registry
	db        *store.DB
	log       zerolog.Logger
}

// NewManager returns the session manager of cfg.Domain over reg and db.
// A domain that is not a valid bare domain JID is reported by Register.
func NewManager(cfg ManagerConfig, reg *Registry, db *store.DB, logger zerolog.Logger) *Manager {
	if cfg.ActiveWindow <= 0 {
		cfg.ActiveWindow = DefaultActiveWindow
	}
	m := &Manager{
		cfg:    cfg,
		admins: make(map[string]bool, len(cfg.Admins)),
		reg:    reg,
		db:     db,
		log:    logger.With().Str("component", "sessman").Logger(),
	}
	m.domain, m.domainErr = jid.Parse(cfg.Domain)
	if m.domainErr == nil && (m.domain.Localpart() != "" || m.domain.Resourcepart() != "") {
		m.domainErr = errors.New("not a bare domain")
	}
	for _, a := range cfg.Admins {
		m.admins[a.Bare().String()] = true
	}
	return m
}

// JID returns the component JID of the session manager, sess-man@<domain>.
func (m *Manager) JID() (jid.JID, error) {
	if m.domainErr != nil {
		return jid.JID{}, fmt.Errorf("sessman: domain %q: %w", m.cfg.Domain, m.domainErr)
	}
	return jid.New("sess-man", m.domain.Domainpart(), "")
}

// IsAdmin reports whether user (bare or full) is an administrator: a JID
// named in ManagerConfig.Admins, or an account of the store marked admin and
// not disabled.
// It does not authenticate anyone.
func (m *Manager) IsAdmin(ctx context.Context, user jid.JID) (bool, error) {
	if m.admins[user.Bare().String()] {
		return true, nil
	}
	if user.Localpart() == "" {
		return false, nil
	}
	a, err := m.db.User(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sessman: is %s an admin: %w", user.Bare(), err)
	}
	return a.Admin && !a.Disabled, nil
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
	if err := r.Alias(m.domain, comp); err != nil {
		return fmt.Errorf("sessman: %w", err)
	}
	return nil
}

// changed logs msg for each of users, whose accounts a command changed,
// and tells OnAccountChange.
func (m *Manager) changed(users []jid.JID, msg string) {
	for _, u := range users {
		m.log.Info().Stringer("jid", u).Msg(msg)
		if m.cfg.OnAccountChange != nil {
			m.cfg.OnAccountChange(u)
		}
	}
}

// end ends the sessions of targets with policy-violation and reason, and
// returns the full JIDs ended, once they are gone.
func (m *Manager) end(ctx context.Context, targets []jid.JID, reason string) ([]jid.JID, error) {
	ended, err := m.reg.End(ctx, targets, ConditionPolicyViolation, reason)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, notAllEnded(len(ended), err)
	}
	return ended, err
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

// missing names the first of users that has no account, for an
// item-not-found text.
func (m *Manager) missing(ctx context.Context, users []jid.JID) string {
	if len(users) > 1 {
		for _, u := range users {
			if _, err := m.db.User(ctx, u); errors.Is(err, store.ErrNotFound) {
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
