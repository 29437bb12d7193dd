package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
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
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, base64.StdEncoding.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("store: create secret %s: %w", name, err)
	}
	var value string
	if err := db.sql.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("store: read secret %s: %w", name, err)
	}
	secret, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(secret) == 0 {
		return nil, fmt.Errorf("store: secret %s is damaged", name)
	}
	return secret, nil
}
