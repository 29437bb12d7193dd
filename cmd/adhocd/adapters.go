package main

import (
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/adhocd/adhocd/transport/c2s"
	"github.com/adhocd/adhocd/transport/httpapi"
)

// The transports declare what they need of the account store and the
// session manager; these adapters translate, so that transport and sessman
// never import each other.

// admins is what decides who is an admin: *sessman.Manager.
type admins interface {
	IsAdmin(ctx context.Context, user jid.JID) (bool, error)
}

var _ admins = (*sessman.Manager)(nil)

// c2sAccounts serves the XMPP listener's logins.
type c2sAccounts struct {
	db     *store.DB
	logins *store.LoginRecorder
	admins admins
}

func (a c2sAccounts) SCRAM(ctx context.Context, user jid.JID, hash string) (c2s.SCRAMKeys, error) {
	k, err := a.db.SCRAM(ctx, user, hash)
	if err == nil {
		err = a.blocked(ctx, user) // the listener checks the proof first
	}
	return c2s.SCRAMKeys(k), mapStoreError(err, c2s.ErrUnknownUser, c2s.ErrBadPassword, c2s.ErrAccountDisabled)
}

func (a c2sAccounts) VerifyPassword(ctx context.Context, user jid.JID, password string) error {
	err := a.db.VerifyPassword(ctx, user, password)
	if err == nil {
		err = a.blocked(ctx, user)
	}
	return mapStoreError(err, c2s.ErrUnknownUser, c2s.ErrBadPassword, c2s.ErrAccountDisabled)
}

// blocked refuses a user whose sessions were ended with a block that has
// not expired yet, telling them until when.
func (a c2sAccounts) blocked(ctx context.Context, user jid.JID) error {
	b, ok, err := a.db.ActiveBlock(ctx, user, time.Now())
	if err != nil || !ok {
		return err
	}
	text := "You may not log in before " + b.Until.UTC().Format(time.RFC3339) + "."
	if b.Reason != "" {
		text = b.Reason + " " + text
	}
	return &c2s.RefusedError{Text: text}
}

func (a c2sAccounts) RecordLogin(_ context.Context, user jid.JID, at time.Time) error {
	a.logins.Record(user, at) // batched: see store.LoginRecorder
	return nil
}

func (a c2sAccounts) IsAdmin(ctx context.Context, user jid.JID) (bool, error) {
	return a.admins.IsAdmin(ctx, user)
}

// httpAccounts serves HTTP Basic authentication.
type httpAccounts struct {
	db     *store.DB
	admins admins
}

func (a httpAccounts) VerifyPassword(ctx context.Context, user jid.JID, password string) error {
	err := a.db.VerifyPassword(ctx, user, password)
	if err == nil {
		// A block refuses HTTP logins as it refuses XMPP ones. The server
		// caches verified passwords, but setting a block invalidates them
		// (sessman tells ManagerConfig.OnAccountChange).
		var blocked bool
		if _, blocked, err = a.db.ActiveBlock(ctx, user, time.Now()); blocked {
			err = store.ErrDisabled
		}
	}
	return mapStoreError(err, httpapi.ErrBadCredentials, httpapi.ErrBadCredentials, httpapi.ErrAccountDisabled)
}

func (a httpAccounts) IsAdmin(ctx context.Context, user jid.JID) (bool, error) {
	return a.admins.IsAdmin(ctx, user)
}

// httpKeys looks API keys up for HTTP callers.
type httpKeys struct{ db *store.DB }

func (k httpKeys) APIKey(ctx context.Context, secret string) (httpapi.APIKey, error) {
	key, err := k.db.APIKeyBySecret(ctx, secret)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.APIKey{}, httpapi.ErrBadCredentials
	case errors.Is(err, store.ErrRevoked):
		return httpapi.APIKey{}, httpapi.ErrKeyRevoked
	case err != nil:
		return httpapi.APIKey{}, err
	}
	return httpapi.APIKey{Name: key.Name, Domain: key.Domain, ReadOnly: key.ReadOnly}, nil
}

// httpAudit reads the audit for HTTP callers.
type httpAudit struct{ db *store.DB }

func (a httpAudit) Audit(ctx context.Context, q httpapi.AuditQuery) (int, []httpapi.AuditEntry, error) {
	total, entries, err := a.db.Audit(ctx, store.AuditQuery(q))
	out := make([]httpapi.AuditEntry, len(entries))
	for i, e := range entries {
		out[i] = httpapi.AuditEntry(e)
	}
	return total, out, err
}

// httpSessions runs the session API on the session manager.
type httpSessions struct {
	reg     *sessman.Registry
	manager *sessman.Manager
}

func (h httpSessions) Sessions(user jid.JID, offset, limit int) (int, []httpapi.Session) {
	req := sessman.ListRequest{Offset: offset, Limit: limit}
	if user.Localpart() != "" {
		req.User = user.Bare().String()
	}
	res, _ := h.reg.List(req) // a JID that parsed once parses again
	return res.Count, toHTTPSessions(res.Items)
}

func (h httpSessions) Session(user jid.JID, id string) (httpapi.Session, bool) {
	s, ok := h.manager.Session(user, id)
	return httpapi.Session(s), ok
}

func (h httpSessions) EndSessions(ctx context.Context, req httpapi.EndRequest) ([]httpapi.Session, error) {
	res, err := h.manager.EndSessions(ctx, sessman.EndRequest(req))
	return toHTTPSessions(res.Ended), err
}

func toHTTPSessions(in []sessman.Session) []httpapi.Session {
	out := make([]httpapi.Session, len(in))
	for i, s := range in {
		out[i] = httpapi.Session(s)
	}
	return out
}

// mapStoreError maps the store's errors to a transport's own.
func mapStoreError(err, unknown, badPassword, disabled error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return unknown
	case errors.Is(err, store.ErrBadPassword):
		return badPassword
	case errors.Is(err, store.ErrDisabled):
		return disabled
	}
	return err
}

var _ c2s.Registry = (*sessman.Registry)(nil)
