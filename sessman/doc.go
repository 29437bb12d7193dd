// Package sessman implements adhocd's session manager: the session service
// every caller goes through, the accounts service, the registry of the
// resources clients have bound (RFC 6120 §7), and the XEP-0133 Service
// Administration commands, above all end-user-session.
//
// It owns who may do what (authorize.go), blocks, and the audit. It imports
// adhoc, sessman/session and sessman/store, never a transport: transports
// declare the interfaces they use, in the types of package session, and
// cmd/adhocd passes them these services.
//
// # One path
//
// [Manager] implements [session.Sessions] over another implementation of it:
// the [Registry] of this node, or a cluster of nodes. Every end, list, get
// and count of a caller takes that path: the /rest/sessions routes, Pusher,
// and the XEP-0133 commands over HTTP and in-band. On it, once, the caller
// travelling with the request ([adhoc.Caller]) is authorized, a block is
// stored before anyone is kicked, and the action is audited. The Registry
// itself decides nothing: shutdown ends every session of the node through
// it directly.
//
// # Accounts
//
// [Accounts] holds passwords and SCRAM keys, disabled accounts, blocks,
// admins (named in the configuration or flagged in the store) and API keys.
// The XMPP listener and the HTTP API log callers in through it; the commands
// and the command line change accounts through it. A change takes effect at
// once in the process that made it (cached credentials are dropped), and,
// through the store's log of account changes, in a running server when the
// command line made it: [Accounts.Start] watches the log, and the Manager
// ends the sessions of accounts disabled or deleted elsewhere.
//
// # Audit
//
// An admin action is audited once, where it enters sessman, with the same
// fields whatever the wire: an ad-hoc command as adhoc:<node>, an end over
// the session API as end-sessions, a change by the command line (and the
// API key commands) as user-* or apikey-*. A refused change did nothing and
// is audited as such (outcome forbidden); an action is acknowledged only
// once its entry is written.
//
// # XEP-0133 commands
//
// [Manager.Register] puts the commands on the component sess-man@<domain> of
// an [adhoc.Registry] and makes the bare domain an alias of it.
// Every command but end-user-session is admin-only.
// The nodes are [AdminNS] + "#" + the name:
//
//   - end-user-session (§4.5): accountjids, or ejabberd's accountjid, and an
//     optional reason and block. A bare JID ends every resource of the user,
//     a full JID that resource; the result, made once the sessions are gone,
//     has a Notes line "Operation successful for user <full JID>" per ended
//     resource, or no field when none was online.
//   - add-user (§4.1), delete-user (§4.2), disable-user (§4.3),
//     reenable-user (§4.4), change-user-password (§4.7): the account store.
//     Deleting or disabling ends the users' sessions after the change is
//     committed; several accounts change all together or not at all.
//   - get-user-lastlogin (§4.9), user-stats (§4.10): one account; user-stats
//     adds the fields blockeduntil and blockreason, empty without a block.
//   - get-registered-users-num, get-disabled-users-num, get-online-users-num,
//     get-active-users-num, get-idle-users-num (§4.13 to §4.17): a number,
//     at once, without a form.
//   - get-registered-users-list, get-disabled-users-list,
//     get-online-users-list, get-active-users, get-idle-users (§4.18 to
//     §4.22), and get-online-users (full JIDs of the online resources): a
//     list, limited by max_items.
//   - announce (§4.23): a headline message to every online resource.
//
// and [KeysNS]#create, #list and #revoke manage API keys; [BlocksNS]#lift
// lifts blocks.
//
// A request without fields gets the command's form; a request with fields
// runs the command at once, in one stage or as the second stage of the
// session the form opened.
// An online user is active when one of its sessions sent something within
// [ManagerConfig.ActiveWindow], idle otherwise.
// Failures are [*adhoc.Error] values: forbidden for a caller that may not,
// bad-request for a JID of another domain or fields that do not fit
// (bad-payload from [adhoc.Form.Validate]), item-not-found for an unknown
// account, conflict for an account that exists, internal-server-error when
// the store fails.
package sessman
