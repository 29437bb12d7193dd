package sessman

import (
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

// permission is what a caller asks to do.
type permission int

const (
	readSessions   permission = iota // list, get or count the sessions of users (none: everyone's)
	endSessions                      // end the sessions of users, and block them
	readAccounts                     // read accounts, last logins, API keys or the audit
	changeAccounts                   // add, delete, disable, re-enable accounts, set passwords
	manageKeys                       // create and revoke API keys
	announce                         // send a message to every online user
	// liftBlocks lifts the block of users, so that they may log in again.
	// It goes with endSessions, which sets blocks, so that a script whose
	// key blocks a user may lift its own block; but not for an account on
	// itself: a block is an admin's (or a script's) sanction, and a user
	// who blocked itself by mistake asks an admin, as for a disabled account.
	liftBlocks
)

// changes reports whether p changes something, so that a refusal of it is
// audited.
func (p permission) changes() bool { return p != readSessions && p != readAccounts }

// reach is how far a caller's right goes.
type reach int

const (
	nowhere  reach = iota // not at all
	itself                // on its own account only
	ownUsers              // on every user of its domain
)

// reachOf is what each kind of caller may do, the table of the README's
// Security section:
//
//   - An admin account (HTTP Basic or XMPP) may do anything in its domain.
//   - A full API key lists and ends the sessions of its domain's users,
//     blocks them and lifts their blocks; a read-only key lists them. Keys
//     are for scripts: they read or change no account and no key, so a
//     leaked key cannot make an admin, change a password or outlive its
//     revocation in a key it made.
//   - A Pusher app ends the sessions of its domain's users.
//   - Any other account lists and ends its own sessions.
func reachOf(c adhoc.Caller, p permission) reach {
	switch {
	case c.Account() && c.Admin:
		return ownUsers
	case c.Account():
		if p == readSessions || p == endSessions {
			return itself
		}
	case c.Auth == adhoc.AuthAPIKey:
		if p == readSessions || (p == endSessions || p == liftBlocks) && !c.ReadOnly {
			return ownUsers
		}
	case c.Auth == adhoc.AuthPusher:
		if p == endSessions {
			return ownUsers
		}
	}
	return nowhere
}

// authorize is the one place that decides whether a caller may do what it
// asks, from the facts the transport established (adhoc.Caller) and the
// users concerned, by reachOf. It runs before anything is looked up. The
// command line may do anything; every other caller acts only within the
// domain served here, whatever the database holds.
func (m *Manager) authorize(c adhoc.Caller, p permission, users []jid.JID) error {
	if c.Auth == adhoc.AuthCLI {
		return nil
	}
	if err := m.admit(c); err != nil {
		return err
	}
	r := reachOf(c, p)
	switch {
	case r == nowhere:
		return forbidden(refusal(c, p))
	case r == itself && p == readSessions && len(users) == 0:
		return forbidden("Only administrators may list every session; list your own instead.")
	}
	for _, u := range users {
		switch {
		case r == ownUsers:
			// A user of another domain is not served here: checkUser
			// refuses it as a bad request after this.
		case u.Bare().Equal(c.JID.Bare()):
		case p == endSessions:
			return forbidden("You may only end your own sessions.")
		default:
			return forbidden("You may only see your own sessions.")
		}
	}
	return nil
}

// refusal says why c may not do p at all.
func refusal(c adhoc.Caller, p permission) string {
	switch {
	case c.Auth == adhoc.AuthAPIKey && c.ReadOnly && p == endSessions:
		return "This API key is read-only: it may list sessions, not end them."
	case c.Auth == adhoc.AuthAPIKey && c.ReadOnly && p == liftBlocks:
		return "This API key is read-only: it may not lift a block."
	case p == liftBlocks && c.Auth != adhoc.AuthPusher:
		return "Only administrators and API keys may lift a block."
	case c.Auth == adhoc.AuthAPIKey:
		return "API keys may list and end sessions only; this needs an administrator's account."
	case c.Auth == adhoc.AuthPusher:
		return "A Pusher app may only end sessions."
	}
	return "Only administrators may do this."
}

func forbidden(text string) *adhoc.Error {
	return &adhoc.Error{Condition: stanza.Forbidden, Text: text}
}

// admit decides who may address the session manager at all, before a
// request is even read: the command line, and callers of the domain served
// here. An account or key of another domain that the database holds is
// refused, whatever its rights there.
func (m *Manager) admit(c adhoc.Caller) error {
	if c.Auth == adhoc.AuthCLI || c.JID.Domainpart() == m.domain.Domainpart() && c.JID.Domainpart() != "" {
		return nil
	}
	return forbidden("This server serves " + m.domain.Domainpart() + " only; you may not act on it.")
}
