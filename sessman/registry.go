package sessman

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// Config configures a Registry. The zero value is usable.
type Config struct {
	// EndTimeout bounds how long End waits for kicked connections to unbind
	// when the caller's context has no earlier deadline. Default 10s.
	EndTimeout time.Duration
}

// Registry holds every bound resource of this node, and is the session
// service of one node: it implements session.Sessions on them, as asked,
// without deciding who may ask (the Manager does).
// It is safe for concurrent use.
type Registry struct {
	cfg Config
	log zerolog.Logger

	mu     sync.RWMutex
	byUser map[string]map[string]*entry // bare JID -> resourcepart -> entry
	byID   map[string]*entry            // session id -> entry
}

var _ session.Sessions = (*Registry)(nil)

// entry is one bound connection; gone is closed when it leaves the registry.
type entry struct {
	conn session.Conn
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
func (r *Registry) Bind(c session.Conn) error {
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
		old.conn.Kick(session.ConditionConflict, "Replaced by a new connection with the same resource.")
	}
	r.log.Info().Stringer("jid", addr).Str("session_id", c.SessionID()).Msg("resource bound")
	return nil
}

// Unbind removes c if it is still the connection bound to its JID.
// It is safe to call more than once.
func (r *Registry) Unbind(c session.Conn) {
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

// Lookup returns the connection bound to a full JID, for routing.
func (r *Registry) Lookup(full jid.JID) (session.Conn, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byUser[full.Bare().String()][full.Resourcepart()]
	if e == nil {
		return nil, false
	}
	return e.conn, true
}

// Resources returns the connections of a user (any resourcepart of addr is
// ignored), ordered by resource, for routing.
func (r *Registry) Resources(addr jid.JID) []session.Conn {
	r.mu.RLock()
	conns := r.resourcesLocked(addr.Bare().String())
	r.mu.RUnlock()
	slices.SortFunc(conns, func(a, b session.Conn) int {
		return strings.Compare(a.JID().Resourcepart(), b.JID().Resourcepart())
	})
	return conns
}

func (r *Registry) resourcesLocked(bare string) []session.Conn {
	resources := r.byUser[bare]
	conns := make([]session.Conn, 0, len(resources))
	for _, e := range resources {
		conns = append(conns, e.conn)
	}
	return conns
}

// all returns every bound connection, ordered by full JID.
func (r *Registry) all() []session.Conn {
	r.mu.RLock()
	conns := make([]session.Conn, 0, len(r.byID))
	for _, resources := range r.byUser {
		for _, e := range resources {
			conns = append(conns, e.conn)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(conns, func(a, b session.Conn) int {
		ja, jb := a.JID(), b.JID()
		if c := strings.Compare(ja.Bare().String(), jb.Bare().String()); c != 0 {
			return c
		}
		return strings.Compare(ja.Resourcepart(), jb.Resourcepart())
	})
	return conns
}

// End implements session.Sessions: it kicks the sessions req selects with
// req.Condition and req.Reason and returns them, as they were and ordered by
// full JID, once they are gone from the registry. Sessions that are not
// online are not an error. It stores no block: the Manager does.
//
// If ctx (or the configured EndTimeout) expires first, End returns what was
// ended so far and the context's error.
func (r *Registry) End(ctx context.Context, req session.EndRequest) (session.EndResult, error) {
	var victims []*entry
	r.mu.RLock()
	if req.Everyone {
		for _, e := range r.byID {
			victims = append(victims, e)
		}
	} else {
		seen := make(map[*entry]bool)
		for _, u := range req.Users {
			for _, e := range r.byUser[u.Bare().String()] {
				if !seen[e] && req.Selects(e.conn) {
					seen[e] = true
					victims = append(victims, e)
				}
			}
		}
	}
	r.mu.RUnlock()

	condition, text := req.Condition, req.Reason
	if condition == "" {
		condition = session.ConditionPolicyViolation
	}
	if text == "" {
		text = session.DefaultEndReason
	}
	described := make([]session.Session, len(victims))
	for i, e := range victims {
		described[i] = session.Of(e.conn) // as it was
		r.log.Info().Stringer("jid", e.conn.JID()).Str("session_id", e.conn.SessionID()).Str("condition", condition).Msg("ending session")
		e.conn.Kick(condition, text)
	}

	ctx, cancel := context.WithTimeout(ctx, r.cfg.EndTimeout)
	defer cancel()
	res := session.EndResult{Ended: make([]session.Session, 0, len(victims))}
	var err error
	for i, e := range victims {
		select {
		case <-e.gone:
			res.Ended = append(res.Ended, described[i])
		case <-ctx.Done():
			err = fmt.Errorf("sessman: waiting for %s to end: %w", e.conn.JID(), ctx.Err())
		}
		if err != nil {
			break
		}
	}
	slices.SortFunc(res.Ended, func(a, b session.Session) int { return strings.Compare(a.JID, b.JID) })
	return res, err
}

// List implements session.Sessions: a page of the sessions of req.User, or
// of everyone, ordered by user, then resource.
func (r *Registry) List(_ context.Context, req session.ListRequest) (session.Page, error) {
	var conns []session.Conn
	if req.User.Domainpart() == "" {
		conns = r.all()
	} else {
		conns = r.Resources(req.User)
	}
	page := session.Page{Count: len(conns), Items: []session.Session{}}
	if req.Offset < len(conns) {
		conns = conns[max(req.Offset, 0):]
		if req.Limit > 0 && req.Limit < len(conns) {
			conns = conns[:req.Limit]
		}
		for _, c := range conns {
			page.Items = append(page.Items, session.Of(c))
		}
	}
	return page, nil
}

// Get implements session.Sessions.
func (r *Registry) Get(_ context.Context, req session.GetRequest) (session.Session, error) {
	r.mu.RLock()
	e := r.byID[req.ID]
	r.mu.RUnlock()
	if e == nil || !e.conn.JID().Bare().Equal(req.User.Bare()) {
		return session.Session{}, session.ErrNoSession
	}
	return session.Of(e.conn), nil
}

// Count implements session.Sessions. Without req.Activity it looks at no
// session: the numbers are the sizes of the registry's maps.
func (r *Registry) Count(_ context.Context, req session.CountRequest) (session.Counts, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	counts := session.Counts{Sessions: len(r.byID), Users: len(r.byUser)}
	if !req.PerUser {
		return counts, nil
	}
	counts.Online = make([]session.OnlineUser, 0, len(r.byUser))
	if req.Activity {
		counts.ByTransport = make(map[string]int, 3)
	}
	for bare, resources := range r.byUser {
		u := session.OnlineUser{User: bare, Sessions: len(resources)}
		for _, e := range resources {
			if !req.Activity {
				break
			}
			counts.ByTransport[e.conn.Transport()]++
			if t := e.conn.LastActive(); t.After(u.LastActive) {
				u.LastActive = t
			}
		}
		counts.Online = append(counts.Online, u)
	}
	return counts, nil
}

// Announce implements session.Sessions: every bound session is sent the
// message as a headline.
func (r *Registry) Announce(ctx context.Context, req session.AnnounceRequest) (session.AnnounceResult, error) {
	conns := r.all()
	res := session.AnnounceResult{Online: len(conns)}
	for _, c := range conns {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("sessman: announce: %d of %d sent: %w", res.Sent, len(conns), err)
		}
		if c.Notify(session.Message{From: req.From, To: c.JID(), Type: "headline", Subject: req.Subject, Body: req.Body}) {
			res.Sent++
		}
	}
	return res, nil
}
