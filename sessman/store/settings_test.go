package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adhocd/adhocd/sessman/store"
)

// TestSecretSurvivesReopening: a secret is created once and read back the
// same after the database is closed and opened again; another name has
// another secret.
func TestSecretSurvivesReopening(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "adhocd.db")
	db, err := store.Open(path)
	require.NoError(t, err)
	first, err := db.Secret(ctx, "scram")
	require.NoError(t, err)
	assert.Len(t, first, 32)
	again, err := db.Secret(ctx, "scram")
	require.NoError(t, err)
	assert.Equal(t, first, again)
	other, err := db.Secret(ctx, "other")
	require.NoError(t, err)
	assert.NotEqual(t, first, other)
	require.NoError(t, db.Close())

	db, err = store.Open(path)
	require.NoError(t, err)
	defer db.Close()
	reopened, err := db.Secret(ctx, "scram")
	require.NoError(t, err)
	assert.Equal(t, first, reopened)
}

func TestServedDomain(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "adhocd.db"))
	require.NoError(t, err)
	defer db.Close()
	_, ok, err := db.ServedDomain(ctx)
	require.NoError(t, err)
	assert.False(t, ok, "no server ran yet")
	require.NoError(t, db.SetServedDomain(ctx, "localhost"))
	require.NoError(t, db.SetServedDomain(ctx, "example.org"))
	d, ok, err := db.ServedDomain(ctx)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "example.org", d, "the last server's")
}
