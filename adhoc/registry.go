package adhoc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// RegistryConfig configures a Registry.
// The zero value is usable.
type RegistryConfig struct {
	// SessionTTL is how long a multi-stage session waits for its next stage;
	// default 10 minutes.
	SessionTTL time.Duration
	// MaxSessions bounds the open sessions of the registry, default 10000;
	// a new session beyond it is refused with resource-constraint.
	MaxSessions int
	// MaxSessionsPerRequester bounds the open sessions of one bare requester
	// JID, default 32; a new session beyond it ends that requester's oldest
	// idle session.
	MaxSessionsPerRequester int
	// Now is the clock, default time.Now; tests inject their own.
	Now func() time.Time
}

// Registry holds the commands of each component and the open multi-stage
// sessions.
// It is safe for concurrent use.
type Registry struct {
	cfg RegistryConfig

	mu         sync.RWMutex
	components map[string]*component // bare component JID -> commands
	aliases    map[string]string     // alias JID -> component JID

	smu         sync.Mutex
	sessions    map[string]*session // sessionid -> session
	byRequester map[string][]string // bare requester JID -> sessionids, oldest first
	nextSweep   time.Time
}

type component struct {
	cmds  map[string]Command
	order []string // nodes in registration order
	admit func(Caller) error
}

// session is an open multi-stage command session.
type session struct {
	component string
	node      string
	requester string // bare JID
	state     any
	actions   []Action
	def       Action
	expires   time.Time
	busy      bool // a stage is running
}

// NewRegistry returns an empty registry.
func NewRegistry(cfg RegistryConfig) *Registry {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 10 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.MaxSessionsPerRequester <= 0 {
		cfg.MaxSessionsPerRequester = 32
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Registry{
		cfg:         cfg,
		components:  make(map[string]*component),
		aliases:     make(map[string]string),
		sessions:    make(map[string]*session),
		byRequester: make(map[string][]string),
	}
}

// Register adds cmd to the commands of the component, a bare JID such as
// sess-man@example.org or example.org.
// It fails when the JID has a resourcepart or is an alias, when the node is
// empty, or when the component already has a command with that node.
func (r *Registry) Register(comp jid.JID, cmd Command) error {
	key := comp.String()
	node := cmd.Info().Node
	switch {
	case key == "":
		return fmt.Errorf("adhoc: register %q: empty component JID", node)
	case comp.Resourcepart() != "":
		return fmt.Errorf("adhoc: register %q on %s: the component JID has a resource", node, key)
	case node == "":
		return fmt.Errorf("adhoc: register on %s: the command has no node", key)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.aliases[key]; ok {
		return fmt.Errorf("adhoc: register %q on %s: the JID is an alias", node, key)
	}
	c := r.components[key]
	if c == nil {
		c = &component{cmds: make(map[string]Command)}
		r.components[key] = c
	}
	if _, ok := c.cmds[node]; ok {
		return fmt.Errorf("adhoc: register %q on %s: the node is already registered", node, key)
	}
	c.cmds[node] = cmd
	c.order = append(c.order, node)
	return nil
}

// Alias makes requests to alias reach the commands of comp, so that the bare
// domain example.org serves the commands of sess-man@example.org.
// The component need not be registered yet.
// It fails when alias has a resourcepart, is itself a component, or is
// already an alias of another component.
func (r *Registry) Alias(alias, comp jid.JID) error {
	a, c := alias.String(), comp.String()
	switch {
	case a == "" || c == "":
		return fmt.Errorf("adhoc: alias %q to %q: empty JID", a, c)
	case alias.Resourcepart() != "" || comp.Resourcepart() != "":
		return fmt.Errorf("adhoc: alias %s to %s: JIDs must be bare", a, c)
	case a == c:
		return fmt.Errorf("adhoc: alias %s to itself", a)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.components[a]; ok {
		return fmt.Errorf("adhoc: alias %s to %s: %s is a component", a, c, a)
	}
	if _, ok := r.aliases[c]; ok {
		return fmt.Errorf("adhoc: alias %s to %s: %s is an alias", a, c, c)
	}
	if old, ok := r.aliases[a]; ok && old != c {
		return fmt.Errorf("adhoc: alias %s to %s: already an alias of %s", a, c, old)
	}
	r.aliases[a] = c
	return nil
}

// Guard makes admit decide who may address the component comp at all: its
// error refuses a caller's listing and every request before a command runs
// (and, through Admit, before a transport reads the request).
// The component need not have commands yet.
func (r *Registry) Guard(comp jid.JID, admit func(Caller) error) error {
	key := comp.String()
	if key == "" || comp.Resourcepart() != "" {
		return fmt.Errorf("adhoc: guard %q: not a bare component JID", key)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.aliases[key]; ok {
		return fmt.Errorf("adhoc: guard %s: the JID is an alias", key)
	}
	c := r.components[key]
	if c == nil {
		c = &component{cmds: make(map[string]Command)}
		r.components[key] = c
	}
	c.admit = admit
	return nil
}

// Admit reports whether the caller may address the component at all:
// item-not-found for an unknown component, or the error of its Guard.
func (r *Registry) Admit(comp jid.JID, caller Caller) error {
	r.mu.RLock()
	_, c, err := r.lookup(comp)
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	if c.admit != nil {
		return c.admit(caller)
	}
	return nil
}

// lookup resolves a component JID, following an alias, under r.mu.
// It returns the canonical component JID and its commands.
func (r *Registry) lookup(comp jid.JID) (string, *component, error) {
	key := comp.String()
	if to, ok := r.aliases[key]; ok {
		key = to
	}
	c := r.components[key]
	if c == nil || comp.Resourcepart() != "" {
		return "", nil, &Error{
			Condition: stanza.ItemNotFound,
			Text:      fmt.Sprintf("There are no commands at %s.", comp),
		}
	}
	return key, c, nil
}

// Commands lists the commands of the component that the caller may run, in
// registration order: every command for an admin, those that are not
// AdminOnly for anyone else (XEP-0050 §2.2); a Permitter when it permits
// the caller.
// An unknown component is an *Error with condition item-not-found; a caller
// the component's Guard refuses gets its error.
func (r *Registry) Commands(comp jid.JID, caller Caller) ([]Info, error) {
	if err := r.Admit(comp, caller); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, c, err := r.lookup(comp)
	if err != nil {
		return nil, err
	}
	infos := make([]Info, 0, len(c.order))
	for _, node := range c.order {
		if cmd := c.cmds[node]; permits(cmd, caller) {
			infos = append(infos, cmd.Info())
		}
	}
	return infos, nil
}

// Execute runs one stage of the command named by req.Node on the component
// req.To (XEP-0050 §2.4).
//
// Errors are *Error values: item-not-found for an unknown component or node,
// the error of the component's Guard, forbidden when an AdminOnly command
// is run by a non-admin (a Permitter refuses in its Execute), and for
// sessions bad-sessionid (unknown, or of another requester or node),
// session-expired, bad-action (next or prev that the previous stage did not
// offer, or without a session), malformed-action, conflict (another stage of
// the session is still running) and resource-constraint (too many sessions).
// Errors of the command are returned as they are; AsError makes them
// presentable.
//
// Without a sessionid, the action must be empty, execute or complete; an
// empty action is passed to the command as execute.
// Within a session, execute (or no action) is passed as the default action of
// the previous stage when it named one; next and prev must be among the
// actions the previous stage offered; complete is always allowed.
// Cancel ends the session with status canceled without calling the command
// (XEP-0050 §2.4.3), so commands keep nothing in State that needs cleaning up.
//
// A response with status executing opens or continues a session: the
// registry assigns the sessionid and keeps Response.State for the next stage,
// which receives it in Request.State.
// An empty status is completed.
// A completed or canceled response, and an error of the first stage, leave no
// session; an error of a later stage keeps the session as it was, so the
// requester can correct the form and try again.
// Response.State is never returned.
//
// Execute passes ctx to the command and does not start goroutines: commands
// must honour ctx.
// A command error that comes with a done ctx (deadline or cancellation)
// becomes remote-server-timeout, and so does a stage that succeeds only
// after ctx is done: it is not trusted as complete, so a first stage opens
// no session and a later stage leaves the session as it was.
func (r *Registry) Execute(ctx context.Context, req Request) (Response, error) {
	r.mu.RLock()
	key, c, err := r.lookup(req.To)
	var (
		cmd   Command
		admit func(Caller) error
	)
	if err == nil {
		cmd, admit = c.cmds[req.Node], c.admit
	}
	r.mu.RUnlock()
	if err != nil {
		return Response{}, err
	}
	if admit != nil {
		if err := admit(req.Caller); err != nil {
			return Response{}, err
		}
	}
	if req.Node == "" {
		return Response{}, &Error{Condition: stanza.BadRequest, Text: "The request names no command node."}
	}
	if cmd == nil {
		return Response{}, &Error{
			Condition: stanza.ItemNotFound,
			Text:      fmt.Sprintf("There is no command %q at %s.", req.Node, req.To),
		}
	}
	if _, decides := cmd.(Permitter); !decides && !permits(cmd, req.Caller) {
		return Response{}, &Error{Condition: stanza.Forbidden, Text: "Only administrators may run this command."}
	}
	if _, err := ParseAction(string(req.Action)); err != nil {
		return Response{}, err
	}
	requester := req.Caller.JID.Bare().String()

	if req.SessionID == "" {
		switch req.Action {
		case ActionCancel:
			return Response{Node: req.Node, Status: StatusCanceled}, nil
		case ActionNext, ActionPrev:
			return Response{}, &Error{
				Condition: ErrBadAction.Condition,
				Specific:  ErrBadAction.Specific,
				Text:      fmt.Sprintf("The action %s needs a sessionid.", req.Action),
			}
		case "":
			req.Action = ActionExecute
		}
		req.State = nil
		resp, err := r.run(ctx, cmd, req)
		if err != nil {
			return Response{}, err
		}
		if resp.Status != StatusExecuting {
			return resp, nil
		}
		id, err := r.open(key, requester, req.Node, resp)
		if err != nil {
			return Response{}, err
		}
		resp.SessionID = id
		resp.State = nil
		return resp, nil
	}

	s, err := r.acquire(key, requester, req)
	if err != nil {
		return Response{}, err
	}
	if req.Action == ActionCancel {
		r.drop(req.SessionID)
		return Response{Node: req.Node, SessionID: req.SessionID, Status: StatusCanceled}, nil
	}
	req.State = s.state
	req.Action = s.resolve(req.Action)
	if req.Action != ActionExecute && req.Action != ActionComplete && !slices.Contains(s.actions, req.Action) {
		r.release(req.SessionID)
		return Response{}, &Error{
			Condition: ErrBadAction.Condition,
			Specific:  ErrBadAction.Specific,
			Text:      fmt.Sprintf("The action %s is not allowed at this stage.", req.Action),
		}
	}
	resp, err := r.run(ctx, cmd, req)
	if err != nil {
		r.release(req.SessionID)
		return Response{}, err
	}
	resp.SessionID = req.SessionID
	if resp.Status == StatusExecuting {
		r.advance(req.SessionID, resp)
	} else {
		r.drop(req.SessionID)
	}
	resp.State = nil
	return resp, nil
}

// run calls the command and normalises its answer.
func (r *Registry) run(ctx context.Context, cmd Command, req Request) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, timeoutError(err)
	}
	resp, err := cmd.Execute(ctx, req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !isError(err) {
			return Response{}, timeoutError(err)
		}
		return Response{}, err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// Finished, but too late to be trusted as complete: the requester
		// may have given up, and Execute then opens or advances no session.
		return Response{}, timeoutError(ctxErr)
	}
	resp.Node = req.Node
	if resp.Status == "" {
		resp.Status = StatusCompleted
	}
	return resp, nil
}

func isError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func timeoutError(err error) *Error {
	return &Error{Condition: stanza.RemoteServerTimeout, Text: "The command did not finish in time.", Err: err}
}

// resolve turns execute (or no action) into the session's default action.
func (s *session) resolve(a Action) Action {
	if (a == "" || a == ActionExecute) && s.def != "" {
		return s.def
	}
	if a == "" {
		return ActionExecute
	}
	return a
}

// open stores a new session for resp and returns its id.
func (r *Registry) open(comp, requester, node string, resp Response) (string, error) {
	r.smu.Lock()
	defer r.smu.Unlock()
	now := r.cfg.Now()
	r.sweepLocked(now, false)
	if len(r.sessions) >= r.cfg.MaxSessions {
		r.sweepLocked(now, true)
	}
	if len(r.sessions) >= r.cfg.MaxSessions {
		return "", &Error{Condition: stanza.ResourceConstraint, Text: "Too many command sessions are open; try again later."}
	}
	if ids := r.byRequester[requester]; len(ids) >= r.cfg.MaxSessionsPerRequester {
		evicted := false
		for _, id := range ids {
			if !r.sessions[id].busy {
				r.deleteLocked(id)
				evicted = true
				break
			}
		}
		if !evicted {
			return "", &Error{Condition: stanza.ResourceConstraint, Text: "You have too many command sessions open; try again later."}
		}
	}
	id := rand.Text()
	r.sessions[id] = &session{
		component: comp,
		node:      node,
		requester: requester,
		state:     resp.State,
		actions:   slices.Clone(resp.Actions),
		def:       resp.Default,
		expires:   now.Add(r.cfg.SessionTTL),
	}
	r.byRequester[requester] = append(r.byRequester[requester], id)
	return id, nil
}

// acquire finds the session of req, checks that it belongs to the requester,
// the component and the node, and marks it busy.
func (r *Registry) acquire(comp, requester string, req Request) (*session, error) {
	r.smu.Lock()
	defer r.smu.Unlock()
	now := r.cfg.Now()
	r.sweepLocked(now, false)
	s := r.sessions[req.SessionID]
	if s == nil || s.component != comp || s.node != req.Node || s.requester != requester {
		return nil, &Error{
			Condition: ErrBadSessionID.Condition,
			Specific:  ErrBadSessionID.Specific,
			Text:      ErrBadSessionID.Text,
		}
	}
	if !now.Before(s.expires) {
		if !s.busy {
			r.deleteLocked(req.SessionID)
		}
		return nil, &Error{
			Condition: ErrSessionExpired.Condition,
			Specific:  ErrSessionExpired.Specific,
			Text:      ErrSessionExpired.Text,
		}
	}
	if s.busy {
		return nil, &Error{Condition: stanza.Conflict, Text: "Another request of this session is still running."}
	}
	s.busy = true
	return s, nil
}

// release marks the session idle again, unchanged.
func (r *Registry) release(id string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	if s := r.sessions[id]; s != nil {
		s.busy = false
	}
}

// advance stores the next stage of a session and renews its lifetime.
func (r *Registry) advance(id string, resp Response) {
	r.smu.Lock()
	defer r.smu.Unlock()
	s := r.sessions[id]
	if s == nil {
		return
	}
	s.busy = false
	s.state = resp.State
	s.actions = slices.Clone(resp.Actions)
	s.def = resp.Default
	s.expires = r.cfg.Now().Add(r.cfg.SessionTTL)
}

// drop ends a session.
func (r *Registry) drop(id string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	r.deleteLocked(id)
}

func (r *Registry) deleteLocked(id string) {
	s := r.sessions[id]
	if s == nil {
		return
	}
	delete(r.sessions, id)
	ids := slices.DeleteFunc(r.byRequester[s.requester], func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(r.byRequester, s.requester)
	} else {
		r.byRequester[s.requester] = ids
	}
}

// sweepLocked deletes idle sessions that expired more than a TTL ago (or, when
// force is set, as soon as they expired).
// Expired sessions are kept for one more TTL so that a late requester learns
// that the session expired rather than that it is unknown.
// Unless forced, it runs at most once per half TTL.
func (r *Registry) sweepLocked(now time.Time, force bool) {
	if !force && now.Before(r.nextSweep) {
		return
	}
	r.nextSweep = now.Add(r.cfg.SessionTTL / 2)
	for id, s := range r.sessions {
		if s.busy {
			continue
		}
		deadline := s.expires
		if !force {
			deadline = deadline.Add(r.cfg.SessionTTL)
		}
		if !now.Before(deadline) {
			r.deleteLocked(id)
		}
	}
}

// Sessions returns the number of open sessions, including expired ones not
// yet swept.
func (r *Registry) Sessions() int {
	r.smu.Lock()
	defer r.smu.Unlock()
	r.sweepLocked(r.cfg.Now(), false)
	return len(r.sessions)
}
