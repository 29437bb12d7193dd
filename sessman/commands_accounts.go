package sessman

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

const fieldPasswordVerify = "password-verify"

// addUser creates an account (XEP-0133 §4.1); the email field is accepted
// and not stored.
func (m *Manager) addUser(ctx context.Context, _ adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	user, err := m.account(vals)
	if err != nil {
		return nil, err
	}
	password := vals.Get(fieldPassword)
	if password != vals.Get(fieldPasswordVerify) {
		return nil, badRequest("Fields %s and %s do not match.", fieldPassword, fieldPasswordVerify)
	}
	err = m.accounts.addUser(ctx, user, password, false)
	if errors.Is(err, store.ErrExists) {
		return nil, &adhoc.Error{Condition: stanza.Conflict, Text: "The account " + user.String() + " already exists.", Err: err}
	}
	if err != nil {
		return nil, m.storeError(ctx, err, user)
	}
	return successNotes([]string{user.String()}), nil
}

// changeAccounts returns a command that applies change to the accounts of
// accountjids and accountjid in one transaction (all or none) and then,
// with an endReason, ends their sessions: a client that logs in again
// meanwhile meets the changed account.
// The result has a Notes line per account.
func (m *Manager) changeAccounts(change func(context.Context, []jid.JID) error, endReason string) func(context.Context, adhoc.Caller, adhoc.Values) ([]adhoc.Field, error) {
	return func(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
		users, err := m.accountTargets(vals, true)
		if err != nil {
			return nil, err
		}
		if err := change(ctx, users); err != nil {
			return nil, m.storeError(ctx, err, users...)
		}
		if endReason != "" {
			if _, err := m.end(ctx, session.EndRequest{Users: users, All: true, Reason: endReason, Caller: c}); err != nil {
				return nil, err
			}
		}
		return successNotes(jidStrings(users)), nil
	}
}

// disableUsers disables accounts (XEP-0133 §4.3) and enableUsers re-enables
// them (§4.4).
func (m *Manager) disableUsers(ctx context.Context, users []jid.JID) error {
	return m.accounts.setDisabled(ctx, users, true)
}

func (m *Manager) enableUsers(ctx context.Context, users []jid.JID) error {
	return m.accounts.setDisabled(ctx, users, false)
}

// changeUserPassword sets a new password (XEP-0133 §4.7); sessions stay.
func (m *Manager) changeUserPassword(ctx context.Context, _ adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	user, err := m.account(vals)
	if err != nil {
		return nil, err
	}
	if err := m.accounts.setPassword(ctx, user, vals.Get(fieldPassword)); err != nil {
		return nil, m.storeError(ctx, err, user)
	}
	return successNotes([]string{user.String()}), nil
}

// getUserLastLogin reports the last login of an account (XEP-0133 §4.9) as
// an XEP-0082 date-time; lastlogin has no value when the account never
// logged in.
func (m *Manager) getUserLastLogin(ctx context.Context, _ adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	user, err := m.account(vals)
	if err != nil {
		return nil, err
	}
	a, err := m.accounts.User(ctx, user)
	if err != nil {
		return nil, m.storeError(ctx, err, user)
	}
	var last []string
	if !a.LastLogin.IsZero() {
		last = []string{dateTime(a.LastLogin)}
	}
	return []adhoc.Field{
		{Var: fieldAccountJID, Type: adhoc.FieldJIDSingle, Label: "The Jabber ID", Values: []string{user.String()}},
		{Var: "lastlogin", Type: adhoc.FieldTextSingle, Label: "Last login time (XEP-0082)", Values: last},
	}, nil
}

// countAccounts counts every account, or the disabled ones.
func (m *Manager) countAccounts(disabled bool) func(context.Context, adhoc.Caller) (int, error) {
	return func(ctx context.Context, _ adhoc.Caller) (int, error) {
		n, err := m.accounts.db.CountUsers(ctx, store.UserQuery{DisabledOnly: disabled})
		return n, m.storeError(ctx, err)
	}
}

// listAccounts lists every account, or the disabled ones, by JID.
func (m *Manager) listAccounts(disabled bool) func(context.Context, adhoc.Caller, int) ([]string, error) {
	return func(ctx context.Context, _ adhoc.Caller, limit int) ([]string, error) {
		users, err := m.accounts.db.ListUsers(ctx, store.UserQuery{DisabledOnly: disabled, Limit: limit})
		if err != nil {
			return nil, m.storeError(ctx, err)
		}
		return jidStrings(users), nil
	}
}
