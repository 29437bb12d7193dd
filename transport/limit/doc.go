// Package limit throttles what callers may do too often: failed logins
// (HTTP Basic, API keys, Pusher signatures and SASL alike) and requests per
// caller.
//
// It is a leaf the transports share (the HTTP API and the XMPP listener
// count failed logins in the same table): it imports nothing of adhocd.
//
// # Failed logins
//
// [Failures] counts failed logins within a window (a minute by default) at
// three levels, and refuses a login once one of them is full:
//
//   - per (account, address): 5 a minute. This is what stops someone
//     guessing one account's password from one address.
//   - per address, whatever the account: 20 a minute. It stops one address
//     from guessing many accounts, or probing which accounts exist; API keys,
//     Pusher signatures and SASL exchanges that the client aborts or abandons
//     after the server's challenge count here.
//   - per account, across addresses: 50 a minute, against guessing spread
//     over many addresses.
//
// A successful login remembers its (account, address) pair as known for 30
// days. A login from a known pair skips the per-address and per-account
// limits but not the per-pair one: an attacker who sends wrong passwords for
// an account, even from many addresses, cannot lock its owner out of the
// addresses the owner used before, and the owner's own typos are still
// throttled.
//
// The trade-offs: an address is the IP without the port, so a user who
// shares a NAT address with an attacker, and never logged in from it before,
// is still slowed down with the attacker; an account under distributed
// guessing is locked for new addresses until the window ends.
// Everything is per node and in memory: each node counts on its own, and
// known pairs are forgotten on restart (the owner then meets the plain
// limits until it logs in once more).
// Memory is bounded: past a maximum, expired entries are swept, failure
// counters start over if that is not enough (failing open beats unbounded
// memory), and the oldest known pairs are forgotten.
package limit
