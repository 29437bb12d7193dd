package store

// SchemaVersion is the user_version of a database Open has migrated.
var SchemaVersion = len(migrations)

// Migrations returns the schema migrations, for tests that build an older
// database by hand.
func Migrations() []string { return append([]string(nil), migrations...) }

// AuditCommits returns how many transactions AppendAudit has committed, so
// benchmarks can report entries per commit.
func (db *DB) AuditCommits() int64 { return db.audit.commits.Load() }
