package main

import (
	"context"
	"crypto/tls"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phase is the outcome of one timed phase of connects.
type phase struct {
	Attempts  int     `json:"attempts"`
	OK        int     `json:"ok"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"`    // wall time of the phase
	PerSecond float64 `json:"per_second"` // OK / Seconds
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
	// CPU time used per successful connect, from /proc/PID/stat (10ms ticks).
	ServerCPUUS float64 `json:"server_cpu_us_per_op"`
	ClientCPUUS float64 `json:"client_cpu_us_per_op"`
	// OtherCPUPct is the share of the machine's CPU time that other
	// processes (and the kernel outside these two) used during the phase:
	// noise on a shared machine.
	OtherCPUPct float64        `json:"other_cpu_pct"`
	Resumed     int            `json:"tls_resumed"`      // handshakes that resumed a TLS session
	Errors      map[string]int `json:"errors,omitempty"` // a few distinct errors and their counts
}

// report is everything a run measured.
type report struct {
	Command           string   `json:"command"`
	Mode              string   `json:"mode"`
	CPUs              int      `json:"cpus"`
	CPUModel          string   `json:"cpu_model"`
	GoVersion         string   `json:"go_version"`
	Kernel            string   `json:"kernel"`
	ServerBuild       string   `json:"server_build"` // Go version and VCS revision of the adhocd binary
	Sessions          int      `json:"sessions"`
	Users             int      `json:"users"`
	Concurrency       int      `json:"concurrency"`
	Sources           int      `json:"sources"`
	Resume            bool     `json:"tls_resumption"`
	Hold              string   `json:"hold"`
	AccountsCreated   int      `json:"accounts_created"`
	ProvisionSeconds  float64  `json:"provision_seconds"` // setup, not timed: accounts and client keys
	ClientNoFile      uint64   `json:"client_nofile"`
	ServerNoFile      int64    `json:"server_nofile"`
	Baseline          sample   `json:"baseline"` // 0 sessions, after start
	Login             phase    `json:"login"`
	Held              sample   `json:"held"` // after --hold, RSS settled
	RSSPerSessionKiB  float64  `json:"rss_per_session_kib"`
	GoroutinesPerSess *float64 `json:"goroutines_per_session,omitempty"`
	ClientRSSKiB      int64    `json:"client_rss_kib"` // this tool, holding the sessions
	Alive             int      `json:"alive_after_hold"`
	AfterClose        *sample  `json:"after_close,omitempty"`
	TLSOnly           *phase   `json:"tls_only,omitempty"`
	ServerWarnings    int      `json:"server_log_warnings"`
	ServerErrors      int      `json:"server_log_errors"`
	ServerLogSample   []string `json:"server_log_sample,omitempty"`
	Notes             []string `json:"notes,omitempty"`
	// EndUserSession is what --mode end-user-session measured after the
	// logins; Held, Alive, AfterClose and TLSOnly are then not measured.
	EndUserSession *endReport `json:"end_user_session,omitempty"`
	// Churn is what --mode churn measured; Login, Held, Alive, AfterClose
	// and TLSOnly are then not measured.
	Churn *churnReport `json:"churn,omitempty"`
}

// bench runs the whole benchmark. It returns what it measured so far with
// an error that stopped it.
func bench(ctx context.Context, cfg config, progress func(string, ...any)) (*report, error) {
	if cfg.mode == "" {
		cfg.mode = modeLogin
	}
	if cfg.requests == 0 {
		cfg.requests = cfg.users
	}
	rep := &report{
		Mode: cfg.mode, CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), Kernel: kernel(),
		Sessions: cfg.sessions, Users: cfg.users, Concurrency: cfg.concurrency, Sources: cfg.sources,
		Resume: cfg.resume, Hold: cfg.hold.String(),
	}
	note := func(format string, a ...any) { rep.Notes = append(rep.Notes, fmt.Sprintf(format, a...)) }

	tmp, err := os.MkdirTemp("", "adhocbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.adhocd
	if bin == "" {
		progress("building adhocd")
		if bin, err = buildAdhocd(ctx, tmp); err != nil {
			return nil, err
		}
	}
	rep.ServerBuild = buildOf(bin)
	data := cfg.data
	if data == "" {
		data = filepath.Join(tmp, "data")
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}

	// Both processes need a descriptor per session; the server inherits ours.
	if rep.ClientNoFile, err = raiseNoFile(uint64(cfg.sessions) + 1024); err != nil {
		return nil, fmt.Errorf("raise open-file limit: %w", err)
	}
	if rep.ClientNoFile < uint64(cfg.sessions)+100 {
		note("open-file limit %d is too low for %d sessions: raise the hard limit (ulimit -Hn)", rep.ClientNoFile, cfg.sessions)
	}
	if 2*cfg.sessions > cfg.sources*25000 {
		note("%d sessions over %d source addresses may run out of ephemeral ports: raise --sources", cfg.sessions, cfg.sources)
	}

	progress("provisioning %d accounts and deriving their client keys (not timed)", cfg.users)
	start := time.Now()
	creds, created, err := provision(ctx, data, cfg.users, cfg.password, 2*runtime.NumCPU())
	rep.ProvisionSeconds, rep.AccountsCreated = time.Since(start).Seconds(), created
	if err != nil {
		return rep, fmt.Errorf("provision: %w", err)
	}
	if cfg.mode == modeEndUserSession || cfg.mode == modeChurn {
		if err := setAdminPassword(ctx, data, cfg.adminPassword); err != nil {
			return rep, fmt.Errorf("provision: %w", err)
		}
	}

	idle := cfg.hold + 2*cfg.settle + 10*time.Minute // no keepalive pings while held
	srv, err := startServer(ctx, bin, data, idle, "ADHOCD_ADMIN_PASSWORD="+cfg.adminPassword)
	if err != nil {
		return rep, err
	}
	defer func() { // after the stop below, so that shutdown warnings count
		rep.ServerWarnings, rep.ServerErrors, rep.ServerLogSample = srv.logCounts()
	}()
	defer func() {
		if err := srv.stop(); err != nil {
			progress("stopping adhocd: %v", err)
		}
	}()
	pid := srv.cmd.Process.Pid
	if rep.ServerNoFile, err = serverNoFile(pid); err == nil && rep.ServerNoFile < int64(cfg.sessions)+100 {
		note("the server's open-file limit %d is too low for %d sessions", rep.ServerNoFile, cfg.sessions)
	}
	d, err := newDialer(srv.tlsAddr, filepath.Join(data, "cert.pem"), cfg.sources, cfg.resume)
	if err != nil {
		return rep, err
	}

	progress("adhocd pid %d on %s; sampling its RSS with no session", pid, srv.tlsAddr)
	if rep.Baseline, err = srv.settle(ctx, cfg.settle); err != nil {
		return rep, err
	}

	if cfg.mode == modeChurn {
		return rep, churn(ctx, cfg, rep, srv, d, creds, progress)
	}

	progress("logging in %d sessions, %d at a time", cfg.sessions, cfg.concurrency)
	conns := make([]*tls.Conn, cfg.sessions)
	rep.Login = runPhase(ctx, d, pid, cfg.sessions, cfg.concurrency, func(i int) error {
		c, err := login(ctx, d, i, &creds[i%cfg.users], "r"+strconv.Itoa(i), time.Now().Add(time.Minute))
		conns[i] = c
		return err
	})
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close() // on an early return only: the sessions are being abandoned
			}
		}
	}()

	if cfg.mode == modeEndUserSession {
		// Let the server finish with the logins (the last-login batch is
		// written every second, the heap settles) before the HTTP phase.
		progress("waiting for the server to settle after the logins")
		loggedIn := time.Now()
		if rep.Held, err = srv.settle(ctx, cfg.settle); err != nil {
			return rep, err
		}
		// Nothing to synchronise with: the server's last-login timer.
		select {
		case <-time.After(2*time.Second - time.Since(loggedIn)):
		case <-ctx.Done():
			return rep, ctx.Err()
		}
		return rep, endUserSessions(ctx, cfg, rep, srv, d, creds, conns, progress)
	}

	progress("holding %d sessions for %s", rep.Login.OK, cfg.hold)
	select {
	case <-time.After(cfg.hold):
	case <-srv.done:
		return rep, fmt.Errorf("adhocd exited while the sessions were held: %v", srv.waitErr)
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	if rep.Held, err = srv.settle(ctx, cfg.settle); err != nil {
		return rep, err
	}
	rep.ClientRSSKiB, _, _ = procStatus(os.Getpid()) // informative only
	if n := rep.Login.OK; n > 0 {
		rep.RSSPerSessionKiB = float64(rep.Held.RSSKiB-rep.Baseline.RSSKiB) / float64(n)
		if rep.Held.Goroutines != nil && rep.Baseline.Goroutines != nil {
			g := float64(*rep.Held.Goroutines-*rep.Baseline.Goroutines) / float64(n)
			rep.GoroutinesPerSess = &g
		}
	}
	if !rep.Held.Stable || !rep.Baseline.Stable {
		note("the server's RSS did not settle within --settle %s", cfg.settle)
	}

	progress("pinging the held sessions")
	var alive atomic.Int64
	_ = parallel(cfg.sessions, cfg.concurrency, func(i int) error { // fn never fails
		if conns[i] != nil && ping(conns[i], time.Now().Add(30*time.Second)) == nil {
			alive.Add(1)
		}
		return nil
	})
	rep.Alive = int(alive.Load())

	progress("closing the sessions")
	_ = parallel(cfg.sessions, cfg.concurrency, func(i int) error { // fn never fails
		if conns[i] != nil {
			closeStream(conns[i])
			conns[i] = nil
		}
		return nil
	})
	waitNoSessions(ctx, srv)
	after, err := srv.settle(ctx, cfg.settle)
	if err != nil {
		return rep, err
	}
	rep.AfterClose = &after

	if cfg.tlsOnly {
		progress("timing %d TLS-only connects (handshake, close)", cfg.sessions)
		p := runPhase(ctx, d, pid, cfg.sessions, cfg.concurrency, func(i int) error {
			c, err := d.dial(ctx, i, time.Now().Add(time.Minute))
			if err == nil {
				err = c.Close()
			}
			return err
		})
		rep.TLSOnly = &p
	}
	return rep, nil
}

// waitNoSessions waits up to 30s for /healthz to report no session, when it
// reports sessions at all.
func waitNoSessions(ctx context.Context, srv *server) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		h, err := srv.health(ctx)
		if err != nil || h.Sessions == nil || *h.Sessions == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling the server, not synchronising goroutines
	}
}

// runPhase calls fn(0..n-1), conc at a time, and times each call and the
// whole phase, and measures the CPU time the server (pid) and this process
// spent on it.
func runPhase(ctx context.Context, d *dialer, pid, n, conc int, fn func(i int) error) phase {
	resumed := d.resumed.Load()
	p := measure(pid, n, conc, func(i int) (time.Duration, error) {
		t := time.Now()
		err := fn(i)
		return time.Since(t), err
	})
	p.Resumed = int(d.resumed.Load() - resumed)
	return p
}

// measure calls fn(0..n-1), conc at a time, each call reporting its own
// latency, and times the whole phase and the CPU time that the server (pid;
// 0 when there is none) and this process spent on it.
func measure(pid, n, conc int, fn func(i int) (time.Duration, error)) phase {
	srvCPU, cliCPU := cpuTime(pid), cpuTime(os.Getpid())
	busy, total := machineCPU()
	lat := make([]time.Duration, n)
	var (
		mu     sync.Mutex
		errs   = map[string]int{}
		failed int
	)
	start := time.Now()
	_ = parallel(n, conc, func(i int) error { // failures are counted, not returned
		var err error
		lat[i], err = fn(i)
		if err == nil {
			return nil
		}
		lat[i] = -1
		mu.Lock()
		failed++
		if msg := err.Error(); len(errs) < 5 || errs[msg] > 0 {
			errs[msg]++
		}
		mu.Unlock()
		return nil
	})
	p := phase{Attempts: n, Failed: failed, Seconds: time.Since(start).Seconds()}
	srvCPU, cliCPU = cpuTime(pid)-srvCPU, cpuTime(os.Getpid())-cliCPU
	busy2, total2 := machineCPU()
	if total2 > total {
		p.OtherCPUPct = max(0, 100*float64(busy2-busy-srvCPU-cliCPU)/float64(total2-total)) // ticks can round below 0
	}
	if len(errs) > 0 {
		p.Errors = errs
	}
	ok := slices.DeleteFunc(lat, func(d time.Duration) bool { return d < 0 })
	p.OK = len(ok)
	if p.OK == 0 {
		return p
	}
	p.PerSecond = float64(p.OK) / p.Seconds
	p.ServerCPUUS, p.ClientCPUUS = float64(srvCPU.Microseconds())/float64(p.OK), float64(cliCPU.Microseconds())/float64(p.OK)
	s := spreadOf(ok)
	p.P50MS, p.P99MS, p.MaxMS = s.P50MS, s.P99MS, s.MaxMS
	return p
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// buildOf describes the Go version and VCS revision a binary was built from.
func buildOf(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	out := info.GoVersion
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			out += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				out += " (modified)"
			}
		}
	}
	return out
}

// cpuTime is the user and system CPU time process pid has used, or 0.
func cpuTime(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)) // a missing value reads as 0
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of proc(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// machineCPU is the busy and total CPU time of all CPUs since boot, from
// the "cpu" line of /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, _ := os.ReadFile("/proc/stat") // a missing value reads as 0
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f) && i <= 8; i++ { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseInt(f[i], 10, 64)
		d := time.Duration(v) * 10 * time.Millisecond
		total += d
		if i != 4 && i != 5 {
			busy += d
		}
	}
	return busy, total
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo") // informative only
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease") // informative only
	return strings.TrimSpace(string(b))
}

// print writes the report as text.
func (r *report) print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	mib := func(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
	gor := func(s sample) string {
		if s.Goroutines == nil {
			return "goroutines n/a (/healthz has no \"goroutines\")"
		}
		return fmt.Sprintf("goroutines %d", *s.Goroutines)
	}
	handshakes := "full TLS handshakes"
	if r.Resume {
		handshakes = "TLS resumption allowed"
	}
	p("command:  %s", r.Command)
	p("machine:  %d CPUs, %s, %s, linux %s", r.CPUs, r.CPUModel, r.GoVersion, r.Kernel)
	p("server:   adhocd built with %s", r.ServerBuild)
	p("accounts: %d (%d created; provisioning and client keys %.1fs, not timed)", r.Users, r.AccountsCreated, r.ProvisionSeconds)
	p("limits:   open files client %d, server %d", r.ClientNoFile, r.ServerNoFile)
	p("baseline: 0 sessions: RSS %s, threads %d, %s", mib(r.Baseline.RSSKiB), r.Baseline.Threads, gor(r.Baseline))
	if r.Mode == modeChurn {
		if r.Churn != nil {
			r.Churn.print(w)
		}
		r.printTail(w)
		return
	}
	printPhase(w, "logins", r.Login)
	p("          concurrency %d, %d source addresses, SCRAM-SHA-256, %s", r.Concurrency, r.Sources, handshakes)
	if r.Mode == modeEndUserSession {
		if e := r.EndUserSession; e != nil {
			p("held:     %d sessions, one per user: RSS %s, threads %d, %s", r.Login.OK, mib(r.Held.RSSKiB), r.Held.Threads, gor(r.Held))
			e.print(w)
		}
		r.printTail(w)
		return
	}
	p("held:     %d sessions for %s: RSS %s (settled: %v after %.1fs), threads %d, %s",
		r.Login.OK, r.Hold, mib(r.Held.RSSKiB), r.Held.Stable, float64(r.Held.WaitedMS)/1000, r.Held.Threads, gor(r.Held))
	per := fmt.Sprintf("per idle session: RSS %.1f KiB", r.RSSPerSessionKiB)
	if r.GoroutinesPerSess != nil {
		per += fmt.Sprintf(", goroutines %.2f", *r.GoroutinesPerSess)
	}
	p("%s", per)
	p("alive:    %d/%d answered a ping after the hold; client RSS %s", r.Alive, r.Login.OK, mib(r.ClientRSSKiB))
	if r.Held.LastGC != "" {
		p("          server's last GC before that: %s", r.Held.LastGC)
	}
	if a := r.AfterClose; a != nil {
		p("closed:   RSS %s, threads %d, %s", mib(a.RSSKiB), a.Threads, gor(*a))
	}
	if t := r.TLSOnly; t != nil {
		printPhase(w, "tls-only", *t)
		if t.PerSecond > 0 && r.Login.PerSecond > 0 {
			p("          XMPP login on top of TLS: %.0f us per login (%.0f%% of the TLS-only rate)",
				1e6/r.Login.PerSecond-1e6/t.PerSecond, 100*r.Login.PerSecond/t.PerSecond)
		}
	}
	r.printTail(w)
}

// printTail writes the server's log counts and the notes.
func (r *report) printTail(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("server log: %d warnings, %d errors", r.ServerWarnings, r.ServerErrors)
	for _, l := range r.ServerLogSample {
		p("  %s", trim(l))
	}
	for _, n := range r.Notes {
		p("note: %s", n)
	}
}

func printPhase(w io.Writer, name string, ph phase) {
	fmt.Fprintf(w, "%-9s %d ok, %d failed in %.2fs: %.0f/s; latency p50 %.1fms p99 %.1fms max %.1fms\n",
		name+":", ph.OK, ph.Failed, ph.Seconds, ph.PerSecond, ph.P50MS, ph.P99MS, ph.MaxMS)
	fmt.Fprintf(w, "          CPU per connect: server %.0f us, client %.0f us; other processes used %.0f%% of the CPUs; %d TLS sessions resumed\n",
		ph.ServerCPUUS, ph.ClientCPUUS, ph.OtherCPUPct, ph.Resumed)
	for msg, n := range ph.Errors {
		fmt.Fprintf(w, "          %d x %s\n", n, trim(msg))
	}
}
