package adhoc

import (
	"encoding/json"
	"fmt"

	"mellium.im/xmpp/jid"
)

// How a caller authenticated, the values of Caller.Auth.
const (
	AuthBasic  = "basic"  // HTTP Basic with an XMPP account
	AuthXMPP   = "xmpp"   // an XMPP session (in-band commands)
	AuthAPIKey = "apikey" // an API key
	AuthPusher = "pusher" // a request signed with a Pusher app's secret
	AuthCLI    = "cli"    // the adhocd command line, on the server's machine
)

// Caller is who sends a request, as the transport authenticated them.
// It states facts only; what the caller may do is decided by the command
// (in adhocd, by the session manager) from them.
type Caller struct {
	// JID is the requester: an account's bare JID (its full JID in-band),
	// or the domain an API key or a Pusher app acts on.
	JID jid.JID `json:"-"`
	// Auth is how the caller authenticated: AuthBasic, AuthXMPP, ...
	Auth string `json:"auth"`
	// Admin is set for an account that administers JID's domain; never for
	// an API key or an app, whose rights their owner decides.
	Admin bool `json:"admin,omitempty"`
	// ReadOnly is set for a read-only API key.
	ReadOnly bool `json:"read_only,omitempty"`
	// Name names the caller in the audit: the bare JID, apikey:<name>,
	// pusher:<app id> or cli.
	Name string `json:"name"`
	// RemoteAddr is the caller's address: the network peer's, or the one
	// a trusted proxy named.
	RemoteAddr string `json:"remote_addr,omitempty"`
	// Peer is the network peer's address, proxy or not.
	Peer      string `json:"peer,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Account reports whether the caller is an account that logged in itself
// (HTTP Basic or XMPP), rather than a key, an app or the command line.
func (c Caller) Account() bool { return c.Auth == AuthBasic || c.Auth == AuthXMPP }

// callerJSON is Caller with its JID as a string.
type callerJSON struct {
	JID string `json:"jid"`
	callerFields
}

type callerFields Caller // Caller without its methods, so no recursion

// MarshalJSON writes the caller with its JID as a string, so that a
// request can travel to another node.
func (c Caller) MarshalJSON() ([]byte, error) {
	return json.Marshal(callerJSON{JID: c.JID.String(), callerFields: callerFields(c)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Caller) UnmarshalJSON(b []byte) error {
	var w callerJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Caller(w.callerFields)
	if w.JID == "" {
		c.JID = jid.JID{}
		return nil
	}
	addr, err := jid.Parse(w.JID)
	if err != nil {
		return fmt.Errorf("adhoc: caller jid %q: %w", w.JID, err)
	}
	c.JID = addr
	return nil
}
