package limit

import (
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds each table; past it, expired entries are swept, and if
// that is not enough the table starts over (failing open beats unbounded
// memory under a flood of distinct addresses).
const maxKeys = 100_000

// Failures counts authentication failures per key within a window.
// A key that reached its limit is refused until its window ends: an account
// key (AccountKey) after accountMax failures, an address key (AddrKey, which
// many users may share behind NAT) after addressMax.
// It is safe for concurrent use.
type Failures struct {
	accountMax int
	addressMax int
	window     time.Duration
	now        func() time.Time

	mu sync.Mutex
	m  map[string]*failure
}

type failure struct {
	count int
	reset time.Time
}

// Default limits of failed logins a minute: per account, and per remote
// address.
const (
	DefaultAccountFailures = 5
	DefaultAddressFailures = 20
)

// NewDefaultFailures has the default limits over a one-minute window.
func NewDefaultFailures() *Failures {
	return NewFailures(DefaultAccountFailures, DefaultAddressFailures, time.Minute)
}

// NewFailures allows accountMax failures per account and addressMax per
// remote address within window.
func NewFailures(accountMax, addressMax int, window time.Duration) *Failures {
	return &Failures{accountMax: accountMax, addressMax: addressMax, window: window, now: time.Now, m: make(map[string]*failure)}
}

func (f *Failures) limitOf(key string) int {
	if strings.HasPrefix(key, addrPrefix) {
		return f.addressMax
	}
	return f.accountMax
}

// SetClock replaces the clock, for tests.
func (f *Failures) SetClock(now func() time.Time) { f.now = now }

// Check returns how long the caller must wait if any of keys has reached the
// limit, or zero if it may try.
func (f *Failures) Check(keys ...string) time.Duration {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if e := f.m[k]; e != nil && e.count >= f.limitOf(k) && now.Before(e.reset) {
			wait = max(wait, e.reset.Sub(now))
		}
	}
	return wait
}

// Fail records one failure for each of keys.
func (f *Failures) Fail(keys ...string) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) >= maxKeys {
		for k, e := range f.m {
			if !now.Before(e.reset) {
				delete(f.m, k)
			}
		}
		if len(f.m) >= maxKeys {
			f.m = make(map[string]*failure)
		}
	}
	for _, k := range keys {
		e := f.m[k]
		if e == nil || !now.Before(e.reset) {
			e = &failure{reset: now.Add(f.window)}
			f.m[k] = e
		}
		e.count++
	}
}

// Succeed forgets the failures of keys (an account that logged in).
func (f *Failures) Succeed(keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		delete(f.m, k)
	}
}

// AddrKey is the key of a remote address: the IP without the port.
func AddrKey(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return addrPrefix + addr
}

const addrPrefix = "ip:"

// AccountKey is the key of an account.
func AccountKey(bareJID string) string { return "account:" + bareJID }

// Rates limits requests per caller with a token bucket each.
// A zero Rates (rate 0) allows everything.
// It is safe for concurrent use.
type Rates struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewRates allows perSecond requests per caller with bursts of burst; a
// perSecond of 0 disables the limit.
func NewRates(perSecond float64, burst int) *Rates {
	return &Rates{limit: rate.Limit(perSecond), burst: max(burst, 1), m: make(map[string]*rate.Limiter)}
}

// Allow reports whether caller may make a request now, and if not, how long
// until it may.
func (r *Rates) Allow(caller string) (bool, time.Duration) {
	if r == nil || r.limit == 0 {
		return true, 0
	}
	r.mu.Lock()
	l := r.m[caller]
	if l == nil {
		if len(r.m) >= maxKeys {
			r.m = make(map[string]*rate.Limiter)
		}
		l = rate.NewLimiter(r.limit, r.burst)
		r.m[caller] = l
	}
	r.mu.Unlock()
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, d
	}
	return true, 0
}
