package sessman

import (
	"time"

	"mellium.im/xmpp/jid"
)

// Session is a bound resource as operators see it.
// It is a plain value so that results of several nodes can be merged.
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

// SessionOf describes a bound connection.
func SessionOf(c Conn) Session {
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

// ListRequest asks for a page of sessions. A zero User lists every session.
type ListRequest struct {
	User   string `json:"user,omitempty"` // bare JID
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"` // 0 means no limit
}

// ListResult is a page of sessions ordered by full JID, and the total count
// of sessions that matched before paging.
type ListResult struct {
	Count int       `json:"count"`
	Items []Session `json:"items"`
}

// List returns a page of sessions in a stable order (by user, then resource).
func (r *Registry) List(req ListRequest) (ListResult, error) {
	var conns []Conn
	if req.User == "" {
		conns = r.All()
	} else {
		user, err := jid.Parse(req.User)
		if err != nil {
			return ListResult{}, err
		}
		conns = r.Resources(user)
	}
	res := ListResult{Count: len(conns), Items: []Session{}}
	if req.Offset < len(conns) {
		conns = conns[max(req.Offset, 0):]
		if req.Limit > 0 && req.Limit < len(conns) {
			conns = conns[:req.Limit]
		}
		for _, c := range conns {
			res.Items = append(res.Items, SessionOf(c))
		}
	}
	return res, nil
}
