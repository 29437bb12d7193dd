package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

// Sessions is the session service: every caller that ends, lists, gets or
// counts sessions goes through it. The local registry implements it for
// the sessions of one node, a cluster for those of every node, and the
// session manager on top of either adds who may do what, blocks and the
// audit.
type Sessions interface {
	// End ends the sessions req selects, once they are gone.
	End(ctx context.Context, req EndRequest) (EndResult, error)
	// List returns a page of sessions, ordered by user, then resource.
	List(ctx context.Context, req ListRequest) (Page, error)
	// Get returns one session of a user; ErrNoSession if there is none.
	Get(ctx context.Context, req GetRequest) (Session, error)
	// Count counts the sessions and the users online.
	Count(ctx context.Context, req CountRequest) (Counts, error)
	// Announce sends a message to every session.
	Announce(ctx context.Context, req AnnounceRequest) (AnnounceResult, error)
}

// ErrNoSession is the error of Get for a session that does not exist.
var ErrNoSession = errors.New("session: no such session")

// EndRequest asks to end sessions.
type EndRequest struct {
	// Users are the users whose sessions end: a bare JID every session of
	// that user, a full JID that resource only.
	Users []jid.JID `json:"-"`
	// IDs, unless All is set, names the only sessions of Users that end;
	// unknown ids are ignored.
	IDs []string `json:"ids,omitempty"`
	// All ends the sessions of Users that their JIDs select.
	All bool `json:"all,omitempty"`
	// Except, with All, keeps this session.
	Except string `json:"except,omitempty"`
	// Everyone ends every session of the node, whatever Users says
	// (shutdown); the session manager refuses it.
	Everyone bool `json:"everyone,omitempty"`
	// Condition is the stream error condition; default
	// ConditionPolicyViolation.
	Condition string `json:"condition,omitempty"`
	// Reason is the stream error text; default DefaultEndReason.
	Reason string `json:"reason,omitempty"`
	// Block refuses new logins of Users (bare) for this long.
	Block time.Duration `json:"block,omitempty"`
	// Caller is who asks: it decides what they may end.
	Caller adhoc.Caller `json:"caller"`
}

// MaxBlock bounds EndRequest.Block.
const MaxBlock = 365 * 24 * time.Hour

// Selects reports whether the request ends the session s of a user.
func (r EndRequest) Selects(s Conn) bool {
	if r.Everyone {
		return true
	}
	addr := s.JID()
	for _, u := range r.Users {
		if !u.Bare().Equal(addr.Bare()) || u.Resourcepart() != "" && u.Resourcepart() != addr.Resourcepart() {
			continue
		}
		id := s.SessionID()
		if r.All {
			return id != r.Except
		}
		for _, want := range r.IDs {
			if want == id {
				return true
			}
		}
	}
	return false
}

// EndResult lists the sessions that were ended, as they were, ordered by
// full JID.
type EndResult struct {
	Ended []Session `json:"ended"`
}

// ListRequest asks for a page of sessions.
type ListRequest struct {
	// User is whose sessions to list; the zero JID lists everyone's.
	User   jid.JID `json:"-"`
	Offset int     `json:"offset,omitempty"`
	// Limit is the most sessions in the page; 0 is no limit.
	Limit  int          `json:"limit,omitempty"`
	Caller adhoc.Caller `json:"caller"`
}

// Page is a page of sessions and the number of sessions that matched
// before paging.
type Page struct {
	Count int       `json:"count"`
	Items []Session `json:"items"`
	// Block is the block in force of the user listed (ListRequest.User),
	// set by the session manager; nil when the user is not blocked, and
	// for a listing of everyone.
	Block *Block `json:"block,omitempty"`
}

// Block is a block in force: the user may not log in before Until (see
// EndRequest.Block).
type Block struct {
	User   string    `json:"user"`   // bare JID
	Until  time.Time `json:"until"`  // to the millisecond, UTC
	Reason string    `json:"reason"` // as given when the sessions were ended; may be empty
}

// BlockRequest asks for the block of a user, or to lift it.
type BlockRequest struct {
	User   jid.JID      `json:"-"` // bare
	Caller adhoc.Caller `json:"caller"`
}

// UnblockResult says whether a block was lifted, and which.
type UnblockResult struct {
	Unblocked bool   `json:"unblocked"`
	Block     *Block `json:"block,omitempty"` // the block lifted
}

// GetRequest asks for one session of a user.
type GetRequest struct {
	User   jid.JID      `json:"-"`
	ID     string       `json:"id"`
	Caller adhoc.Caller `json:"caller"`
}

// CountRequest asks how many are online.
type CountRequest struct {
	// PerUser asks for Counts.Online too: each user online and its number
	// of sessions.
	PerUser bool `json:"per_user,omitempty"`
	// Activity, with PerUser, asks for the last activity of each user and
	// for Counts.ByTransport, which take a look at every session.
	Activity bool         `json:"activity,omitempty"`
	Caller   adhoc.Caller `json:"caller"`
}

// Counts are the sessions and users online.
type Counts struct {
	Sessions int `json:"sessions"`
	// Users is how many users are online. A user online on two nodes counts
	// on each: a cluster counts the distinct users of Online instead.
	Users int `json:"users"`
	// ByTransport counts the sessions of each transport, with Activity.
	ByTransport map[string]int `json:"by_transport,omitempty"`
	// Online has one entry per user online, in no particular order, with
	// PerUser.
	Online []OnlineUser `json:"online,omitempty"`
}

// OnlineUser is a user with at least one session.
type OnlineUser struct {
	User       string    `json:"user"` // bare JID
	Sessions   int       `json:"sessions"`
	LastActive time.Time `json:"last_active,omitzero"` // the latest of its sessions, with Activity
}

// AnnounceRequest asks to send a message to every session.
type AnnounceRequest struct {
	// From is the sender, usually the domain.
	From    jid.JID      `json:"-"`
	Subject string       `json:"subject,omitempty"`
	Body    string       `json:"body"`
	Caller  adhoc.Caller `json:"caller"`
}

// AnnounceResult says how many sessions got the message, of how many online.
type AnnounceResult struct {
	Sent   int `json:"sent"`
	Online int `json:"online"`
}

// The JIDs of requests travel as strings: mellium's jid.JID has no JSON form.

type (
	endFields      EndRequest
	listFields     ListRequest
	getFields      GetRequest
	announceFields AnnounceRequest
)

// MarshalJSON implements json.Marshaler.
func (r EndRequest) MarshalJSON() ([]byte, error) {
	users := make([]string, len(r.Users))
	for i, u := range r.Users {
		users[i] = u.String()
	}
	return json.Marshal(struct {
		Users []string `json:"users"`
		endFields
	}{users, endFields(r)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *EndRequest) UnmarshalJSON(b []byte) error {
	var w struct {
		Users []string `json:"users"`
		endFields
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = EndRequest(w.endFields)
	r.Users = nil
	for _, u := range w.Users {
		addr, err := parseJID("users", u)
		if err != nil {
			return err
		}
		r.Users = append(r.Users, addr)
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (r ListRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		User string `json:"user,omitempty"`
		listFields
	}{r.User.String(), listFields(r)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *ListRequest) UnmarshalJSON(b []byte) error {
	var w struct {
		User string `json:"user"`
		listFields
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = ListRequest(w.listFields)
	var err error
	r.User, err = parseJID("user", w.User)
	return err
}

// MarshalJSON implements json.Marshaler.
func (r GetRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		User string `json:"user"`
		getFields
	}{r.User.String(), getFields(r)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *GetRequest) UnmarshalJSON(b []byte) error {
	var w struct {
		User string `json:"user"`
		getFields
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = GetRequest(w.getFields)
	var err error
	r.User, err = parseJID("user", w.User)
	return err
}

// MarshalJSON implements json.Marshaler.
func (r AnnounceRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		From string `json:"from"`
		announceFields
	}{r.From.String(), announceFields(r)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *AnnounceRequest) UnmarshalJSON(b []byte) error {
	var w struct {
		From string `json:"from"`
		announceFields
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = AnnounceRequest(w.announceFields)
	var err error
	r.From, err = parseJID("from", w.From)
	return err
}

// parseJID parses a JID of a request's JSON form; "" is the zero JID.
func parseJID(key, s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, nil
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("session: %s %q: %w", key, s, err)
	}
	return j, nil
}
