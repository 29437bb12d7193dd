package sessman_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

var allNodes = []string{
	"end-user-session", "add-user", "delete-user", "disable-user", "reenable-user", "change-user-password",
	"get-user-lastlogin", "user-stats",
	"get-registered-users-num", "get-disabled-users-num", "get-online-users-num", "get-active-users-num", "get-idle-users-num",
	"get-registered-users-list", "get-disabled-users-list", "get-online-users-list", "get-online-users",
	"get-active-users", "get-idle-users", "announce",
}

func TestRegisterListsEveryCommandAtBothAddresses(t *testing.T) {
	e := newEnv(t)
	for _, comp := range []string{"sess-man@localhost", "localhost"} {
		infos, err := e.cmds.Commands(jid.MustParse(comp), adminCaller)
		require.NoError(t, err)
		var nodes []string
		for _, info := range infos {
			nodes = append(nodes, info.Node)
			assert.NotEmpty(t, info.Name, info.Node)
		}
		var want []string
		for _, n := range allNodes {
			want = append(want, node(n))
		}
		want = append(want, sessman.KeysNS+"#create", sessman.KeysNS+"#list", sessman.KeysNS+"#revoke", sessman.BlocksNS+"#lift")
		assert.Equal(t, want, nodes, comp)

		selfService, err := e.cmds.Commands(jid.MustParse(comp), adhoc.Caller{JID: jid.MustParse("alice@localhost"), Auth: adhoc.AuthBasic})
		require.NoError(t, err)
		require.Len(t, selfService, 1, "non-admins see only what they may run on themselves")
		assert.Equal(t, node("end-user-session"), selfService[0].Node)

		sessionsOnly := []string{"user-stats", "get-online-users-num", "get-active-users-num", "get-idle-users-num",
			"get-online-users-list", "get-online-users", "get-active-users", "get-idle-users"}
		for _, tc := range []struct {
			caller adhoc.Caller
			want   []string
		}{
			{keyCaller, append(append([]string{"end-user-session"}, sessionsOnly...), sessman.BlocksNS+"#lift")},
			{readKeyCaller, sessionsOnly},
		} {
			infos, err := e.cmds.Commands(jid.MustParse(comp), tc.caller)
			require.NoError(t, err)
			var got []string
			for _, info := range infos {
				got = append(got, strings.TrimPrefix(info.Node, sessman.AdminNS+"#"))
			}
			assert.Equal(t, tc.want, got, "keys see the session commands, no account's or key's: %s", tc.caller.Name)
		}
	}

	assert.Error(t, sessman.NewManager(sessman.ManagerConfig{Domain: "a@b@c"}, e.reg, e.accounts, zerolog.Nop()).Register(e.cmds))
	assert.Error(t, sessman.NewManager(sessman.ManagerConfig{Domain: "user@localhost"}, e.reg, e.accounts, zerolog.Nop()).Register(e.cmds))
	assert.Error(t, e.mgr.Register(e.cmds), "registered twice")
}

func TestNonAdminIsForbidden(t *testing.T) {
	e := newEnv(t)
	alice := e.bind(t, "alice@localhost/phone", 0)
	for _, name := range allNodes {
		t.Run(name, func(t *testing.T) {
			_, err := e.cmds.Execute(t.Context(), adhoc.Request{
				To: jid.MustParse("localhost"), Node: node(name),
				Fields: []adhoc.Field{field("accountjids", "bob@localhost"), field("body", "hi")},
				Caller: adhoc.Caller{JID: jid.MustParse("alice@localhost/phone"), Auth: adhoc.AuthXMPP},
			})
			assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden})
		})
	}
	assert.Empty(t, alice.kicked())
	assert.Empty(t, alice.received())
}

func TestFormRetrieval(t *testing.T) {
	tests := []struct {
		name           string
		expectTitle    string
		expectFields   []string // vars in order
		expectRequired []string
	}{
		{"end-user-session", "Ending a User Session", []string{"accountjids", "accountjid", "reason", "block"}, []string{"accountjids"}},
		{"add-user", "Adding a User", []string{"accountjid", "password", "password-verify", "email"}, []string{"accountjid", "password", "password-verify"}},
		{"delete-user", "Deleting a User", []string{"accountjids", "accountjid"}, []string{"accountjids"}},
		{"disable-user", "Disabling a User", []string{"accountjids", "accountjid"}, []string{"accountjids"}},
		{"reenable-user", "Re-Enable a User", []string{"accountjids", "accountjid"}, []string{"accountjids"}},
		{"change-user-password", "Changing a User Password", []string{"accountjid", "password"}, []string{"accountjid", "password"}},
		{"get-user-lastlogin", "Getting a User's Last Login Time", []string{"accountjid"}, []string{"accountjid"}},
		{"user-stats", "Get User Statistics", []string{"accountjid"}, []string{"accountjid"}},
		{"get-registered-users-list", "Requesting List of Registered Users", []string{"max_items"}, nil},
		{"get-disabled-users-list", "Requesting List of Disabled Users", []string{"max_items"}, nil},
		{"get-online-users-list", "Requesting List of Online Users", []string{"max_items"}, nil},
		{"get-online-users", "Requesting List of Online Users with Resources", []string{"max_items"}, nil},
		{"get-active-users", "Requesting List of Active Users", []string{"max_items"}, nil},
		{"get-idle-users", "Requesting List of Idle Users", []string{"max_items"}, nil},
		{"announce", "Making an Announcement", []string{"subject", "body"}, []string{"body"}},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.run(t, tc.name)
			require.NoError(t, err)
			assert.Equal(t, adhoc.StatusExecuting, resp.Status)
			assert.NotEmpty(t, resp.SessionID)
			assert.Equal(t, []adhoc.Action{adhoc.ActionComplete}, resp.Actions)
			require.NotNil(t, resp.Form)
			assert.Equal(t, adhoc.FormTypeForm, resp.Form.Type)
			assert.Equal(t, tc.expectTitle, resp.Form.Title)
			assert.NotEmpty(t, resp.Form.Instructions)
			var vars, required []string
			for _, f := range resp.Form.Fields {
				vars = append(vars, f.Var)
				if f.Required {
					required = append(required, f.Var)
				}
				assert.NotEmpty(t, f.Type, f.Var)
				assert.NotEmpty(t, f.Label, f.Var)
			}
			assert.Equal(t, tc.expectFields, vars)
			assert.Equal(t, tc.expectRequired, required)
		})
	}

	t.Run("max_items options", func(t *testing.T) {
		resp, err := e.run(t, "get-online-users-list")
		require.NoError(t, err)
		mi := resp.Form.Fields[0]
		assert.Equal(t, adhoc.FieldListSingle, mi.Type)
		var values []string
		for _, o := range mi.Options {
			values = append(values, o.Value)
		}
		assert.Equal(t, []string{"25", "50", "75", "100", "150", "200", "none"}, values)
	})

	t.Run("submitted within the session", func(t *testing.T) {
		bob := e.bind(t, "bob@localhost/web", 0)
		from := jid.MustParse("admin@localhost/other")
		resp, err := e.cmds.Execute(t.Context(), adhoc.Request{To: jid.MustParse("localhost"), Node: node("end-user-session"), Caller: adhoc.Caller{JID: from, Auth: adhoc.AuthXMPP, Admin: true}})
		require.NoError(t, err)
		resp, err = e.cmds.Execute(t.Context(), adhoc.Request{
			To: jid.MustParse("localhost"), Node: node("end-user-session"),
			SessionID: resp.SessionID, Fields: []adhoc.Field{field("accountjids", "bob@localhost")}, Caller: adhoc.Caller{JID: from, Auth: adhoc.AuthXMPP, Admin: true},
		})
		require.NoError(t, err)
		assert.Equal(t, adhoc.StatusCompleted, resp.Status)
		assert.Equal(t, notesOf("Operation successful for user bob@localhost/web"), shapes(resp.Form.Fields))
		assert.Len(t, bob.kicked(), 1)
	})
}

func TestResultShapes(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "alice@localhost", "bob@localhost", "carol@localhost", "dave@localhost")
	require.NoError(t, e.db.SetDisabled(t.Context(), jid.MustParse("carol@localhost"), true))
	e.bind(t, "alice@localhost/phone", 0)
	e.bind(t, "alice@localhost/laptop", time.Hour)
	e.bind(t, "bob@localhost/web", time.Hour)
	login := time.Date(2003, 12, 19, 17, 58, 35, 0, time.UTC)
	require.NoError(t, e.db.RecordLogin(t.Context(), jid.MustParse("bob@localhost"), login))

	const (
		single = adhoc.FieldTextSingle
		multi  = adhoc.FieldTextMulti
		jids   = adhoc.FieldJIDMulti
	)
	tests := []struct {
		name         string
		givenFields  []adhoc.Field
		expectFields []shape
	}{
		{"get-registered-users-num", nil, []shape{{"registeredusersnum", single, []string{"5"}}}},
		{"get-disabled-users-num", nil, []shape{{"disabledusersnum", single, []string{"1"}}}},
		{"get-online-users-num", nil, []shape{{"onlineusersnum", single, []string{"2"}}}},
		{"get-active-users-num", nil, []shape{{"activeusersnum", single, []string{"1"}}}},
		{"get-idle-users-num", nil, []shape{{"idleusersnum", single, []string{"1"}}}},
		{"get-registered-users-list", []adhoc.Field{field("max_items", "none")}, []shape{{"registereduserjids", jids,
			[]string{"admin@localhost", "alice@localhost", "bob@localhost", "carol@localhost", "dave@localhost"}}}},
		{"get-disabled-users-list", []adhoc.Field{field("max_items", "25")}, []shape{{"disableduserjids", jids, []string{"carol@localhost"}}}},
		{"get-online-users-list", []adhoc.Field{field("max_items", "25")}, []shape{{"onlineuserjids", jids, []string{"alice@localhost", "bob@localhost"}}}},
		{"get-online-users", []adhoc.Field{field("max_items", "none")}, []shape{{"onlineuserjids", jids,
			[]string{"alice@localhost/laptop", "alice@localhost/phone", "bob@localhost/web"}}}},
		{"get-active-users", []adhoc.Field{field("max_items", "50")}, []shape{{"activeuserjids", jids, []string{"alice@localhost"}}}},
		{"get-idle-users", []adhoc.Field{field("max_items", "50")}, []shape{{"idleuserjids", jids, []string{"bob@localhost"}}}},
		{"get-user-lastlogin", []adhoc.Field{field("accountjid", "bob@localhost")}, []shape{
			{"accountjid", adhoc.FieldJIDSingle, []string{"bob@localhost"}},
			{"lastlogin", single, []string{"2003-12-19T17:58:35Z"}},
		}},
		{"get-user-lastlogin", []adhoc.Field{field("accountjid", "dave@localhost/any")}, []shape{
			{"accountjid", adhoc.FieldJIDSingle, []string{"dave@localhost"}},
			{"lastlogin", single, nil},
		}},
		{"user-stats", []adhoc.Field{field("accountjid", "alice@localhost")}, []shape{
			{"accountjid", adhoc.FieldJIDSingle, []string{"alice@localhost"}},
			{"rostersize", single, []string{"0"}},
			{"onlineresources", multi, []string{"laptop", "phone"}},
			{"ipaddresses", multi, []string{"192.0.2.2", "192.0.2.1"}},
			{"logintimes", multi, []string{"2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"}},
			{"blockeduntil", single, nil},
			{"blockreason", single, nil},
		}},
		{"user-stats", []adhoc.Field{field("accountjid", "dave@localhost")}, []shape{
			{"accountjid", adhoc.FieldJIDSingle, []string{"dave@localhost"}},
			{"rostersize", single, []string{"0"}},
			{"onlineresources", multi, nil},
			{"ipaddresses", multi, nil},
			{"logintimes", multi, nil},
			{"blockeduntil", single, nil},
			{"blockreason", single, nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fields := e.result(t, tc.name, tc.givenFields...)
			assert.Equal(t, tc.expectFields, shapes(fields))
			for _, f := range fields {
				assert.NotEmpty(t, f.Label, f.Var)
			}
		})
	}

	t.Run("numbers answer at once", func(t *testing.T) {
		resp, err := e.run(t, "get-online-users-num")
		require.NoError(t, err)
		assert.Equal(t, adhoc.StatusCompleted, resp.Status)
		assert.Empty(t, resp.SessionID)
	})
	t.Run("no max_items lists all", func(t *testing.T) {
		resp, err := e.cmds.Execute(t.Context(), adhoc.Request{
			To: sessManJID, Node: node("get-idle-users"), Action: adhoc.ActionComplete, Caller: adminCaller,
		})
		require.NoError(t, err)
		assert.Equal(t, []shape{{"idleuserjids", jids, []string{"bob@localhost"}}}, shapes(resp.Form.Fields))
	})
}

func TestMaxItems(t *testing.T) {
	e := newEnv(t)
	for i := range 30 {
		u := fmt.Sprintf("u%02d@localhost", i)
		e.addUsers(t, u)
		e.bind(t, u+"/r", 0)
	}
	tests := []struct {
		name        string
		givenMax    string
		expectCount int
		expectLast  string
	}{
		{"get-online-users-list", "25", 25, "u24@localhost"},
		{"get-online-users-list", "none", 30, "u29@localhost"},
		{"get-online-users", "25", 25, "u24@localhost/r"},
		{"get-active-users", "25", 25, "u24@localhost"},
		{"get-registered-users-list", "25", 25, "u23@localhost"}, // admin@localhost comes first
		{"get-registered-users-list", "50", 31, "u29@localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" "+tc.givenMax, func(t *testing.T) {
			fields := e.result(t, tc.name, field("max_items", tc.givenMax))
			require.Len(t, fields, 1)
			require.Len(t, fields[0].Values, tc.expectCount)
			assert.Equal(t, tc.expectLast, fields[0].Values[tc.expectCount-1])
		})
	}
	_, err := e.run(t, "get-online-users-list", field("max_items", "10"))
	assert.ErrorIs(t, err, adhoc.ErrBadPayload, "not an option")
}

func TestEndUserSession(t *testing.T) {
	tests := []struct {
		name         string
		givenFields  []adhoc.Field
		expectNotes  []string // nil: a result without fields
		expectOnline []string
		expectReason string
	}{
		{
			name:         "bare JID ends every resource",
			givenFields:  []adhoc.Field{field("accountjids", "alice@localhost")},
			expectNotes:  []string{"Operation successful for user alice@localhost/laptop", "Operation successful for user alice@localhost/phone"},
			expectOnline: []string{"bob@localhost/web", "carol@localhost/desk"},
			expectReason: session.DefaultEndReason,
		},
		{
			name:         "full JID ends one resource, with a reason",
			givenFields:  []adhoc.Field{field("accountjids", "alice@localhost/phone"), field("reason", "Maintenance.")},
			expectNotes:  []string{"Operation successful for user alice@localhost/phone"},
			expectOnline: []string{"alice@localhost/laptop", "bob@localhost/web", "carol@localhost/desk"},
			expectReason: "Maintenance.",
		},
		{
			name:         "several JIDs",
			givenFields:  []adhoc.Field{field("accountjids", "carol@localhost", "alice@localhost/laptop", "nobody@localhost")},
			expectNotes:  []string{"Operation successful for user alice@localhost/laptop", "Operation successful for user carol@localhost/desk"},
			expectOnline: []string{"alice@localhost/phone", "bob@localhost/web"},
			expectReason: session.DefaultEndReason,
		},
		{
			name:         "ejabberd's accountjid",
			givenFields:  []adhoc.Field{field("accountjid", "bob@localhost")},
			expectNotes:  []string{"Operation successful for user bob@localhost/web"},
			expectOnline: []string{"alice@localhost/laptop", "alice@localhost/phone", "carol@localhost/desk"},
			expectReason: session.DefaultEndReason,
		},
		{
			name:         "accountjids and accountjid",
			givenFields:  []adhoc.Field{field("accountjids", "bob@localhost"), field("accountjid", "carol@localhost")},
			expectNotes:  []string{"Operation successful for user bob@localhost/web", "Operation successful for user carol@localhost/desk"},
			expectOnline: []string{"alice@localhost/laptop", "alice@localhost/phone"},
			expectReason: session.DefaultEndReason,
		},
		{
			name:         "no session matched",
			givenFields:  []adhoc.Field{field("accountjids", "nobody@localhost", "alice@localhost/tablet")},
			expectOnline: []string{"alice@localhost/laptop", "alice@localhost/phone", "bob@localhost/web", "carol@localhost/desk"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var clients []*client
			for _, addr := range []string{"alice@localhost/phone", "alice@localhost/laptop", "bob@localhost/web", "carol@localhost/desk"} {
				clients = append(clients, e.bind(t, addr, 0))
			}

			fields := e.result(t, "end-user-session", tc.givenFields...)
			if tc.expectNotes == nil {
				assert.Empty(t, fields)
			} else {
				assert.Equal(t, notesOf(tc.expectNotes...), shapes(fields))
			}
			assert.Equal(t, tc.expectOnline, e.online(t), "the ended sessions are gone when the reply is made")
			for _, c := range clients {
				if _, online := e.reg.Lookup(c.addr); online {
					assert.Empty(t, c.kicked(), c.addr.String())
				} else {
					assert.Equal(t, []string{"policy-violation: " + tc.expectReason}, c.kicked(), c.addr.String())
				}
			}
		})
	}
}

func TestEndUserSessionRejects(t *testing.T) {
	tests := []struct {
		name          string
		givenFields   []adhoc.Field
		expectErr     error
		expectText    string
		expectContain string
	}{
		{"no JID", []adhoc.Field{field("reason", "Spam.")}, adhoc.ErrBadPayload, "Field accountjids is required (or give one JID in accountjid).", ""},
		{"empty JID", []adhoc.Field{field("accountjids", " ")}, adhoc.ErrBadPayload, "", "accountjids is required"},
		{"malformed JID", []adhoc.Field{field("accountjids", "alice@localhost", "a@b@c")}, adhoc.ErrBadPayload, "", `Field accountjids: "a@b@c" is not a valid JID.`},
		{"malformed accountjid", []adhoc.Field{field("accountjid", "@localhost")}, adhoc.ErrBadPayload, "", "Field accountjid:"},
		{"two accountjid", []adhoc.Field{field("accountjid", "alice@localhost", "bob@localhost")}, adhoc.ErrBadPayload, "", "accountjid takes at most one value"},
		{"another domain", []adhoc.Field{field("accountjids", "alice@localhost", "mallory@example.org")},
			&adhoc.Error{Condition: stanza.BadRequest}, "Field accountjids: mallory@example.org is not a user of localhost.", ""},
		{"a domain", []adhoc.Field{field("accountjid", "localhost")},
			&adhoc.Error{Condition: stanza.BadRequest}, "", "localhost is not a user JID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.bind(t, "alice@localhost/phone", 0)
			_, err := e.run(t, "end-user-session", tc.givenFields...)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.expectErr)
			ae := adhoc.AsError(err)
			if tc.expectText != "" {
				assert.Equal(t, tc.expectText, ae.Text)
			}
			assert.Contains(t, ae.Text, tc.expectContain)
			assert.Empty(t, alice.kicked(), "nothing ended")
		})
	}
}

func TestDisableUserEndsSessionsAndRefusesLogin(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "alice@localhost", "bob@localhost")
	phone := e.bind(t, "alice@localhost/phone", 0)
	e.bind(t, "alice@localhost/laptop", 0)
	bob := e.bind(t, "bob@localhost/web", 0)
	alice := jid.MustParse("alice@localhost")
	_, err := e.accounts.Login(t.Context(), alice, "pw")
	require.NoError(t, err, "cached from now on")

	fields := e.result(t, "disable-user", field("accountjids", "alice@localhost/phone"))
	assert.Equal(t, notesOf("Operation successful for user alice@localhost"), shapes(fields))
	assert.Equal(t, []string{"bob@localhost/web"}, e.online(t), "every session of alice ended")
	assert.Equal(t, []string{"policy-violation: Your account was disabled."}, phone.kicked())
	assert.Empty(t, bob.kicked())
	assert.ErrorIs(t, e.db.VerifyPassword(t.Context(), alice, "pw"), session.ErrDisabled)
	_, err = e.accounts.Login(t.Context(), alice, "pw")
	assert.ErrorIs(t, err, session.ErrDisabled, "the cached password is forgotten")
	assert.Equal(t, []shape{{"disableduserjids", adhoc.FieldJIDMulti, []string{"alice@localhost"}}},
		shapes(e.result(t, "get-disabled-users-list", field("max_items", "none"))))

	fields = e.result(t, "reenable-user", field("accountjid", "alice@localhost"))
	assert.Equal(t, notesOf("Operation successful for user alice@localhost"), shapes(fields))
	assert.NoError(t, e.db.VerifyPassword(t.Context(), alice, "pw"))
	_, err = e.accounts.Login(t.Context(), alice, "pw")
	assert.NoError(t, err)
}

func TestAccountCommandsChangeAllOrNothing(t *testing.T) {
	for _, name := range []string{"delete-user", "disable-user", "reenable-user"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.addUsers(t, "alice@localhost")
			phone := e.bind(t, "alice@localhost/phone", 0)
			_, err := e.run(t, name, field("accountjids", "alice@localhost", "nobody@localhost"))
			require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound})
			assert.Equal(t, "There is no account nobody@localhost.", adhoc.AsError(err).Text)
			assert.NoError(t, e.db.VerifyPassword(t.Context(), jid.MustParse("alice@localhost"), "pw"), "alice unchanged")
			assert.Empty(t, phone.kicked())

			_, err = e.run(t, name, field("accountjids", "alice@example.org"))
			assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest})
		})
	}
}

func TestDeleteUser(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "alice@localhost", "bob@localhost", "carol@localhost")
	phone := e.bind(t, "alice@localhost/phone", 0)
	e.bind(t, "carol@localhost/desk", 0)

	fields := e.result(t, "delete-user", field("accountjids", "alice@localhost", "bob@localhost"))
	assert.Equal(t, notesOf("Operation successful for user alice@localhost", "Operation successful for user bob@localhost"), shapes(fields))
	assert.Equal(t, []string{"carol@localhost/desk"}, e.online(t))
	assert.Equal(t, []string{"policy-violation: Your account was deleted."}, phone.kicked())
	assert.ErrorIs(t, e.db.VerifyPassword(t.Context(), jid.MustParse("alice@localhost"), "pw"), session.ErrUnknownUser)
	assert.Equal(t, []shape{{"registeredusersnum", adhoc.FieldTextSingle, []string{"2"}}}, shapes(e.result(t, "get-registered-users-num")))
}

func TestAddUser(t *testing.T) {
	tests := []struct {
		name       string
		givenJID   string
		givenPw    string
		givenPwVer string
		expectErr  error
		expectText string
	}{
		{"created", "dave@localhost", "s3cret", "s3cret", nil, ""},
		{"resource dropped", "dave@localhost/phone", "s3cret", "s3cret", nil, ""},
		{"exists", "alice@localhost", "s3cret", "s3cret", &adhoc.Error{Condition: stanza.Conflict}, "The account alice@localhost already exists."},
		{"passwords differ", "dave@localhost", "s3cret", "secret", &adhoc.Error{Condition: stanza.BadRequest}, "Fields password and password-verify do not match."},
		{"no password", "dave@localhost", "", "", adhoc.ErrBadPayload, "Field password is required."},
		{"another domain", "dave@example.org", "s3cret", "s3cret", &adhoc.Error{Condition: stanza.BadRequest}, "Field accountjid: dave@example.org is not a user of localhost."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addUsers(t, "alice@localhost")
			fields, err := e.run(t, "add-user", field("accountjid", tc.givenJID), field("password", tc.givenPw),
				field("password-verify", tc.givenPwVer), field("email", "dave@example.net"))
			if tc.expectErr != nil {
				require.ErrorIs(t, err, tc.expectErr)
				if tc.expectText != "" {
					assert.Equal(t, tc.expectText, adhoc.AsError(err).Text)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, notesOf("Operation successful for user dave@localhost"), shapes(fields.Form.Fields))
			assert.NoError(t, e.db.VerifyPassword(t.Context(), jid.MustParse("dave@localhost"), tc.givenPw))
		})
	}
}

func TestPasswordTooLongForTheStore(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "alice@localhost")
	pw := fmt.Sprintf("%01025d", 0) // valid text, longer than the store takes
	_, err := e.run(t, "change-user-password", field("accountjid", "alice@localhost"), field("password", pw))
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest})
	assert.Equal(t, "Field password: a password is 1 to 1024 bytes long.", adhoc.AsError(err).Text)
	assert.NoError(t, e.db.VerifyPassword(t.Context(), jid.MustParse("alice@localhost"), "pw"))
}

func TestChangeUserPassword(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "alice@localhost")
	phone := e.bind(t, "alice@localhost/phone", 0)
	alice := jid.MustParse("alice@localhost")
	_, err := e.accounts.Login(t.Context(), alice, "pw")
	require.NoError(t, err, "cached from now on")

	fields := e.result(t, "change-user-password", field("accountjid", "alice@localhost"), field("password", "n3w"))
	assert.Equal(t, notesOf("Operation successful for user alice@localhost"), shapes(fields))
	assert.ErrorIs(t, e.db.VerifyPassword(t.Context(), alice, "pw"), session.ErrBadPassword)
	assert.NoError(t, e.db.VerifyPassword(t.Context(), alice, "n3w"))
	_, err = e.accounts.Login(t.Context(), alice, "pw")
	assert.ErrorIs(t, err, session.ErrBadPassword, "the cached password is forgotten")
	assert.Empty(t, phone.kicked(), "sessions stay")

	_, err = e.run(t, "change-user-password", field("accountjid", "nobody@localhost"), field("password", "x"))
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound})
	assert.Equal(t, "There is no account nobody@localhost.", adhoc.AsError(err).Text)
}

func TestUnknownAccount(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"get-user-lastlogin", "user-stats"} {
		_, err := e.run(t, name, field("accountjid", "nobody@localhost"))
		assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound}, name)
	}
}

func TestAnnounce(t *testing.T) {
	e := newEnv(t)
	phone := e.bind(t, "alice@localhost/phone", 0)
	laptop := e.bind(t, "alice@localhost/laptop", time.Hour)
	bob := e.bind(t, "bob@localhost/web", time.Hour)
	closing := e.bind(t, "carol@localhost/desk", 0)
	closing.mu.Lock()
	closing.closing = true
	closing.mu.Unlock()

	fields := e.result(t, "announce", field("subject", "Maintenance <tonight>"),
		field("body", "Down at 22:00 & back", "by 23:00, 'probably'."))
	assert.Equal(t, notesOf("Announcement sent to 3 of 4 online resources."), shapes(fields))
	for _, c := range []*client{phone, laptop, bob} {
		assert.Equal(t, []session.Message{{From: jid.MustParse("localhost"), To: c.addr, Type: "headline",
			Subject: "Maintenance <tonight>", Body: "Down at 22:00 & back\nby 23:00, 'probably'."}}, c.received())
	}
	assert.Empty(t, closing.received())

	e.result(t, "announce", field("body", "No subject."))
	assert.Equal(t, session.Message{From: jid.MustParse("localhost"), To: bob.addr, Type: "headline", Body: "No subject."},
		bob.received()[1])
	entries := e.audit(t, session.AuditQuery{})
	require.Len(t, entries, 2)
	assert.Equal(t, "adhoc:"+node("announce"), entries[0].Action, "audited once, as the command")

	_, err := e.run(t, "announce", field("subject", "only"))
	assert.ErrorIs(t, err, adhoc.ErrBadPayload, "body is required")
}

func TestIsAdmin(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "alice@localhost", "boss@localhost")
	require.NoError(t, e.db.SetAdmin(t.Context(), jid.MustParse("boss@localhost"), true))
	require.NoError(t, e.db.SetDisabled(t.Context(), jid.MustParse("boss@localhost"), true))
	tests := []struct {
		givenJID    string
		expectAdmin bool
	}{
		{"admin@localhost", true},
		{"admin@localhost/script", true},
		{"root@localhost/any", true}, // configured, with or without an account
		{"alice@localhost", false},
		{"boss@localhost", false}, // an admin account, disabled
		{"nobody@localhost", false},
		{"localhost", false},
	}
	for _, tc := range tests {
		t.Run(tc.givenJID, func(t *testing.T) {
			admin, err := e.accounts.IsAdmin(t.Context(), jid.MustParse(tc.givenJID))
			require.NoError(t, err)
			assert.Equal(t, tc.expectAdmin, admin)
		})
	}
}

func TestStoreFailureIsInternal(t *testing.T) {
	e := newEnv(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "closed.db"))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	cmds := adhoc.NewRegistry(adhoc.RegistryConfig{})
	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: "localhost"}, db, zerolog.Nop())
	require.NoError(t, sessman.NewManager(sessman.ManagerConfig{Domain: "localhost"}, e.reg, accounts, zerolog.Nop()).Register(cmds))

	_, err = cmds.Execute(t.Context(), adhoc.Request{To: sessManJID, Node: node("get-registered-users-num"), Caller: adminCaller})
	require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.InternalServerError})
	ae := adhoc.AsError(err)
	assert.Equal(t, "The account store failed.", ae.Text)
	assert.Error(t, ae.Err, "the cause is kept for the log")
}

func TestSelfServiceReadOnlyAndAudit(t *testing.T) {
	e := newEnv(t)
	alice := e.bind(t, "alice@localhost/phone", 0)
	bob := e.bind(t, "bob@localhost/desk", 0)
	ctx := t.Context()
	run := func(req adhoc.Request) (adhoc.Response, error) {
		req.To, req.Node = jid.MustParse("localhost"), node("end-user-session")
		return e.cmds.Execute(ctx, req)
	}

	// A non-admin may end their own sessions, and nobody else's.
	_, err := run(adhoc.Request{Fields: []adhoc.Field{field("accountjids", "bob@localhost")}, Caller: adhoc.Caller{JID: jid.MustParse("alice@localhost/web"), Auth: adhoc.AuthBasic}})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden})
	assert.Empty(t, bob.kicked())
	_, err = run(adhoc.Request{Fields: []adhoc.Field{field("accountjids", "alice@localhost")}, Caller: adhoc.Caller{JID: jid.MustParse("alice@localhost/web"), Auth: "basic", RemoteAddr: "192.0.2.7", RequestID: "r1"}})
	require.NoError(t, err)
	assert.NotEmpty(t, alice.kicked())

	// A read-only caller changes nothing, even as an admin.
	_, err = run(adhoc.Request{Fields: []adhoc.Field{field("accountjids", "bob@localhost")}, Caller: readKeyCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden})
	assert.Empty(t, bob.kicked())

	// With a block, the user may not log in until it expires.
	e.addUsers(t, "bob@localhost")
	_, err = e.accounts.Login(ctx, jid.MustParse("bob@localhost"), "pw")
	require.NoError(t, err, "cached from now on")
	_, err = run(adhoc.Request{Fields: []adhoc.Field{field("accountjids", "bob@localhost"), field("block", "600")}, Caller: adhoc.Caller{JID: jid.MustParse("localhost"), Name: "apikey:ops", Auth: adhoc.AuthAPIKey}})
	require.NoError(t, err)
	assert.NotEmpty(t, bob.kicked())
	b, blocked, err := e.db.ActiveBlock(ctx, jid.MustParse("bob@localhost"), time.Now())
	require.NoError(t, err)
	require.True(t, blocked)
	assert.WithinDuration(t, time.Now().Add(600*time.Second), b.Until, time.Minute)
	_, err = e.accounts.Login(ctx, jid.MustParse("bob@localhost"), "pw")
	var blockedErr *session.BlockedError
	assert.ErrorAs(t, err, &blockedErr, "cached credentials are dropped")
	_, err = run(adhoc.Request{Fields: []adhoc.Field{field("accountjids", "bob@localhost"), field("block", "soon")}, Caller: adminCaller})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.BadRequest})

	// Every execution that changes something is in the audit, newest first,
	// refusals too (they changed nothing).
	entries := e.audit(t, session.AuditQuery{})
	require.Len(t, entries, 5, "%+v", entries)
	assert.Equal(t, "bad-request", entries[0].Outcome, "a failed attempt is recorded with its condition")
	assert.Equal(t, "apikey:ops", entries[1].Actor)
	assert.Equal(t, "ok", entries[1].Outcome)
	assert.Equal(t, []string{"bob@localhost"}, entries[1].Targets)
	assert.Equal(t, []string{"apikey:ro", "forbidden", "refused"}, []string{entries[2].Actor, entries[2].Outcome, entries[2].Detail})
	assert.Equal(t, []string{"bob@localhost"}, entries[2].Targets, "a refusal names what was asked")
	assert.Equal(t, "alice@localhost", entries[3].Actor)
	assert.Equal(t, "basic", entries[3].Auth)
	assert.Equal(t, "192.0.2.7", entries[3].RemoteAddr)
	assert.Equal(t, "r1", entries[3].RequestID)
	assert.Equal(t, "adhoc:"+node("end-user-session"), entries[3].Action)
	assert.Equal(t, []string{"forbidden", "refused"}, []string{entries[4].Outcome, entries[4].Detail}, "alice's try on bob")
}

func TestAPIKeyCommands(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	run := func(node string, fields ...adhoc.Field) (adhoc.Response, error) {
		return e.cmds.Execute(ctx, adhoc.Request{To: jid.MustParse("localhost"),
			Node: sessman.KeysNS + "#" + node, Fields: fields, Caller: adhoc.Caller{JID: jid.MustParse("root@localhost"), Auth: adhoc.AuthBasic, Admin: true, Name: "root@localhost"}})
	}
	resp, err := run("create", field("name", "deploy-bot"), field("read-only", "true"))
	require.NoError(t, err)
	vals := map[string]string{}
	for _, f := range resp.Form.Fields {
		vals[f.Var] = f.Values[0]
	}
	key, err := e.db.APIKeyBySecret(ctx, vals["key"])
	require.NoError(t, err, "the key shown is the key stored")
	assert.Equal(t, vals["id"], key.ID)
	assert.True(t, key.ReadOnly)
	assert.Equal(t, "localhost", key.Domain)

	_, err = run("create", field("name", "deploy-bot"))
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Conflict})

	resp, err = run("list", field("x", "y"))
	require.NoError(t, err)
	require.Len(t, resp.Form.Fields, 1)
	assert.Contains(t, resp.Form.Fields[0].Values[0], "deploy-bot localhost read-only active")
	assert.NotContains(t, resp.Form.Fields[0].Values[0], vals["key"], "secrets are never listed")

	_, err = run("revoke", field("id", vals["id"]))
	require.NoError(t, err)
	_, err = e.db.APIKeyBySecret(ctx, vals["key"])
	assert.ErrorIs(t, err, session.ErrKeyRevoked)
	_, err = run("revoke", field("id", "nope"))
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ItemNotFound})

	_, err = e.cmds.Execute(ctx, adhoc.Request{To: jid.MustParse("localhost"),
		Node:   sessman.KeysNS + "#list",
		Caller: adhoc.Caller{JID: jid.MustParse("alice@localhost"), Auth: adhoc.AuthBasic}})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, "admins only")

	// The audit names each key, by id in the targets and by name in the
	// detail, as the command line does.
	created := e.audit(t, session.AuditQuery{Target: vals["id"]})
	require.Len(t, created, 2, "created, then revoked: %+v", created)
	assert.Equal(t, []string{"apikey-revoke", "ok", `name "deploy-bot", domain localhost`},
		[]string{created[0].Action, created[0].Outcome, created[0].Detail})
	assert.Equal(t, []string{"apikey-create", "ok", `name "deploy-bot", domain localhost, read-only`, "root@localhost"},
		[]string{created[1].Action, created[1].Outcome, created[1].Detail, created[1].Actor})
}

// TestAPIKeysMayNotMakeAdmins: a full API key ends sessions and blocks, but
// may neither make a key (which would outlive its own revocation) nor
// touch an account, the admin's password above all; each refusal is
// audited and nothing changed.
func TestAPIKeysMayNotMakeAdmins(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.addUsers(t, "bob@localhost")
	run := func(n string, fields ...adhoc.Field) error {
		_, err := e.cmds.Execute(ctx, adhoc.Request{To: sessManJID, Node: n, Fields: fields, Caller: keyCaller})
		return err
	}
	for _, tc := range []struct {
		node   string
		fields []adhoc.Field
	}{
		{sessman.KeysNS + "#create", []adhoc.Field{field("name", "second")}},
		{sessman.KeysNS + "#revoke", []adhoc.Field{field("id", "whatever")}},
		{sessman.KeysNS + "#list", nil},
		{node("change-user-password"), []adhoc.Field{field("accountjid", "admin@localhost"), field("password", "mine")}},
		{node("add-user"), []adhoc.Field{field("accountjid", "eve@localhost"), field("password", "p"), field("password-verify", "p")}},
		{node("delete-user"), []adhoc.Field{field("accountjids", "bob@localhost")}},
		{node("disable-user"), []adhoc.Field{field("accountjids", "bob@localhost")}},
		{node("reenable-user"), []adhoc.Field{field("accountjids", "bob@localhost")}},
		{node("get-user-lastlogin"), []adhoc.Field{field("accountjid", "bob@localhost")}},
		{node("announce"), []adhoc.Field{field("body", "hi")}},
	} {
		err := run(tc.node, tc.fields...)
		require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, tc.node)
		assert.Equal(t, "API keys may list and end sessions only; this needs an administrator's account.", adhoc.AsError(err).Text)
	}
	keys, err := e.db.APIKeys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys, "no key was made")
	_, err = e.accounts.Login(ctx, adminJID, "mine")
	assert.ErrorIs(t, err, session.ErrBadPassword, "the admin's password is unchanged")

	refused := e.audit(t, session.AuditQuery{Actor: "apikey:ops"})
	require.Len(t, refused, 8, "every refused change is audited; the reads are not")
	assert.Equal(t, "apikey-create", refused[len(refused)-1].Action)
	assert.Equal(t, []string{"admin@localhost"}, refused[len(refused)-3].Targets, "change-user-password names its target")
	for _, entry := range refused {
		assert.Equal(t, []string{"apikey", "forbidden", "refused"}, []string{entry.Auth, entry.Outcome, entry.Detail}, entry.Action)
	}

	// What keys are for still works.
	require.NoError(t, run(node("end-user-session"), field("accountjids", "bob@localhost"), field("block", "60")))
}

func TestEndUserSessionBlockField(t *testing.T) {
	tests := []struct {
		name      string
		givenSecs string
		expectErr error
	}{
		{"none", "", nil},
		{"zero", "0", nil},
		{"a year", "31536000", nil},
		{"negative", "-1", &adhoc.Error{Condition: stanza.BadRequest}},
		{"over a year", "31536001", &adhoc.Error{Condition: stanza.BadRequest}},
		{"overflows a duration", "9223372037", &adhoc.Error{Condition: stanza.BadRequest}},
		{"not a number", "1.5", &adhoc.Error{Condition: stanza.BadRequest}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.run(t, "end-user-session", field("accountjids", "bob@localhost"), field("block", tc.givenSecs))
			if tc.expectErr != nil {
				assert.ErrorIs(t, err, tc.expectErr)
				assert.Equal(t, "Field block: \""+tc.givenSecs+"\" is not a number of seconds from 0 to 31536000.", adhoc.AsError(err).Text)
			} else {
				assert.NoError(t, err)
			}
			_, blocked, err := e.db.ActiveBlock(t.Context(), jid.MustParse("bob@localhost"), time.Now())
			require.NoError(t, err)
			assert.Equal(t, tc.expectErr == nil && tc.givenSecs != "" && tc.givenSecs != "0", blocked)
		})
	}
}

func TestReadOnlyCallerChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.addUsers(t, "bob@localhost")
	mutating := map[string]bool{
		node("end-user-session"): true, node("add-user"): true, node("delete-user"): true, node("disable-user"): true,
		node("reenable-user"): true, node("change-user-password"): true, node("announce"): true,
		sessman.KeysNS + "#create": true, sessman.KeysNS + "#revoke": true,
	}
	accountReads := map[string]bool{
		node("get-user-lastlogin"): true, node("get-registered-users-num"): true, node("get-disabled-users-num"): true,
		node("get-registered-users-list"): true, node("get-disabled-users-list"): true, sessman.KeysNS + "#list": true,
	}
	var nodes []string
	for _, n := range allNodes {
		nodes = append(nodes, node(n))
	}
	nodes = append(nodes, sessman.KeysNS+"#create", sessman.KeysNS+"#list", sessman.KeysNS+"#revoke")
	// Every field any command requires, valid for each.
	fields := []adhoc.Field{
		field("accountjids", "bob@localhost"), field("accountjid", "bob@localhost"), field("password", "pw2"),
		field("password-verify", "pw2"), field("body", "hi"), field("name", "k"), field("id", "k"), field("max_items", "none"),
	}
	for _, n := range nodes {
		t.Run(n, func(t *testing.T) {
			_, err := e.cmds.Execute(t.Context(), adhoc.Request{To: sessManJID, Node: n, Fields: fields, Caller: readKeyCaller})
			switch {
			case n == node("end-user-session"):
				require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden})
				assert.Equal(t, "This API key is read-only: it may list sessions, not end them.", adhoc.AsError(err).Text)
			case mutating[n], accountReads[n]:
				require.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, n)
				assert.Equal(t, "API keys may list and end sessions only; this needs an administrator's account.", adhoc.AsError(err).Text)
			default:
				assert.NoError(t, err, "a read-only key reads the sessions: %s", n)
			}
		})
	}
	entries := e.audit(t, session.AuditQuery{})
	assert.Len(t, entries, len(mutating), "each refusal is audited, and nothing else happened")
	for _, entry := range entries {
		assert.Equal(t, "forbidden", entry.Outcome, entry.Action)
	}
}
