// Package c2s implements adhocd's client-to-server XMPP listener (RFC 6120,
// RFC 6121): STARTTLS and direct TLS (XEP-0368), SASL SCRAM-SHA-256,
// SCRAM-SHA-1 and PLAIN, resource binding, routing between local sessions,
// XEP-0199 ping and XEP-0030 disco for the server, and the WebSocket binding
// of RFC 7395.
//
// # Why not mellium's server session
//
// The stream layer is written on encoding/xml rather than on
// mellium.im/xmpp's Session (see ../shared/notes/mellium-server.md): its SASL
// server only does PLAIN, Serve answers IQs that should be forwarded, context
// deadlines do not bound I/O, negotiation breaks on whitespace, and it holds
// buffers that put an idle session over the memory budget. This package keeps
// one decoder and no write buffer per idle session, and uses mellium's jid
// and stream packages for addresses and errors.
//
// # Connections
//
// Each connection has one goroutine, which reads. Before resource binding it
// also writes, synchronously. Once bound, every write goes through a bounded
// queue drained by a goroutine that exists only while the queue is not empty,
// so a slow client never blocks the session that sends to it: it is dropped
// when its queue overflows or a write misses its deadline.
package c2s
