package sessman

import (
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

// permission is what a caller asks to do.
type permission int

const (
	readSessions permission = iota // list, get or count the sessions of users (none: everyone's)
	endSessions                    // end the sessions of users
	readAccounts                   // read accounts, API keys or the audit
	changeThings                   // any other change: accounts, keys, announcements
)

// authorize is the one place that decides whether a caller may do what it
// asks, from the facts the transport established (adhoc.Caller) and the
// users concerned. It runs before anything is looked up.
//
//   - The command line may do anything.
//   - A read-only caller (a read-only API key) reads, and changes nothing.
//   - An admin (an admin account, an API key) acts on the users of its own
//     domain, not on those of another domain served here; a Pusher app ends
//     the sessions of the users of its domain.
//   - Any other account lists and ends its own sessions only.
//   - Listing everyone's sessions, reading accounts and the audit, and
//     changing accounts are for admins.
func (m *Manager) authorize(c adhoc.Caller, p permission, users []jid.JID) error {
	if c.Auth == adhoc.AuthCLI {
		return nil
	}
	if c.ReadOnly && (p == endSessions || p == changeThings) {
		return forbidden("This API key is read-only.")
	}
	admin := c.Admin || c.Auth == adhoc.AuthPusher && p == endSessions
	switch {
	case (p == readAccounts || p == changeThings) && !admin:
		return forbidden("Only administrators may do this.")
	case p == readSessions && len(users) == 0 && !admin:
		return forbidden("Only administrators may list every session; list your own instead.")
	}
	for _, u := range users {
		switch {
		case admin && (u.Domainpart() == c.JID.Domainpart() || u.Domainpart() != m.domain.Domainpart()):
			// Its own domain; or one not served here, which checkUser
			// refuses as a bad request after this.
		case admin:
			return forbidden("You may only act on the users of " + c.JID.Domainpart() + ".")
		case u.Bare().Equal(c.JID.Bare()):
		case p == endSessions:
			return forbidden("You may only end your own sessions.")
		default:
			return forbidden("You may only see your own sessions.")
		}
	}
	return nil
}

func forbidden(text string) *adhoc.Error {
	return &adhoc.Error{Condition: stanza.Forbidden, Text: text}
}

// admit decides who may address the session manager's component at all,
// before a request is even read: an API key only that of its own domain.
func (m *Manager) admit(c adhoc.Caller) error {
	if c.Auth == adhoc.AuthAPIKey && c.JID.Domainpart() != m.domain.Domainpart() {
		return forbidden("This API key is for " + c.JID.Domainpart() + " only.")
	}
	return nil
}
