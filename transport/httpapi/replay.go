package httpapi

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// ReplayCache remembers the signatures of the Pusher requests that were
// accepted, until their timestamps leave the window in which they could be
// accepted again, so that no signed request is carried out twice.
// One node keeps it in memory (NewMemoryReplayCache); a cluster implements it
// over state the nodes share, so that a request captured on its way to one
// node cannot be replayed to another.
type ReplayCache interface {
	// Remember records key until expires and reports whether it was new:
	// false if key was recorded before and has not expired.
	// It is atomic: of concurrent calls with one key, one alone gets true.
	// An error means it could not tell; the caller refuses the request.
	Remember(ctx context.Context, key string, expires time.Time) (bool, error)
}

// ReplayCacheFullError is Remember's error when the cache already holds its
// maximum of unexpired entries.
// Retry is when the first of them expires.
type ReplayCacheFullError struct {
	Max   int
	Retry time.Time
}

func (e *ReplayCacheFullError) Error() string {
	return fmt.Sprintf("httpapi: the replay cache holds its maximum of %d unexpired signatures", e.Max)
}

// DefaultReplayMax is MemoryReplayCache's default maximum of entries.
// Only requests whose signature verified are remembered, for at most twice
// the 600 s window, so only an app that holds its secret can fill it: at
// about 100 requests a second for 20 minutes. An entry costs about 150
// bytes, the whole about 15 MB.
const DefaultReplayMax = 100_000

// MemoryReplayConfig configures NewMemoryReplayCache.
// The zero value has DefaultReplayMax entries and the clock time.Now.
type MemoryReplayConfig struct {
	// Max is the most entries kept; default DefaultReplayMax.
	Max int
	// Now is the clock that expires entries; default time.Now.
	Now func() time.Time
}

// MemoryReplayCache is the ReplayCache of one node, in memory.
// It is safe for concurrent use.
//
// When it holds Max unexpired entries it refuses to remember more (fails
// closed) rather than evict the oldest: an evicted signature could be
// replayed until its timestamp leaves the window, which is what the cache
// is for. Only the app that signs can fill it, and it is the one kept waiting
// (ReplayCacheFullError says until when).
type MemoryReplayCache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]time.Time // key: when it expires
	byTime  expiryHeap           // the same keys, the soonest to expire first
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// NewMemoryReplayCache returns an empty cache.
func NewMemoryReplayCache(cfg MemoryReplayConfig) *MemoryReplayCache {
	if cfg.Max <= 0 {
		cfg.Max = DefaultReplayMax
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemoryReplayCache{max: cfg.Max, now: cfg.Now, entries: make(map[string]time.Time)}
}

// Remember implements ReplayCache.
// An entry is kept until its expiry has passed: at the expiry itself the
// request is still inside the window (the window's bounds are accepted).
func (c *MemoryReplayCache) Remember(_ context.Context, key string, expires time.Time) (bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byTime) > 0 && now.After(c.byTime[0].expires) {
		e := heap.Pop(&c.byTime).(expiry)
		delete(c.entries, e.key)
	}
	if _, seen := c.entries[key]; seen {
		return false, nil
	}
	if len(c.entries) >= c.max {
		return false, &ReplayCacheFullError{Max: c.max, Retry: c.byTime[0].expires}
	}
	c.entries[key] = expires
	heap.Push(&c.byTime, expiry{key: key, expires: expires})
	return true, nil
}

// expiry is an entry of expiryHeap.
type expiry struct {
	key     string
	expires time.Time
}

// expiryHeap is a container/heap of entries, the soonest to expire first.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiry{}
	*h = old[:len(old)-1]
	return e
}
