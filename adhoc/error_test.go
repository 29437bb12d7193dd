package adhoc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

func TestErrorIs(t *testing.T) {
	tests := []struct {
		name        string
		givenErr    error
		whenTarget  error
		expectMatch bool
	}{
		{"same sentinel", adhoc.ErrBadSessionID, adhoc.ErrBadSessionID, true},
		{"other text, same specific", &adhoc.Error{Condition: stanza.BadRequest, Specific: "bad-sessionid", Text: "x"}, adhoc.ErrBadSessionID, true},
		{"other specific", &adhoc.Error{Condition: stanza.BadRequest, Specific: "bad-action"}, adhoc.ErrBadSessionID, false},
		{"condition only target", adhoc.ErrBadSessionID, &adhoc.Error{Condition: stanza.BadRequest}, true},
		{"condition mismatch", adhoc.ErrSessionExpired, &adhoc.Error{Condition: stanza.BadRequest}, false},
		{"wrapped", fmt.Errorf("sessman: end: %w", &adhoc.Error{Condition: stanza.Forbidden}), &adhoc.Error{Condition: stanza.Forbidden}, true},
		{"stanza error target", &adhoc.Error{Condition: stanza.Forbidden}, stanza.Error{Condition: stanza.Forbidden}, true},
		{"stanza error target with type", &adhoc.Error{Condition: stanza.Forbidden}, stanza.Error{Condition: stanza.Forbidden, Type: stanza.Cancel}, false},
		{"cause", &adhoc.Error{Condition: stanza.InternalServerError, Err: context.Canceled}, context.Canceled, true},
		{"plain error", errors.New("x"), adhoc.ErrBadPayload, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.expectMatch, errors.Is(tc.givenErr, tc.whenTarget))
		})
	}
}

func TestErrorType(t *testing.T) {
	tests := []struct {
		givenCondition stanza.Condition
		expectType     stanza.ErrorType
	}{
		{stanza.BadRequest, stanza.Modify},
		{stanza.JIDMalformed, stanza.Modify},
		{stanza.Forbidden, stanza.Auth},
		{stanza.NotAuthorized, stanza.Auth},
		{stanza.ItemNotFound, stanza.Cancel},
		{stanza.NotAllowed, stanza.Cancel},
		{stanza.Conflict, stanza.Cancel},
		{stanza.ResourceConstraint, stanza.Wait},
		{stanza.RemoteServerTimeout, stanza.Wait},
		{stanza.ServiceUnavailable, stanza.Cancel},
		{stanza.FeatureNotImplemented, stanza.Cancel},
		{stanza.InternalServerError, stanza.Cancel},
		{stanza.Gone, stanza.Cancel},
	}
	for _, tc := range tests {
		t.Run(string(tc.givenCondition), func(t *testing.T) {
			e := &adhoc.Error{Condition: tc.givenCondition}
			assert.Equal(t, tc.expectType, e.Type())
			assert.Equal(t, tc.expectType, e.StanzaError().Type)
			assert.Equal(t, tc.givenCondition, e.StanzaError().Condition)
		})
	}
}

func TestSentinels(t *testing.T) {
	tests := []struct {
		givenErr        *adhoc.Error
		expectCondition stanza.Condition
		expectSpecific  string
	}{
		{adhoc.ErrMalformedAction, stanza.BadRequest, "malformed-action"},
		{adhoc.ErrBadAction, stanza.BadRequest, "bad-action"},
		{adhoc.ErrBadLocale, stanza.BadRequest, "bad-locale"},
		{adhoc.ErrBadPayload, stanza.BadRequest, "bad-payload"},
		{adhoc.ErrBadSessionID, stanza.BadRequest, "bad-sessionid"},
		{adhoc.ErrSessionExpired, stanza.NotAllowed, "session-expired"},
	}
	for _, tc := range tests {
		t.Run(tc.expectSpecific, func(t *testing.T) {
			assert.Equal(t, tc.expectCondition, tc.givenErr.Condition)
			assert.Equal(t, tc.expectSpecific, tc.givenErr.Specific)
			assert.NotEmpty(t, tc.givenErr.Text)
		})
	}
}

func TestAsError(t *testing.T) {
	cause := errors.New("disk on fire")
	forbidden := &adhoc.Error{Condition: stanza.Forbidden, Text: "Only administrators may run this command."}
	tests := []struct {
		name            string
		givenErr        error
		expectCondition stanza.Condition
		expectText      string
		expectCause     error
	}{
		{"adhoc error", forbidden, stanza.Forbidden, "Only administrators may run this command.", nil},
		{"wrapped adhoc error", fmt.Errorf("sessman: %w", forbidden), stanza.Forbidden, "Only administrators may run this command.", nil},
		{"plain error", cause, stanza.InternalServerError, "The command failed.", cause},
		{"deadline", fmt.Errorf("store: %w", context.DeadlineExceeded), stanza.RemoteServerTimeout, "The command did not finish in time.", context.DeadlineExceeded},
		{"no text", &adhoc.Error{Condition: stanza.ItemNotFound}, stanza.ItemNotFound, "There is no such item.", nil},
		{"sentinel without text", &adhoc.Error{Condition: stanza.NotAllowed, Specific: "session-expired"}, stanza.NotAllowed, adhoc.ErrSessionExpired.Text, nil},
		{"no condition", &adhoc.Error{Text: "Broken."}, stanza.InternalServerError, "Broken.", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := adhoc.AsError(tc.givenErr)
			if assert.NotNil(t, e) {
				assert.Equal(t, tc.expectCondition, e.Condition)
				assert.Equal(t, tc.expectText, e.Text)
				if tc.expectCause != nil {
					assert.ErrorIs(t, e, tc.expectCause)
				}
			}
		})
	}
	assert.Nil(t, adhoc.AsError(nil))
}

func TestAsErrorDoesNotModify(t *testing.T) {
	orig := &adhoc.Error{Condition: stanza.ItemNotFound}
	_ = adhoc.AsError(orig) // only the copy gets a text
	assert.Empty(t, orig.Text)
}

func TestErrorString(t *testing.T) {
	e := &adhoc.Error{Condition: stanza.BadRequest, Specific: "bad-sessionid", Text: "Unknown.", Err: errors.New("cause")}
	assert.Equal(t, "adhoc: bad-request (bad-sessionid): Unknown.: cause", e.Error())
	assert.Equal(t, "adhoc: forbidden", (&adhoc.Error{Condition: stanza.Forbidden}).Error())
}
