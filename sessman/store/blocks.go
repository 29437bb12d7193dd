package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// Block keeps a user from logging in until it ends.
type Block struct {
	User   jid.JID // bare
	Until  time.Time
	Reason string
}

// SetBlock blocks the logins of user until until, with a reason shown to
// the client, and keeps the block across restarts.
// A block replaces the user's current one only if it ends later: a block is
// never shortened, and its reason is the one of the block that ends last.
// user must have a localpart (ErrInvalid otherwise); a resourcepart is
// ignored.
// until is kept to the millisecond.
func (db *DB) SetBlock(ctx context.Context, user jid.JID, until time.Time, reason string) error {
	key, ok := accountKey(user)
	if !ok {
		return fmt.Errorf("%w: block %q: a user JID needs a localpart", ErrInvalid, key)
	}
	if until.IsZero() {
		return fmt.Errorf("%w: block %s: no end time", ErrInvalid, key)
	}
	// The WHERE of DO UPDATE keeps a block that ends later (SQLite 3.24+
	// and PostgreSQL 9.5+ both have it).
	return wrapErr("set block of", key, db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO blocks (jid, until_ms, reason) VALUES ($1, $2, $3)
			ON CONFLICT (jid) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason
			WHERE excluded.until_ms > blocks.until_ms`,
			key, until.UnixMilli(), reason)
		if err != nil {
			return err
		}
		return db.logChange(ctx, tx, key, session.ChangeBlocked)
	}))
}

// ClearBlock lifts the block of user, if any, and returns it and true if
// it was in force at now (one that had ended already reads as no block).
// Only a block that was there is logged as a change.
func (db *DB) ClearBlock(ctx context.Context, user jid.JID, now time.Time) (Block, bool, error) {
	key, ok := accountKey(user)
	if !ok {
		return Block{}, false, nil // a JID without a localpart is never blocked
	}
	var (
		lifted Block
		found  bool
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			untilMS int64
			reason  string
		)
		// RETURNING: SQLite 3.35+ and PostgreSQL both have it.
		err := tx.QueryRowContext(ctx, `DELETE FROM blocks WHERE jid = $1 RETURNING until_ms, reason`, key).Scan(&untilMS, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if untilMS > now.UnixMilli() {
			lifted = Block{User: user.Bare(), Until: time.UnixMilli(untilMS).UTC(), Reason: reason}
			found = true
		}
		return db.logChange(ctx, tx, key, session.ChangeUnblocked)
	})
	if err != nil {
		return Block{}, false, wrapErr("clear block of", key, err)
	}
	return lifted, found, nil
}

// Blocks returns the blocks in force at now, ordered by user.
func (db *DB) Blocks(ctx context.Context, now time.Time) ([]Block, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT jid, until_ms, reason FROM blocks WHERE until_ms > $1 ORDER BY jid`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: list blocks: %w", err)
	}
	defer rows.Close()
	var blocks []Block
	for rows.Next() {
		var (
			key     string
			untilMS int64
			reason  string
		)
		if err := rows.Scan(&key, &untilMS, &reason); err != nil {
			return nil, fmt.Errorf("store: list blocks: %w", err)
		}
		user, err := jid.Parse(key)
		if err != nil {
			continue // not written by SetBlock, which keeps valid bare JIDs only
		}
		blocks = append(blocks, Block{User: user, Until: time.UnixMilli(untilMS).UTC(), Reason: reason})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list blocks: %w", err)
	}
	return blocks, nil
}

// ActiveBlock returns the block of user and true if one is in force at now.
// A block that ended at or before now is not in force; it is deleted then,
// best effort, so a login only writes once after a block ends.
func (db *DB) ActiveBlock(ctx context.Context, user jid.JID, now time.Time) (Block, bool, error) {
	key, ok := accountKey(user)
	if !ok {
		return Block{}, false, nil // a JID without a localpart is never blocked
	}
	var (
		untilMS int64
		reason  string
	)
	err := db.stmt.activeBlock.QueryRowContext(ctx, key).Scan(&untilMS, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Block{}, false, nil
	}
	if err != nil {
		return Block{}, false, wrapErr("get block of", key, err)
	}
	nowMS := now.UnixMilli()
	if untilMS <= nowMS {
		// The condition spares a block set again meanwhile. A failure only
		// leaves an ended block in the table, which reads as no block.
		_, _ = db.sql.ExecContext(ctx, `DELETE FROM blocks WHERE jid = $1 AND until_ms <= $2`, key, nowMS)
		return Block{}, false, nil
	}
	return Block{User: user.Bare(), Until: time.UnixMilli(untilMS).UTC(), Reason: reason}, true, nil
}
