package c2stest

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// HeapSampler records the peak growth of the heap over its baseline while
// a test sends something hostile: the c2s and the HTTP tests bound what an
// input may cost with it.
type HeapSampler struct {
	base    uint64
	stop    chan struct{}
	sampled chan struct{}
	mu      sync.Mutex
	peak    uint64
}

// StartHeapSampler collects garbage, takes the baseline and samples the
// live and not yet collected heap objects every 100 µs (read without
// stopping the world) until Stop.
func StartHeapSampler() *HeapSampler {
	runtime.GC()
	h := &HeapSampler{base: heapObjects(), stop: make(chan struct{}), sampled: make(chan struct{})}
	go func() {
		defer close(h.sampled)
		tick := time.NewTicker(100 * time.Microsecond) // sampling, not synchronisation
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				if b := heapObjects(); b > h.base {
					h.mu.Lock()
					h.peak = max(h.peak, b-h.base)
					h.mu.Unlock()
				}
			}
		}
	}()
	return h
}

// Stop ends the sampling and returns the peak growth in bytes.
func (h *HeapSampler) Stop() uint64 {
	close(h.stop)
	<-h.sampled
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// WaitGoroutines polls until the goroutine count is back at baseline, for
// at most 5s, and fails with every stack if it is not. It polls itself:
// testify's Eventually runs its condition in a goroutine of its own, which
// would be counted.
func WaitGoroutines(t testing.TB, baseline int) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		select {
		case <-tick.C:
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
	}
}
