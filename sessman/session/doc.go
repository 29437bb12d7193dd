// Package session is the vocabulary of adhocd's session manager: the values
// that cross packages, and will cross nodes.
//
// It owns the session as the API shows it ([Session]) and the connection a
// transport binds ([Conn]); the requests and results of the session service
// ([Sessions]: end, list, get, count, announce); the audit entry and query;
// the SCRAM keys a login is checked against; the account changes other
// processes learn from; and the one set of login errors
// ([ErrUnknownUser], [ErrBadPassword], [ErrDisabled], [*BlockedError],
// [ErrUnknownKey], [ErrKeyRevoked], [ErrNotServed]).
//
// Requests and results are plain values that round-trip through JSON, so
// that a cluster layer can send a request to every node and merge the
// answers; JIDs travel as strings.
//
// It is a leaf: it imports nothing of adhocd but package adhoc (for
// [adhoc.Caller], who asks). Transports import it and nothing else of
// sessman.
package session
