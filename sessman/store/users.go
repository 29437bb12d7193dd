package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// UserQuery selects accounts for CountUsers and ListUsers.
// The zero value selects every account.
type UserQuery struct {
	// DisabledOnly selects only the disabled accounts.
	DisabledOnly bool
	// Domain, when set, selects only the accounts of that domain.
	Domain string
	// Limit is the most accounts ListUsers returns; 0 means no limit.
	// CountUsers ignores it.
	Limit int
}

// where is the WHERE clause of q, or "", and its arguments.
func (q UserQuery) where() (string, []any) {
	var conds []string
	var args []any
	if q.DisabledOnly {
		conds = append(conds, `disabled`)
	}
	if q.Domain != "" {
		args = append(args, "%@"+likeEscaper.Replace(q.Domain))
		conds = append(conds, fmt.Sprintf(`jid LIKE $%d ESCAPE '\'`, len(args)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// likeEscaper escapes the wildcards of a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// CountUsers returns the number of accounts q selects.
func (db *DB) CountUsers(ctx context.Context, q UserQuery) (int, error) {
	var n int
	where, args := q.where()
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count accounts: %w", err)
	}
	return n, nil
}

// ListUsers returns the bare JIDs of the accounts q selects, ordered by JID,
// at most q.Limit of them when it is positive.
func (db *DB) ListUsers(ctx context.Context, q UserQuery) ([]jid.JID, error) {
	where, args := q.where()
	query := `SELECT jid FROM accounts` + where + ` ORDER BY jid`
	if q.Limit > 0 {
		args = append(args, q.Limit)
		query += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	rows, err := db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list account JIDs: %w", err)
	}
	defer rows.Close()
	users := []jid.JID{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: list account JIDs: %w", err)
		}
		j, err := jid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("store: list account JIDs: stored account %q: %w", s, err)
		}
		users = append(users, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list account JIDs: %w", err)
	}
	return users, nil
}

// DeleteUsers deletes the accounts users and their credentials in one
// transaction.
// If one of them does not exist it returns ErrNotFound, naming it, and
// deletes none.
// A user named twice is deleted once.
func (db *DB) DeleteUsers(ctx context.Context, users []jid.JID) error {
	// The credentials go with the account: ON DELETE CASCADE.
	return db.eachUser(ctx, "delete", users, session.ChangeDeleted, `DELETE FROM accounts WHERE jid = $1`)
}

// SetUsersDisabled disables or enables the accounts users in one
// transaction.
// If one of them does not exist it returns ErrNotFound, naming it, and
// changes none.
func (db *DB) SetUsersDisabled(ctx context.Context, users []jid.JID, disabled bool) error {
	kind := session.ChangeEnabled
	if disabled {
		kind = session.ChangeDisabled
	}
	return db.eachUser(ctx, "set disabled of", users, kind, `UPDATE accounts SET disabled = $2 WHERE jid = $1`, disabled)
}

// eachUser runs query (the account key is $1, args are $2...) once for each
// distinct account of users and logs a change of kind for it, in one
// transaction that is rolled back with ErrNotFound when a run changes no row.
func (db *DB) eachUser(ctx context.Context, op string, users []jid.JID, kind, query string, args ...any) error {
	keys := make([]string, 0, len(users))
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		key, ok := accountKey(u)
		if !ok {
			return noAccount(key)
		}
		if !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, key := range keys {
			res, err := stmt.ExecContext(ctx, append([]any{key}, args...)...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("%w: %s", errNoAccount, key)
			}
			if err := db.logChange(ctx, tx, key, kind); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapErr(op, strings.Join(keys, ", "), err)
}
