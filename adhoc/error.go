package adhoc

import (
	"context"
	"errors"
	"strings"

	"mellium.im/xmpp/stanza"
)

// Error is a command failure expressed as an RFC 6120 stanza error condition,
// optionally refined by an XEP-0050 "Possible Errors" specific condition.
type Error struct {
	// Condition is the stanza error condition, e.g. stanza.BadRequest.
	Condition stanza.Condition
	// Specific is an XEP-0050 §4.4 condition in the commands namespace, such
	// as "bad-sessionid" or "session-expired"; empty for none.
	Specific string
	// Text is shown to the requester: one sentence, never internals.
	Text string
	// Err is the cause: logged by transports, never serialized.
	Err error
}

// The specific conditions of XEP-0050 §4.4 "Possible Errors".
// Compare with errors.Is; it matches any *Error with the same condition and
// specific condition, whatever its text.
var (
	ErrMalformedAction = &Error{Condition: stanza.BadRequest, Specific: "malformed-action", Text: "The action is not known."}
	ErrBadAction       = &Error{Condition: stanza.BadRequest, Specific: "bad-action", Text: "The action is not allowed at this stage."}
	ErrBadLocale       = &Error{Condition: stanza.BadRequest, Specific: "bad-locale", Text: "The language is not supported."}
	ErrBadPayload      = &Error{Condition: stanza.BadRequest, Specific: "bad-payload", Text: "The submitted form is not valid."}
	ErrBadSessionID    = &Error{Condition: stanza.BadRequest, Specific: "bad-sessionid", Text: "The session is not known; start the command again."}
	ErrSessionExpired  = &Error{Condition: stanza.NotAllowed, Specific: "session-expired", Text: "The session has expired; start the command again."}
)

// Error returns the condition, the specific condition, the text and the
// cause, for logs.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("adhoc: ")
	b.WriteString(string(e.Condition))
	if e.Specific != "" {
		b.WriteString(" (")
		b.WriteString(e.Specific)
		b.WriteString(")")
	}
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	return e.Err
}

// Is reports whether e matches target.
// An *Error target matches when its Condition is empty or equal to e's, and
// its Specific is empty or equal to e's; texts and causes are not compared.
// A stanza.Error target matches on its Condition and Type the same way.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		if t == nil {
			return false
		}
		return (t.Condition == "" || t.Condition == e.Condition) &&
			(t.Specific == "" || t.Specific == e.Specific)
	case stanza.Error:
		return (t.Condition == "" || t.Condition == e.Condition) &&
			(t.Type == "" || t.Type == e.Type())
	}
	return false
}

// Type returns the error type that goes with the condition, per RFC 6120
// §8.3.3 and the table of XEP-0050 §4.4.
func (e *Error) Type() stanza.ErrorType {
	switch e.Condition {
	case stanza.BadRequest, stanza.JIDMalformed, stanza.NotAcceptable,
		stanza.PolicyViolation, stanza.Redirect:
		return stanza.Modify
	case stanza.Forbidden, stanza.NotAuthorized, stanza.RegistrationRequired,
		stanza.SubscriptionRequired:
		return stanza.Auth
	case stanza.ResourceConstraint, stanza.RemoteServerTimeout,
		stanza.RecipientUnavailable, stanza.UnexpectedRequest:
		return stanza.Wait
	}
	// conflict, feature-not-implemented, gone, internal-server-error,
	// item-not-found, not-allowed, remote-server-not-found,
	// service-unavailable, undefined-condition.
	return stanza.Cancel
}

// StanzaError returns e as a mellium stanza error, for in-band answers.
// The specific condition is not part of it: in-band transports add it as a
// child element in the commands namespace.
func (e *Error) StanzaError() stanza.Error {
	se := stanza.Error{Type: e.Type(), Condition: e.Condition}
	if e.Text != "" {
		se.Text = map[string]string{"": e.Text}
	}
	return se
}

// AsError returns the *Error in err's chain.
// A nil err gives nil.
// A context deadline becomes remote-server-timeout with the text "The command
// did not finish in time.", anything else internal-server-error with the text
// "The command failed."; both keep err as Err.
// An *Error without text gets a generic sentence for its condition (the
// original is not modified).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		if e.Text != "" && e.Condition != "" {
			return e
		}
		c := *e
		if c.Condition == "" {
			c.Condition = stanza.InternalServerError
		}
		if c.Text == "" {
			c.Text = defaultText(c.Condition, c.Specific)
		}
		return &c
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Condition: stanza.RemoteServerTimeout, Text: "The command did not finish in time.", Err: err}
	}
	return &Error{Condition: stanza.InternalServerError, Text: "The command failed.", Err: err}
}

// defaultText is the sentence for an *Error that has none.
func defaultText(cond stanza.Condition, specific string) string {
	for _, s := range []*Error{ErrMalformedAction, ErrBadAction, ErrBadLocale, ErrBadPayload, ErrBadSessionID, ErrSessionExpired} {
		if s.Condition == cond && s.Specific == specific {
			return s.Text
		}
	}
	switch cond {
	case stanza.BadRequest:
		return "The request is not valid."
	case stanza.JIDMalformed:
		return "The address is not a valid JID."
	case stanza.NotAuthorized:
		return "Authentication is required."
	case stanza.Forbidden:
		return "You may not do this."
	case stanza.NotAllowed:
		return "This is not allowed."
	case stanza.ItemNotFound:
		return "There is no such item."
	case stanza.Conflict:
		return "The request conflicts with another one."
	case stanza.Gone:
		return "This is gone."
	case stanza.ResourceConstraint:
		return "The server is too busy; try again later."
	case stanza.FeatureNotImplemented:
		return "This is not implemented."
	case stanza.ServiceUnavailable:
		return "The service is not available."
	case stanza.RemoteServerTimeout:
		return "The command did not finish in time."
	}
	return "The command failed."
}
