package limit

import (
	"net"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds each table of failure counters; past it, expired entries
// are swept, and if that is not enough the table starts over (failing open
// beats unbounded memory under a flood of distinct addresses).
const maxKeys = 100_000

// Default limits: failed logins a minute per (account, address), per
// address and per account, and how long and how many known (account,
// address) pairs are remembered.
const (
	DefaultPairFailures    = 5
	DefaultAddressFailures = 20
	DefaultAccountFailures = 50
	DefaultKnownFor        = 30 * 24 * time.Hour
	DefaultMaxKnown        = 100_000
)

// Limits configures Failures. Zero values take the defaults.
type Limits struct {
	Pair     int           // failures per (account, address) within Window; default DefaultPairFailures
	Address  int           // failures per address within Window; default DefaultAddressFailures
	Account  int           // failures per account across addresses within Window; default DefaultAccountFailures
	Window   time.Duration // default one minute
	KnownFor time.Duration // a successful (account, address) is known this long after its last login; default DefaultKnownFor
	MaxKnown int           // known pairs remembered at most; default DefaultMaxKnown
}

// Failures counts failed logins per (account, address), per address and per
// account, and remembers which (account, address) pairs logged in before;
// the package documentation gives the rules.
// Addresses are given as "host:port" or "host"; only the host counts.
// It is safe for concurrent use.
type Failures struct {
	lim Limits

	mu    sync.Mutex
	now   func() time.Time
	m     map[string]*failure  // failure counters by key
	known map[string]time.Time // known pairs: when they are forgotten
}

type failure struct {
	count int
	reset time.Time
}

// NewDefaultFailures has the default limits.
func NewDefaultFailures() *Failures { return NewFailures(Limits{}) }

// NewFailures returns a Failures with the limits l.
func NewFailures(l Limits) *Failures {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Pair, DefaultPairFailures)
	def(&l.Address, DefaultAddressFailures)
	def(&l.Account, DefaultAccountFailures)
	def(&l.MaxKnown, DefaultMaxKnown)
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	if l.KnownFor <= 0 {
		l.KnownFor = DefaultKnownFor
	}
	return &Failures{lim: l, now: time.Now, m: make(map[string]*failure), known: make(map[string]time.Time)}
}

// SetClock replaces the clock, for tests.
func (f *Failures) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// CheckLogin returns how long a login to account from addr must wait, or
// zero if it may try: the pair's limit applies, and unless the pair is
// known, those of the address and the account too.
func (f *Failures) CheckLogin(account, addr string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	host := hostOf(addr)
	wait := f.wait(now, pairKey(account, host), f.lim.Pair)
	if !f.isKnown(now, pairKey(account, host)) {
		wait = max(wait, f.wait(now, addrKey(host), f.lim.Address), f.wait(now, accountKey(account), f.lim.Account))
	}
	return wait
}

// FailLogin records a failed login (a wrong password, or an unknown account)
// to account from addr, against the pair, the address and the account.
func (f *Failures) FailLogin(account, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	host := hostOf(addr)
	f.fail(f.now(), pairKey(account, host), addrKey(host), accountKey(account))
}

// SucceedLogin records a successful login to account from addr: the pair's
// failures are forgotten and the pair is known from now on.
// The failures of the address and of the account stay: they were someone
// else's, perhaps.
func (f *Failures) SucceedLogin(account, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	k := pairKey(account, hostOf(addr))
	delete(f.m, k)
	if _, ok := f.known[k]; !ok && len(f.known) >= f.lim.MaxKnown {
		f.forgetOldest(now)
	}
	f.known[k] = now.Add(f.lim.KnownFor)
}

// CheckAddr returns how long a caller at addr must wait before an attempt
// that names no account (an API key, a signature), or zero if it may try.
func (f *Failures) CheckAddr(addr string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wait(f.now(), addrKey(hostOf(addr)), f.lim.Address)
}

// FailAddr records a failure of addr alone: an unknown API key, a bad
// signature, a SASL exchange aborted or abandoned after the server's
// challenge.
func (f *Failures) FailAddr(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail(f.now(), addrKey(hostOf(addr)))
}

// wait is how long until key's window ends if it reached limit, or zero.
func (f *Failures) wait(now time.Time, key string, limit int) time.Duration {
	if e := f.m[key]; e != nil && e.count >= limit && now.Before(e.reset) {
		return e.reset.Sub(now)
	}
	return 0
}

func (f *Failures) isKnown(now time.Time, pair string) bool {
	until, ok := f.known[pair]
	return ok && now.Before(until)
}

// fail counts one failure for each of keys. The caller holds f.mu.
func (f *Failures) fail(now time.Time, keys ...string) {
	if len(f.m)+len(keys) > maxKeys {
		for k, e := range f.m {
			if !now.Before(e.reset) {
				delete(f.m, k)
			}
		}
		if len(f.m)+len(keys) > maxKeys {
			f.m = make(map[string]*failure)
		}
	}
	for _, k := range keys {
		e := f.m[k]
		if e == nil || !now.Before(e.reset) {
			e = &failure{reset: now.Add(f.lim.Window)}
			f.m[k] = e
		}
		e.count++
	}
}

// forgetOldest makes room among the known pairs: the expired ones go, and
// if that is not enough, the tenth that would expire first. The caller
// holds f.mu.
func (f *Failures) forgetOldest(now time.Time) {
	for k, until := range f.known {
		if !now.Before(until) {
			delete(f.known, k)
		}
	}
	if len(f.known) < f.lim.MaxKnown {
		return
	}
	untils := make([]time.Time, 0, len(f.known))
	for _, until := range f.known {
		untils = append(untils, until)
	}
	slices.SortFunc(untils, time.Time.Compare)
	cutoff := untils[len(untils)/10]
	for k, until := range f.known {
		if !until.After(cutoff) {
			delete(f.known, k)
		}
	}
}

// hostOf is the IP of an address without the port.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// The keys of the failure counters. A bare JID has no NUL, so pair keys
// cannot collide.
func pairKey(account, host string) string { return "pair:" + account + "\x00" + host }
func addrKey(host string) string          { return "ip:" + host }
func accountKey(account string) string    { return "account:" + account }

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
