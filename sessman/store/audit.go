package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adhocd/adhocd/sessman/session"
)

// AppendAudit appends e to the audit and returns its ID, which is larger than
// that of every entry appended before.
// The ID of e is ignored; a zero Time is now.
// Actor and Action are required (ErrInvalid).
// The entry is committed with synchronous=FULL, like every write: once
// AppendAudit returns, the entry survives a crash, so call it before the
// action is acknowledged.
//
// Concurrent calls are committed together (group commit): a writer
// goroutine writes every entry queued so far in one transaction, with one
// fsync, while later callers queue for the next one; each caller returns
// only once its own entry is on disk, or once ctx is done.
// A ctx done before the call writes nothing; an entry written is a success
// even if ctx is done by then.
// After Close it returns an error.
func (db *DB) AppendAudit(ctx context.Context, e session.AuditEntry) (int64, error) {
	if e.Actor == "" || e.Action == "" {
		return 0, fmt.Errorf("%w: an audit entry needs an actor and an action", ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Targets == nil {
		e.Targets = []string{}
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: append audit %s: %w", e.Action, err)
	}
	req := &auditWrite{entry: e, done: make(chan struct{})}
	a := &db.audit
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return 0, fmt.Errorf("store: append audit %s: %w", e.Action, errClosed)
	}
	a.queue = append(a.queue, req)
	if !a.writing {
		a.writing = true
		a.writer.Add(1)
		go db.writeAuditBatches()
	}
	a.mu.Unlock()
	select {
	case <-req.done:
	case <-ctx.Done():
		// select picks at random when both are ready: an entry already
		// written is a success.
		select {
		case <-req.done:
		default:
			// The entry may still be written; the caller must not acknowledge.
			return 0, fmt.Errorf("store: append audit %s: %w", e.Action, ctx.Err())
		}
	}
	if req.err != nil {
		return 0, fmt.Errorf("store: append audit %s: %w", e.Action, req.err)
	}
	return req.id, nil
}

// errClosed is the error of AppendAudit after Close.
var errClosed = errors.New("database closed")

// auditLog is the group-commit queue of AppendAudit.
type auditLog struct {
	mu      sync.Mutex
	queue   []*auditWrite
	writing bool           // the writer goroutine runs
	closed  bool           // Close was called: queue nothing more
	writer  sync.WaitGroup // the writer goroutine, for Close
	commits atomic.Int64   // transactions committed, for benchmarks
}

// close makes AppendAudit refuse new entries and waits until the writer has
// written those already queued.
func (a *auditLog) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.writer.Wait()
}

type auditWrite struct {
	entry session.AuditEntry
	id    int64
	err   error
	done  chan struct{}
}

// writeAuditBatches is the writer goroutine: it writes queued entries, a
// batch per transaction, until the queue is empty.
func (db *DB) writeAuditBatches() {
	a := &db.audit
	defer a.writer.Done()
	for {
		a.mu.Lock()
		batch := a.queue
		a.queue = nil
		if len(batch) == 0 {
			a.writing = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		// Not the caller's context: the batch holds other callers' entries.
		err := db.inTx(context.Background(), func(tx *sql.Tx) error {
			return db.insertAudit(tx, batch)
		})
		if err == nil {
			a.commits.Add(1)
		}
		for _, w := range batch {
			if err != nil {
				w.err, w.id = err, 0
			}
			close(w.done)
		}
	}
}

// insertAudit inserts a batch of entries and their targets.
func (db *DB) insertAudit(tx *sql.Tx, batch []*auditWrite) error {
	entry, target := tx.Stmt(db.stmt.auditEntry), tx.Stmt(db.stmt.auditTarget)
	for _, w := range batch {
		e := w.entry
		targetsJSON, err := json.Marshal(e.Targets)
		if err != nil {
			return err
		}
		if err := entry.QueryRow(e.Time.UnixMilli(), e.Actor, e.Auth, e.Action, string(targetsJSON), e.Outcome, e.Detail,
			e.RemoteAddr, e.Peer, e.RequestID).Scan(&w.id); err != nil {
			return err
		}
		for _, t := range e.Targets {
			if _, err := target.Exec(w.id, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// Audit returns one page of the entries q selects, newest (largest ID)
// first, and how many it selects in all; q.Caller is not looked at.
// A negative Limit or Offset is ErrInvalid.
func (db *DB) Audit(ctx context.Context, q session.AuditQuery) (session.AuditPage, error) {
	if q.Limit < 0 || q.Offset < 0 {
		return session.AuditPage{}, fmt.Errorf("%w: audit limit %d, offset %d: negative", ErrInvalid, q.Limit, q.Offset)
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = session.DefaultAuditLimit
	case limit > session.MaxAuditLimit:
		limit = session.MaxAuditLimit
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
		return session.AuditPage{}, fmt.Errorf("store: count audit entries: %w", err)
	}
	page := fmt.Sprintf(` ORDER BY id DESC LIMIT $%d OFFSET $%d`, len(args)+1, len(args)+2)
	rows, err := db.sql.QueryContext(ctx,
		`SELECT id, time, actor, auth, action, targets, outcome, detail, remote_addr, peer, request_id FROM audit`+
			where+page, append(args, limit, q.Offset)...)
	if err != nil {
		return session.AuditPage{}, fmt.Errorf("store: list audit entries: %w", err)
	}
	defer rows.Close()
	entries := []session.AuditEntry{}
	for rows.Next() {
		var (
			e       session.AuditEntry
			ms      int64
			targets string
		)
		if err := rows.Scan(&e.ID, &ms, &e.Actor, &e.Auth, &e.Action, &targets, &e.Outcome, &e.Detail,
			&e.RemoteAddr, &e.Peer, &e.RequestID); err != nil {
			return session.AuditPage{}, fmt.Errorf("store: list audit entries: %w", err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		if err := json.Unmarshal([]byte(targets), &e.Targets); err != nil {
			return session.AuditPage{}, fmt.Errorf("store: list audit entries: targets of entry %d: %w", e.ID, err)
		}
		if e.Targets == nil { // a stored "null"
			e.Targets = []string{}
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return session.AuditPage{}, fmt.Errorf("store: list audit entries: %w", err)
	}
	return session.AuditPage{Count: total, Items: entries}, nil
}
