package httpapi

import (
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
	"github.com/adhocd/adhocd/sessman/session"
)

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
// A refused value is named with the range it must be in:
// "limit: 51 is more than the maximum of 50".
func page(c echo.Context) (offset, limit int, err error) {
	limit, offset = maxPage, 0
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = pageParam("limit", v, 1, maxPage); err != nil {
			return 0, 0, err
		}
	}
	if v := c.QueryParam("offset"); v != "" {
		if offset, err = pageParam("offset", v, 0, -1); err != nil {
			return 0, 0, err
		}
	}
	return offset, limit, nil
}

// pageParam parses the query parameter name, from lowest to highest (-1:
// no maximum).
func pageParam(name, v string, lowest, highest int) (int, error) {
	bad := func(format string, args ...any) error {
		return &adhoc.Error{Condition: stanza.BadRequest, Text: name + ": " + fmt.Sprintf(format, args...)}
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil && highest >= 0:
		return 0, bad("%q is not a whole number; write %d to %d", v, lowest, highest)
	case err != nil:
		return 0, bad("%q is not a whole number; write %d or more", v, lowest)
	case n < lowest:
		return 0, bad("%d is less than the minimum of %d", n, lowest)
	case highest >= 0 && n > highest:
		return 0, bad("%d is more than the maximum of %d", n, highest)
	}
	return n, nil
}

// pathUser reads the {jid} path segment as a user's bare JID.
func pathUser(c echo.Context) (jid.JID, error) {
	const notUser = "%q is not a user's bare JID, like user@example.org."
	raw, user, err := pathJID(c, notUser)
	if err != nil {
		return jid.JID{}, err
	}
	if user.Localpart() == "" || user.Resourcepart() != "" {
		return jid.JID{}, &adhoc.Error{Condition: stanza.JIDMalformed, Text: fmt.Sprintf(notUser, raw)}
	}
	return user, nil
}

// listSessions answers GET /rest/sessions: every session, for admins.
func (s *Server) listSessions(c echo.Context) error {
	return s.list(c, jid.JID{})
}

// listUserSessions answers GET /rest/users/{jid}/sessions.
func (s *Server) listUserSessions(c echo.Context) error {
	user, err := pathUser(c)
	if err != nil {
		return err
	}
	return s.list(c, user)
}

func (s *Server) list(c echo.Context, user jid.JID) error {
	offset, limit, err := page(c)
	if err != nil {
		return err
	}
	p, err := s.cfg.Sessions.List(c.Request().Context(), session.ListRequest{User: user, Offset: offset, Limit: limit, Caller: callerOf(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// getSession answers GET /rest/users/{jid}/sessions/{id}.
func (s *Server) getSession(c echo.Context) error {
	user, err := pathUser(c)
	if err != nil {
		return err
	}
	sess, err := s.cfg.Sessions.Get(c.Request().Context(), session.GetRequest{User: user, ID: c.Param("id"), Caller: callerOf(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sess)
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

// endInput reads what every delete takes: the user in the path and the
// end options.
func (s *Server) endInput(c echo.Context) (jid.JID, endOptions, error) {
	user, err := pathUser(c)
	if err != nil {
		return jid.JID{}, endOptions{}, err
	}
	o, err := s.readEndOptions(c)
	return user, o, err
}

// end asks the session service to end what req selects of user's sessions.
func (s *Server) end(c echo.Context, user jid.JID, o endOptions, req session.EndRequest) (session.EndResult, error) {
	req.Users, req.Reason, req.Caller = []jid.JID{user}, o.Reason, callerOf(c)
	if o.Block != nil {
		req.Block = time.Duration(*o.Block) * time.Second
	}
	return s.cfg.Sessions.End(c.Request().Context(), req)
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
	get := session.GetRequest{User: user, ID: c.Param("id"), Caller: callerOf(c)}
	// An unknown id is 404 before anything is done (or audited).
	if _, err := s.cfg.Sessions.Get(c.Request().Context(), get); err != nil {
		return err
	}
	res, err := s.end(c, user, o, session.EndRequest{IDs: []string{get.ID}})
	if err != nil {
		return err
	}
	if len(res.Ended) == 0 {
		_, err := s.cfg.Sessions.Get(c.Request().Context(), get) // it went away on its own meanwhile: 404
		return err
	}
	return c.JSON(http.StatusOK, res.Ended[0])
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
	res, err := s.end(c, user, o, session.EndRequest{IDs: *o.Sessions})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, endCount{Count: len(res.Ended)})
}

// deleteAllSessions answers DELETE /rest/users/{jid}/sessions/all, with
// ?except={id} to keep one (log out everywhere else).
func (s *Server) deleteAllSessions(c echo.Context) error {
	user, o, err := s.endInput(c)
	if err != nil {
		return err
	}
	res, err := s.end(c, user, o, session.EndRequest{All: true, Except: c.QueryParam("except")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, endCount{Count: len(res.Ended)})
}
