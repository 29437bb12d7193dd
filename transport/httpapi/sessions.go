package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// SessionManager runs the session operations of the session API.
type SessionManager interface {
	// Sessions returns a page of the sessions of user (a zero JID: of
	// everyone) in a stable order, and how many there are in all.
	Sessions(user jid.JID, offset, limit int) (total int, page []Session)
	// Session returns one session of user.
	Session(user jid.JID, id string) (Session, bool)
	// EndSessions ends sessions as req says and returns those it ended.
	EndSessions(ctx context.Context, req EndRequest) ([]Session, error)
}

// Session is a bound resource as the API shows it.
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

// EndRequest asks to end sessions of one user.
type EndRequest struct {
	User   jid.JID
	IDs    []string // these sessions
	All    bool     // every session (IDs ignored)
	Except string   // with All: keep this one
	Reason string
	Block  time.Duration
	Origin adhoc.Origin
}

// Paging and bulk limits of the session API.
const (
	maxPage = 50
	maxBulk = 50
)

// jsonAPI answers the JSON-only endpoints' errors in JSON.
func jsonAPI(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(formatKey, codec.TigaseJSON)
		return next(c)
	}
}

// page reads limit and offset: default and maximum limit 50.
func page(c echo.Context) (offset, limit int, err error) {
	limit, offset = maxPage, 0
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPage {
			return 0, 0, &adhoc.Error{Condition: stanza.BadRequest, Text: fmt.Sprintf("limit must be a number from 1 to %d.", maxPage)}
		}
	}
	if v := c.QueryParam("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, &adhoc.Error{Condition: stanza.BadRequest, Text: "offset must be a number from 0."}
		}
	}
	return offset, limit, nil
}

// pathUser reads the {jid} path segment as a user's bare JID and checks
// that the caller may act on it.
func pathUser(c echo.Context) (jid.JID, error) {
	const notUser = "%q is not a user's bare JID, like user@example.org."
	raw, user, err := pathJID(c, notUser)
	if err != nil {
		return jid.JID{}, err
	}
	if user.Localpart() == "" || user.Resourcepart() != "" {
		return jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed, Text: fmt.Sprintf(notUser, raw)}
	}
	if !callerOf(c).mayActOn(user) {
		return jid.JID{}, &adhoc.Error{Condition: stanza.Forbidden, Text: "You may only manage your own sessions."}
	}
	return user, nil
}

type sessionList struct {
	Count int       `json:"count"`
	Items []Session `json:"items"`
}

// listSessions answers GET /rest/sessions: every session, for admins.
func (s *Server) listSessions(c echo.Context) error {
	who := callerOf(c)
	if !who.admin {
		return &adhoc.Error{Condition: stanza.Forbidden, Text: "Only administrators may list every session; use /rest/users/{jid}/sessions."}
	}
	offset, limit, err := page(c)
	if err != nil {
		return err
	}
	total, items := s.cfg.Sessions.Sessions(jid.JID{}, offset, limit)
	return c.JSON(http.StatusOK, sessionList{Count: total, Items: items})
}

// listUserSessions answers GET /rest/users/{jid}/sessions.
func (s *Server) listUserSessions(c echo.Context) error {
	user, err := pathUser(c)
	if err != nil {
		return err
	}
	offset, limit, err := page(c)
	if err != nil {
		return err
	}
	total, items := s.cfg.Sessions.Sessions(user, offset, limit)
	return c.JSON(http.StatusOK, sessionList{Count: total, Items: items})
}

// getSession answers GET /rest/users/{jid}/sessions/{id}.
func (s *Server) getSession(c echo.Context) error {
	user, err := pathUser(c)
	if err != nil {
		return err
	}
	sess, ok := s.cfg.Sessions.Session(user, c.Param("id"))
	if !ok {
		return errNoSession(user)
	}
	return c.JSON(http.StatusOK, sess)
}

func errNoSession(user jid.JID) error {
	return &adhoc.Error{Condition: stanza.ItemNotFound, Text: fmt.Sprintf("%s has no session with that id.", user)}
}

// endOptions is what every delete accepts, in the JSON body or the query.
type endOptions struct {
	Sessions *[]string `json:"sessions"`
	Reason   string    `json:"reason"`
	Block    *int64    `json:"block"` // seconds
}

func (s *Server) readEndOptions(c echo.Context) (endOptions, error) {
	var o endOptions
	raw, err := io.ReadAll(s.body(c))
	if err != nil {
		return o, s.bodyError(err)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &o); err != nil {
			return o, &adhoc.Error{Condition: stanza.BadRequest, Text: "The body is not a JSON object like {\"reason\": \"…\", \"block\": 600}: " + err.Error()}
		}
	}
	if v := c.QueryParam("reason"); v != "" {
		o.Reason = v
	}
	if v := c.QueryParam("block"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return o, &adhoc.Error{Condition: stanza.BadRequest, Text: "block must be a number of seconds."}
		}
		o.Block = &n
	}
	if o.Block != nil && *o.Block < 0 {
		return o, &adhoc.Error{Condition: stanza.BadRequest, Text: "block must not be negative."}
	}
	return o, nil
}

func (o endOptions) block() time.Duration {
	if o.Block == nil {
		return 0
	}
	return time.Duration(*o.Block) * time.Second
}

// end runs an end request for the caller.
func (s *Server) end(c echo.Context, user jid.JID, o endOptions, req EndRequest) ([]Session, error) {
	who := callerOf(c)
	if who.readOnly {
		return nil, &adhoc.Error{Condition: stanza.Forbidden, Text: "This API key is read-only."}
	}
	req.User, req.Reason, req.Block, req.Origin = user, o.Reason, o.block(), origin(c, who)
	return s.cfg.Sessions.EndSessions(c.Request().Context(), req)
}

// endInput reads what every delete takes: the user in the path, whom the
// caller must be allowed to act on, and the end options.
func (s *Server) endInput(c echo.Context) (jid.JID, endOptions, error) {
	user, err := pathUser(c)
	if err != nil {
		return jid.JID{}, endOptions{}, err
	}
	o, err := s.readEndOptions(c)
	return user, o, err
}

type endCount struct {
	Count int `json:"count"`
}

// deleteSession answers DELETE /rest/users/{jid}/sessions/{id}: it ends the
// session and returns it as it was.
func (s *Server) deleteSession(c echo.Context) error {
	user, o, err := s.endInput(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if _, ok := s.cfg.Sessions.Session(user, id); !ok {
		return errNoSession(user)
	}
	ended, err := s.end(c, user, o, EndRequest{IDs: []string{id}})
	if err != nil {
		return err
	}
	if len(ended) == 0 {
		return errNoSession(user) // it went away on its own meanwhile
	}
	return c.JSON(http.StatusOK, ended[0])
}

// deleteSessions answers DELETE /rest/users/{jid}/sessions with
// {"sessions": [ids]}: unknown ids are ignored but count toward the limit.
func (s *Server) deleteSessions(c echo.Context) error {
	user, o, err := s.endInput(c)
	if err != nil {
		return err
	}
	switch {
	case o.Sessions == nil:
		return &adhoc.Error{Condition: stanza.BadRequest, Text: `The body needs a "sessions" array of session ids.`}
	case len(*o.Sessions) > maxBulk:
		return &adhoc.Error{Condition: stanza.BadRequest, Text: fmt.Sprintf("At most %d sessions per call.", maxBulk)}
	}
	ended, err := s.end(c, user, o, EndRequest{IDs: *o.Sessions})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, endCount{Count: len(ended)})
}

// deleteAllSessions answers DELETE /rest/users/{jid}/sessions/all, with
// ?except={id} to keep one (log out everywhere else).
func (s *Server) deleteAllSessions(c echo.Context) error {
	user, o, err := s.endInput(c)
	if err != nil {
		return err
	}
	ended, err := s.end(c, user, o, EndRequest{All: true, Except: c.QueryParam("except")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, endCount{Count: len(ended)})
}
