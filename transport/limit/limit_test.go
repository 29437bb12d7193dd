package limit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/adhocd/adhocd/transport/limit"
)

func TestFailuresLockAndExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	f := limit.NewFailures(limit.Limits{Pair: 3, Address: 5, Account: 7, Window: time.Minute})
	f.SetClock(func() time.Time { return now })
	const bob, alice = "bob@localhost", "alice@localhost"
	for range 2 {
		f.FailLogin(bob, "10.0.0.1:5555")
		assert.Zero(t, f.CheckLogin(bob, "10.0.0.1:6666"), "under the limit")
	}
	f.FailLogin(bob, "10.0.0.1:5555")
	assert.Equal(t, time.Minute, f.CheckLogin(bob, "10.0.0.1:1"), "the pair is locked until the window ends, whatever the port")
	assert.Zero(t, f.CheckLogin(bob, "10.0.0.2:1"), "bob from another address is not")
	assert.Zero(t, f.CheckLogin(alice, "10.0.0.1:1"), "nor another account from this address")

	now = now.Add(30 * time.Second)
	f.SucceedLogin(bob, "10.0.0.1:7777") // say, the right password over another path
	assert.Zero(t, f.CheckLogin(bob, "10.0.0.1:1"), "a success forgets the pair's failures")

	f.FailLogin(alice, "10.0.0.1:1")
	f.FailLogin(alice, "10.0.0.1:1")
	assert.Equal(t, 30*time.Second, f.CheckLogin("carol@localhost", "10.0.0.1:1"), "five failures lock the address for other accounts")
	assert.Zero(t, f.CheckLogin(bob, "10.0.0.1:1"), "but not for an account that logged in from it")
	assert.Equal(t, 30*time.Second, f.CheckAddr("10.0.0.1"), "nor for API keys")

	now = now.Add(31 * time.Second)
	assert.Zero(t, f.CheckLogin("carol@localhost", "10.0.0.1:1"), "the window ended")
	assert.Zero(t, f.CheckAddr("10.0.0.1"))
}

func TestFailuresKnownPairSkipsAccountLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	f := limit.NewFailures(limit.Limits{Pair: 2, Address: 100, Account: 6, Window: time.Minute, KnownFor: time.Hour})
	f.SetClock(func() time.Time { return now })
	const admin = "admin@localhost"
	f.SucceedLogin(admin, "127.0.0.1:1")
	// Guessing spread over three addresses, two each: the account is full.
	for _, addr := range []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"} {
		f.FailLogin(admin, addr)
		f.FailLogin(admin, addr)
		assert.Positive(t, f.CheckLogin(admin, addr), "the guessing address %s is locked", addr)
	}
	assert.Equal(t, time.Minute, f.CheckLogin(admin, "10.0.0.9:1"), "a new address waits for the account")
	assert.Zero(t, f.CheckLogin(admin, "127.0.0.1:2"), "the admin's known address does not")

	f.FailLogin(admin, "127.0.0.1:2")
	f.FailLogin(admin, "127.0.0.1:2")
	assert.Equal(t, time.Minute, f.CheckLogin(admin, "127.0.0.1:2"), "a known pair still has its own limit")

	now = now.Add(2 * time.Hour)
	f.FailLogin(admin, "10.0.0.1:1")
	f.FailLogin(admin, "10.0.0.2:1")
	f.FailLogin(admin, "10.0.0.3:1")
	f.FailLogin(admin, "10.0.0.4:1")
	f.FailLogin(admin, "10.0.0.5:1")
	f.FailLogin(admin, "10.0.0.6:1")
	assert.Equal(t, time.Minute, f.CheckLogin(admin, "127.0.0.1:2"), "a pair is forgotten KnownFor after its last login")
}

func TestFailuresKnownPairsAreBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	f := limit.NewFailures(limit.Limits{Pair: 100, Address: 1, Account: 100, Window: time.Minute, MaxKnown: 10})
	f.SetClock(func() time.Time { return now })
	f.FailAddr("10.0.0.1")
	for i := range 20 {
		now = now.Add(time.Second)
		f.SucceedLogin(fmt.Sprintf("u%d@localhost", i), "10.0.0.1")
	}
	assert.Positive(t, f.CheckLogin("u0@localhost", "10.0.0.1"), "the oldest pairs were forgotten")
	assert.Zero(t, f.CheckLogin("u19@localhost", "10.0.0.1"), "the newest is remembered")
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
