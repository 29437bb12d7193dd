package adhoc_test

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

// greet is a two-stage command: it asks for names, then greets them.
type greet struct{}

var greetForm = &adhoc.Form{
	Type:         adhoc.FormTypeForm,
	Title:        "Greet users",
	Instructions: "Name the users to greet.",
	Fields: []adhoc.Field{
		{Var: "accountjids", Type: adhoc.FieldJIDMulti, Label: "The Jabber ID(s)", Required: true},
	},
}

// Info implements adhoc.Command.
func (greet) Info() adhoc.Info {
	return adhoc.Info{Node: "urn:example:greet", Name: "Greet users", AdminOnly: true}
}

// Execute implements adhoc.Command.
func (greet) Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
	if req.WantsForm() {
		return adhoc.Response{
			Status:  adhoc.StatusExecuting,
			Actions: []adhoc.Action{adhoc.ActionComplete},
			Default: adhoc.ActionComplete,
			Form:    greetForm,
		}, nil
	}
	vals, err := greetForm.Validate(req.Fields)
	if err != nil {
		return adhoc.Response{}, err
	}
	var notes []string
	for _, j := range vals.JIDs("accountjids") {
		notes = append(notes, "Hello "+j.String())
	}
	return adhoc.Response{
		Status: adhoc.StatusCompleted,
		Form: &adhoc.Form{Type: adhoc.FormTypeResult, Fields: []adhoc.Field{
			{Var: "Notes", Type: adhoc.FieldTextMulti, Values: notes},
		}},
	}, nil
}

func ExampleRegistry() {
	sessMan := jid.MustParse("sess-man@example.org")
	reg := adhoc.NewRegistry(adhoc.RegistryConfig{})
	if err := reg.Register(sessMan, greet{}); err != nil {
		fmt.Println(err)
		return
	}
	if err := reg.Alias(jid.MustParse("example.org"), sessMan); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	from := jid.MustParse("admin@example.org/script")

	// A request with only a node asks for the form.
	resp, err := reg.Execute(ctx, adhoc.Request{
		To: jid.MustParse("example.org"), Node: "urn:example:greet", Caller: adhoc.Caller{JID: from, Admin: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, resp.Form.Title, resp.SessionID != "")

	// The next stage submits it within the session.
	resp, err = reg.Execute(ctx, adhoc.Request{
		To: sessMan, Node: "urn:example:greet",
		SessionID: resp.SessionID, Action: adhoc.ActionComplete,
		Fields: []adhoc.Field{{Var: "accountjids", Values: []string{"juliet@example.org", "romeo@example.org"}}},
		Caller: adhoc.Caller{JID: from, Admin: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, resp.Form.Fields[0].Values)

	// A non-admin may not run it.
	_, err = reg.Execute(ctx, adhoc.Request{To: sessMan, Node: "urn:example:greet", Caller: adhoc.Caller{JID: jid.MustParse("juliet@example.org")}})
	fmt.Println(adhoc.AsError(err).Text)
	// Output:
	// executing Greet users true
	// completed [Hello juliet@example.org Hello romeo@example.org]
	// Only administrators may run this command.
}

func ExampleForm_Validate() {
	_, err := greetForm.Validate([]adhoc.Field{{Var: "accountjids", Values: []string{"a@b@c"}}})
	e := adhoc.AsError(err)
	fmt.Println(e.Condition, e.Specific, e.Type())
	fmt.Println(e.Text)
	// Output:
	// bad-request bad-payload modify
	// Field accountjids: "a@b@c" is not a valid JID.
}

func ExampleAsError() {
	err := fmt.Errorf("sessman: end session: %w", errors.New("connection table corrupted"))
	e := adhoc.AsError(err)
	fmt.Println(e.Condition, e.Type())
	fmt.Println(e.Text)
	fmt.Println(errors.Is(adhoc.AsError(adhoc.ErrSessionExpired), adhoc.ErrSessionExpired))
	// Output:
	// internal-server-error cancel
	// The command failed.
	// true
}
