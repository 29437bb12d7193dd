package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
)

// secretLen is the length of a secret Secret creates.
const secretLen = 32

// Secret returns the server's secret called name, creating it (32 random
// bytes) on first use. It is the same for every process on the database
// and survives restarts: what it keys, such as the fake SCRAM salts of
// unknown users, stays stable. Concurrent first uses agree on one value.
func (db *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	b := make([]byte, secretLen)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	key := "secret:" + name
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		key, base64.StdEncoding.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("store: create secret %s: %w", name, err)
	}
	value, _, err := db.setting(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("store: read secret %s: %w", name, err)
	}
	secret, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(secret) == 0 {
		return nil, fmt.Errorf("store: secret %s is damaged", name)
	}
	return secret, nil
}

// settingServedDomain names the domain a server on the database serves.
const settingServedDomain = "served-domain"

// SetServedDomain records the domain that the server on this database
// serves, so that the command line can refuse to make what that server
// would never accept (an API key of another domain).
func (db *DB) SetServedDomain(ctx context.Context, domain string) error {
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, settingServedDomain, domain); err != nil {
		return fmt.Errorf("store: record the served domain: %w", err)
	}
	return nil
}

// ServedDomain returns the domain SetServedDomain recorded, and false if no
// server has run on the database yet.
func (db *DB) ServedDomain(ctx context.Context) (string, bool, error) {
	d, ok, err := db.setting(ctx, settingServedDomain)
	if err != nil {
		return "", false, fmt.Errorf("store: read the served domain: %w", err)
	}
	return d, ok, nil
}

func (db *DB) setting(ctx context.Context, name string) (string, bool, error) {
	var value string
	err := db.sql.QueryRowContext(ctx, `SELECT value FROM server_settings WHERE name = $1`, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, err
}
