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
	return c2s.SCRAMKeys(k), mapStoreError(err, c2s.ErrUnknownUser, c2s.ErrBadPassword, c2s.ErrAccountDisabled)
}

func (a c2sAccounts) VerifyPassword(ctx context.Context, user jid.JID, password string) error {
	return mapStoreError(a.db.VerifyPassword(ctx, user, password), c2s.ErrUnknownUser, c2s.ErrBadPassword, c2s.ErrAccountDisabled)
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
	return mapStoreError(a.db.VerifyPassword(ctx, user, password), httpapi.ErrBadCredentials, httpapi.ErrBadCredentials, httpapi.ErrAccountDisabled)
}

func (a httpAccounts) IsAdmin(ctx context.Context, user jid.JID) (bool, error) {
	return a.admins.IsAdmin(ctx, user)
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
