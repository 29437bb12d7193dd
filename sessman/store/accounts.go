package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// Account is one account of the store.
type Account struct {
	JID       jid.JID // bare
	Admin     bool
	Disabled  bool
	CreatedAt time.Time
	LastLogin time.Time // zero if never
}

// accountKey returns the key of user's account, its bare JID, and false if
// user has no localpart and so cannot name an account.
func accountKey(user jid.JID) (string, bool) {
	if user.Localpart() == "" {
		return user.String(), false
	}
	return user.Bare().String(), true
}

// noAccount is the error of a JID that cannot name an account, for the
// methods that look an account up: no such account exists.
func noAccount(key string) error {
	return fmt.Errorf("%w: %q has no localpart", errNoAccount, key)
}

// AddUser creates the account user with password, returning ErrExists if it
// exists already.
// user must have a localpart; a resourcepart is ignored.
func (db *DB) AddUser(ctx context.Context, user jid.JID, password string, admin bool) error {
	key, ok := accountKey(user)
	if !ok {
		return fmt.Errorf("store: add %q: an account JID needs a localpart", key)
	}
	creds, err := newCredentials(password)
	if err != nil {
		return wrapErr("add", key, err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO accounts (jid, admin, disabled, created_at) VALUES ($1, $2, FALSE, $3)
			ON CONFLICT (jid) DO NOTHING`,
			key, admin, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %s", ErrExists, key)
		}
		if err := putCredentials(ctx, tx, key, creds); err != nil {
			return err
		}
		return db.logChange(ctx, tx, key, session.ChangeAdded)
	})
	return wrapErr("add", key, err)
}

// DeleteUser deletes the account user and its credentials, returning
// ErrNotFound if it does not exist.
func (db *DB) DeleteUser(ctx context.Context, user jid.JID) error {
	return db.DeleteUsers(ctx, []jid.JID{user})
}

// SetPassword replaces the credentials of user with ones for password, with
// new salts, returning ErrNotFound if the account does not exist.
func (db *DB) SetPassword(ctx context.Context, user jid.JID, password string) error {
	key, ok := accountKey(user)
	if !ok {
		return noAccount(key)
	}
	creds, err := newCredentials(password)
	if err != nil {
		return wrapErr("set password of", key, err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE jid = $1`, key).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", errNoAccount, key)
		}
		if err != nil {
			return err
		}
		if err := putCredentials(ctx, tx, key, creds); err != nil {
			return err
		}
		return db.logChange(ctx, tx, key, session.ChangePassword)
	})
	return wrapErr("set password of", key, err)
}

// SetDisabled disables or enables the account user, returning ErrNotFound if
// it does not exist.
func (db *DB) SetDisabled(ctx context.Context, user jid.JID, disabled bool) error {
	return db.SetUsersDisabled(ctx, []jid.JID{user}, disabled)
}

// SetAdmin grants or revokes the admin flag of the account user, returning
// ErrNotFound if it does not exist.
func (db *DB) SetAdmin(ctx context.Context, user jid.JID, admin bool) error {
	key, ok := accountKey(user)
	if !ok {
		return noAccount(key)
	}
	return wrapErr("set admin of", key, db.inTx(ctx, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, key, `UPDATE accounts SET admin = $2 WHERE jid = $1`, admin); err != nil {
			return err
		}
		return db.logChange(ctx, tx, key, session.ChangeAdmin)
	}))
}

// RecordLogin sets the last login of the account user to at (a zero at
// clears it), returning ErrNotFound if it does not exist.
func (db *DB) RecordLogin(ctx context.Context, user jid.JID, at time.Time) error {
	key, ok := accountKey(user)
	if !ok {
		return noAccount(key)
	}
	var ms sql.NullInt64
	if !at.IsZero() {
		ms = sql.NullInt64{Int64: at.UnixMilli(), Valid: true}
	}
	return wrapErr("record login of", key,
		execOne(ctx, db.sql, key, `UPDATE accounts SET last_login = $2 WHERE jid = $1`, ms))
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// execOne runs a statement on the account key ($1; args are $2...), and
// returns ErrNotFound if it changed no row.
func execOne(ctx context.Context, db execer, key, query string, args ...any) error {
	res, err := db.ExecContext(ctx, query, append([]any{key}, args...)...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", errNoAccount, key)
	}
	return nil
}

// accountColumns are the columns scanAccount reads, in order.
const accountColumns = `jid, admin, disabled, created_at, last_login`

// User returns the account user, or ErrNotFound.
func (db *DB) User(ctx context.Context, user jid.JID) (Account, error) {
	key, ok := accountKey(user)
	if !ok {
		return Account{}, noAccount(key)
	}
	row := db.sql.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE jid = $1`, key)
	a, err := scanAccount(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: %s", errNoAccount, key)
	}
	return a, wrapErr("get", key, err)
}

// Users returns every account, ordered by JID.
func (db *DB) Users(ctx context.Context) ([]Account, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY jid`)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	defer rows.Close()
	var accounts []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list accounts: %w", err)
		}
		accounts = append(accounts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	return accounts, nil
}

// HasAdmin reports whether any account, disabled or not, is an admin.
func (db *DB) HasAdmin(ctx context.Context) (bool, error) {
	var has bool
	if err := db.sql.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE admin)`).Scan(&has); err != nil {
		return false, fmt.Errorf("store: look for an admin: %w", err)
	}
	return has, nil
}

// SCRAM returns the stored keys of user for hash "SHA-1" or "SHA-256" (any
// other is an error).
// It returns ErrNotFound for an unknown user, and session.ErrDisabled together with
// the keys for a disabled one, so that a SCRAM server can check the proof
// before it tells the client the account is disabled.
func (db *DB) SCRAM(ctx context.Context, user jid.JID, hash string) (session.SCRAMKeys, error) {
	if _, err := hashFunc(hash); err != nil {
		return session.SCRAMKeys{}, err
	}
	key, ok := accountKey(user)
	if !ok {
		return session.SCRAMKeys{}, noAccount(key)
	}
	keys, disabled, err := db.credentials(ctx, key, hash)
	if err != nil {
		return session.SCRAMKeys{}, wrapErr("get SCRAM keys of", key, err)
	}
	if disabled {
		return keys, fmt.Errorf("%w: %s", session.ErrDisabled, key)
	}
	return keys, nil
}

// VerifyPassword checks a plain password (SASL PLAIN, HTTP Basic) against the
// SCRAM-SHA-256 keys of user in constant time.
// It returns ErrNotFound for an unknown user, session.ErrBadPassword for a wrong
// password, and session.ErrDisabled for the right password of a disabled account.
// An unknown user costs the same key derivation as a known one, so that the
// time taken does not tell whether an account exists.
func (db *DB) VerifyPassword(ctx context.Context, user jid.JID, password string) error {
	key, ok := accountKey(user)
	var (
		keys     session.SCRAMKeys
		disabled bool
		err      = noAccount(key)
	)
	if ok {
		keys, disabled, err = db.credentials(ctx, key, HashSHA256)
	}
	if errors.Is(err, ErrNotFound) {
		// Spend the time a known account would cost; the result is meaningless.
		passwordMatches(HashSHA256, password, session.SCRAMKeys{Salt: make([]byte, saltLen), Iterations: iterations})
		return err
	}
	if err != nil {
		return wrapErr("verify password of", key, err)
	}
	if !passwordMatches(HashSHA256, password, keys) {
		return fmt.Errorf("%w: %s", session.ErrBadPassword, key)
	}
	if disabled {
		return fmt.Errorf("%w: %s", session.ErrDisabled, key)
	}
	return nil
}

// credentials reads the keys of account key for hash and whether the account
// is disabled, or returns ErrNotFound.
func (db *DB) credentials(ctx context.Context, key, hash string) (session.SCRAMKeys, bool, error) {
	var (
		disabled                   bool
		salt, storedKey, serverKey string
		keys                       session.SCRAMKeys
	)
	err := db.stmt.credentials.QueryRowContext(ctx, key, hash).Scan(&disabled, &salt, &keys.Iterations, &storedKey, &serverKey)
	if errors.Is(err, sql.ErrNoRows) {
		return session.SCRAMKeys{}, false, fmt.Errorf("%w: %s", errNoAccount, key)
	}
	if err != nil {
		return session.SCRAMKeys{}, false, err
	}
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&keys.Salt, salt}, {&keys.StoredKey, storedKey}, {&keys.ServerKey, serverKey}} {
		if *f.dst, err = base64.StdEncoding.DecodeString(f.src); err != nil {
			return session.SCRAMKeys{}, false, fmt.Errorf("decode stored %s credentials: %w", hash, err)
		}
	}
	return keys, disabled, nil
}

// putCredentials stores creds for account key, replacing any it had.
func putCredentials(ctx context.Context, tx *sql.Tx, key string, creds []credential) error {
	enc := base64.StdEncoding.EncodeToString
	for _, c := range creds {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO scram_credentials (jid, hash, salt, iterations, stored_key, server_key)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (jid, hash) DO UPDATE SET salt = excluded.salt, iterations = excluded.iterations,
				stored_key = excluded.stored_key, server_key = excluded.server_key`,
			key, c.hash, enc(c.keys.Salt), c.keys.Iterations, enc(c.keys.StoredKey), enc(c.keys.ServerKey))
		if err != nil {
			return fmt.Errorf("store %s credentials: %w", c.hash, err)
		}
	}
	return nil
}

// scanAccount reads the accountColumns of one row.
func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var (
		s         string
		a         Account
		createdAt int64
		lastLogin sql.NullInt64
	)
	if err := row.Scan(&s, &a.Admin, &a.Disabled, &createdAt, &lastLogin); err != nil {
		return Account{}, err
	}
	j, err := jid.Parse(s)
	if err != nil {
		return Account{}, fmt.Errorf("stored account %q: %w", s, err)
	}
	a.JID = j
	a.CreatedAt = time.UnixMilli(createdAt).UTC()
	if lastLogin.Valid {
		a.LastLogin = time.UnixMilli(lastLogin.Int64).UTC()
	}
	return a, nil
}
