package store

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
)

// LoginRecorder writes last-login times in batches, one transaction per
// interval. A last login is bookkeeping, not an acknowledged write, and one
// synchronous commit per login would cap how many clients can log in per
// second at the disk's fsync rate. A crash loses at most one interval.
type LoginRecorder struct {
	db       *DB
	log      zerolog.Logger
	interval time.Duration

	mu      sync.Mutex
	pending map[string]time.Time

	stop chan struct{}
	done chan struct{}
}

// NewLoginRecorder starts a recorder that flushes every interval (default 1s).
// Close flushes what is pending and stops it.
func (db *DB) NewLoginRecorder(interval time.Duration, logger zerolog.Logger) *LoginRecorder {
	if interval <= 0 {
		interval = time.Second
	}
	r := &LoginRecorder{
		db:       db,
		log:      logger.With().Str("component", "store").Logger(),
		interval: interval,
		pending:  make(map[string]time.Time),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go r.run()
	return r
}

// Record notes that user logged in at at. It does not block on the database.
func (r *LoginRecorder) Record(user jid.JID, at time.Time) {
	key, ok := accountKey(user)
	if !ok {
		return
	}
	r.mu.Lock()
	r.pending[key] = at
	r.mu.Unlock()
}

func (r *LoginRecorder) run() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.flush()
		case <-r.stop:
			r.flush()
			return
		}
	}
}

// flush writes what is pending now.
func (r *LoginRecorder) flush() {
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[string]time.Time, len(batch))
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := r.db.inTx(context.Background(), func(tx *sql.Tx) error {
		stmt, err := tx.Prepare(`UPDATE accounts SET last_login = $2 WHERE jid = $1`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for key, at := range batch {
			if _, err := stmt.Exec(key, at.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.log.Error().Err(err).Msg("writing last logins failed")
	}
}

// Close writes what is pending and stops the recorder. Call it once, before
// closing the DB.
func (r *LoginRecorder) Close() {
	close(r.stop)
	<-r.done
}
