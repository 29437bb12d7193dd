// Package httpapi is adhocd's HTTP server, built on echo v4: the health
// check, and the RFC 7395 XMPP WebSocket endpoint that the c2s package serves.
// The /rest/adhoc gateway of XEP-0050 commands is mounted here too.
package httpapi
