package session

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// SCRAMKeys are the stored SCRAM credentials of one account for one hash
// (RFC 5802 §3): what a SCRAM server needs, and enough to check a plain
// password.
type SCRAMKeys struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// The errors of a login, possibly wrapped. Compare them with errors.Is.
var (
	// ErrUnknownUser: no such account.
	ErrUnknownUser = errors.New("session: unknown user")
	// ErrBadPassword: the password or proof is wrong.
	ErrBadPassword = errors.New("session: wrong password")
	// ErrDisabled: the account exists and may not log in. A
	// *BlockedError matches it too.
	ErrDisabled = errors.New("session: account disabled")
	// ErrUnknownKey: no API key has this secret (or it is malformed).
	ErrUnknownKey = errors.New("session: unknown API key")
	// ErrKeyRevoked: the right secret of a revoked API key.
	ErrKeyRevoked = errors.New("session: API key revoked")
	// ErrNotServed: an account or API key of a domain that is not served
	// here, though the database may hold it.
	ErrNotServed = errors.New("session: domain not served here")
)

// BlockedError refuses the login of a user whose sessions were ended with
// a block that has not ended yet. errors.Is(err, ErrDisabled) holds for it.
type BlockedError struct {
	Until  time.Time
	Reason string // the reason given when the sessions were ended; may be empty
}

// Text is what the client is told, as two sentences: the reason (with a
// period added when it ends without one), then until when, e.g.
// "Password reset. You may not log in before 2026-05-01T10:00:00Z."
func (e *BlockedError) Text() string {
	text := "You may not log in before " + e.Until.UTC().Format(time.RFC3339) + "."
	reason := strings.TrimSpace(e.Reason)
	if reason == "" {
		return text
	}
	if r, _ := utf8.DecodeLastRuneInString(reason); !strings.ContainsRune(".!?…", r) {
		reason += "."
	}
	return reason + " " + text
}

func (e *BlockedError) Error() string { return "session: login blocked: " + e.Text() }

// Is makes a BlockedError match ErrDisabled.
func (e *BlockedError) Is(target error) bool { return target == ErrDisabled }

// AccountChange is a change to an account, kept in the store so that every
// process using it (a server while the command line changes an account,
// the nodes of a cluster) learns of it at once.
type AccountChange struct {
	Seq    int64     // increasing
	At     time.Time // to the millisecond
	User   string    // bare JID
	Kind   string    // one of the Change* kinds
	Origin string    // the process that made it (store.DB.Origin)
}

// The kinds of AccountChange.
const (
	ChangeAdded     = "added"
	ChangeDeleted   = "deleted"
	ChangePassword  = "password"
	ChangeDisabled  = "disabled"
	ChangeEnabled   = "enabled"
	ChangeAdmin     = "admin"
	ChangeBlocked   = "blocked"
	ChangeUnblocked = "unblocked"
)

// Ends reports whether the change ends the user's sessions: the account is
// gone or may not log in any more.
func (c AccountChange) Ends() bool { return c.Kind == ChangeDeleted || c.Kind == ChangeDisabled }
