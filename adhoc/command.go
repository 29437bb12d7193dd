package adhoc

import (
	"context"
	"fmt"

	"mellium.im/xmpp/jid"
)

// NS is the XML namespace of XEP-0050 ad-hoc commands.
const NS = "http://jabber.org/protocol/commands"

// Command is one ad-hoc command, run through a Registry.
//
// Execute must honour ctx: the registry passes the caller's deadline through
// and does not run the command in a goroutine of its own, so a command that
// ignores ctx can hold its caller past the deadline.
// The registry has already checked that the requester may run the command
// and that a sessionid belongs to the requester; the command checks its
// fields, usually with [Form.Validate].
type Command interface {
	// Info describes the command.
	// It is read on every call and must not change after registration.
	Info() Info
	// Execute runs one stage of the command.
	// An error should be an [*Error]; any other error reaches the requester
	// as internal-server-error with a generic text.
	Execute(ctx context.Context, req Request) (Response, error)
}

// Info describes a command for listings (XEP-0050 §2.2) and for the
// registry's access check.
type Info struct {
	// Node is the command's node, unique on its component, e.g.
	// http://jabber.org/protocol/admin#end-user-session.
	Node string
	// Name is the human name shown in listings.
	Name string
	// AdminOnly hides the command from non-admins and forbids them to run
	// it, unless the command is a Permitter, which decides itself.
	AdminOnly bool
}

// A Permitter is a Command that decides itself who may see and run it, in
// place of Info.AdminOnly: the registry lists it to the callers Permits
// allows, and leaves refusing the others to its Execute, which so may
// record the refusal.
type Permitter interface {
	Command
	Permits(Caller) bool
}

// permits reports whether caller may see and run cmd, as far as the
// registry decides: a Permitter's Execute decides again.
func permits(cmd Command, caller Caller) bool {
	if p, ok := cmd.(Permitter); ok {
		return p.Permits(caller)
	}
	return !cmd.Info().AdminOnly || caller.Admin
}

// Action is what the requester asks a command to do (XEP-0050 §3.4).
type Action string

// The actions of XEP-0050 §3.4.
const (
	ActionExecute  Action = "execute"
	ActionNext     Action = "next"
	ActionPrev     Action = "prev"
	ActionComplete Action = "complete"
	ActionCancel   Action = "cancel"
)

// ParseAction checks that s names an action.
// The empty string is valid and means no action was given.
// An unknown action is an [*Error] that matches [ErrMalformedAction].
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case "", ActionExecute, ActionNext, ActionPrev, ActionComplete, ActionCancel:
		return a, nil
	}
	return "", &Error{
		Condition: ErrMalformedAction.Condition,
		Specific:  ErrMalformedAction.Specific,
		Text:      fmt.Sprintf("The action %q is not one of execute, next, prev, complete or cancel.", s),
	}
}

// Status is the state of a command session after a response (XEP-0050 §4.1).
type Status string

// The statuses of XEP-0050 §4.1.
const (
	StatusExecuting Status = "executing"
	StatusCompleted Status = "completed"
	StatusCanceled  Status = "canceled"
)

// Note types of XEP-0050 §4.3.
const (
	NoteInfo  = "info"
	NoteWarn  = "warn"
	NoteError = "error"
)

// Note is a message to the requester that comes with a response (XEP-0050
// §4.3).
type Note struct {
	// Type is NoteInfo, NoteWarn or NoteError; empty means NoteInfo.
	Type string
	// Text is plain text.
	Text string
}

// Request is one stage of a command as the requester sent it.
type Request struct {
	// To is the component JID the request was addressed to.
	To jid.JID
	// Caller is who sends the request; the registry keys multi-stage
	// sessions by the bare Caller.JID and offers AdminOnly commands to
	// Caller.Admin only (a Permitter decides itself).
	Caller Caller
	// Node names the command.
	Node string
	// SessionID is empty on the first stage.
	SessionID string
	// Action is empty when the requester gave none.
	// Registry.Execute replaces it before calling the command, see there.
	Action Action
	// Fields are the submitted fields; only Var and Values are meaningful.
	Fields []Field
	// Lang is the requester's language tag (xml:lang), if any.
	Lang string
	// State is what the command kept in Response.State at the previous stage
	// of this session; nil on the first stage.
	State any
}

// WantsForm reports whether the request asks for the command's form: no
// fields, no sessionid and no action other than execute.
func (r Request) WantsForm() bool {
	return len(r.Fields) == 0 && r.SessionID == "" && (r.Action == "" || r.Action == ActionExecute)
}

// Response is what a command answers to one stage.
type Response struct {
	// Node names the command; the registry fills it in.
	Node string
	// SessionID is set by the registry for multi-stage sessions.
	SessionID string
	// Status is empty or StatusCompleted for a finished command,
	// StatusExecuting when the command expects another stage.
	Status Status
	// Actions are the actions the requester may take next (XEP-0050 §4.2);
	// only meaningful with StatusExecuting.
	Actions []Action
	// Default is the action that execute stands for at the next stage.
	Default Action
	// Form is the form to fill (type form) or the result (type result).
	Form *Form
	// Notes are messages to the requester.
	Notes []Note
	// State is kept by the registry for the next stage when Status is
	// StatusExecuting, and handed back in Request.State.
	// It never leaves the process.
	State any
}
