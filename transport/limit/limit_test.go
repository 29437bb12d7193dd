package limit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/adhocd/adhocd/transport/limit"
)

func TestFailuresLockAndExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	f := limit.NewFailures(3, 3, time.Minute)
	f.SetClock(func() time.Time { return now })
	ip, acct := limit.AddrKey("10.0.0.1:5555"), limit.AccountKey("bob@localhost")
	assert.Equal(t, "ip:10.0.0.1", ip)
	for range 2 {
		f.Fail(ip, acct)
		assert.Zero(t, f.Check(ip, acct), "under the limit")
	}
	f.Fail(ip, acct)
	assert.Equal(t, time.Minute, f.Check(ip, acct), "locked until the window ends")
	assert.Zero(t, f.Check(limit.AddrKey("10.0.0.2:1")), "other addresses are not affected")

	now = now.Add(30 * time.Second)
	assert.Equal(t, 30*time.Second, f.Check(acct))
	f.Succeed(acct)
	assert.Zero(t, f.Check(acct), "a success forgets the account's failures")
	assert.Equal(t, 30*time.Second, f.Check(ip), "but not the address's")

	now = now.Add(31 * time.Second)
	assert.Zero(t, f.Check(ip), "the window ended")
}

func TestRates(t *testing.T) {
	r := limit.NewRates(1, 2)
	ok1, _ := r.Allow("k")
	ok2, _ := r.Allow("k")
	ok3, wait := r.Allow("k")
	assert.True(t, ok1)
	assert.True(t, ok2)
	assert.False(t, ok3, "burst of 2 used up")
	assert.Positive(t, wait)
	okOther, _ := r.Allow("other")
	assert.True(t, okOther)

	unlimited := limit.NewRates(0, 0)
	for range 100 {
		ok, _ := unlimited.Allow("k")
		assert.True(t, ok)
	}
}
