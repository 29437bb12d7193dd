package adhoc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

// testForm has one field of every type that Validate checks.
var testForm = adhoc.Form{
	Type:  adhoc.FormTypeForm,
	Title: "Test",
	Fields: []adhoc.Field{
		{Type: adhoc.FieldFixed, Values: []string{"A heading"}},
		{Var: "FORM_TYPE", Type: adhoc.FieldHidden, Values: []string{"http://jabber.org/protocol/admin"}},
		{Var: "accountjids", Type: adhoc.FieldJIDMulti, Label: "The Jabber ID(s)", Required: true},
		{Var: "owner", Type: adhoc.FieldJIDSingle},
		{Var: "reason", Type: adhoc.FieldTextSingle},
		{Var: "body", Type: adhoc.FieldTextMulti},
		{Var: "password", Type: adhoc.FieldTextPrivate},
		{Var: "notify", Type: adhoc.FieldBoolean},
		{Var: "max_items", Type: adhoc.FieldListSingle, Options: []adhoc.Option{{Label: "25", Value: "25"}, {Label: "50", Value: "50"}}},
		{Var: "features", Type: adhoc.FieldListMulti, Options: []adhoc.Option{{Value: "a"}, {Value: "b"}}},
		{Var: "free", Type: adhoc.FieldListSingle},
		{Var: "untyped"},
	},
}

func field(name string, values ...string) adhoc.Field {
	return adhoc.Field{Var: name, Values: values}
}

func TestFormValidate(t *testing.T) {
	tests := []struct {
		name         string
		givenFields  []adhoc.Field
		expectValues adhoc.Values
		expectErr    string
	}{
		{
			name:         "seed request",
			givenFields:  []adhoc.Field{field("accountjids", "test@domain.com")},
			expectValues: adhoc.Values{"accountjids": {"test@domain.com"}},
		},
		{
			name: "every type",
			givenFields: []adhoc.Field{
				field("accountjids", "a@example.org", "b@example.org/phone"),
				field("owner", " admin@example.org "),
				field("reason", " spaces kept "),
				field("body", "line 1", "", "line 3"),
				field("password", "secret"),
				field("notify", "true"),
				field("max_items", "50"),
				field("features", "a", "b"),
				field("free", "anything"),
				field("untyped", "x"),
				field("FORM_TYPE", "http://jabber.org/protocol/admin"),
			},
			expectValues: adhoc.Values{
				"accountjids": {"a@example.org", "b@example.org/phone"},
				"owner":       {"admin@example.org"},
				"reason":      {" spaces kept "},
				"body":        {"line 1", "", "line 3"},
				"password":    {"secret"},
				"notify":      {"true"},
				"max_items":   {"50"},
				"features":    {"a", "b"},
				"free":        {"anything"},
				"untyped":     {"x"},
				"FORM_TYPE":   {"http://jabber.org/protocol/admin"},
			},
		},
		{
			name:         "unknown vars ignored",
			givenFields:  []adhoc.Field{field("accountjids", "a@example.org"), field("accountjid", "x@@"), field("", "y")},
			expectValues: adhoc.Values{"accountjids": {"a@example.org"}},
		},
		{
			name:         "empty optional values dropped",
			givenFields:  []adhoc.Field{field("accountjids", "a@example.org", " "), field("notify", ""), field("owner", "")},
			expectValues: adhoc.Values{"accountjids": {"a@example.org"}},
		},
		{
			name:        "required missing",
			givenFields: []adhoc.Field{field("reason", "r")},
			expectErr:   "Field accountjids is required.",
		},
		{
			name:        "required empty",
			givenFields: []adhoc.Field{field("accountjids", "")},
			expectErr:   "Field accountjids is required.",
		},
		{
			name:        "required no values",
			givenFields: []adhoc.Field{field("accountjids")},
			expectErr:   "Field accountjids is required.",
		},
		{
			name:        "bad jid in multi",
			givenFields: []adhoc.Field{field("accountjids", "ok@example.org", "a@b@c")},
			expectErr:   `Field accountjids: "a@b@c" is not a valid JID.`,
		},
		{
			name:        "bad jid single",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("owner", "@example.org")},
			expectErr:   `Field owner: "@example.org" is not a valid JID.`,
		},
		{
			name:        "two values in single field",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("reason", "a", "b")},
			expectErr:   "Field reason takes at most one value.",
		},
		{
			name:        "bad boolean",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("notify", "yes")},
			expectErr:   `Field notify: "yes" is not a boolean (use true, false, 1 or 0).`,
		},
		{
			name:        "option not offered",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("max_items", "7")},
			expectErr:   `Field max_items: "7" is not one of the options.`,
		},
		{
			name:        "multi option not offered",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("features", "a", "c")},
			expectErr:   `Field features: "c" is not one of the options.`,
		},
		{
			name:        "duplicate field",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("accountjids", "b@example.org")},
			expectErr:   "Field accountjids is given more than once.",
		},
		{
			name:        "value too long",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("reason", strings.Repeat("x", adhoc.MaxValueSize+1))},
			expectErr:   "Field reason: a value is longer than 65536 bytes.",
		},
		{
			name:        "too many values",
			givenFields: []adhoc.Field{field("accountjids", make([]string, adhoc.MaxFieldValues+1)...)},
			expectErr:   "Field accountjids has more than 1000 values.",
		},
		{
			name:        "control character",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("reason", "a\x00b")},
			expectErr:   "Field reason: a value contains a character that is not allowed.",
		},
		{
			name:        "invalid utf-8",
			givenFields: []adhoc.Field{field("accountjids", "a@example.org"), field("body", "ok", "\xff")},
			expectErr:   "Field body: a value contains a character that is not allowed.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := testForm.Validate(tc.givenFields)
			if tc.expectErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, adhoc.ErrBadPayload)
				e := adhoc.AsError(err)
				assert.Equal(t, tc.expectErr, e.Text)
				assert.Nil(t, vals)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expectValues, vals)
		})
	}
}

func TestFormValidateNil(t *testing.T) {
	var f *adhoc.Form
	vals, err := f.Validate([]adhoc.Field{field("x", "y")})
	require.NoError(t, err)
	assert.Empty(t, vals)
}

func TestValues(t *testing.T) {
	vals, err := testForm.Validate([]adhoc.Field{
		field("accountjids", "a@example.org", "B@Example.org/Res"),
		field("owner", "admin@example.org"),
		field("notify", "1"),
	})
	require.NoError(t, err)

	assert.True(t, vals.Has("accountjids"))
	assert.False(t, vals.Has("reason"))
	assert.Equal(t, "a@example.org", vals.Get("accountjids"))
	assert.Equal(t, "", vals.Get("reason"))
	assert.Equal(t, []string{"a@example.org", "B@Example.org/Res"}, vals.All("accountjids"))
	assert.True(t, vals.Bool("notify"))
	assert.False(t, vals.Bool("reason"))
	assert.Equal(t, "admin@example.org", vals.JID("owner").String())
	assert.True(t, vals.JID("reason").Equal(jid.JID{}))

	jids := vals.JIDs("accountjids")
	require.Len(t, jids, 2)
	assert.Equal(t, "a@example.org", jids[0].String())
	assert.Equal(t, "b@example.org/Res", jids[1].String(), "jid.Parse case-folds the localpart and domainpart")
	assert.Empty(t, adhoc.Values{"x": {"not a jid@@"}}.JIDs("x"))
}

func TestFieldTypeMulti(t *testing.T) {
	tests := []struct {
		givenType   adhoc.FieldType
		expectMulti bool
	}{
		{adhoc.FieldBoolean, false},
		{adhoc.FieldFixed, false},
		{adhoc.FieldHidden, false},
		{adhoc.FieldJIDMulti, true},
		{adhoc.FieldJIDSingle, false},
		{adhoc.FieldListMulti, true},
		{adhoc.FieldListSingle, false},
		{adhoc.FieldTextMulti, true},
		{adhoc.FieldTextPrivate, false},
		{adhoc.FieldTextSingle, false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.givenType), func(t *testing.T) {
			assert.Equal(t, tc.expectMulti, tc.givenType.Multi())
		})
	}
}

func TestParseAction(t *testing.T) {
	for _, s := range []string{"", "execute", "next", "prev", "complete", "cancel"} {
		a, err := adhoc.ParseAction(s)
		require.NoError(t, err, s)
		assert.Equal(t, adhoc.Action(s), a)
	}
	_, err := adhoc.ParseAction("jump")
	require.Error(t, err)
	assert.ErrorIs(t, err, adhoc.ErrMalformedAction)
	assert.Equal(t, `The action "jump" is not one of execute, next, prev, complete or cancel.`, adhoc.AsError(err).Text)
}

func TestRequestWantsForm(t *testing.T) {
	tests := []struct {
		name       string
		givenReq   adhoc.Request
		expectForm bool
	}{
		{"node only", adhoc.Request{Node: "n"}, true},
		{"execute", adhoc.Request{Node: "n", Action: adhoc.ActionExecute}, true},
		{"fields", adhoc.Request{Node: "n", Fields: []adhoc.Field{field("a", "b")}}, false},
		{"session", adhoc.Request{Node: "n", SessionID: "s"}, false},
		{"complete", adhoc.Request{Node: "n", Action: adhoc.ActionComplete}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.expectForm, tc.givenReq.WantsForm())
		})
	}
}
