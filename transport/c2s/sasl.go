package c2s

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
)

// Accounts is the accounts service as the listener uses it.
// *sessman.Accounts implements it.
type Accounts interface {
	// SCRAM returns the stored SCRAM keys of user for hash "SHA-1" or
	// "SHA-256": session.ErrUnknownUser, or session.ErrDisabled (a
	// *session.BlockedError) together with the keys.
	SCRAM(ctx context.Context, user jid.JID, hash string) (session.SCRAMKeys, error)
	// VerifyPassword checks a plain password: session.ErrUnknownUser,
	// session.ErrBadPassword, session.ErrDisabled.
	VerifyPassword(ctx context.Context, user jid.JID, password string) error
	// RecordLogin notes a successful login.
	RecordLogin(ctx context.Context, user jid.JID, at time.Time) error
	// Caller returns the caller of an account that authenticated with auth,
	// for its in-band commands: whether it is an admin now.
	Caller(ctx context.Context, user jid.JID, auth string) (adhoc.Caller, error)
}

// saslFailure is a failed attempt: the client is told and may retry.
type saslFailure struct {
	condition string // RFC 6120 §6.5
	text      string
	cause     error  // logged, never sent
	user      string // the bare JID that failed to authenticate, if known
}

func (f *saslFailure) Error() string { return "c2s: sasl " + f.condition }

var errAborted = &saslFailure{condition: "aborted"}

// mechanisms lists what we offer, strongest first. Never a -PLUS variant:
// channel binding is not implemented.
func (c *conn) mechanisms() []string {
	m := []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}
	if c.secure {
		m = append(m, "PLAIN")
	}
	return m
}

// negotiateSASL authenticates the client (RFC 6120 §6), allowing a few
// retries after failures.
func (c *conn) negotiateSASL() error {
	var w xmlWriter
	w.start("stream:features", "xmlns:stream", nsStream)
	w.start("mechanisms", "xmlns", nsSASL)
	for _, m := range c.mechanisms() {
		w.elem("mechanism", m)
	}
	w.end("mechanisms")
	w.end("stream:features")
	if err := c.out.write(w.bytes()); err != nil {
		return err
	}
	for failures := 0; ; {
		el, err := c.readElement()
		if err != nil {
			return err
		}
		if !el.is(nsSASL, "auth") {
			return newStreamErr("not-authorized", "Authenticate before sending anything else.")
		}
		user, err := c.authenticate(el)
		var f *saslFailure
		if errors.As(err, &f) {
			c.countFailure(f)
			if f.cause != nil {
				c.log.Error().Err(f.cause).Str("condition", f.condition).Msg("authentication failed")
			} else {
				c.log.Info().Str("condition", f.condition).Msg("authentication failed")
			}
			if err := c.out.write(saslFailureElement(f)); err != nil {
				return err
			}
			if failures++; failures >= c.srv.cfg.MaxAuthFailures {
				return newStreamErr("policy-violation", "Too many failed authentication attempts.")
			}
			continue
		}
		if err != nil {
			return err
		}
		c.user = user
		c.srv.uncount(c)
		c.srv.failures.SucceedLogin(user.String(), c.remote.String())
		c.log = c.log.With().Stringer("jid", user).Logger()
		if err := c.srv.accounts.RecordLogin(context.Background(), user, time.Now()); err != nil {
			c.log.Error().Err(err).Msg("recording last login failed")
		}
		return nil
	}
}

// countFailure records a failed attempt with the limits: a wrong password
// or an unknown user against the account and the address; an abort, a
// malformed message or a bad mechanism against the address alone, since an
// exchange that stops after the server's first message has still told the
// client that account's salt. Refusals (too many failures, a disabled
// account, a store that is down) are not the client's attempts.
func (c *conn) countFailure(f *saslFailure) {
	switch {
	case f.condition == "temporary-auth-failure", f.condition == "account-disabled":
	case f.condition == "not-authorized" && f.user != "":
		c.srv.failures.FailLogin(f.user, c.remote.String())
	default:
		c.srv.failures.FailAddr(c.remote.String())
	}
}

func saslFailureElement(f *saslFailure) []byte {
	var w xmlWriter
	w.start("failure", "xmlns", nsSASL)
	w.empty(f.condition)
	if f.text != "" {
		w.elem("text", f.text, "xml:lang", "en")
	}
	w.end("failure")
	return w.bytes()
}

// authenticate runs one SASL exchange. A *saslFailure means the client may
// try again; any other error ends the stream.
func (c *conn) authenticate(auth element) (jid.JID, error) {
	mech := auth.attr("mechanism")
	offered := false
	for _, m := range c.mechanisms() {
		offered = offered || m == mech
	}
	if !offered {
		return jid.JID{}, &saslFailure{condition: "invalid-mechanism", text: "Mechanism " + mech + " is not offered."}
	}
	initial, err := decodeSASL(auth.text())
	if err != nil {
		return jid.JID{}, err
	}
	ex := &saslExchange{c: c}
	user, err := ex.run(mech, initial)
	var f *saslFailure
	if err != nil && !errors.As(err, &f) && ex.challenged {
		// The client left, timed out or broke the stream after a
		// challenge: an abandoned exchange counts like an aborted one.
		c.srv.failures.FailAddr(c.remote.String())
	}
	return user, err
}

func (ex *saslExchange) run(mech string, initial []byte) (jid.JID, error) {
	if mech == "PLAIN" {
		if initial == nil {
			var err error
			if initial, err = ex.challenge(nil); err != nil {
				return jid.JID{}, err
			}
		}
		return ex.c.plain(initial)
	}
	return ex.c.scram(ex, mech, initial)
}

// saslExchange sends challenges and reads the client's responses.
type saslExchange struct {
	c          *conn
	challenged bool // a challenge was sent
}

func (ex *saslExchange) challenge(data []byte) ([]byte, error) {
	var w xmlWriter
	w.elem("challenge", base64.StdEncoding.EncodeToString(data), "xmlns", nsSASL)
	if err := ex.c.out.write(w.bytes()); err != nil {
		return nil, err
	}
	ex.challenged = true
	el, err := ex.c.readElement()
	if err != nil {
		return nil, err
	}
	switch {
	case el.is(nsSASL, "abort"):
		return nil, errAborted
	case el.is(nsSASL, "response"):
		resp, err := decodeSASL(el.text())
		if resp == nil && err == nil {
			resp = []byte{}
		}
		return resp, err
	}
	return nil, newStreamErr("not-authorized", "Expected a SASL <response/>.")
}

// decodeSASL decodes a SASL payload: "" is no data, "=" is empty data.
func decodeSASL(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return nil, nil
	case "=":
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &saslFailure{condition: "incorrect-encoding", text: "The SASL data is not valid base64."}
	}
	return b, nil
}

// plain implements RFC 4616, offered only over TLS.
func (c *conn) plain(msg []byte) (jid.JID, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return jid.JID{}, &saslFailure{condition: "malformed-request", text: "PLAIN expects authzid NUL authcid NUL password."}
	}
	user, err := c.userJID(string(parts[1]), string(parts[0]))
	if err != nil {
		return jid.JID{}, err
	}
	err = c.srv.accounts.VerifyPassword(context.Background(), user, string(parts[2]))
	if err != nil {
		return jid.JID{}, failedAs(accountFailure(err), user)
	}
	var w xmlWriter
	w.empty("success", "xmlns", nsSASL)
	return user, c.out.write(w.bytes())
}

// userJID turns a SASL authentication identity (a localpart or a bare JID of
// our domain) into a bare JID, and checks that the authorization identity, if
// any, is that same JID.
func (c *conn) userJID(authcid, authzid string) (jid.JID, error) {
	user, err := c.parseUser(authcid, authzid)
	if err != nil {
		return user, err
	}
	if wait := c.srv.failures.CheckLogin(user.String(), c.remote.String()); wait > 0 {
		return jid.JID{}, &saslFailure{condition: "temporary-auth-failure",
			text: fmt.Sprintf("Too many failed logins; try again in %d seconds.", int(wait.Seconds())+1)}
	}
	return user, nil
}

func (c *conn) parseUser(authcid, authzid string) (jid.JID, error) {
	notAuthorized := &saslFailure{condition: "not-authorized"}
	local := authcid
	if at := strings.LastIndexByte(authcid, '@'); at >= 0 {
		if authcid[at+1:] != c.srv.cfg.Domain {
			return jid.JID{}, notAuthorized
		}
		local = authcid[:at]
	}
	user, err := jid.New(local, c.srv.cfg.Domain, "")
	if err != nil || local == "" {
		return jid.JID{}, notAuthorized
	}
	if authzid != "" && authzid != user.String() {
		return jid.JID{}, &saslFailure{condition: "invalid-authzid", text: "You may only act as " + user.String() + "."}
	}
	return user, nil
}

// accountFailure maps an error of the accounts service to what the client
// is told.
func accountFailure(err error) error {
	var blocked *session.BlockedError
	switch {
	case errors.As(err, &blocked):
		return &saslFailure{condition: "account-disabled", text: blocked.Text()}
	case errors.Is(err, session.ErrDisabled):
		return &saslFailure{condition: "account-disabled", text: "This account is disabled."}
	case errors.Is(err, session.ErrUnknownUser), errors.Is(err, session.ErrBadPassword):
		return &saslFailure{condition: "not-authorized"}
	}
	return &saslFailure{condition: "temporary-auth-failure", text: "Authentication is not available right now; try again later.", cause: err}
}

// failedAs notes which user a failure was for, so it counts against them.
func failedAs(err error, user jid.JID) error {
	var f *saslFailure
	if errors.As(err, &f) {
		f.user = user.String()
	}
	return err
}
