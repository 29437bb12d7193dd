package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/store"
)

func TestBlockSetActiveClear(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	bob := jid.MustParse("Bob@localhost/phone")
	now := time.UnixMilli(1_700_000_000_000).UTC()

	_, ok, err := db.ActiveBlock(ctx, bob, now)
	require.NoError(t, err)
	assert.False(t, ok, "no block yet")

	require.NoError(t, db.SetBlock(ctx, bob, now.Add(10*time.Minute), "spam"))
	b, ok, err := db.ActiveBlock(ctx, jid.MustParse("bob@localhost"), now)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, store.Block{User: jid.MustParse("bob@localhost"), Until: now.Add(10 * time.Minute), Reason: "spam"}, b)

	_, ok, err = db.ActiveBlock(ctx, jid.MustParse("carol@localhost"), now)
	require.NoError(t, err)
	assert.False(t, ok, "another user")

	lifted, ok, err := db.ClearBlock(ctx, bob, now)
	require.NoError(t, err)
	assert.True(t, ok, "a block was lifted")
	assert.Equal(t, b, lifted, "ClearBlock returns the block it lifted")
	_, ok, err = db.ActiveBlock(ctx, bob, now)
	require.NoError(t, err)
	assert.False(t, ok, "cleared")
	_, ok, err = db.ClearBlock(ctx, bob, now)
	require.NoError(t, err, "clearing nothing")
	assert.False(t, ok, "nothing was lifted")
}

func TestClearBlockEnded(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	bob := jid.MustParse("bob@localhost")
	now := time.UnixMilli(1_700_000_000_000).UTC()
	require.NoError(t, db.SetBlock(ctx, bob, now.Add(time.Minute), "spam"))
	start, err := db.LastChange(ctx)
	require.NoError(t, err)

	_, ok, err := db.ClearBlock(ctx, bob, now.Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, ok, "a block that ended is not lifted: it was not in force")
	changes, err := db.Changes(ctx, start)
	require.NoError(t, err)
	require.Len(t, changes, 1, "its row was deleted, which other processes hear of")
	assert.Equal(t, "unblocked", changes[0].Kind)

	start = changes[0].Seq
	_, _, err = db.ClearBlock(ctx, bob, now)
	require.NoError(t, err)
	changes, err = db.Changes(ctx, start)
	require.NoError(t, err)
	assert.Empty(t, changes, "clearing no block changes nothing")
}

func TestBlocksInForce(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	now := time.UnixMilli(1_700_000_000_000).UTC()
	require.NoError(t, db.SetBlock(ctx, jid.MustParse("carol@localhost"), now.Add(time.Hour), "later"))
	require.NoError(t, db.SetBlock(ctx, jid.MustParse("bob@localhost"), now.Add(time.Minute), "Password reset"))
	require.NoError(t, db.SetBlock(ctx, jid.MustParse("dave@localhost"), now.Add(time.Second), "ended"))

	blocks, err := db.Blocks(ctx, now.Add(time.Second))
	require.NoError(t, err)
	assert.Equal(t, []store.Block{
		{User: jid.MustParse("bob@localhost"), Until: now.Add(time.Minute), Reason: "Password reset"},
		{User: jid.MustParse("carol@localhost"), Until: now.Add(time.Hour), Reason: "later"},
	}, blocks, "ordered by user, without dave's, which ended")
}

func TestBlockNeverShortened(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	bob := jid.MustParse("bob@localhost")
	now := time.UnixMilli(1_700_000_000_000).UTC()

	tests := []struct {
		name         string
		whenUntil    time.Duration
		whenReason   string
		expectUntil  time.Duration
		expectReason string
	}{
		{name: "first", whenUntil: time.Hour, whenReason: "one hour", expectUntil: time.Hour, expectReason: "one hour"},
		{name: "shorter is ignored", whenUntil: time.Minute, whenReason: "a minute",
			expectUntil: time.Hour, expectReason: "one hour"},
		{name: "equal is ignored", whenUntil: time.Hour, whenReason: "same",
			expectUntil: time.Hour, expectReason: "one hour"},
		{name: "longer replaces", whenUntil: 2 * time.Hour, whenReason: "two hours",
			expectUntil: 2 * time.Hour, expectReason: "two hours"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, db.SetBlock(ctx, bob, now.Add(tc.whenUntil), tc.whenReason))
			b, ok, err := db.ActiveBlock(ctx, bob, now)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, now.Add(tc.expectUntil), b.Until)
			assert.Equal(t, tc.expectReason, b.Reason)
		})
	}
}

func TestBlockExpires(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)
	bob := jid.MustParse("bob@localhost")
	now := time.UnixMilli(1_700_000_000_000).UTC()
	require.NoError(t, db.SetBlock(ctx, bob, now.Add(time.Minute), "later"))

	_, ok, err := db.ActiveBlock(ctx, bob, now.Add(time.Minute-time.Millisecond))
	require.NoError(t, err)
	assert.True(t, ok, "a millisecond before the end")
	_, ok, err = db.ActiveBlock(ctx, bob, now.Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, ok, "at the end")

	var n int
	rawQuery(t, path, "SELECT COUNT(*) FROM blocks", &n)
	assert.Equal(t, 0, n, "an ended block is deleted when seen")

	// A block that ended is replaced by any later one, and one set in the
	// past never takes effect.
	require.NoError(t, db.SetBlock(ctx, bob, now.Add(-time.Second), "past"))
	_, ok, err = db.ActiveBlock(ctx, bob, now)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, db.SetBlock(ctx, bob, now.Add(time.Second), "again"))
	b, ok, err := db.ActiveBlock(ctx, bob, now)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "again", b.Reason)
}

func TestBlockSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	bob := jid.MustParse("bob@localhost")
	until := time.Now().Add(time.Hour)

	db, err := store.Open(path)
	require.NoError(t, err)
	require.NoError(t, db.SetBlock(ctx, bob, until, "kicked"))
	require.NoError(t, db.Close())

	db, err = store.Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, db.Close()) }()
	b, ok, err := db.ActiveBlock(ctx, bob, time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, until.UnixMilli(), b.Until.UnixMilli())
	assert.Equal(t, "kicked", b.Reason)
}

func TestBlockRejects(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	err := db.SetBlock(ctx, jid.MustParse("localhost"), time.Now().Add(time.Hour), "")
	assert.ErrorIs(t, err, store.ErrInvalid, "no localpart")
	err = db.SetBlock(ctx, jid.MustParse("bob@localhost"), time.Time{}, "")
	assert.ErrorIs(t, err, store.ErrInvalid, "no end")

	_, ok, err := db.ActiveBlock(ctx, jid.MustParse("localhost"), time.Now())
	require.NoError(t, err)
	assert.False(t, ok, "a domain is never blocked")
	_, ok, err = db.ClearBlock(ctx, jid.MustParse("localhost"), time.Now())
	assert.NoError(t, err)
	assert.False(t, ok)
}
