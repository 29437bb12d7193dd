package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/transport/limit"
)

// Accounts authenticates HTTP callers against the account store.
type Accounts interface {
	// VerifyPassword checks a password; it returns ErrBadCredentials for an
	// unknown user or a wrong password, ErrAccountDisabled for a disabled
	// account, and any other error for a failure of the store.
	VerifyPassword(ctx context.Context, user jid.JID, password string) error
	// IsAdmin reports whether user may run admin commands.
	IsAdmin(ctx context.Context, user jid.JID) (bool, error)
}

// Errors an Accounts implementation returns, possibly wrapped.
var (
	ErrBadCredentials  = errors.New("httpapi: bad credentials")
	ErrAccountDisabled = errors.New("httpapi: account disabled")
)

// caller is who made a request, once authenticated.
type caller struct {
	jid      jid.JID // bare account JID; for an API key, the key's domain
	admin    bool    // may act on any account of its domain
	readOnly bool    // may not change anything (read-only API keys)
	name     string  // as the audit names it: the JID, or apikey:<name>
	auth     string  // basic or apikey
}

const callerKey = "adhocd.caller"

func callerOf(c echo.Context) caller { return c.Get(callerKey).(caller) }

// mayActOn reports whether the caller may act on user's sessions: admins and
// keys within their domain, accounts on themselves.
func (who caller) mayActOn(user jid.JID) bool {
	if who.admin {
		return user.Domainpart() == who.jid.Domainpart()
	}
	return user.Bare().Equal(who.jid)
}

// origin is the request as the audit records it.
func origin(c echo.Context, who caller) adhoc.Origin {
	return adhoc.Origin{
		Caller:     who.name,
		Auth:       who.auth,
		RemoteAddr: c.RealIP(),
		RequestID:  c.Response().Header().Get(echo.HeaderXRequestID),
	}
}

// Keys looks API keys up.
type Keys interface {
	// APIKey returns the key with this secret; ErrBadCredentials for an
	// unknown or malformed one, ErrKeyRevoked for a revoked one.
	APIKey(ctx context.Context, secret string) (APIKey, error)
}

// APIKey is what a script authenticates with.
type APIKey struct {
	Name     string
	Domain   string
	ReadOnly bool
}

// ErrKeyRevoked is returned by Keys for a revoked key.
var ErrKeyRevoked = errors.New("httpapi: api key revoked")

var errNoCredentials = &adhoc.Error{Condition: stanza.NotAuthorized,
	Text: "Authentication is required: HTTP Basic with your XMPP account (user@domain and password), or an API key (Authorization: Bearer <key>)."}

// authenticate is middleware requiring HTTP Basic credentials of an account
// or an API key (Authorization: Bearer, or Tigase's Api-Key header).
// Failed attempts are throttled per remote address and per account; calls
// by accounts that are not admins and by keys are rate-limited per caller.
// Verified passwords are cached for a short time, so a script calling in a
// loop does not pay for salted password hashing on every request; keys are
// looked up every time, so revoking one takes effect at once.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		ipKey := limit.AddrKey(c.Request().RemoteAddr)
		var who caller
		var err error
		failKeys := []string{ipKey}
		if secret := apiKeySecret(c.Request()); secret != "" {
			if wait := s.cfg.Failures.Check(ipKey); wait > 0 {
				return tooMany(c, wait, "Too many failed logins from your address")
			}
			who, err = s.keyCaller(ctx, secret)
		} else {
			username, password, ok := c.Request().BasicAuth()
			if !ok {
				return errNoCredentials
			}
			user, perr := s.userJID(username)
			if perr != nil {
				return errNoCredentials
			}
			failKeys = append(failKeys, limit.AccountKey(user.String()))
			if wait := s.cfg.Failures.Check(failKeys...); wait > 0 {
				return tooMany(c, wait, "Too many failed logins")
			}
			who, err = s.creds.check(ctx, s.cfg.Accounts, user, password)
		}
		if err != nil {
			if e := adhoc.AsError(err); e.Condition == stanza.NotAuthorized {
				s.cfg.Failures.Fail(failKeys...)
			}
			return err
		}
		if who.auth == "basic" {
			s.cfg.Failures.Succeed(limit.AccountKey(who.jid.String())) // as SASL does
		}
		rates := s.cfg.Rates
		if who.admin && who.auth == "basic" {
			rates = s.cfg.AdminRates // an admin script ending thousands of sessions is normal use
		}
		if ok, wait := rates.Allow(who.name); !ok {
			return tooMany(c, wait, "Too many requests")
		}
		c.Set(callerKey, who)
		return next(c)
	}
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
func (s *Server) keyCaller(ctx context.Context, secret string) (caller, error) {
	if s.cfg.Keys == nil {
		return caller{}, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "API keys are not enabled on this server."}
	}
	key, err := s.cfg.Keys.APIKey(ctx, secret)
	switch {
	case errors.Is(err, ErrBadCredentials):
		return caller{}, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The API key is not valid.", Err: err}
	case errors.Is(err, ErrKeyRevoked):
		return caller{}, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The API key was revoked.", Err: err}
	case err != nil:
		return caller{}, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: "Authentication is not available right now; try again later.", Err: err}
	}
	domain, err := jid.New("", key.Domain, "")
	if err != nil {
		return caller{}, &adhoc.Error{Condition: stanza.InternalServerError, Text: "The API key names no valid domain.", Err: err}
	}
	return caller{jid: domain, admin: true, readOnly: key.ReadOnly, name: "apikey:" + key.Name, auth: "apikey"}, nil
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

// credCache remembers verified credentials for a short time. Keys are an
// HMAC of user and password under a per-process secret, so the cache holds
// nothing a password could be read back from.
type credCache struct {
	ttl    time.Duration
	secret []byte
	now    func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedCaller
	// gen counts invalidations: check stores nothing it verified while an
	// Invalidate ran, which would otherwise be lost for the TTL.
	gen uint64
}

type cachedCaller struct {
	caller
	expires time.Time
}

func newCredCache(ttl time.Duration) *credCache {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	return &credCache{ttl: ttl, secret: secret, now: time.Now, entries: make(map[[sha256.Size]byte]cachedCaller)}
}

func (cc *credCache) key(user jid.JID, password string) (k [sha256.Size]byte) {
	m := hmac.New(sha256.New, cc.secret)
	m.Write([]byte(user.String()))
	m.Write([]byte{0})
	m.Write([]byte(password))
	copy(k[:], m.Sum(nil))
	return k
}

// check returns the caller for valid credentials, from the cache or the store.
func (cc *credCache) check(ctx context.Context, accounts Accounts, user jid.JID, password string) (caller, error) {
	k := cc.key(user, password)
	now := cc.now()
	cc.mu.Lock()
	e, ok := cc.entries[k]
	gen := cc.gen
	cc.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.caller, nil
	}
	err := accounts.VerifyPassword(ctx, user, password)
	switch {
	case errors.Is(err, ErrBadCredentials):
		return caller{}, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The user name or password is wrong.", Err: err}
	case errors.Is(err, ErrAccountDisabled):
		return caller{}, &adhoc.Error{Condition: stanza.Forbidden, Text: "This account may not log in now: it is disabled, or its sessions were ended with a block.", Err: err}
	case err != nil:
		return caller{}, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: "Authentication is not available right now; try again later.", Err: err}
	}
	admin, err := accounts.IsAdmin(ctx, user)
	if err != nil {
		return caller{}, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: "Authentication is not available right now; try again later.", Err: err}
	}
	who := caller{jid: user.Bare(), admin: admin, name: user.Bare().String(), auth: "basic"}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return who, nil // invalidated meanwhile: valid for this request only
	}
	if len(cc.entries) > 10000 {
		cc.entries = make(map[[sha256.Size]byte]cachedCaller) // bounded: start over
	}
	cc.entries[k] = cachedCaller{caller: who, expires: now.Add(cc.ttl)}
	return who, nil
}

// Invalidate forgets the cached credentials of user. Call it when the
// user's password changes or the account is disabled or deleted.
func (s *Server) Invalidate(user jid.JID) {
	bare := user.Bare()
	cc := s.creds
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	for k, e := range cc.entries {
		if e.jid.Equal(bare) {
			delete(cc.entries, k)
		}
	}
}
