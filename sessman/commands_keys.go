package sessman

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/store"
)

// KeysNS is the namespace of adhocd's own commands that manage API keys:
// KeysNS#create, KeysNS#list and KeysNS#revoke, for admin accounts only
// (never an API key), like the `adhocd apikey` command line. Creating and
// revoking are audited as apikey-create and apikey-revoke, the command
// line's actions, naming the key.
const KeysNS = "urn:adhocd:apikey"

const (
	fieldKeyName     = "name"
	fieldKeyReadOnly = "read-only"
	fieldKeyID       = "id"
)

// keyCommands are the API key commands.
func (m *Manager) keyCommands() []*command {
	create := m.newCommand(KeysNS+"#create", "Create an API Key", manageKeys,
		form("Creating an API Key", "The key is shown once; only its hash is kept.",
			adhoc.Field{Var: fieldKeyName, Type: adhoc.FieldTextSingle, Label: "Name", Required: true},
			adhoc.Field{Var: fieldKeyReadOnly, Type: adhoc.FieldBoolean, Label: "Read-only (may list, not end)"}),
		m.createKey)
	list := m.newCommand(KeysNS+"#list", "List API Keys", readAccounts, nil, m.listKeys)
	revoke := m.newCommand(KeysNS+"#revoke", "Revoke an API Key", manageKeys,
		form("Revoking an API Key", "The key stops working at once.",
			adhoc.Field{Var: fieldKeyID, Type: adhoc.FieldTextSingle, Label: "Key id", Required: true}),
		m.revokeKey)
	create.action, create.audits = "apikey-create", true
	revoke.action, revoke.audits = "apikey-revoke", true
	return []*command{create, list, revoke}
}

func (m *Manager) createKey(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	secret, key, err := m.accounts.CreateAPIKey(ctx, c, vals.Get(fieldKeyName), m.domain.Domainpart(), vals.Bool(fieldKeyReadOnly))
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, &adhoc.Error{Condition: stanza.Conflict, Text: "An active key has that name.", Err: err}
	case errors.Is(err, store.ErrInvalid):
		return nil, badRequest("Field %s: a name is 1 to 64 printable characters.", fieldKeyName)
	case err != nil:
		return nil, m.storeError(ctx, err)
	}
	return []adhoc.Field{
		{Var: fieldKeyID, Type: adhoc.FieldTextSingle, Label: "Key id", Values: []string{key.ID}},
		{Var: "key", Type: adhoc.FieldTextPrivate, Label: "API key, shown once", Values: []string{secret}},
	}, nil
}

func (m *Manager) listKeys(ctx context.Context, _ adhoc.Caller, _ adhoc.Values) ([]adhoc.Field, error) {
	keys, err := m.accounts.APIKeys(ctx)
	if err != nil {
		return nil, m.storeError(ctx, err)
	}
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		if k.Domain != m.domain.Domainpart() {
			continue // another domain's, which the database may hold
		}
		state := "active"
		if !k.RevokedAt.IsZero() {
			state = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
		}
		access := "read-write"
		if k.ReadOnly {
			access = "read-only"
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s %s", k.ID, k.Name, k.Domain, access, state))
	}
	return notes(lines), nil
}

func (m *Manager) revokeKey(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	id := vals.Get(fieldKeyID)
	err := m.accounts.RevokeAPIKey(ctx, c, m.domain.Domainpart(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &adhoc.Error{Condition: stanza.ItemNotFound, Text: fmt.Sprintf("There is no API key %q.", id), Err: err}
	}
	if err != nil {
		return nil, m.storeError(ctx, err)
	}
	return notes([]string{"Revoked API key " + id + "."}), nil
}
