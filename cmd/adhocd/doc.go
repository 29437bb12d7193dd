// Command adhocd is an XMPP session manager with an HTTP gateway for
// XEP-0050 ad-hoc commands.
//
//	adhocd serve [flags]         run the server
//	adhocd user <cmd> [flags]    manage accounts offline
//	adhocd apikey <cmd> [flags]  manage API keys offline
//	adhocd audit [flags]         print the audit of admin actions
//
// # What it owns
//
// The command owns what the packages leave to it: the flags, the ADHOCD_*
// environment variables and the --config file (flags.go, config.go), the
// construction and wiring of the services (serve.go), and the lifecycle:
// signals, the start of the parts in order and their stop in reverse order
// under a timeout (lifecycle.go).
// It is the one place that connects sessman to the transports, so it may
// import every package of the module; nothing imports it.
package main
