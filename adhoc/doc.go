// Package adhoc implements the responder side of XEP-0050: Ad-Hoc Commands,
// with the data forms of XEP-0004: Data Forms.
//
// It knows nothing of HTTP or XMPP sockets.
// Transports decode a [Request], hand it to a [Registry], and encode the
// [Response] or the [*Error] they get back.
//
// # Commands and the registry
//
// A [Command] describes itself with [Info] and runs with [Command.Execute].
// A [Registry] holds the commands of each component JID (for example
// sess-man@example.org), answers the listing of XEP-0050 §2.2 "Retrieving
// the Command List" with [Registry.Commands], and runs a command with
// [Registry.Execute] (XEP-0050 §2.4 "Executing Commands").
// [Registry.Alias] lets a second address, such as the bare domain, reach the
// commands of a component.
//
// # Sessions
//
// A command that answers with [StatusExecuting] starts a multi-stage session
// (XEP-0050 §3.3 "Session Lifetime"): the registry gives it an unguessable
// sessionid, keeps the command's [Response.State] for the next stage, and
// checks that the next request comes from the same requester, for the same
// node, with an action the previous stage offered (XEP-0050 §3.4
// "Command Actions"); §2.4.2 "Multiple Stages" and §2.4.3 "Canceling"
// describe the exchange.
// Sessions expire after a configurable time and are swept lazily.
//
// # Data forms
//
// [Form] and [Field] model a jabber:x:data form with the field types of
// XEP-0004 §3.3 "Field Types".
// [Form.Validate] checks a submitted form against the form a command asked
// for (XEP-0004 §3.2 "The Field Element", §3.3 "Field Types") and returns
// the [Values].
//
// # Errors
//
// [Error] carries an RFC 6120 §8.3.3 stanza error condition, optionally
// refined by a specific condition of XEP-0050 §4.4 "Possible Errors"
// (malformed-action, bad-action, bad-locale, bad-payload, bad-sessionid,
// session-expired), and a sentence for the requester.
// [AsError] turns any error into one.
//
// # What it owns and imports
//
// It owns the XEP-0050 responder and [Caller], who sends a request, as the
// transports authenticated them: every request carries it to the command,
// and a component's owner can refuse a caller outright with
// [Registry.Guard]. It decides nothing about callers itself but what the
// XEP says: AdminOnly commands are for Caller.Admin, unless a command
// decides itself ([Permitter]).
// It imports nothing of adhocd (only mellium's jid and stanza): it is the
// bottom of the import graph.
package adhoc
