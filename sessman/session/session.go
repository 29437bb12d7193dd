package session

import (
	"net"
	"time"

	"mellium.im/xmpp/jid"
)

// Session is a bound resource as operators see it.
type Session struct {
	ID         string    `json:"id"`
	JID        string    `json:"jid"`
	User       string    `json:"user"`
	Resource   string    `json:"resource"`
	Transport  string    `json:"transport"`
	RemoteAddr string    `json:"remote_addr"`
	BoundAt    time.Time `json:"bound_at"`
	LastActive time.Time `json:"last_active"`
	Presence   string    `json:"presence"`
}

// Conn is a client connection with a bound resource, as the registry of
// sessions holds it. Transports implement it.
type Conn interface {
	// SessionID is the opaque id of the session, unique within the process.
	SessionID() string
	// JID is the full JID the connection has bound.
	JID() jid.JID
	// Transport names how the client is connected: "tcp", "tls" or "websocket".
	Transport() string
	// RemoteAddr is the client's network address.
	RemoteAddr() net.Addr
	// BoundAt is when the resource was bound.
	BoundAt() time.Time
	// LastActive is when the client last sent something.
	LastActive() time.Time
	// Presence is "unavailable", "available", or the <show/> value.
	Presence() string
	// Deliver queues one complete stanza (UTF-8 XML in the jabber:client
	// namespace, from and to set) routed from another session.
	// It reports false if the connection is closing.
	Deliver(stanza []byte) bool
	// Notify queues a message from the server, encoded by the transport.
	// It reports false if the connection is closing.
	Notify(m Message) bool
	// Kick starts ending the connection with a stream error of the given
	// condition and text. It returns at once; the connection unbinds itself
	// once it is gone, within a bounded grace period.
	Kick(condition, text string)
}

// Of describes a bound connection.
func Of(c Conn) Session {
	addr := c.JID()
	s := Session{
		ID:         c.SessionID(),
		JID:        addr.String(),
		User:       addr.Bare().String(),
		Resource:   addr.Resourcepart(),
		Transport:  c.Transport(),
		BoundAt:    c.BoundAt().UTC(),
		LastActive: c.LastActive().UTC(),
		Presence:   c.Presence(),
	}
	if ra := c.RemoteAddr(); ra != nil {
		s.RemoteAddr = ra.String()
	}
	return s
}

// Message is a message stanza the server sends a client, such as an
// XEP-0133 announcement.
type Message struct {
	From    jid.JID
	To      jid.JID
	Type    string // "headline", "chat", "normal"; empty is normal
	Subject string
	Body    string
}

// Stream error conditions (RFC 6120 §4.9.3) that sessions are ended with.
const (
	ConditionPolicyViolation = "policy-violation"
	ConditionConflict        = "conflict"
	ConditionSystemShutdown  = "system-shutdown"
)

// DefaultEndReason is the stream error text sent to an ended client when the
// caller gave no reason.
const DefaultEndReason = "Your session was ended by an administrator."
