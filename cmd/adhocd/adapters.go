package main

import (
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/adhocd/adhocd/transport/c2s"
)

// accounts adapts the account store to what the c2s listener asks of it:
// the two packages never import each other.
type accounts struct {
	db     *store.DB
	logins *store.LoginRecorder
}

func (a accounts) SCRAM(ctx context.Context, user jid.JID, hash string) (c2s.SCRAMKeys, error) {
	k, err := a.db.SCRAM(ctx, user, hash)
	return c2s.SCRAMKeys(k), c2sError(err)
}

func (a accounts) VerifyPassword(ctx context.Context, user jid.JID, password string) error {
	return c2sError(a.db.VerifyPassword(ctx, user, password))
}

func (a accounts) RecordLogin(_ context.Context, user jid.JID, at time.Time) error {
	a.logins.Record(user, at) // batched: see store.LoginRecorder
	return nil
}

func c2sError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c2s.ErrUnknownUser
	case errors.Is(err, store.ErrDisabled):
		return c2s.ErrAccountDisabled
	case errors.Is(err, store.ErrBadPassword):
		return c2s.ErrBadPassword
	}
	return err
}

var _ c2s.Registry = (*sessman.Registry)(nil)
