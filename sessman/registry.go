package sessman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
)

// Conn is a bound client connection as the registry sees it.
//
// It is an alias of an interface literal, and its methods use only standard
// library and jid types, so that transport can declare the identical type
// without importing sessman (interfaces belong to their consumers).
type Conn = interface {
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
	// namespace, from and to set) for the client. It reports false if the
	// connection is closing.
	Deliver(stanza []byte) bool
	// Kick starts ending the connection with a stream error of the given
	// condition and text. It returns at once; the connection unbinds itself
	// once it is gone, within a bounded grace period.
	Kick(condition, text string)
}

// DefaultEndReason is the stream error text sent to an ended client when the
// caller gave no reason.
const DefaultEndReason = "Your session was ended by an administrator."

// Stream error conditions (RFC 6120 §4.9.3) the registry asks connections to
// end with.
const (
	ConditionPolicyViolation = "policy-violation"
	ConditionConflict        = "conflict"
	ConditionSystemShutdown  = "system-shutdown"
)

// Config configures a Registry. The zero value is usable.
type Config struct {
	// EndTimeout bounds how long End waits for kicked connections to unbind
	// when the caller's context has no earlier deadline. Default 10s.
	EndTimeout time.Duration
}

// Registry holds every bound resource of this node.
// It is safe for concurrent use.
type Registry struct {
	cfg Config
	log zerolog.Logger

	mu     sync.RWMutex
	byUser map[string]map[string]*entry // bare JID -> resourcepart -> entry
	byID   map[string]*entry            // session id -> entry
}

// entry is one bound connection; gone is closed when it leaves the registry.
type entry struct {
	conn Conn
	gone chan struct{}
}

// New returns an empty registry.
func New(cfg Config, logger zerolog.Logger) *Registry {
	if cfg.EndTimeout <= 0 {
		cfg.EndTimeout = 10 * time.Second
	}
	return &Registry{
		cfg:    cfg,
		log:    logger.With().Str("component", "sessman").Logger(),
		byUser: make(map[string]map[string]*entry),
		byID:   make(map[string]*entry),
	}
}

// ErrNotFullJID is returned by Bind for a JID without a resourcepart.
var ErrNotFullJID = errors.New("sessman: a bound JID needs a localpart and a resourcepart")

// Bind adds c under its full JID. A connection already bound to the same full
// JID is removed at once and kicked with <conflict/> (RFC 6120 §7.7.2.2):
// the newer session wins.
func (r *Registry) Bind(c Conn) error {
	addr := c.JID()
	if addr.Localpart() == "" || addr.Resourcepart() == "" {
		return ErrNotFullJID
	}
	bare, res := addr.Bare().String(), addr.Resourcepart()
	r.mu.Lock()
	resources := r.byUser[bare]
	if resources == nil {
		resources = make(map[string]*entry, 1)
		r.byUser[bare] = resources
	}
	old := resources[res]
	if old != nil {
		delete(r.byID, old.conn.SessionID())
		close(old.gone)
	}
	e := &entry{conn: c, gone: make(chan struct{})}
	resources[res] = e
	r.byID[c.SessionID()] = e
	r.mu.Unlock()

	if old != nil {
		r.log.Info().Stringer("jid", addr).Str("session_id", old.conn.SessionID()).Msg("resource conflict, ending older session")
		old.conn.Kick(ConditionConflict, "Replaced by a new connection with the same resource.")
	}
	r.log.Info().Stringer("jid", addr).Str("session_id", c.SessionID()).Msg("resource bound")
	return nil
}

// Unbind removes c if it is still the connection bound to its JID.
// It is safe to call more than once.
func (r *Registry) Unbind(c Conn) {
	addr := c.JID()
	bare, res := addr.Bare().String(), addr.Resourcepart()
	r.mu.Lock()
	e := r.byUser[bare][res]
	if e == nil || e.conn != c {
		r.mu.Unlock()
		return
	}
	delete(r.byUser[bare], res)
	delete(r.byID, c.SessionID())
	if len(r.byUser[bare]) == 0 {
		delete(r.byUser, bare)
	}
	close(e.gone)
	r.mu.Unlock()
	r.log.Info().Stringer("jid", addr).Str("session_id", c.SessionID()).Msg("resource unbound")
}

// Lookup returns the connection bound to a full JID.
func (r *Registry) Lookup(full jid.JID) (Conn, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byUser[full.Bare().String()][full.Resourcepart()]
	if e == nil {
		return nil, false
	}
	return e.conn, true
}

// LookupID returns the connection with a session id.
func (r *Registry) LookupID(id string) (Conn, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byID[id]
	if e == nil {
		return nil, false
	}
	return e.conn, true
}

// Resources returns the connections of a user (any resourcepart of addr is
// ignored), ordered by resource.
func (r *Registry) Resources(addr jid.JID) []Conn {
	r.mu.RLock()
	resources := r.byUser[addr.Bare().String()]
	conns := make([]Conn, 0, len(resources))
	for _, e := range resources {
		conns = append(conns, e.conn)
	}
	r.mu.RUnlock()
	slices.SortFunc(conns, func(a, b Conn) int { return strings.Compare(a.JID().Resourcepart(), b.JID().Resourcepart()) })
	return conns
}

// Count returns the number of bound resources.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}

// UserConns are the bound connections of one user.
type UserConns struct {
	User  string // bare JID
	Conns []Conn // at least one, in no particular order
}

// Users returns the bound connections grouped by user, in no particular
// order.
func (r *Registry) Users() []UserConns {
	r.mu.RLock()
	defer r.mu.RUnlock()
	users := make([]UserConns, 0, len(r.byUser))
	conns := make([]Conn, 0, len(r.byID)) // one array for every group
	for bare, resources := range r.byUser {
		start := len(conns)
		for _, e := range resources {
			conns = append(conns, e.conn)
		}
		users = append(users, UserConns{User: bare, Conns: conns[start:len(conns):len(conns)]})
	}
	return users
}

// All returns every bound connection, ordered by full JID.
func (r *Registry) All() []Conn {
	r.mu.RLock()
	conns := make([]Conn, 0, len(r.byID))
	for _, resources := range r.byUser {
		for _, e := range resources {
			conns = append(conns, e.conn)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(conns, compareConns)
	return conns
}

func compareConns(a, b Conn) int {
	ja, jb := a.JID(), b.JID()
	if c := strings.Compare(ja.Bare().String(), jb.Bare().String()); c != 0 {
		return c
	}
	return strings.Compare(ja.Resourcepart(), jb.Resourcepart())
}

// End ends the sessions of targets: a bare JID ends every resource of that
// user, a full JID only that resource. Each client receives a stream error
// with condition and text (DefaultEndReason when text is empty). End returns
// the full JIDs that were ended, ordered, once they are gone from the
// registry. Targets that are not online are not an error.
//
// If ctx (or the configured EndTimeout) expires first, End returns what was
// ended so far and the context's error.
func (r *Registry) End(ctx context.Context, targets []jid.JID, condition, text string) ([]jid.JID, error) {
	var victims []*entry
	seen := map[*entry]bool{}
	r.mu.RLock()
	for _, t := range targets {
		resources := r.byUser[t.Bare().String()]
		if res := t.Resourcepart(); res != "" {
			if e := resources[res]; e != nil && !seen[e] {
				seen[e] = true
				victims = append(victims, e)
			}
			continue
		}
		for _, e := range resources {
			if !seen[e] {
				seen[e] = true
				victims = append(victims, e)
			}
		}
	}
	r.mu.RUnlock()
	return r.end(ctx, victims, condition, text)
}

// EndConns is End for exactly these connections: one that is no longer
// bound (or was replaced by a newer connection with its JID) is skipped.
// It returns the ended full JIDs, ordered, once they are gone.
func (r *Registry) EndConns(ctx context.Context, conns []Conn, condition, text string) ([]jid.JID, error) {
	victims := make([]*entry, 0, len(conns))
	r.mu.RLock()
	for _, c := range conns {
		if e := r.byID[c.SessionID()]; e != nil && e.conn == c {
			victims = append(victims, e)
		}
	}
	r.mu.RUnlock()
	return r.end(ctx, victims, condition, text)
}

// end kicks victims and waits for them to be gone.
func (r *Registry) end(ctx context.Context, victims []*entry, condition, text string) ([]jid.JID, error) {
	if condition == "" {
		condition = ConditionPolicyViolation
	}
	if text == "" {
		text = DefaultEndReason
	}
	for _, e := range victims {
		r.log.Info().Stringer("jid", e.conn.JID()).Str("session_id", e.conn.SessionID()).Str("condition", condition).Msg("ending session")
		e.conn.Kick(condition, text)
	}

	ctx, cancel := context.WithTimeout(ctx, r.cfg.EndTimeout)
	defer cancel()
	ended := make([]jid.JID, 0, len(victims))
	var err error
	for _, e := range victims {
		select {
		case <-e.gone:
			ended = append(ended, e.conn.JID())
		case <-ctx.Done():
			err = fmt.Errorf("sessman: waiting for %s to end: %w", e.conn.JID(), ctx.Err())
		}
		if err != nil {
			break
		}
	}
	slices.SortFunc(ended, func(a, b jid.JID) int { return strings.Compare(a.String(), b.String()) })
	return ended, err
}

// EndAll kicks every bound connection with condition and text and waits for
// them to go, as End does. It is used at shutdown.
func (r *Registry) EndAll(ctx context.Context, condition, text string) ([]jid.JID, error) {
	conns := r.All()
	targets := make([]jid.JID, len(conns))
	for i, c := range conns {
		targets[i] = c.JID()
	}
	return r.End(ctx, targets, condition, text)
}
