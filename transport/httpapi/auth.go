package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
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
	jid   jid.JID // bare
	admin bool
}

const callerKey = "adhocd.caller"

var errNoCredentials = &adhoc.Error{Condition: stanza.NotAuthorized,
	Text: "Authentication is required: use HTTP Basic with your XMPP account (user@domain and password)."}

// authenticate is middleware requiring HTTP Basic credentials of an account.
// Verified credentials are cached for a short time, so a script calling in a
// loop does not pay for salted password hashing on every request.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		username, password, ok := c.Request().BasicAuth()
		if !ok {
			return errNoCredentials
		}
		user, err := s.userJID(username)
		if err != nil {
			return errNoCredentials
		}
		who, err := s.creds.check(c.Request().Context(), s.accounts, user, password)
		if err != nil {
			return err
		}
		c.Set(callerKey, who)
		return next(c)
	}
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
	cc.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.caller, nil
	}
	err := accounts.VerifyPassword(ctx, user, password)
	switch {
	case errors.Is(err, ErrBadCredentials):
		return caller{}, &adhoc.Error{Condition: stanza.NotAuthorized, Text: "The user name or password is wrong.", Err: err}
	case errors.Is(err, ErrAccountDisabled):
		return caller{}, &adhoc.Error{Condition: stanza.Forbidden, Text: "This account is disabled.", Err: err}
	case err != nil:
		return caller{}, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: "Authentication is not available right now; try again later.", Err: err}
	}
	admin, err := accounts.IsAdmin(ctx, user)
	if err != nil {
		return caller{}, &adhoc.Error{Condition: stanza.ServiceUnavailable, Text: "Authentication is not available right now; try again later.", Err: err}
	}
	who := caller{jid: user.Bare(), admin: admin}
	cc.mu.Lock()
	if len(cc.entries) > 10000 {
		cc.entries = make(map[[sha256.Size]byte]cachedCaller) // bounded: start over
	}
	cc.entries[k] = cachedCaller{caller: who, expires: now.Add(cc.ttl)}
	cc.mu.Unlock()
	return who, nil
}

// Invalidate forgets the cached credentials of user. Call it when the
// user's password changes or the account is disabled or deleted.
func (s *Server) Invalidate(user jid.JID) {
	bare := user.Bare()
	cc := s.creds
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for k, e := range cc.entries {
		if e.jid.Equal(bare) {
			delete(cc.entries, k)
		}
	}
}
