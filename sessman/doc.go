// Package sessman implements adhocd's session manager: the registry of the
// resources that clients have bound (RFC 6120 §7), and the operations an
// administrator runs on them, above all ending sessions (XEP-0133
// end-user-session).
//
// # Registry
//
// The transport binds each connection with [Registry.Bind] once resource
// binding succeeds and unbinds it when the connection is gone. The registry
// never touches sockets: it asks a [Conn] to end itself and waits until the
// connection has unbound.
//
// # Operations
//
// The operations (list, count, end) take plain requests and return
// serialisable results so that a cluster layer can run them on every node and
// merge what comes back.
package sessman
