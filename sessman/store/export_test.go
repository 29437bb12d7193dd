package store

import (
	"context"
	"fmt"
)

// SchemaVersion is the user_version of a database Open has migrated.
var SchemaVersion = len(migrations)

// Migrations returns the schema migrations, for tests that build an older
// database by hand.
func Migrations() []string { return append([]string(nil), migrations...) }

// AuditCommits returns how many transactions AppendAudit has committed, so
// benchmarks can report entries per commit.
func (db *DB) AuditCommits() int64 { return db.audit.commits.Load() }

// AuditState returns how many audit entries wait for the next batch, whether
// the writer goroutine runs, and whether Close was called.
func (db *DB) AuditState() (queued int, writing, closed bool) {
	a := &db.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue), a.writing, a.closed
}

// LimitPages keeps the database to n pages (at least its current size),
// so that a write beyond fails as on a full disk (SQLITE_FULL). The pool
// is cut to one connection first, since the limit is per connection.
func (db *DB) LimitPages(ctx context.Context, n int) error {
	db.sql.SetMaxOpenConns(1)
	_, err := db.sql.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", n))
	return err
}
