package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one admin action in the audit.
type AuditEntry struct {
	ID         int64     // assigned by AppendAudit, increasing
	Time       time.Time // kept to the millisecond; AppendAudit sets the zero time to now
	Actor      string    // "admin@localhost", "apikey:<name>", "pusher:<app_id>", "cli"
	Auth       string    // "basic", "apikey", "pusher", "xmpp", "cli"
	Action     string    // "end-sessions", "adhoc:<node>", "apikey-create", ...
	Targets    []string  // JIDs, session ids, key ids; never nil when read back
	Outcome    string    // "ok", or an error condition like "forbidden"
	Detail     string    // short human text; never secrets
	RemoteAddr string
	RequestID  string
}

// AuditQuery selects and pages the entries Audit returns.
// The zero value is the newest 50 entries.
type AuditQuery struct {
	Limit, Offset int    // Limit 0 is DefaultAuditLimit, more than MaxAuditLimit is MaxAuditLimit
	Actor         string // only the entries of this actor, if set (exact match)
	Target        string // only the entries whose Targets hold this string, if set (exact match)
}

// Page sizes of Audit.
const (
	// DefaultAuditLimit is the page size of a zero AuditQuery.Limit.
	DefaultAuditLimit = 50
	// MaxAuditLimit is the largest page Audit returns.
	MaxAuditLimit = 500
)

// AppendAudit appends e to the audit and returns its ID, which is larger than
// that of every entry appended before.
// The ID of e is ignored; a zero Time is now.
// Actor and Action are required (ErrInvalid).
// The entry is committed with synchronous=FULL, like every write: once
// AppendAudit returns, the entry survives a crash, so call it before the
// action is acknowledged.
func (db *DB) AppendAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.Actor == "" || e.Action == "" {
		return 0, fmt.Errorf("%w: an audit entry needs an actor and an action", ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	targets := e.Targets
	if targets == nil {
		targets = []string{}
	}
	targetsJSON, err := json.Marshal(targets)
	if err != nil {
		return 0, fmt.Errorf("store: append audit %s: %w", e.Action, err)
	}
	var id int64
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		// RETURNING: SQLite 3.35+ and PostgreSQL.
		err := tx.QueryRowContext(ctx,
			`INSERT INTO audit (time, actor, auth, action, targets, outcome, detail, remote_addr, request_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			e.Time.UnixMilli(), e.Actor, e.Auth, e.Action, string(targetsJSON), e.Outcome, e.Detail,
			e.RemoteAddr, e.RequestID).Scan(&id)
		if err != nil {
			return err
		}
		if len(targets) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx,
			`INSERT INTO audit_targets (audit_id, target) VALUES ($1, $2) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, t := range targets {
			if _, err := stmt.ExecContext(ctx, id, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: append audit %s: %w", e.Action, err)
	}
	return id, nil
}

// Audit returns the number of entries q selects and one page of them,
// newest (largest ID) first.
// A negative Limit or Offset is ErrInvalid.
func (db *DB) Audit(ctx context.Context, q AuditQuery) (int, []AuditEntry, error) {
	if q.Limit < 0 || q.Offset < 0 {
		return 0, nil, fmt.Errorf("%w: audit limit %d, offset %d: negative", ErrInvalid, q.Limit, q.Offset)
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultAuditLimit
	case limit > MaxAuditLimit:
		limit = MaxAuditLimit
	}
	var (
		conds []string
		args  []any
	)
	if q.Actor != "" {
		args = append(args, q.Actor)
		conds = append(conds, fmt.Sprintf(`actor = $%d`, len(args)))
	}
	if q.Target != "" {
		args = append(args, q.Target)
		conds = append(conds, fmt.Sprintf(`id IN (SELECT audit_id FROM audit_targets WHERE target = $%d)`, len(args)))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}

	var total int
	if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit`+where, args...).Scan(&total); err != nil {
		return 0, nil, fmt.Errorf("store: count audit entries: %w", err)
	}
	page := fmt.Sprintf(` ORDER BY id DESC LIMIT $%d OFFSET $%d`, len(args)+1, len(args)+2)
	rows, err := db.sql.QueryContext(ctx,
		`SELECT id, time, actor, auth, action, targets, outcome, detail, remote_addr, request_id FROM audit`+
			where+page, append(args, limit, q.Offset)...)
	if err != nil {
		return 0, nil, fmt.Errorf("store: list audit entries: %w", err)
	}
	defer rows.Close()
	entries := []AuditEntry{}
	for rows.Next() {
		var (
			e       AuditEntry
			ms      int64
			targets string
		)
		if err := rows.Scan(&e.ID, &ms, &e.Actor, &e.Auth, &e.Action, &targets, &e.Outcome, &e.Detail,
			&e.RemoteAddr, &e.RequestID); err != nil {
			return 0, nil, fmt.Errorf("store: list audit entries: %w", err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		if err := json.Unmarshal([]byte(targets), &e.Targets); err != nil {
			return 0, nil, fmt.Errorf("store: list audit entries: targets of entry %d: %w", e.ID, err)
		}
		if e.Targets == nil { // a stored "null"
			e.Targets = []string{}
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("store: list audit entries: %w", err)
	}
	return total, entries, nil
}
