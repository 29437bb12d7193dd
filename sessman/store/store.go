package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver

	"github.com/adhocd/adhocd/sessman/session"
)

// Errors returned by the methods, wrapped with the account's JID or the
// record concerned.
// Compare them with errors.Is.
// The errors of a login are those of package session: an unknown account
// matches both ErrNotFound and session.ErrUnknownUser, an unknown API key
// both ErrNotFound and session.ErrUnknownKey; a wrong password is
// session.ErrBadPassword, a disabled account session.ErrDisabled, a revoked
// key session.ErrKeyRevoked.
var (
	// ErrNotFound is returned for a record that does not exist: an account,
	// an API key.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned by AddUser for an account that already exists,
	// and by CreateAPIKey for the name of an active key (the message then
	// names the API key).
	ErrExists = errors.New("store: account already exists")
	// ErrInvalidPassword is returned by AddUser and SetPassword for a
	// password that is empty, longer than 1024 bytes or not valid UTF-8.
	ErrInvalidPassword = errors.New("store: invalid password")
	// ErrInvalid is returned for an argument the store refuses: an API key
	// name or domain, a block of a JID without a localpart, an audit entry
	// without actor or action, a negative audit page.
	ErrInvalid = errors.New("store: invalid input")
	// ErrDiskFull is returned for a write that failed because the disk of
	// the database is full (SQLITE_FULL, ENOSPC). The write was rolled
	// back: nothing of it is kept, and the same write may succeed once
	// space is freed.
	ErrDiskFull = errors.New("store: disk full")
)

// sqliteFull is SQLITE_FULL, the primary result code of a write that found
// the disk full.
const sqliteFull = 13

// diskFull marks err with ErrDiskFull if the disk was full, and returns it
// otherwise as it is.
func diskFull(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteFull || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// kindError is an error of the package with a message of its own that
// matches one or more sentinels: errors.Is(err, ErrNotFound) holds, and the
// text names the right thing.
type kindError struct {
	sentinels []error
	msg       string
}

// Error returns the message.
func (e *kindError) Error() string { return e.msg }

// Is reports whether target is one of the sentinels.
func (e *kindError) Is(target error) bool {
	for _, s := range e.sentinels {
		if target == s {
			return true
		}
	}
	return false
}

// The not-found errors of accounts and API keys.
var (
	errNoAccount = &kindError{sentinels: []error{ErrNotFound, session.ErrUnknownUser}, msg: "store: no such account"}
	errNoAPIKey  = &kindError{sentinels: []error{ErrNotFound, session.ErrUnknownKey}, msg: "store: no such API key"}
)

// busyTimeoutMS is how long a statement waits for another writer (another
// connection or another adhocd process on the same file) before failing.
const busyTimeoutMS = 10000

// migrations are the schema changes in order: migrations[i] takes a database
// from user_version i to i+1.
// Never edit an entry that has been released; append a new one.
// The SQL must stay runnable by PostgreSQL too.
var migrations = []string{
	`CREATE TABLE accounts (
	jid        TEXT    NOT NULL PRIMARY KEY,
	admin      BOOLEAN NOT NULL DEFAULT FALSE,
	disabled   BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT  NOT NULL,
	last_login BIGINT
);
CREATE TABLE scram_credentials (
	jid        TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	hash       TEXT    NOT NULL,
	salt       TEXT    NOT NULL,
	iterations INTEGER NOT NULL,
	stored_key TEXT    NOT NULL,
	server_key TEXT    NOT NULL,
	PRIMARY KEY (jid, hash)
);`,
	// Version 2: blocks, API keys and the audit of admin actions.
	// See blocks.go, apikeys.go and audit.go for how they are used.
	//
	// blocks: one row per bare JID; until_ms is when the block ends.
	// api_keys: revoked_at and last_used are NULL until set; active names are
	// unique (a partial index, which PostgreSQL has too).
	// audit: id is assigned by the database and only grows: SQLite's
	// INTEGER PRIMARY KEY AUTOINCREMENT never reuses an id, even after
	// deletes. This one clause is SQLite's; PostgreSQL's schema writes
	// "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" instead, and the
	// rest is shared. targets holds the JSON array of the entry's targets
	// for display; audit_targets holds them once more, one row per distinct
	// target, for exact-match filtering through its primary key.
	`CREATE TABLE blocks (
	jid      TEXT   NOT NULL PRIMARY KEY,
	until_ms BIGINT NOT NULL,
	reason   TEXT   NOT NULL DEFAULT ''
);
CREATE TABLE api_keys (
	id          TEXT    NOT NULL PRIMARY KEY,
	name        TEXT    NOT NULL,
	domain      TEXT    NOT NULL,
	read_only   BOOLEAN NOT NULL DEFAULT FALSE,
	secret_hash TEXT    NOT NULL,
	created_at  BIGINT  NOT NULL,
	revoked_at  BIGINT,
	last_used   BIGINT
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
CREATE TABLE audit (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	time        BIGINT  NOT NULL,
	actor       TEXT    NOT NULL,
	auth        TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL,
	targets     TEXT    NOT NULL DEFAULT '[]',
	outcome     TEXT    NOT NULL DEFAULT '',
	detail      TEXT    NOT NULL DEFAULT '',
	remote_addr TEXT    NOT NULL DEFAULT '',
	request_id  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_time ON audit (time);
CREATE TABLE audit_targets (
	audit_id BIGINT NOT NULL REFERENCES audit (id) ON DELETE CASCADE,
	target   TEXT   NOT NULL,
	PRIMARY KEY (target, audit_id)
);`,
	// Version 3: no query reads audit by time (Audit pages by id), yet
	// every audited command updated the index.
	`DROP INDEX IF EXISTS audit_time;`,
	// Version 4: the log of account changes (changes.go), written in the
	// transaction of each change, which a running server polls to learn of
	// the command line's changes. seq is SQLite's AUTOINCREMENT, as the
	// audit's id; PostgreSQL's would be an identity column.
	`CREATE TABLE account_changes (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	at     BIGINT  NOT NULL,
	jid    TEXT    NOT NULL,
	kind   TEXT    NOT NULL,
	origin TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX account_changes_at ON account_changes (at);`,
	// Version 5: the audit keeps the network peer beside the caller's
	// address (which a trusted proxy may have named), and server_settings
	// holds what the server keeps about itself (settings.go): the domain it
	// serves, its secrets.
	`ALTER TABLE audit ADD COLUMN peer TEXT NOT NULL DEFAULT '';
CREATE TABLE server_settings (
	name  TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);`,
}

// DB is an open account database.
// It is safe for concurrent use.
type DB struct {
	sql    *sql.DB
	stmt   statements
	audit  auditLog
	origin string // names this handle in the account changes it logs
}

// statements are the queries of the hot paths (a login, an audited command),
// prepared once: parsing them on every call cost SQLite more than running them.
type statements struct {
	credentials, activeBlock, auditEntry, auditTarget *sql.Stmt
}

// prepare prepares db.stmt; the schema must be migrated.
func (db *DB) prepare(ctx context.Context) error {
	for _, s := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&db.stmt.credentials, `SELECT a.disabled, c.salt, c.iterations, c.stored_key, c.server_key
			FROM accounts a JOIN scram_credentials c ON c.jid = a.jid
			WHERE a.jid = $1 AND c.hash = $2`},
		{&db.stmt.activeBlock, `SELECT until_ms, reason FROM blocks WHERE jid = $1`},
		// RETURNING: SQLite 3.35+ and PostgreSQL.
		{&db.stmt.auditEntry, `INSERT INTO audit (time, actor, auth, action, targets, outcome, detail, remote_addr, peer, request_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`},
		{&db.stmt.auditTarget, `INSERT INTO audit_targets (audit_id, target) VALUES ($1, $2) ON CONFLICT DO NOTHING`},
	} {
		stmt, err := db.sql.PrepareContext(ctx, s.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", s.query, err)
		}
		*s.dst = stmt
	}
	return nil
}

// Open opens the SQLite database at path, creating the file (mode 0600) and
// its schema if missing and migrating an older schema.
// The directory must exist.
func Open(path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// Create the file ourselves so that it is private: it holds credentials,
	// and SQLite gives its -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	// The pragmas are per connection, so they go in the DSN, which the driver
	// applies to every connection of the pool.
	// BEGIN IMMEDIATE takes the write lock at the start of a transaction, so
	// two writers queue on busy_timeout instead of failing to upgrade.
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()

	sqlDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{sql: sqlDB, origin: rand.Text()}
	if err := db.migrate(context.Background()); err != nil {
		// The migration error is the one worth reporting; closing a pool
		// that failed to start has nothing to add.
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.prepare(context.Background()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the database.
// It first waits until the audit entries already queued are written.
func (db *DB) Close() error {
	db.audit.close()
	// Closing the pool closes the statements of db.stmt with the
	// connections they were prepared on.
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// migrate brings the schema up to the newest version in one transaction.
func (db *DB) migrate(ctx context.Context) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(migrations))
		}
		if version == len(migrations) {
			return nil
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
			}
		}
		// PRAGMA takes no bound parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("set schema version: %w", err)
		}
		return nil
	})
}

// inTx runs fn in one transaction, committed if fn returns nil and rolled
// back otherwise. A disk found full is ErrDiskFull.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return diskFull(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		// fn's error is the one to report; the rollback of a failed
		// transaction cannot make it worse.
		_ = tx.Rollback()
		return diskFull(err)
	}
	if err := tx.Commit(); err != nil {
		return diskFull(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// wrapErr adds the operation and account to an error of the database, and
// leaves the package's own errors (already wrapped with the account) alone.
func wrapErr(op, account string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, session.ErrBadPassword),
		errors.Is(err, session.ErrDisabled), errors.Is(err, ErrInvalidPassword),
		errors.Is(err, session.ErrKeyRevoked), errors.Is(err, ErrInvalid):
		return err
	default:
		return fmt.Errorf("store: %s %s: %w", op, account, err)
	}
}
