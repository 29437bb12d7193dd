// Package sessman implements adhocd's session manager: the registry of the
// resources that clients have bound (RFC 6120 §7), and the XEP-0133 Service
// Administration commands an administrator runs on them and on the account
// store, above all ending sessions (end-user-session).
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
//
// # XEP-0133 commands
//
// A [Manager] owns the commands as [adhoc.Command] values.
// [Manager.Register] puts them on the component sess-man@<domain> of an
// [adhoc.Registry] and makes the bare domain an alias of it.
// Every command is admin-only; [Manager.IsAdmin] says who is an admin (the
// accounts marked admin in the store, plus the configured JIDs).
// The nodes are [AdminNS] + "#" + the name:
//
//   - end-user-session (§4.5): accountjids, or ejabberd's accountjid, and an
//     optional reason. A bare JID ends every resource of the user, a full JID
//     that resource; the result, made once the sessions are gone, has a
//     Notes line "Operation successful for user <full JID>" per ended
//     resource, or no field when none was online.
//   - add-user (§4.1), delete-user (§4.2), disable-user (§4.3),
//     reenable-user (§4.4), change-user-password (§4.7): the account store.
//     Deleting or disabling ends the users' sessions after the change is
//     committed; several accounts change all together or not at all.
//   - get-user-lastlogin (§4.9), user-stats (§4.10): one account.
//   - get-registered-users-num, get-disabled-users-num, get-online-users-num,
//     get-active-users-num, get-idle-users-num (§4.13 to §4.17): a number,
//     at once, without a form.
//   - get-registered-users-list, get-disabled-users-list,
//     get-online-users-list, get-active-users, get-idle-users (§4.18 to
//     §4.22), and get-online-users (full JIDs of the online resources): a
//     list, limited by max_items.
//   - announce (§4.23): a headline message to every online resource.
//
// A request without fields gets the command's form; a request with fields
// runs the command at once, in one stage or as the second stage of the
// session the form opened.
// An online user is active when one of its sessions sent something within
// [ManagerConfig.ActiveWindow], idle otherwise.
// Failures are [*adhoc.Error] values: bad-request for a JID of another
// domain or fields that do not fit (bad-payload from [adhoc.Form.Validate]),
// item-not-found for an unknown account, conflict for an account that
// exists, internal-server-error when the store fails.
package sessman
