package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/adhocd/adhocd/sessman/session"
)

// BenchmarkAppendAudit appends end-user-session entries as the gateway does,
// from 1 and from 16 concurrent callers (issue 3's load), and reports the
// entries each commit carried, the process's CPU time per entry and the
// slowest single call (max-ms), which group commit must keep near one commit.
//
//	go test -run '^$' -bench AppendAudit -benchtime 5000x ./sessman/store
func BenchmarkAppendAudit(b *testing.B) {
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			db, _ := openTemp(b)
			commits, cpu := db.AuditCommits(), cpuTime(b)
			var next, worst atomic.Int64 // worst in nanoseconds
			var wg sync.WaitGroup
			b.ResetTimer()
			for range callers {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						start := time.Now()
						_, err := db.AppendAudit(b.Context(), session.AuditEntry{
							Actor: "admin@localhost", Auth: "basic", Action: "adhoc:end-user-session",
							Targets: []string{fmt.Sprintf("bench%06d@localhost/r1", i)}, Outcome: "ok",
							Detail: "ended 1 session", RemoteAddr: "127.0.0.1:40000", RequestID: fmt.Sprintf("req-%d", i),
						})
						if err != nil {
							b.Error(err)
							return
						}
						for d, w := int64(time.Since(start)), worst.Load(); d > w && !worst.CompareAndSwap(w, d); w = worst.Load() {
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/float64(db.AuditCommits()-commits), "entries/commit")
			b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(worst.Load())/1e6, "max-ms")
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
