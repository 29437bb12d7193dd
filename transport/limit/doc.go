// Package limit throttles what callers may do too often: failed logins per
// remote address and per account (HTTP Basic, API keys and SASL alike), and
// requests per caller. Limits are per node and kept in memory.
//
// It is a leaf the transports share (the HTTP API and the XMPP listener
// count failed logins in the same table): it imports nothing of adhocd.
package limit
