package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

func TestAppendAudit(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	at := time.UnixMilli(1_700_000_000_123).UTC()

	e := session.AuditEntry{
		ID:         99, // ignored
		Time:       at,
		Actor:      "admin@localhost",
		Auth:       "basic",
		Action:     "end-sessions",
		Targets:    []string{"bob@localhost", "s1", "bob@localhost"},
		Outcome:    "ok",
		Detail:     "ended 2 sessions, blocked 600s",
		RemoteAddr: "192.0.2.7",
		Peer:       "127.0.0.1:4242",
		RequestID:  "req-1",
	}
	id, err := db.AppendAudit(ctx, e)
	require.NoError(t, err)
	assert.Positive(t, id)

	before := time.Now().Truncate(time.Millisecond)
	id2, err := db.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "apikey-create"})
	require.NoError(t, err)
	assert.Greater(t, id2, id)

	page, err := db.Audit(ctx, session.AuditQuery{})
	total, entries := page.Count, page.Items
	require.NoError(t, err)
	assert.Equal(t, 2, total)
	require.Len(t, entries, 2)
	assert.Equal(t, id2, entries[0].ID, "newest first")
	assert.False(t, entries[0].Time.Before(before), "a zero time is now")
	assert.Equal(t, []string{}, entries[0].Targets, "no targets is an empty list")
	e.ID = id
	assert.Equal(t, e, entries[1], "every field kept, duplicate targets too")

	// A duplicate target matches once.
	page, err = db.Audit(ctx, session.AuditQuery{Target: "bob@localhost"})
	total, entries = page.Count, page.Items
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Len(t, entries, 1)
}

func TestAppendAuditRejects(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	_, err := db.AppendAudit(ctx, session.AuditEntry{Action: "x"})
	assert.ErrorIs(t, err, store.ErrInvalid, "no actor")
	_, err = db.AppendAudit(ctx, session.AuditEntry{Actor: "x"})
	assert.ErrorIs(t, err, store.ErrInvalid, "no action")
	_, err = db.Audit(ctx, session.AuditQuery{Limit: -1})
	assert.ErrorIs(t, err, store.ErrInvalid)
	_, err = db.Audit(ctx, session.AuditQuery{Offset: -1})
	assert.ErrorIs(t, err, store.ErrInvalid)
}

// appendN appends n entries: actor "admin@localhost" for even i and
// "apikey:ci" for odd i, targets "bob@localhost" when i%3 == 0, and the
// detail "i". It returns their IDs.
func appendN(t *testing.T, db *store.DB, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range n {
		e := session.AuditEntry{Actor: "admin@localhost", Auth: "basic", Action: "end-sessions", Outcome: "ok",
			Detail: fmt.Sprint(i), Targets: []string{fmt.Sprintf("s%d", i)}}
		if i%2 == 1 {
			e.Actor, e.Auth = "apikey:ci", "apikey"
		}
		if i%3 == 0 {
			e.Targets = append(e.Targets, "bob@localhost")
		}
		id, err := db.AppendAudit(t.Context(), e)
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func TestAuditQuery(t *testing.T) {
	db, _ := openTemp(t)
	appendN(t, db, 600)

	details := func(entries []session.AuditEntry) []string {
		s := make([]string, len(entries))
		for i, e := range entries {
			s[i] = e.Detail
		}
		return s
	}
	seq := func(from, step, n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprint(from + i*step)
		}
		return s
	}
	tests := []struct {
		name          string
		whenQuery     session.AuditQuery
		expectTotal   int
		expectDetails []string
	}{
		{name: "default page", whenQuery: session.AuditQuery{},
			expectTotal: 600, expectDetails: seq(599, -1, 50)},
		{name: "limit and offset", whenQuery: session.AuditQuery{Limit: 3, Offset: 10},
			expectTotal: 600, expectDetails: []string{"589", "588", "587"}},
		{name: "limit capped", whenQuery: session.AuditQuery{Limit: 10000},
			expectTotal: 600, expectDetails: seq(599, -1, 500)},
		{name: "last page", whenQuery: session.AuditQuery{Limit: 50, Offset: 590},
			expectTotal: 600, expectDetails: seq(9, -1, 10)},
		{name: "past the end", whenQuery: session.AuditQuery{Offset: 600},
			expectTotal: 600, expectDetails: []string{}},
		{name: "actor", whenQuery: session.AuditQuery{Actor: "apikey:ci", Limit: 3},
			expectTotal: 300, expectDetails: []string{"599", "597", "595"}},
		{name: "actor is exact", whenQuery: session.AuditQuery{Actor: "apikey:"},
			expectTotal: 0, expectDetails: []string{}},
		{name: "target", whenQuery: session.AuditQuery{Target: "bob@localhost", Limit: 3, Offset: 1},
			expectTotal: 200, expectDetails: []string{"594", "591", "588"}},
		{name: "target is exact", whenQuery: session.AuditQuery{Target: "s5"},
			expectTotal: 1, expectDetails: []string{"5"}},
		{name: "actor and target", whenQuery: session.AuditQuery{Actor: "apikey:ci", Target: "bob@localhost", Limit: 2},
			expectTotal: 100, expectDetails: []string{"597", "591"}},
		{name: "no match", whenQuery: session.AuditQuery{Target: "nobody"},
			expectTotal: 0, expectDetails: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := db.Audit(t.Context(), tc.whenQuery)
			total, entries := page.Count, page.Items
			require.NoError(t, err)
			assert.Equal(t, tc.expectTotal, total)
			assert.Equal(t, tc.expectDetails, details(entries))
		})
	}
}

func TestAuditDurableAcrossReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	db, err := store.Open(path)
	require.NoError(t, err)
	ids := appendN(t, db, 5)
	page, err := db.Audit(ctx, session.AuditQuery{})
	want := page.Items
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db, err = store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, db.Close()) }()
	page, err = db.Audit(ctx, session.AuditQuery{})
	total, got := page.Count, page.Items
	require.NoError(t, err)
	assert.Equal(t, 5, total)
	assert.Equal(t, want, got)

	id, err := db.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "x"})
	require.NoError(t, err)
	assert.Greater(t, id, ids[4], "IDs keep growing after reopen")
}

func TestAppendAuditConcurrent(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)
	other, err := store.Open(path) // a second process on the same file
	require.NoError(t, err)
	defer func() { assert.NoError(t, other.Close()) }()

	const n = 20
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h := db
			if i%2 == 1 {
				h = other
			}
			var err error
			ids[i], err = h.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "x", Targets: []string{"t"}})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, id := range ids {
		assert.False(t, seen[id], "id %d twice", id)
		seen[id] = true
	}
	page, err := db.Audit(ctx, session.AuditQuery{Target: "t"})
	total := page.Count
	require.NoError(t, err)
	assert.Equal(t, n, total)
}

// TestAuditGroupCommit appends from many goroutines at once: every caller
// gets its own increasing id back only once its entry can be read.
// Another connection holds the write lock meanwhile, so the first entry's
// batch waits while the n-1 others queue: they must go in one second
// commit.
func TestAuditGroupCommit(t *testing.T) {
	db, path := openTemp(t)
	ctx := t.Context()
	const n = 64
	release := holdWriteLock(t, path)
	commits := db.AuditCommits()
	ids := make(chan int64, n)
	var wg sync.WaitGroup
	appendOne := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := db.AppendAudit(ctx, session.AuditEntry{Actor: "a", Action: "x", Targets: []string{fmt.Sprintf("t%d", i)}})
			assert.NoError(t, err)
			page, err := db.Audit(ctx, session.AuditQuery{Target: fmt.Sprintf("t%d", i)})
			got := page.Items
			assert.NoError(t, err)
			if assert.Len(t, got, 1) {
				assert.Equal(t, id, got[0].ID, "readable when AppendAudit returns")
			}
			ids <- id
		}()
	}
	appendOne(0)
	waitWriterStalled(t, db)
	for i := 1; i < n; i++ {
		appendOne(i)
	}
	require.Eventually(t, func() bool { queued, _, _ := db.AuditState(); return queued == n-1 },
		5*time.Second, time.Millisecond)
	release()
	wg.Wait()
	close(ids)
	assert.Equal(t, int64(2), db.AuditCommits()-commits, "the first entry, then the n-1 queued behind it")
	seen := map[int64]bool{}
	for id := range ids {
		assert.False(t, seen[id], "ids are distinct")
		seen[id] = true
	}
	page, err := db.Audit(ctx, session.AuditQuery{})
	total := page.Count
	require.NoError(t, err)
	assert.Equal(t, n, total)
}

// holdWriteLock takes SQLite's write lock on the database file at path from
// a connection of its own, as another process would, and returns the
// function that releases it; cleanup releases it too.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	conn, err := raw.Conn(t.Context())
	require.NoError(t, err)
	_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	require.NoError(t, err)
	var once sync.Once
	release = func() {
		once.Do(func() {
			// Not t.Context(): it is done before cleanup runs.
			_, err := conn.ExecContext(context.Background(), "ROLLBACK")
			assert.NoError(t, err)
			assert.NoError(t, conn.Close())
			assert.NoError(t, raw.Close())
		})
	}
	t.Cleanup(release)
	return release
}

// waitWriterStalled waits until the audit writer has taken every queued
// entry and so is blocked on a write lock held by holdWriteLock.
func waitWriterStalled(t *testing.T, db *store.DB) {
	t.Helper()
	require.Eventually(t, func() bool {
		queued, writing, _ := db.AuditState()
		return writing && queued == 0
	}, 5*time.Second, time.Millisecond)
}

// TestAppendAuditHonoursCtxWhileWriting cancels the first caller while the
// batch holding its entry waits for the write lock: it returns at once, not
// after the batch (up to the 10 s busy timeout).
func TestAppendAuditHonoursCtxWhileWriting(t *testing.T) {
	db, path := openTemp(t)
	release := holdWriteLock(t, path)
	ctx, cancel := context.WithCancel(t.Context())
	result := make(chan error, 1)
	go func() {
		_, err := db.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "x"})
		result <- err
	}()
	waitWriterStalled(t, db)
	cancel()
	select {
	case err := <-result:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second): // half the busy timeout
		t.Fatal("AppendAudit ignored its ctx while its batch waited for the lock")
	}
	release()
}

// TestCloseWaitsForAuditWriter closes the database while the writer waits
// for the write lock: Close returns only once the queued entry is written,
// and AppendAudit after Close fails instead of queueing.
func TestCloseWaitsForAuditWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "adhocd.db")
	db, err := store.Open(path)
	require.NoError(t, err)
	release := holdWriteLock(t, path)
	appended := make(chan error, 1)
	go func() {
		_, err := db.AppendAudit(context.Background(), session.AuditEntry{Actor: "cli", Action: "queued"})
		appended <- err
	}()
	waitWriterStalled(t, db)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	require.Eventually(t, func() bool { _, _, c := db.AuditState(); return c }, 5*time.Second, time.Millisecond)

	_, err = db.AppendAudit(t.Context(), session.AuditEntry{Actor: "cli", Action: "late"})
	assert.ErrorContains(t, err, "closed", "after Close")
	release()
	assert.NoError(t, <-appended, "queued before Close")
	require.NoError(t, <-closed)

	var n int
	rawQuery(t, path, "SELECT COUNT(*) FROM audit WHERE action = 'queued'", &n)
	assert.Equal(t, 1, n, "written before the pool closed")
	rawQuery(t, path, "SELECT COUNT(*) FROM audit", &n)
	assert.Equal(t, 1, n)
}

// doneAfter is a context whose Done blocks until release is closed and then
// returns a closed channel: a ctx cancelled just before AppendAudit looks
// at it, however late that is.
type doneAfter struct {
	context.Context
	release chan struct{}
}

func (c doneAfter) Done() <-chan struct{} {
	<-c.release
	done := make(chan struct{})
	close(done)
	return done
}

func (c doneAfter) Err() error {
	select {
	case <-c.release:
		return context.Canceled
	default:
		return nil
	}
}

func TestAppendAuditCancelled(t *testing.T) {
	t.Run("before the call", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "adhocd.db")
		db, err := store.Open(path)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = db.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "x"})
		assert.ErrorIs(t, err, context.Canceled)
		require.NoError(t, db.Close()) // waits for any write under way
		var total int
		rawQuery(t, path, "SELECT COUNT(*) FROM audit", &total)
		assert.Zero(t, total, "nothing written")
	})
	t.Run("after the commit", func(t *testing.T) {
		db, _ := openTemp(t)
		// Both the entry's commit and ctx are ready when AppendAudit
		// waits; a random pick would fail about half of the rounds.
		for i := range 20 {
			ctx := doneAfter{Context: t.Context(), release: make(chan struct{})}
			result := make(chan error, 1)
			go func() {
				_, err := db.AppendAudit(ctx, session.AuditEntry{Actor: "cli", Action: "x"})
				result <- err
			}()
			require.Eventually(t, func() bool { return db.AuditCommits() == int64(i+1) }, 5*time.Second, time.Millisecond)
			close(ctx.release)
			assert.NoError(t, <-result, "round %d: the entry is on disk", i)
		}
	})
}
