package sessman

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/adhocd/adhocd/adhoc"
	"mellium.im/xmpp/jid"
)

// AdminNS is the namespace of XEP-0133 Service Administration; the node of
// each command is AdminNS + "#" + its name, e.g.
// http://jabber.org/protocol/admin#end-user-session.
const AdminNS = "http://jabber.org/protocol/admin"

// Field vars shared by several commands.
const (
	fieldAccountJIDs = "accountjids" // XEP-0133
	fieldAccountJID  = "accountjid"  // XEP-0133 for one account; ejabberd's end-user-session
	fieldPassword    = "password"
	fieldMaxItems    = "max_items"
	fieldNotes       = "Notes" // Tigase's result field
	fieldBlock       = "block" // adhocd: seconds during which the user may not log in again
)

// command is one XEP-0133 command: the form it asks for, and what it does
// with the submitted values.
type command struct {
	info adhoc.Info
	// form is returned on form retrieval; nil when the command takes no input
	// and answers at once, as XEP-0133 does for the numbers of users.
	form *adhoc.Form
	// check is form with accountjids not required, since accountjid may
	// stand in for it; accountTargets checks that one of them is given.
	check *adhoc.Form
	run   func(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error)
	m     *Manager
	// perm is what the command asks of authorize; a command that changes
	// something (perm.changes) is audited, refusals too.
	perm permission
	// action names the command in the audit: adhoc:<node>, unless run
	// writes its own entry under action (audits), as the API key commands
	// do through the audited Accounts methods that the command line uses.
	action string
	audits bool
}

var _ adhoc.Permitter = (*command)(nil)

// adminNode is the node of the XEP-0133 command name.
func adminNode(name string) string { return AdminNS + "#" + name }

// newCommand returns the command node of m, which callers may see and run
// as authorize decides for perm.
func (m *Manager) newCommand(node, human string, perm permission, form *adhoc.Form,
	run func(context.Context, adhoc.Caller, adhoc.Values) ([]adhoc.Field, error)) *command {
	c := &command{
		info:   adhoc.Info{Node: node, Name: human},
		form:   form,
		check:  form,
		run:    run,
		m:      m,
		perm:   perm,
		action: "adhoc:" + node,
	}
	if form != nil {
		check := *form
		check.Fields = slices.Clone(form.Fields)
		for i := range check.Fields {
			if check.Fields[i].Var == fieldAccountJIDs {
				check.Fields[i].Required = false
			}
		}
		c.check = &check
	}
	return c
}

// Info implements adhoc.Command.
func (c *command) Info() adhoc.Info { return c.info }

// Permits implements adhoc.Permitter: the command is listed to the callers
// that may run it on someone.
func (c *command) Permits(caller adhoc.Caller) bool {
	return c.m.authorize(caller, c.perm, nil) == nil
}

// Execute implements adhoc.Command.
// A caller that may not run the command is refused before anything else.
// A request for the form gets it (status executing, action complete);
// anything else is a submission, validated, authorized for the JIDs it
// names and run at once, so that a single request with fields and no
// session completes the command.
// A command that changes something is audited as its action, with the
// JIDs it was given, and so is a submission refused (outcome forbidden).
func (c *command) Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
	wantsForm := c.form != nil && req.WantsForm()
	if err := c.m.authorize(req.Caller, c.perm, nil); err != nil {
		if !wantsForm {
			vals, _ := c.check.Validate(req.Fields) // for the targets it names, if valid
			err = c.refused(ctx, req.Caller, jidNames(vals), err)
		}
		return adhoc.Response{}, err
	}
	if wantsForm {
		return adhoc.Response{
			Status:  adhoc.StatusExecuting,
			Actions: []adhoc.Action{adhoc.ActionComplete},
			Default: adhoc.ActionComplete,
			Form:    c.form,
		}, nil
	}
	vals, err := c.check.Validate(req.Fields)
	if err != nil {
		return adhoc.Response{}, err
	}
	targets := jidNames(vals)
	if err := c.m.authorize(req.Caller, c.perm, append(vals.JIDs(fieldAccountJIDs), vals.JIDs(fieldAccountJID)...)); err != nil {
		return adhoc.Response{}, c.refused(ctx, req.Caller, targets, err)
	}
	fields, err := c.run(ctx, req.Caller, vals)
	if c.perm.changes() && !c.audits {
		if aerr := c.m.accounts.audit(ctx, req.Caller, c.action, targets, outcome(err), ""); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return adhoc.Response{}, err
	}
	return adhoc.Response{
		Status: adhoc.StatusCompleted,
		Form:   &adhoc.Form{Type: adhoc.FormTypeResult, Fields: fields},
	}, nil
}

// jidNames are the JIDs of accountjids and accountjid, as given, for the
// audit.
func jidNames(vals adhoc.Values) []string {
	var names []string
	for _, u := range append(vals.JIDs(fieldAccountJIDs), vals.JIDs(fieldAccountJID)...) {
		names = append(names, u.String())
	}
	return names
}

// refused audits the refusal err of a submission that would have changed
// something, and returns err, or the audit's error.
func (c *command) refused(ctx context.Context, caller adhoc.Caller, targets []string, err error) error {
	if !c.perm.changes() {
		return err
	}
	if aerr := c.m.accounts.audit(ctx, caller, c.action, targets, outcome(err), "refused"); aerr != nil {
		return aerr
	}
	return err
}

// commands returns every command: end-user-session first, then the
// others in the order of XEP-0133 §4, then the API key commands and the
// block command.
func (m *Manager) commands() []*command {
	return append(append(m.commandList(), m.keyCommands()...), m.blockCommands()...)
}

func (m *Manager) commandList() []*command {
	return []*command{
		m.newCommand(adminNode("end-user-session"), "End User Session", endSessions,
			form("Ending a User Session", "Fill out this form to end a user's session.",
				append(accountsFields("The Jabber ID(s) for which to end sessions"),
					adhoc.Field{Var: fieldReason, Type: adhoc.FieldTextSingle, Label: "Reason, sent to the client"},
					adhoc.Field{Var: fieldBlock, Type: adhoc.FieldTextSingle, Label: "Refuse new logins for this many seconds"})...),
			m.endUserSession),
		m.newCommand(adminNode("add-user"), "Add User", changeAccounts,
			form("Adding a User", "Fill out this form to add a user.",
				accountField("The Jabber ID for the account to be added"),
				passwordField("The password for this account"),
				adhoc.Field{Var: fieldPasswordVerify, Type: adhoc.FieldTextPrivate, Label: "Retype password", Required: true},
				adhoc.Field{Var: "email", Type: adhoc.FieldTextSingle, Label: "Email address (not stored)"}),
			m.addUser),
		m.newCommand(adminNode("delete-user"), "Delete User", changeAccounts,
			form("Deleting a User", "Fill out this form to delete a user.", accountsFields("The Jabber ID(s) to delete")...),
			m.changeAccounts(m.accounts.deleteUsers, "Your account was deleted.")),
		m.newCommand(adminNode("disable-user"), "Disable User", changeAccounts,
			form("Disabling a User", "Fill out this form to disable a user.", accountsFields("The Jabber ID(s) to disable")...),
			m.changeAccounts(m.disableUsers, "Your account was disabled.")),
		m.newCommand(adminNode("reenable-user"), "Re-Enable User", changeAccounts,
			form("Re-Enable a User", "Fill out this form to re-enable a user.", accountsFields("The Jabber ID(s) to re-enable")...),
			m.changeAccounts(m.enableUsers, "")),
		m.newCommand(adminNode("change-user-password"), "Change User Password", changeAccounts,
			form("Changing a User Password", "Fill out this form to change a user's password.",
				accountField("The Jabber ID for this account"), passwordField("The password for this account")),
			m.changeUserPassword),
		m.newCommand(adminNode("get-user-lastlogin"), "Get User Last Login Time", readAccounts,
			form("Getting a User's Last Login Time", "Fill out this form to get a user's last login time.",
				accountField("The Jabber ID for which to retrieve the last login time")),
			m.getUserLastLogin),
		m.newCommand(adminNode("user-stats"), "Get User Statistics", readSessions,
			form("Get User Statistics", "Fill out this form to gather user statistics.",
				accountField("The Jabber ID for statistics")),
			m.userStats),
		m.numCommand("get-registered-users-num", readAccounts, "Registered Users", "registeredusersnum", m.countAccounts(false)),
		m.numCommand("get-disabled-users-num", readAccounts, "Disabled Users", "disabledusersnum", m.countAccounts(true)),
		m.numCommand("get-online-users-num", readSessions, "Online Users", "onlineusersnum", m.countOnline),
		m.numCommand("get-active-users-num", readSessions, "Active Users", "activeusersnum", m.countUsers(m.active)),
		m.numCommand("get-idle-users-num", readSessions, "Idle Users", "idleusersnum", m.countUsers(m.idle)),
		m.listCommand("get-registered-users-list", readAccounts, "Registered Users", "registereduserjids", m.listAccounts(false)),
		m.listCommand("get-disabled-users-list", readAccounts, "Disabled Users", "disableduserjids", m.listAccounts(true)),
		m.listCommand("get-online-users-list", readSessions, "Online Users", "onlineuserjids", m.listOnline(nil)),
		m.listCommand("get-online-users", readSessions, "Online Users with Resources", "onlineuserjids", m.listResources),
		m.listCommand("get-active-users", readSessions, "Active Users", "activeuserjids", m.listOnline(m.active)),
		m.listCommand("get-idle-users", readSessions, "Idle Users", "idleuserjids", m.listOnline(m.idle)),
		m.newCommand(adminNode("announce"), "Send Announcement to Online Users", announce,
			form("Making an Announcement", "Fill out this form to make an announcement to all active users of this service.",
				adhoc.Field{Var: fieldSubject, Type: adhoc.FieldTextSingle, Label: "Subject"},
				adhoc.Field{Var: fieldBody, Type: adhoc.FieldTextMulti, Label: "Announcement", Required: true}),
			m.announceCommand),
	}
}

// numCommand is a command without input that answers with a number of
// users in the text-single field v (XEP-0133 §4.13 to §4.17).
func (m *Manager) numCommand(name string, perm permission, what, v string, count func(context.Context, adhoc.Caller) (int, error)) *command {
	return m.newCommand(adminNode(name), "Get Number of "+what, perm, nil, func(ctx context.Context, c adhoc.Caller, _ adhoc.Values) ([]adhoc.Field, error) {
		n, err := count(ctx, c)
		if err != nil {
			return nil, err
		}
		return []adhoc.Field{{
			Var:    v,
			Type:   adhoc.FieldTextSingle,
			Label:  "The number of " + strings.ToLower(what),
			Values: []string{strconv.Itoa(n)},
		}}, nil
	})
}

// maxItems are the options of the max_items field of XEP-0133 §4.18 to
// §4.22; "none" means no limit.
var maxItems = []string{"25", "50", "75", "100", "150", "200", "none"}

// listCommand is a command that asks for max_items and answers with a list
// of JIDs in the jid-multi field v (XEP-0133 §4.18 to §4.22).
// An absent max_items, like none, means no limit.
func (m *Manager) listCommand(name string, perm permission, what, v string, list func(ctx context.Context, c adhoc.Caller, limit int) ([]string, error)) *command {
	opts := make([]adhoc.Option, len(maxItems))
	for i, o := range maxItems {
		opts[i] = adhoc.Option{Label: o, Value: o}
	}
	opts[len(opts)-1].Label = "None"
	f := form("Requesting List of "+what, "Fill out this form to request the "+strings.ToLower(what)+" of this service.",
		adhoc.Field{Var: fieldMaxItems, Type: adhoc.FieldListSingle, Label: "Maximum number of items to show", Options: opts})
	return m.newCommand(adminNode(name), "Get List of "+what, perm, f, func(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
		limit := 0
		if s := vals.Get(fieldMaxItems); s != "" && s != "none" {
			limit, _ = strconv.Atoi(s) // one of the numeric options: Validate checked it
		}
		jids, err := list(ctx, c, limit)
		if err != nil {
			return nil, err
		}
		return []adhoc.Field{{
			Var:    v,
			Type:   adhoc.FieldJIDMulti,
			Label:  "The list of " + strings.ToLower(what),
			Values: jids,
		}}, nil
	})
}

func form(title, instructions string, fields ...adhoc.Field) *adhoc.Form {
	return &adhoc.Form{Type: adhoc.FormTypeForm, Title: title, Instructions: instructions, Fields: fields}
}

// accountsFields are XEP-0133's accountjids and, for ejabberd's clients, a
// single accountjid that may stand in for it.
func accountsFields(label string) []adhoc.Field {
	return []adhoc.Field{
		{Var: fieldAccountJIDs, Type: adhoc.FieldJIDMulti, Label: label, Required: true},
		{Var: fieldAccountJID, Type: adhoc.FieldJIDSingle, Label: "Or a single Jabber ID"},
	}
}

func accountField(label string) adhoc.Field {
	return adhoc.Field{Var: fieldAccountJID, Type: adhoc.FieldJIDSingle, Label: label, Required: true}
}

func passwordField(label string) adhoc.Field {
	return adhoc.Field{Var: fieldPassword, Type: adhoc.FieldTextPrivate, Label: label, Required: true}
}

// accountTargets returns the JIDs of accountjids and accountjid, each once,
// in the order given, checked to be users of this domain; bare drops their
// resourceparts.
// At least one JID is needed.
func (m *Manager) accountTargets(vals adhoc.Values, bare bool) ([]jid.JID, error) {
	var targets []jid.JID
	seen := make(map[string]bool)
	for _, field := range []string{fieldAccountJIDs, fieldAccountJID} {
		for _, addr := range vals.JIDs(field) {
			if err := m.checkUser(field, addr); err != nil {
				return nil, err
			}
			if bare {
				addr = addr.Bare()
			}
			if !seen[addr.String()] {
				seen[addr.String()] = true
				targets = append(targets, addr)
			}
		}
	}
	if len(targets) == 0 {
		return nil, &adhoc.Error{
			Condition: adhoc.ErrBadPayload.Condition,
			Specific:  adhoc.ErrBadPayload.Specific,
			Text:      fmt.Sprintf("Field %s is required (or give one JID in %s).", fieldAccountJIDs, fieldAccountJID),
		}
	}
	return targets, nil
}

// account returns the bare JID of the required field accountjid, checked to
// be a user of this domain.
func (m *Manager) account(vals adhoc.Values) (jid.JID, error) {
	addr := vals.JID(fieldAccountJID)
	if err := m.checkUser(fieldAccountJID, addr); err != nil {
		return jid.JID{}, err
	}
	return addr.Bare(), nil
}

// notes is Tigase's Notes field with one line each, or no field at all for
// no lines.
func notes(lines []string) []adhoc.Field {
	if len(lines) == 0 {
		return nil
	}
	return []adhoc.Field{{Var: fieldNotes, Type: adhoc.FieldTextMulti, Values: lines}}
}

// successNotes has the line "Operation successful for user <jid>" for each
// of users, as Tigase words it.
func successNotes(users []string) []adhoc.Field {
	lines := make([]string, len(users))
	for i, u := range users {
		lines[i] = "Operation successful for user " + u
	}
	return notes(lines)
}
