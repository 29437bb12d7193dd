package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/adhocd/adhocd/sessman/session"
)

// logChange records, inside the transaction that makes it, a change to the
// account key, so that other processes on the database learn of it: a
// running server, while the command line changes an account.
func (db *DB) logChange(ctx context.Context, tx *sql.Tx, key, kind string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO account_changes (at, jid, kind, origin) VALUES ($1, $2, $3, $4)`,
		time.Now().UnixMilli(), key, kind, db.origin)
	if err != nil {
		return fmt.Errorf("log account change: %w", err)
	}
	return nil
}

// maxChanges bounds a page of Changes.
const maxChanges = 1000

// Changes returns the account changes after seq, oldest first, at most
// 1000 of them: call it again from the last one for more.
func (db *DB) Changes(ctx context.Context, after int64) ([]session.AccountChange, error) {
	rows, err := db.sql.QueryContext(ctx,
		`SELECT seq, at, jid, kind, origin FROM account_changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, maxChanges)
	if err != nil {
		return nil, fmt.Errorf("store: list account changes: %w", err)
	}
	defer rows.Close()
	var changes []session.AccountChange
	for rows.Next() {
		var (
			c  session.AccountChange
			ms int64
		)
		if err := rows.Scan(&c.Seq, &ms, &c.User, &c.Kind, &c.Origin); err != nil {
			return nil, fmt.Errorf("store: list account changes: %w", err)
		}
		c.At = time.UnixMilli(ms).UTC()
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list account changes: %w", err)
	}
	return changes, nil
}

// LastChange returns the seq of the newest account change, 0 if none.
func (db *DB) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	// With every row pruned this is 0, which is right too: seq never
	// goes back (AUTOINCREMENT), so every later change has a larger one.
	err := db.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM account_changes`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("store: last account change: %w", err)
	}
	return seq, nil
}

// PruneChanges deletes the account changes made before t.
func (db *DB) PruneChanges(ctx context.Context, before time.Time) error {
	if _, err := db.sql.ExecContext(ctx, `DELETE FROM account_changes WHERE at < $1`, before.UnixMilli()); err != nil {
		return fmt.Errorf("store: prune account changes: %w", err)
	}
	return nil
}

// Origin names this DB handle in the changes it logs, so that a process can
// tell its own changes from those of others.
func (db *DB) Origin() string { return db.origin }
