// Package httpapi is adhocd's HTTP server, built on echo v4: the
// /rest/adhoc gateway of XEP-0050 commands, the session API
// (/rest/sessions, /rest/users/{jid}/sessions, /rest/audit), Pusher's
// terminate_connections, the OpenAPI document, /healthz, and the RFC 7395
// XMPP WebSocket endpoint that the c2s package serves.
//
// # What it owns
//
// The wire: routes, HTTP authentication (Basic, Bearer and Api-Key headers,
// Pusher signatures, each signed request carried out once: [ReplayCache]),
// throttling of failed logins and rate limits per caller, format
// negotiation through codec, body limits, one deadline for every call
// (--command-timeout), and the one table that maps stanza error conditions
// to HTTP statuses (errors.go).
// It decides nothing about who may do what: it authenticates a caller
// ([adhoc.Caller], through [Accounts]) and hands it, with the request, to
// the session service ([session.Sessions]), the audit ([AuditLog]) or the
// command registry ([Commands]), which decide.
//
// # Imports
//
// adhoc, codec, sessman/session and transport/limit; never sessman itself:
// the interfaces it uses are declared here, in the types of
// sessman/session, and cmd/adhocd passes the services that implement them.
package httpapi
