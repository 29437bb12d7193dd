package session

import (
	"time"

	"github.com/adhocd/adhocd/adhoc"
)

// AuditEntry is one admin action in the audit.
type AuditEntry struct {
	ID         int64     `json:"id"`          // assigned when appended, increasing
	Time       time.Time `json:"time"`        // kept to the millisecond
	Actor      string    `json:"actor"`       // "admin@localhost", "apikey:<name>", "pusher:<app_id>", "cli"
	Auth       string    `json:"auth"`        // "basic", "apikey", "pusher", "xmpp", "cli"
	Action     string    `json:"action"`      // "end-sessions", "adhoc:<node>", "user-add", "apikey-create", ...
	Targets    []string  `json:"targets"`     // JIDs, session ids, key ids; never nil when read back
	Outcome    string    `json:"outcome"`     // "ok", or an error condition like "forbidden"
	Detail     string    `json:"detail"`      // short human text; never secrets
	RemoteAddr string    `json:"remote_addr"` // of the caller, when it came over the network
	Peer       string    `json:"peer"`        // the network peer: the caller, or the trusted proxy it came through
	RequestID  string    `json:"request_id"`  // the HTTP request id, or the IQ id in-band
}

// AuditQuery selects and pages audit entries, newest first.
// The zero value is the newest DefaultAuditLimit entries.
type AuditQuery struct {
	Limit  int    `json:"limit,omitempty"`  // 0 is DefaultAuditLimit; more than MaxAuditLimit is MaxAuditLimit
	Offset int    `json:"offset,omitempty"` // entries skipped, from the newest
	Actor  string `json:"actor,omitempty"`  // only the entries of this actor (exact match)
	Target string `json:"target,omitempty"` // only the entries whose Targets hold this (exact match)
	// Caller is who reads the audit; the session manager lets admins only.
	Caller adhoc.Caller `json:"caller"`
}

// Page sizes of an AuditQuery.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 500
)

// AuditPage is a page of the audit and the number of entries that matched
// before paging.
type AuditPage struct {
	Count int          `json:"count"`
	Items []AuditEntry `json:"items"`
}
