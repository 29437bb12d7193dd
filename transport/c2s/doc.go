// Package c2s implements adhocd's client-to-server XMPP listener (RFC 6120,
// RFC 6121): STARTTLS and direct TLS (XEP-0368), SASL SCRAM-SHA-256,
// SCRAM-SHA-1 and PLAIN, resource binding, routing between local sessions,
// XEP-0199 ping and XEP-0030 disco for the server, in-band XEP-0050
// commands, and the WebSocket binding of RFC 7395.
//
// # What it owns and what it imports
//
// It owns the connections: their negotiation, their read loop, their write
// queue, and how their streams end; the XML they are sent (one writer,
// xmlWriter, escapes everything); and the session.Conn the registry holds.
// It may import adhoc, codec, sessman/session, transport/limit, mellium's
// leaf packages (jid, stanza), zerolog and gorilla/websocket, and never
// sessman itself: the registry, the accounts and the commands are the
// interfaces declared here (Registry, Accounts, Commands).
//
// # Why not mellium's server session
//
// The stream layer is written on encoding/xml rather than on
// mellium.im/xmpp's Session (see ../shared/notes/mellium-server.md): its SASL
// server only does PLAIN, Serve answers IQs that should be forwarded, context
// deadlines do not bound I/O, negotiation breaks on whitespace, and it holds
// buffers that put an idle session over the memory budget. This package keeps
// one decoder and no write buffer per idle session, and uses mellium's jid
// package for addresses and its stanza package for error conditions.
//
// # Authentication
//
// SCRAM runs against stored keys. An unknown user is given fake keys as
// stable as a real account's: a salt per user and hash, derived from
// Config.FakeSaltKey (the same on every node and across restarts), and
// the real accounts' iteration count; the exchange fails at the proof, as
// a wrong password does. Failed logins are counted with transport/limit:
// a wrong proof or password against the account and the address, and any
// other failure, an <abort/> or a connection abandoned after a challenge
// against the address, so that reading salts without a proof meets the
// address limit. A refused login is answered <temporary-auth-failure/>
// before the server tells any salt.
//
// # Connections
//
// Each connection has one goroutine, which reads. Before resource binding it
// also writes, synchronously. Once bound, every write goes through a bounded
// queue (the outbox) drained by a goroutine that exists only while the queue
// is not empty, so a slow client never blocks the session that sends to it:
// it is dropped when its queue overflows or a write misses its deadline.
//
// # Connections not logged in
//
// From its first byte to its bound resource a connection has
// Config.NegotiationTimeout, a deadline on the socket itself, so that it
// bounds every phase alike: a silent socket, a TLS handshake left half way,
// a stream header never finished, a SASL exchange abandoned after the
// server's challenge, an upgraded WebSocket that never opens its stream.
// Where a stream is open the client is sent <connection-timeout/>; once TLS
// has started (direct TLS, or after <proceed/>) and not finished, the
// socket is simply closed.
//
// At most Config.MaxUnauthenticatedPerAddress connections of one IP address
// may be there at once, counted across the STARTTLS port, direct TLS and
// WebSocket (after the upgrade, under the address the HTTP server names);
// a connection stops counting at SASL success or when it ends. The next one
// is refused without being read: on the STARTTLS port and WebSocket with
// our stream header, <policy-violation/> and a text saying why, which RFC
// 6120 §4.9.1.1 allows before TLS; on direct TLS nothing can be said before
// a handshake, and the handshake is the cost a flood imposes, so the socket
// is closed at once.
//
// # Ending a stream
//
// A stream ends with a stream error, with the client's </stream:stream> or
// <close/>, or with a kick (session.Conn.Kick), which sends a stream error
// and waits KickGrace for the client to close its stream. The connection
// then writes what is queued, sends a WebSocket close frame, a TLS
// close_notify and a TCP FIN, and unbinds the session; only after that does
// it read and drop what the client still sends, until the client closes or
// for KickGrace, because closing with unread input would reset the
// connection and could destroy the client's last unread bytes.
package c2s
