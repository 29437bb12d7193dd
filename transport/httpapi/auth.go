package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
)

// Accounts authenticates HTTP callers. *sessman.Accounts implements it.
type Accounts interface {
	// Login checks an account's password (HTTP Basic) and returns the
	// caller: session.ErrUnknownUser or session.ErrBadPassword for wrong
	// credentials, session.ErrDisabled for an account that may not log in
	// now, any other error for a failure of the store.
	Login(ctx context.Context, user jid.JID, password string) (adhoc.Caller, error)
	// APIKey returns the caller of an API key: session.ErrUnknownKey,
	// session.ErrKeyRevoked.
	APIKey(ctx context.Context, secret string) (adhoc.Caller, error)
}

const callerKey = "adhocd.caller"

// callerOf is the authenticated caller of the request, with where it came
// from.
func callerOf(c echo.Context) adhoc.Caller {
	return withOrigin(c, c.Get(callerKey).(adhoc.Caller))
}

// withOrigin completes who with where the request came from: the client's
// address (the peer's, unless a trusted proxy named another), the peer's,
// and the request id.
func withOrigin(c echo.Context, who adhoc.Caller) adhoc.Caller {
	who.RemoteAddr = c.RealIP()
	who.Peer = c.Request().RemoteAddr
	who.RequestID = c.Response().Header().Get(echo.HeaderXRequestID)
	return who
}

var errNoCredentials = &adhoc.Error{Condition: stanza.NotAuthorized,
	Text: "Authentication is required: HTTP Basic with your XMPP account (user@domain and password), or an API key (Authorization: Bearer <key>)."}

const errAuthUnavailable = "Authentication is not available right now; try again later."

// authenticate is middleware requiring HTTP Basic credentials of an account
// or an API key (Authorization: Bearer, or Tigase's Api-Key header).
// Failed logins are throttled per (account, address), address and account
// (limit.Failures); a valid API key passes even from a locked address, an
// invalid one counts against the address. Calls by accounts that are not
// admins and by keys are rate-limited per caller.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		addr := c.RealIP() // the peer, or the client a trusted proxy names
		var who adhoc.Caller
		var err error
		if secret := apiKeySecret(c.Request()); secret != "" {
			// A key is a 256-bit secret: the address limit only sheds the
			// load of guessing, so the lookup comes first.
			who, err = s.keyCaller(ctx, secret)
			if err != nil && adhoc.AsError(err).Condition == stanza.NotAuthorized {
				if wait := s.cfg.Failures.CheckAddr(addr); wait > 0 {
					return tooMany(c, wait, "Too many failed logins from your address")
				}
				s.cfg.Failures.FailAddr(addr)
			}
		} else {
			username, password, ok := c.Request().BasicAuth()
			if !ok {
				return errNoCredentials
			}
			user, perr := s.userJID(username)
			if perr != nil {
				return errNoCredentials
			}
			if wait := s.cfg.Failures.CheckLogin(user.String(), addr); wait > 0 {
				return tooMany(c, wait, "Too many failed logins")
			}
			who, err = s.login(ctx, user, password)
			switch {
			case err == nil:
				s.cfg.Failures.SucceedLogin(user.String(), addr) // as SASL does
			case adhoc.AsError(err).Condition == stanza.NotAuthorized:
				s.cfg.Failures.FailLogin(user.String(), addr)
			}
		}
		if err != nil {
			return err
		}
		rates := s.cfg.Rates
		if who.Admin && who.Auth == adhoc.AuthBasic {
			rates = s.cfg.AdminRates // an admin script ending thousands of sessions is normal use
		}
		if ok, wait := rates.Allow(who.Name); !ok {
			return tooMany(c, wait, "Too many requests")
		}
		c.Set(callerKey, who)
		return next(c)
	}
}

// login checks HTTP Basic credentials.
func (s *Server) login(ctx context.Context, user jid.JID, password string) (adhoc.Caller, error) {
	who, err := s.cfg.Accounts.Login(ctx, user, password)
	var blocked *session.BlockedError
	switch {
	case errors.As(err, &blocked):
		return who, &adhoc.Error{Condition: stanza.Forbidden, Text: blocked.Text(), Err: err}
	case errors.Is(err, session.ErrUnknownUser), errors.Is(err, session.ErrBadPassword):
		return who, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The user name or password is wrong.", Err: err}
	case errors.Is(err, session.ErrDisabled):
		return who, &adhoc.Error{Condition: stanza.Forbidden, Text: "This account is disabled.", Err: err}
	case errors.Is(err, session.ErrNotServed):
		return who, &adhoc.Error{Condition: stanza.NotAuthorized, Text: fmt.Sprintf("This server serves %s only: log in with an account of it.", s.cfg.Domain), Err: err}
	case err != nil:
		return who, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: errAuthUnavailable, Err: err}
	}
	return who, nil
}

// apiKeySecret reads an API key from Authorization: Bearer or Api-Key.
func apiKeySecret(r *http.Request) string {
	if k := strings.TrimSpace(r.Header.Get("Api-Key")); k != "" {
		return k
	}
	if scheme, k, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(k)
	}
	return ""
}

// keyCaller authenticates an API key.
func (s *Server) keyCaller(ctx context.Context, secret string) (adhoc.Caller, error) {
	who, err := s.cfg.Accounts.APIKey(ctx, secret)
	switch {
	case errors.Is(err, session.ErrUnknownKey):
		return who, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The API key is not valid.", Err: err}
	case errors.Is(err, session.ErrKeyRevoked):
		return who, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The API key was revoked.", Err: err}
	case errors.Is(err, session.ErrNotServed):
		return who, &adhoc.Error{Condition: stanza.NotAuthorized, Text: fmt.Sprintf("The API key is for another domain; this server serves %s only.", s.cfg.Domain), Err: err}
	case err != nil:
		return who, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: errAuthUnavailable, Err: err}
	}
	return who, nil
}

// tooMany answers 429 with Retry-After.
func tooMany(c echo.Context, wait time.Duration, what string) error {
	secs := int(wait.Seconds()) + 1
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return &adhoc.Error{Condition: stanza.ResourceConstraint, Text: fmt.Sprintf("%s; try again in %d seconds.", what, secs)}
}

// userJID accepts user@domain, or a bare localpart of our domain.
func (s *Server) userJID(username string) (jid.JID, error) {
	if !strings.Contains(username, "@") {
		username += "@" + s.cfg.Domain
	}
	user, err := jid.Parse(username)
	if err != nil || user.Localpart() == "" || user.Resourcepart() != "" {
		return jid.JID{}, errNoCredentials
	}
	return user, nil
}

// withDeadline is middleware that gives every call of the API its one
// deadline, CommandTimeout: whatever the route, a call ends by then.
func (s *Server) withDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.CommandTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}
