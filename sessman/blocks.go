package sessman

import (
	"context"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// BlocksNS is the namespace of adhocd's own command that lifts blocks:
// BlocksNS#lift, with XEP-0133's accountjids, for admins and full API keys
// (those that may set blocks), like `adhocd user unblock`. It is audited as
// user-unblock, the command line's action.
const BlocksNS = "urn:adhocd:block"

// blockCommands are the block commands.
func (m *Manager) blockCommands() []*command {
	lift := m.newCommand(BlocksNS+"#lift", "Lift a Block", liftBlocks,
		form("Lifting a Block", "The users may log in again at once.",
			accountsFields("The Jabber ID(s) whose block to lift")...),
		m.liftCommand)
	lift.action, lift.audits = "user-unblock", true
	return []*command{lift}
}

// liftCommand lifts the blocks of accountjids and accountjid; the result
// has a Notes line per user.
func (m *Manager) liftCommand(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	users, err := m.accountTargets(vals, true)
	if err != nil {
		return nil, err
	}
	lifted, err := m.accounts.Unblock(ctx, c, users)
	if err != nil {
		return nil, m.storeError(ctx, err, users...)
	}
	lines := make([]string, len(users))
	for i, u := range users {
		lines[i] = u.String() + " was not blocked"
		for _, b := range lifted {
			if b.User.Equal(u) {
				lines[i] = "Block lifted for " + u.String()
			}
		}
	}
	return notes(lines), nil
}

// Block returns the block in force of req.User and true, to a caller who
// may see the user's sessions; item-not-found for an unknown account.
func (m *Manager) Block(ctx context.Context, req session.BlockRequest) (session.Block, bool, error) {
	user := req.User.Bare()
	if err := m.authorize(req.Caller, readSessions, []jid.JID{user}); err != nil {
		return session.Block{}, false, err
	}
	if err := m.checkUser("user", user); err != nil {
		return session.Block{}, false, err
	}
	if _, err := m.accounts.User(ctx, user); err != nil {
		return session.Block{}, false, m.storeError(ctx, err, user)
	}
	b, ok, err := m.accounts.ActiveBlock(ctx, user)
	if err != nil || !ok {
		return session.Block{}, false, m.storeError(ctx, err, user)
	}
	return blockOf(b), true, nil
}

// Unblock lifts the block of req.User, for admins and full API keys, and
// audits it as user-unblock, a refusal too; item-not-found for an unknown
// account. A user that was not blocked is no error: Unblocked says.
func (m *Manager) Unblock(ctx context.Context, req session.BlockRequest) (session.UnblockResult, error) {
	user := req.User.Bare()
	err := m.authorize(req.Caller, liftBlocks, []jid.JID{user})
	if err == nil {
		err = m.checkUser("user", user)
	}
	if err != nil {
		if adhoc.AsError(err).Condition == stanza.Forbidden {
			if aerr := m.accounts.audit(ctx, req.Caller, "user-unblock", []string{user.String()}, outcome(err), "refused"); aerr != nil {
				return session.UnblockResult{}, aerr
			}
		}
		return session.UnblockResult{}, err
	}
	lifted, err := m.accounts.Unblock(ctx, req.Caller, []jid.JID{user})
	if err != nil {
		return session.UnblockResult{}, m.storeError(ctx, err, user)
	}
	if len(lifted) == 0 {
		return session.UnblockResult{}, nil
	}
	b := blockOf(lifted[0])
	return session.UnblockResult{Unblocked: true, Block: &b}, nil
}

// listBlock adds the block in force of the user listed to page.
func (m *Manager) listBlock(ctx context.Context, user jid.JID, page *session.Page) error {
	b, ok, err := m.accounts.ActiveBlock(ctx, user)
	if err != nil {
		return m.storeError(ctx, err, user)
	}
	if ok {
		sb := blockOf(b)
		page.Block = &sb
	}
	return nil
}

// blockStats are user-stats' fields of a user's block b: its end
// (XEP-0082) and reason, without values when b is nil (it may log in).
func blockStats(b *session.Block) []adhoc.Field {
	until := adhoc.Field{Var: "blockeduntil", Type: adhoc.FieldTextSingle, Label: "Blocked until (XEP-0082); empty when not blocked"}
	reason := adhoc.Field{Var: "blockreason", Type: adhoc.FieldTextSingle, Label: "Reason of the block"}
	if b != nil {
		until.Values = []string{dateTime(b.Until)}
		if b.Reason != "" {
			reason.Values = []string{b.Reason}
		}
	}
	return []adhoc.Field{until, reason}
}

func blockOf(b store.Block) session.Block {
	return session.Block{User: b.User.Bare().String(), Until: b.Until.UTC(), Reason: b.Reason}
}
