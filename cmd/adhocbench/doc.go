// Command adhocbench is a load tool for adhocd: it starts `adhocd serve`,
// opens many authenticated direct-TLS (XEP-0368) sessions with SCRAM-SHA-256,
// holds them, and reports the login rate and the server's memory per idle
// session.
//
//	adhocbench --sessions 10000 --concurrency 32 --hold 2m
//
// With --mode end-user-session it logs one session in per user and then
// ends them over HTTP (XEP-0133 end-user-session at /rest/adhoc), with a
// no-op echo handler in the tool as the floor:
//
//	adhocbench --mode end-user-session --users 10000 --callers 16
//
// It provisions the accounts before the server starts, derives each client's
// SCRAM keys before the timed phase (RFC 5802 §5.1: clients cache them), and
// spreads its connections over the source addresses 127.0.0.1..127.0.0.N.
//
// It is a separate program: it imports sessman/store only to provision the
// accounts before the server starts, and otherwise talks to adhocd over
// its sockets, as any client would.
package main
