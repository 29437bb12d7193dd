package sessman

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

// credCache remembers verified passwords for a short time, so that a script
// calling the HTTP API in a loop does not pay for salted password hashing
// on every request. Keys are an HMAC of user and password under a
// per-process secret, so the cache holds nothing a password could be read
// back from.
type credCache struct {
	ttl    time.Duration
	secret []byte
	now    func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedCaller
	// gen counts invalidations: check stores nothing it verified while an
	// invalidate ran, which would otherwise be lost for the TTL.
	gen uint64
}

type cachedCaller struct {
	caller  adhoc.Caller
	expires time.Time
}

// maxCachedCredentials bounds the cache; past it, it starts over.
const maxCachedCredentials = 10000

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

// check returns the cached caller of valid credentials, or verifies them
// and caches the caller it returns.
func (cc *credCache) check(user jid.JID, password string, verify func() (adhoc.Caller, error)) (adhoc.Caller, error) {
	k := cc.key(user, password)
	now := cc.now()
	cc.mu.Lock()
	e, ok := cc.entries[k]
	gen := cc.gen
	cc.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.caller, nil
	}
	who, err := verify()
	if err != nil {
		return adhoc.Caller{}, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return who, nil // invalidated meanwhile: valid for this request only
	}
	if len(cc.entries) >= maxCachedCredentials {
		cc.entries = make(map[[sha256.Size]byte]cachedCaller)
	}
	cc.entries[k] = cachedCaller{caller: who, expires: now.Add(cc.ttl)}
	return who, nil
}

// invalidate forgets the cached credentials of the bare JID user.
func (cc *credCache) invalidate(user string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	for k, e := range cc.entries {
		if e.caller.JID.Bare().String() == user {
			delete(cc.entries, k)
		}
	}
}
