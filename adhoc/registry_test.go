package adhoc_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

const (
	nodeEnd    = "http://jabber.org/protocol/admin#end-user-session"
	nodeWizard = "urn:test:wizard"
	nodePublic = "urn:test:public"
	nodeBlock  = "urn:test:block"
)

var (
	sessMan = jid.MustParse("sess-man@localhost")
	domain  = jid.MustParse("localhost")
	admin   = jid.MustParse("admin@localhost/script")
	alice   = jid.MustParse("alice@localhost/phone")
)

// clock is a settable clock for RegistryConfig.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// funcCommand is a Command made of a function.
type funcCommand struct {
	info adhoc.Info
	fn   func(ctx context.Context, req adhoc.Request) (adhoc.Response, error)
}

var _ adhoc.Command = funcCommand{}

// Info implements adhoc.Command.
func (c funcCommand) Info() adhoc.Info { return c.info }

// Execute implements adhoc.Command.
func (c funcCommand) Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
	return c.fn(ctx, req)
}

// wizard counts its stages in State: the first stage offers next, later
// stages offer prev, next and complete; complete reports the count.
// calls records every request it receives.
type wizard struct {
	mu    sync.Mutex
	calls []adhoc.Request
	fail  error // returned once by the next call, when set
}

func (w *wizard) Info() adhoc.Info {
	return adhoc.Info{Node: nodeWizard, Name: "Wizard", AdminOnly: true}
}

func (w *wizard) Execute(_ context.Context, req adhoc.Request) (adhoc.Response, error) {
	w.mu.Lock()
	w.calls = append(w.calls, req)
	err := w.fail
	w.fail = nil
	w.mu.Unlock()
	if err != nil {
		return adhoc.Response{}, err
	}
	stage, _ := req.State.(int)
	switch req.Action {
	case adhoc.ActionComplete:
		return adhoc.Response{Status: adhoc.StatusCompleted, Notes: []adhoc.Note{{Type: adhoc.NoteInfo, Text: "stages " + strconv.Itoa(stage)}}}, nil
	case adhoc.ActionPrev:
		stage--
	default:
		stage++
	}
	resp := adhoc.Response{Status: adhoc.StatusExecuting, State: stage, Actions: []adhoc.Action{adhoc.ActionNext}, Default: adhoc.ActionNext}
	if stage > 1 {
		resp.Actions = []adhoc.Action{adhoc.ActionPrev, adhoc.ActionNext, adhoc.ActionComplete}
		resp.Default = adhoc.ActionComplete
	}
	return resp, nil
}

func (w *wizard) Calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.calls)
}

func (w *wizard) Last() adhoc.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[len(w.calls)-1]
}

func (w *wizard) FailNext(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = err
}

// fixture is a registry with sess-man@localhost (aliased by localhost) and
// its commands.
type fixture struct {
	reg    *adhoc.Registry
	clock  *clock
	wizard *wizard
	block  chan struct{} // nodeBlock waits for it or ctx
}

const ttl = 10 * time.Minute

func newFixture(t *testing.T, cfg adhoc.RegistryConfig) *fixture {
	t.Helper()
	f := &fixture{
		clock:  &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
		wizard: &wizard{},
		block:  make(chan struct{}),
	}
	cfg.Now = f.clock.Now
	f.reg = adhoc.NewRegistry(cfg)
	end := funcCommand{
		info: adhoc.Info{Node: nodeEnd, Name: "End User Session", AdminOnly: true},
		fn: func(_ context.Context, req adhoc.Request) (adhoc.Response, error) {
			return adhoc.Response{Form: &adhoc.Form{Type: adhoc.FormTypeResult}}, nil
		},
	}
	public := funcCommand{
		info: adhoc.Info{Node: nodePublic, Name: "Public"},
		fn: func(_ context.Context, req adhoc.Request) (adhoc.Response, error) {
			return adhoc.Response{Notes: []adhoc.Note{{Text: "hello " + req.Caller.JID.String()}}}, nil
		},
	}
	block := funcCommand{
		info: adhoc.Info{Node: nodeBlock, Name: "Block"},
		fn: func(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
			select {
			case <-f.block:
				return adhoc.Response{}, nil
			case <-ctx.Done():
				return adhoc.Response{}, fmt.Errorf("block: %w", ctx.Err())
			}
		},
	}
	for _, cmd := range []adhoc.Command{end, public, f.wizard, block} {
		require.NoError(t, f.reg.Register(sessMan, cmd))
	}
	require.NoError(t, f.reg.Alias(domain, sessMan))
	return f
}

func (f *fixture) exec(t *testing.T, req adhoc.Request) (adhoc.Response, error) {
	t.Helper()
	if req.To.String() == "" {
		req.To = sessMan
	}
	if req.Caller.JID.String() == "" {
		req.Caller.JID = admin
		req.Caller.Admin = true
	}
	return f.reg.Execute(context.Background(), req)
}

func TestRegistryRegister(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	noop := func(node string) adhoc.Command {
		return funcCommand{info: adhoc.Info{Node: node}}
	}
	tests := []struct {
		name      string
		givenJID  jid.JID
		givenCmd  adhoc.Command
		expectErr string
	}{
		{"new node", sessMan, noop("urn:test:new"), ""},
		{"same node other component", jid.MustParse("other.localhost"), noop(nodeEnd), ""},
		{"duplicate node", sessMan, noop(nodeEnd), "already registered"},
		{"empty node", sessMan, noop(""), "no node"},
		{"resource", jid.MustParse("sess-man@localhost/r"), noop("urn:test:x"), "has a resource"},
		{"alias", domain, noop("urn:test:x"), "is an alias"},
		{"empty jid", jid.JID{}, noop("urn:test:x"), "empty component"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.reg.Register(tc.givenJID, tc.givenCmd)
			if tc.expectErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.expectErr)
		})
	}
}

func TestRegistryAlias(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	tests := []struct {
		name      string
		givenFrom jid.JID
		givenTo   jid.JID
		expectErr string
	}{
		{"again", domain, sessMan, ""},
		{"not yet registered", jid.MustParse("example.org"), jid.MustParse("sess-man@example.org"), ""},
		{"component as alias", sessMan, domain, "is a component"},
		{"to an alias", jid.MustParse("x.localhost"), domain, "is an alias"},
		{"other target", domain, jid.MustParse("other@localhost"), "already an alias"},
		{"self", jid.MustParse("a.localhost"), jid.MustParse("a.localhost"), "itself"},
		{"resource", jid.MustParse("a.localhost/r"), sessMan, "bare"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.reg.Alias(tc.givenFrom, tc.givenTo)
			if tc.expectErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.expectErr)
		})
	}
}

func TestRegistryCommands(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	tests := []struct {
		name        string
		givenJID    jid.JID
		givenAdmin  bool
		expectNodes []string
		expectErr   error
	}{
		{"admin", sessMan, true, []string{nodeEnd, nodePublic, nodeWizard, nodeBlock}, nil},
		{"admin through alias", domain, true, []string{nodeEnd, nodePublic, nodeWizard, nodeBlock}, nil},
		{"user", sessMan, false, []string{nodePublic, nodeBlock}, nil},
		{"unknown component", jid.MustParse("nobody@localhost"), true, nil, &adhoc.Error{Condition: stanza.ItemNotFound}},
		{"resource", jid.MustParse("sess-man@localhost/x"), true, nil, &adhoc.Error{Condition: stanza.ItemNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			infos, err := f.reg.Commands(tc.givenJID, adhoc.Caller{Admin: tc.givenAdmin})
			if tc.expectErr != nil {
				assert.ErrorIs(t, err, tc.expectErr)
				return
			}
			require.NoError(t, err)
			var nodes []string
			for _, info := range infos {
				nodes = append(nodes, info.Node)
			}
			assert.Equal(t, tc.expectNodes, nodes)
		})
	}
}

func TestRegistryGuard(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	other := jid.MustParse("other.org")
	calls := 0
	require.NoError(t, f.reg.Guard(sessMan, func(c adhoc.Caller) error {
		calls++
		if c.JID.Domainpart() != sessMan.Domainpart() {
			return &adhoc.Error{Condition: stanza.Forbidden, Text: "Not for you."}
		}
		return nil
	}))
	outsider := adhoc.Caller{JID: other, Admin: true}
	insider := adhoc.Caller{JID: admin, Admin: true}

	for _, to := range []jid.JID{sessMan, domain} {
		assert.ErrorIs(t, f.reg.Admit(to, outsider), &adhoc.Error{Condition: stanza.Forbidden}, "through %s", to)
		assert.NoError(t, f.reg.Admit(to, insider))
		_, err := f.reg.Commands(to, outsider)
		assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden})
		_, err = f.reg.Execute(t.Context(), adhoc.Request{To: to, Node: nodeEnd, Caller: outsider})
		assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Forbidden}, "before the command runs")
		_, err = f.reg.Execute(t.Context(), adhoc.Request{To: to, Node: nodeEnd, Caller: insider})
		assert.NoError(t, err)
	}
	assert.Equal(t, 10, calls)
	assert.ErrorIs(t, f.reg.Admit(jid.MustParse("nobody@localhost"), insider), &adhoc.Error{Condition: stanza.ItemNotFound})
	assert.Error(t, f.reg.Guard(domain, nil), "an alias has no guard of its own")
	assert.Error(t, f.reg.Guard(jid.MustParse("sess-man@localhost/x"), nil))
}

func TestRegistryExecute(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	tests := []struct {
		name         string
		givenTo      jid.JID
		givenFrom    jid.JID
		givenAdmin   bool
		givenNode    string
		whenAction   adhoc.Action
		expectStatus adhoc.Status
		expectErr    error
		expectText   string
	}{
		{name: "admin runs admin command", givenNode: nodeEnd, givenFrom: admin, givenAdmin: true, expectStatus: adhoc.StatusCompleted},
		{name: "through alias", givenTo: domain, givenNode: nodeEnd, givenFrom: admin, givenAdmin: true, expectStatus: adhoc.StatusCompleted},
		{name: "user runs public command", givenNode: nodePublic, givenFrom: alice, expectStatus: adhoc.StatusCompleted},
		{name: "complete without session", givenNode: nodePublic, givenFrom: alice, whenAction: adhoc.ActionComplete, expectStatus: adhoc.StatusCompleted},
		{name: "cancel without session", givenNode: nodeEnd, givenFrom: admin, givenAdmin: true, whenAction: adhoc.ActionCancel, expectStatus: adhoc.StatusCanceled},
		{
			name: "user runs admin command", givenNode: nodeEnd, givenFrom: alice,
			expectErr: &adhoc.Error{Condition: stanza.Forbidden}, expectText: "Only administrators may run this command.",
		},
		{
			name: "unknown node", givenNode: "urn:test:nope", givenFrom: admin, givenAdmin: true,
			expectErr: &adhoc.Error{Condition: stanza.ItemNotFound}, expectText: `There is no command "urn:test:nope" at sess-man@localhost.`,
		},
		{
			name: "unknown component", givenTo: jid.MustParse("nobody@localhost"), givenNode: nodeEnd, givenFrom: admin, givenAdmin: true,
			expectErr: &adhoc.Error{Condition: stanza.ItemNotFound}, expectText: "There are no commands at nobody@localhost.",
		},
		{
			name: "empty node", givenFrom: admin, givenAdmin: true,
			expectErr: &adhoc.Error{Condition: stanza.BadRequest}, expectText: "The request names no command node.",
		},
		{
			name: "malformed action", givenNode: nodeEnd, givenFrom: admin, givenAdmin: true, whenAction: "jump",
			expectErr: adhoc.ErrMalformedAction,
		},
		{
			name: "next without session", givenNode: nodeWizard, givenFrom: admin, givenAdmin: true, whenAction: adhoc.ActionNext,
			expectErr: adhoc.ErrBadAction, expectText: "The action next needs a sessionid.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			to := tc.givenTo
			if to.String() == "" {
				to = sessMan
			}
			resp, err := f.reg.Execute(context.Background(), adhoc.Request{
				To: to, Node: tc.givenNode, Action: tc.whenAction, Caller: adhoc.Caller{JID: tc.givenFrom, Admin: tc.givenAdmin},
			})
			if tc.expectErr != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.expectErr)
				if tc.expectText != "" {
					assert.Equal(t, tc.expectText, adhoc.AsError(err).Text)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.expectStatus, resp.Status)
			assert.Equal(t, tc.givenNode, resp.Node)
			assert.Empty(t, resp.SessionID)
		})
	}
}

func TestRegistrySessionStages(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})

	resp, err := f.exec(t, adhoc.Request{Node: nodeWizard})
	require.NoError(t, err)
	require.Equal(t, adhoc.StatusExecuting, resp.Status)
	id := resp.SessionID
	require.NotEmpty(t, id)
	assert.GreaterOrEqual(t, len(id), 22, "sessionid carries at least 128 random bits")
	assert.Nil(t, resp.State, "State never leaves the registry")
	assert.Equal(t, adhoc.ActionExecute, f.wizard.Last().Action, "no action reaches the command as execute")
	assert.Nil(t, f.wizard.Last().State)

	steps := []struct {
		whenAction   adhoc.Action
		expectAction adhoc.Action // as the command sees it
		expectState  any          // as the command receives it
		expectStatus adhoc.Status
	}{
		{"", adhoc.ActionNext, 1, adhoc.StatusExecuting},                      // execute = default next
		{adhoc.ActionNext, adhoc.ActionNext, 2, adhoc.StatusExecuting},        // stage 3
		{adhoc.ActionPrev, adhoc.ActionPrev, 3, adhoc.StatusExecuting},        // back to 2
		{adhoc.ActionExecute, adhoc.ActionComplete, 2, adhoc.StatusCompleted}, // execute = default complete
	}
	for i, st := range steps {
		resp, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Action: st.whenAction})
		require.NoError(t, err, "step %d", i)
		assert.Equal(t, st.expectStatus, resp.Status, "step %d", i)
		assert.Equal(t, id, resp.SessionID, "step %d", i)
		assert.Equal(t, nodeWizard, resp.Node, "step %d", i)
		assert.Nil(t, resp.State, "step %d", i)
		assert.Equal(t, st.expectAction, f.wizard.Last().Action, "step %d", i)
		assert.Equal(t, st.expectState, f.wizard.Last().State, "step %d", i)
	}
	assert.Equal(t, 0, f.reg.Sessions(), "completed drops the session")

	_, err = f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Action: adhoc.ActionNext})
	assert.ErrorIs(t, err, adhoc.ErrBadSessionID)
}

// openWizard starts a wizard session as admin and returns its sessionid.
func openWizard(t *testing.T, f *fixture) string {
	t.Helper()
	resp, err := f.exec(t, adhoc.Request{Node: nodeWizard})
	require.NoError(t, err)
	require.NotEmpty(t, resp.SessionID)
	return resp.SessionID
}

func TestRegistrySessionErrors(t *testing.T) {
	tests := []struct {
		name         string
		givenAdvance time.Duration
		givenFrom    jid.JID
		givenNode    string
		givenSession string // "" means the opened session
		whenAction   adhoc.Action
		expectErr    error
		expectText   string
		expectKept   bool // the session still works afterwards
	}{
		{
			name: "unknown sessionid", givenSession: "nope", whenAction: adhoc.ActionNext,
			expectErr: adhoc.ErrBadSessionID, expectText: "The session is not known; start the command again.", expectKept: true,
		},
		{
			name: "other requester", givenFrom: jid.MustParse("admin2@localhost"), whenAction: adhoc.ActionNext,
			expectErr: adhoc.ErrBadSessionID, expectKept: true,
		},
		{
			name: "other node", givenNode: nodeEnd, whenAction: adhoc.ActionNext,
			expectErr: adhoc.ErrBadSessionID, expectKept: true,
		},
		{
			name: "action not offered", whenAction: adhoc.ActionPrev,
			expectErr: adhoc.ErrBadAction, expectText: "The action prev is not allowed at this stage.", expectKept: true,
		},
		{
			name: "expired", givenAdvance: ttl, whenAction: adhoc.ActionNext,
			expectErr: adhoc.ErrSessionExpired, expectText: "The session has expired; start the command again.",
		},
		{
			name: "expired long ago", givenAdvance: 3 * ttl, whenAction: adhoc.ActionNext,
			expectErr: adhoc.ErrBadSessionID,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, adhoc.RegistryConfig{SessionTTL: ttl})
			id := openWizard(t, f)
			calls := f.wizard.Calls()
			f.clock.Advance(tc.givenAdvance)

			req := adhoc.Request{To: sessMan, Node: nodeWizard, SessionID: id, Action: tc.whenAction, Caller: adhoc.Caller{JID: admin, Admin: true}}
			if tc.givenFrom.String() != "" {
				req.Caller.JID = tc.givenFrom
			}
			if tc.givenNode != "" {
				req.Node = tc.givenNode
			}
			if tc.givenSession != "" {
				req.SessionID = tc.givenSession
			}
			_, err := f.reg.Execute(context.Background(), req)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.expectErr)
			if tc.expectText != "" {
				assert.Equal(t, tc.expectText, adhoc.AsError(err).Text)
			}
			assert.Equal(t, calls, f.wizard.Calls(), "the command is not called")

			_, err = f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Action: adhoc.ActionNext})
			if tc.expectKept {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestRegistrySessionSameUserOtherResource(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	id := openWizard(t, f)
	resp, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Caller: adhoc.Caller{JID: jid.MustParse("admin@localhost/other"), Admin: true}})
	require.NoError(t, err)
	assert.Equal(t, adhoc.StatusExecuting, resp.Status)
}

func TestRegistrySessionThroughAlias(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	id := openWizard(t, f)
	_, err := f.exec(t, adhoc.Request{To: domain, Node: nodeWizard, SessionID: id})
	assert.NoError(t, err, "the alias reaches the same component and its sessions")
}

func TestRegistrySessionCancel(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	id := openWizard(t, f)
	calls := f.wizard.Calls()

	resp, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Action: adhoc.ActionCancel})
	require.NoError(t, err)
	assert.Equal(t, adhoc.StatusCanceled, resp.Status)
	assert.Equal(t, id, resp.SessionID)
	assert.Equal(t, calls, f.wizard.Calls(), "cancel does not call the command")
	assert.Equal(t, 0, f.reg.Sessions())

	_, err = f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Action: adhoc.ActionCancel})
	assert.ErrorIs(t, err, adhoc.ErrBadSessionID)
}

func TestRegistrySessionCommandError(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	id := openWizard(t, f)
	f.wizard.FailNext(&adhoc.Error{Condition: stanza.BadRequest, Specific: "bad-payload", Text: "Field x is required."})

	_, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id})
	require.ErrorIs(t, err, adhoc.ErrBadPayload)

	_, err = f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id})
	require.NoError(t, err, "a failed stage keeps the session for a corrected retry")
	assert.Equal(t, 1, f.wizard.Last().State, "the state is the one before the failed stage")
}

func TestRegistryFirstStageErrorOpensNoSession(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	f.wizard.FailNext(errors.New("boom"))
	_, err := f.exec(t, adhoc.Request{Node: nodeWizard})
	require.Error(t, err)
	assert.Equal(t, stanza.InternalServerError, adhoc.AsError(err).Condition)
	assert.Equal(t, 0, f.reg.Sessions())
}

func TestRegistrySessionRenewedByStage(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{SessionTTL: ttl})
	id := openWizard(t, f)
	for range 3 {
		f.clock.Advance(ttl - time.Second)
		_, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id, Action: adhoc.ActionNext})
		require.NoError(t, err, "each stage renews the session")
	}
}

func TestRegistrySweep(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{SessionTTL: ttl})
	for range 5 {
		openWizard(t, f)
	}
	assert.Equal(t, 5, f.reg.Sessions())
	f.clock.Advance(ttl)
	assert.Equal(t, 5, f.reg.Sessions(), "expired sessions are kept one more TTL to answer session-expired")
	f.clock.Advance(ttl)
	assert.Equal(t, 0, f.reg.Sessions())
}

func TestRegistryMaxSessions(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{MaxSessions: 3, SessionTTL: ttl})
	for range 3 {
		openWizard(t, f)
	}
	_, err := f.exec(t, adhoc.Request{Node: nodeWizard})
	require.Error(t, err)
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.ResourceConstraint})

	f.clock.Advance(ttl)
	_, err = f.exec(t, adhoc.Request{Node: nodeWizard})
	assert.NoError(t, err, "expired sessions make room")
}

func TestRegistryMaxSessionsPerRequester(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{MaxSessionsPerRequester: 2})
	first := openWizard(t, f)
	second := openWizard(t, f)
	third := openWizard(t, f)
	assert.Equal(t, 2, f.reg.Sessions())

	_, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: first})
	assert.ErrorIs(t, err, adhoc.ErrBadSessionID, "the oldest session was ended")
	for _, id := range []string{second, third} {
		_, err := f.exec(t, adhoc.Request{Node: nodeWizard, SessionID: id})
		assert.NoError(t, err)
	}
	_, err = f.exec(t, adhoc.Request{Node: nodeWizard, Caller: adhoc.Caller{JID: jid.MustParse("other@localhost"), Admin: true}})
	assert.NoError(t, err, "the limit is per requester")
}

func TestRegistryDeadline(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := f.reg.Execute(ctx, adhoc.Request{To: sessMan, Node: nodeBlock, Caller: adhoc.Caller{JID: alice}})
	require.Error(t, err)
	e := adhoc.AsError(err)
	assert.Equal(t, stanza.RemoteServerTimeout, e.Condition)
	assert.Equal(t, "The command did not finish in time.", e.Text)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	done, cancel := context.WithCancel(context.Background())
	cancel()
	calls := f.wizard.Calls()
	_, err = f.reg.Execute(done, adhoc.Request{To: sessMan, Node: nodeWizard, Caller: adhoc.Caller{JID: admin, Admin: true}})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
	assert.Equal(t, calls, f.wizard.Calls(), "a done context does not reach the command")
}

func TestRegistryLateSuccessIsNotTrusted(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	// late counts its stages in State. While stop is set, a stage calls it
	// and waits for ctx before it succeeds: it finishes, but too late.
	var (
		stop func()
		seen any // the State of the last stage
	)
	late := funcCommand{
		info: adhoc.Info{Node: "urn:test:late"},
		fn: func(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
			seen = req.State
			stage, _ := req.State.(int)
			if stop != nil {
				stop()
				<-ctx.Done()
			}
			return adhoc.Response{Status: adhoc.StatusExecuting, State: stage + 1, Actions: []adhoc.Action{adhoc.ActionNext}}, nil
		},
	}
	require.NoError(t, f.reg.Register(sessMan, late))
	run := func(ctx context.Context, sessionID string) (adhoc.Response, error) {
		req := adhoc.Request{To: sessMan, Node: "urn:test:late", SessionID: sessionID, Caller: adhoc.Caller{JID: admin, Admin: true}}
		if sessionID != "" {
			req.Action = adhoc.ActionNext
		}
		return f.reg.Execute(ctx, req)
	}
	tests := []struct {
		name string
		// whenLate runs one stage that finishes after ctx is done.
		whenLate  func(sessionID string) error
		expectErr error
	}{
		{"deadline", func(sessionID string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			stop = func() {} // the deadline passes on its own
			defer func() { stop = nil }()
			_, err := run(ctx, sessionID)
			return err
		}, context.DeadlineExceeded},
		{"canceled", func(sessionID string) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop = cancel // the client went away
			defer func() { stop = nil }()
			_, err := run(ctx, sessionID)
			return err
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			open := f.reg.Sessions()
			err := tc.whenLate("")
			require.Error(t, err, "a first stage that finished late is not trusted")
			assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
			assert.ErrorIs(t, err, tc.expectErr)
			assert.Equal(t, "The command did not finish in time.", adhoc.AsError(err).Text)
			assert.Equal(t, open, f.reg.Sessions(), "and opens no session")

			resp, err := run(context.Background(), "")
			require.NoError(t, err)
			err = tc.whenLate(resp.SessionID)
			require.Error(t, err, "a later stage that finished late is not trusted")
			assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.RemoteServerTimeout})
			assert.ErrorIs(t, err, tc.expectErr)

			_, err = run(context.Background(), resp.SessionID)
			require.NoError(t, err, "the session is kept as it was before the late stage")
			assert.Equal(t, 1, seen, "the late stage's state was not stored")
		})
	}
}

func TestRegistryBusySession(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	slow := funcCommand{
		info: adhoc.Info{Node: "urn:test:slow"},
		fn: func(ctx context.Context, req adhoc.Request) (adhoc.Response, error) {
			if req.SessionID != "" {
				once.Do(func() { close(started) })
				<-release
			}
			return adhoc.Response{Status: adhoc.StatusExecuting, Actions: []adhoc.Action{adhoc.ActionNext}}, nil
		},
	}
	require.NoError(t, f.reg.Register(sessMan, slow))
	resp, err := f.exec(t, adhoc.Request{Node: "urn:test:slow"})
	require.NoError(t, err)

	errc := make(chan error, 1)
	go func() {
		_, err := f.reg.Execute(context.Background(), adhoc.Request{To: sessMan, Node: "urn:test:slow", SessionID: resp.SessionID, Action: adhoc.ActionNext, Caller: adhoc.Caller{JID: admin}})
		errc <- err
	}()
	<-started
	_, err = f.exec(t, adhoc.Request{Node: "urn:test:slow", SessionID: resp.SessionID, Action: adhoc.ActionNext})
	assert.ErrorIs(t, err, &adhoc.Error{Condition: stanza.Conflict})
	close(release)
	require.NoError(t, <-errc)

	_, err = f.exec(t, adhoc.Request{Node: "urn:test:slow", SessionID: resp.SessionID, Action: adhoc.ActionNext})
	assert.NoError(t, err, "the session is free again")
}

func TestRegistryConcurrent(t *testing.T) {
	f := newFixture(t, adhoc.RegistryConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := jid.MustParse("admin" + strconv.Itoa(i) + "@localhost")
			req := adhoc.Request{To: sessMan, Node: nodeWizard, Caller: adhoc.Caller{JID: from, Admin: true}}
			resp, err := f.reg.Execute(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			req.SessionID = resp.SessionID
			for _, a := range []adhoc.Action{adhoc.ActionNext, adhoc.ActionNext, adhoc.ActionComplete} {
				req.Action = a
				if _, err := f.reg.Execute(context.Background(), req); err != nil {
					errs <- err
					return
				}
			}
			if _, err := f.reg.Commands(domain, adhoc.Caller{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 0, f.reg.Sessions())
}
