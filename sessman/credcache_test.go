package sessman

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

func TestCredCache(t *testing.T) {
	cc := newCredCache(time.Minute)
	now := time.Now()
	cc.now = func() time.Time { return now }
	alice := jid.MustParse("alice@localhost")
	calls := 0
	verify := func(ok bool) func() (adhoc.Caller, error) {
		return func() (adhoc.Caller, error) {
			calls++
			if !ok {
				return adhoc.Caller{}, errors.New("wrong")
			}
			return adhoc.Caller{JID: alice, Name: "alice@localhost"}, nil
		}
	}

	for range 5 {
		who, err := cc.check(alice, "pw", verify(true))
		require.NoError(t, err)
		assert.Equal(t, "alice@localhost", who.Name)
	}
	assert.Equal(t, 1, calls, "the password is verified once")

	_, err := cc.check(alice, "other", verify(false))
	assert.Error(t, err, "a different password is not taken from the cache")
	_, err = cc.check(alice, "other", verify(false))
	assert.Error(t, err)
	assert.Equal(t, 3, calls, "failures are not cached")

	cc.invalidate("alice@localhost")
	_, err = cc.check(alice, "pw", verify(true))
	require.NoError(t, err)
	assert.Equal(t, 4, calls, "invalidation forces a new check")

	now = now.Add(time.Minute)
	_, err = cc.check(alice, "pw", verify(true))
	require.NoError(t, err)
	assert.Equal(t, 5, calls, "an entry expires")
}

// TestCredCacheInvalidateDuringCheckIsNotLost: a password change racing a
// login must not leave the old password cached.
func TestCredCacheInvalidateDuringCheckIsNotLost(t *testing.T) {
	cc := newCredCache(time.Minute)
	alice := jid.MustParse("alice@localhost")
	calls := 0
	verify := func() (adhoc.Caller, error) {
		calls++
		if calls == 1 {
			cc.invalidate("alice@localhost") // the password changed meanwhile
		}
		return adhoc.Caller{JID: alice}, nil
	}
	_, err := cc.check(alice, "pw", verify)
	require.NoError(t, err, "the check itself succeeded")
	_, err = cc.check(alice, "pw", verify)
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "credentials verified before an invalidation are not cached")
	_, err = cc.check(alice, "pw", verify)
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "those verified after it are")
}
