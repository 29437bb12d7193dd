package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	adhocd      string        // server binary; empty: build it
	data        string        // data directory; empty: a temporary one
	users       int           // accounts; 0: one per session
	sessions    int           // sessions opened and held
	concurrency int           // parallel dialers
	sources     int           // source addresses 127.0.0.1..127.0.0.N
	hold        time.Duration // how long the sessions are held
	settle      time.Duration // longest wait for the server's RSS to settle
	tlsOnly     bool          // also time TLS-only connects
	resume      bool          // TLS session resumption
	password    string        // of every benchmark account
	jsonOut     bool

	mode          string        // modeLogin or modeEndUserSession
	adminPassword string        // of admin@localhost, given to the server as ADHOCD_ADMIN_PASSWORD
	callers       int           // concurrent HTTP callers
	requests      int           // end-user-session requests; 0: one per user
	relogin       bool          // log an ended user in again, so the number online stays the same
	clientClose   bool          // clients answer the stream error with </stream:stream>
	warmup        bool          // one untimed request per caller first
	floor         bool          // also time the no-op handler
	perf          string        // perf record the server during the HTTP phase into this file
	duration      time.Duration // --mode churn: how long
}

// Modes.
const (
	modeLogin          = "login"
	modeEndUserSession = "end-user-session"
	modeChurn          = "churn"
)

const usage = `Usage: adhocbench [flags]

Starts adhocd serve on 127.0.0.1 ports with its own data directory, creates
the accounts bench000000@localhost... (before the server starts), and then:

 1. samples the server's RSS with no session (the baseline);
 2. logs --sessions sessions in over direct TLS with SCRAM-SHA-256 and binds
    a resource, --concurrency at a time, and reports logins/s over the wall
    time of that phase, p50/p99 login latency, failures and CPU per login;
 3. holds them for --hold, waits until the server's RSS is stable (samples
    every 500ms until 3 differ by less than 1%), and reports RSS, threads and
    goroutines (when /healthz has "goroutines"), in all and per session
    above the baseline;
 4. pings every session to check it is still alive, and closes them;
 5. with --tls-only, makes as many TLS handshakes without XMPP (connect,
    handshake, close) against the same port: the floor under the login rate.

The client's SCRAM keys are derived before the timed phase, so the login
rate measures the server. Run it from the module directory when --adhocd is
not given (it runs go build). Its own and the server's open-file limits are
raised to the hard limit (and beyond it, when root) before the server starts.
The server inherits the environment: with GODEBUG=gctrace=1 the report shows
its last GC line (live heap and stack in use), and GOGC or GOMEMLIMIT apply.
CPU per connect is read from /proc (10ms ticks); "other processes" is the
share of the machine used by anything else during the phase (noise).

--mode end-user-session: --users N accounts (default --sessions), each
logged in with one session (resource r<i>) as in step 2, each connection
read in the background by the tool. Then --callers HTTP callers (keep-alive)
POST JSON end-user-session requests for one user each to
/rest/adhoc/sess-man@localhost as admin@localhost (Basic auth; the server
gets ADHOCD_ADMIN_PASSWORD), taking the users in turn from a shared index,
until --requests are done (default: every user). Every answer must be 200
with the single Notes line "Operation successful for user <user>/r<i>".
Reported: requests/s over the wall time of the phase, latency p50/p99/max
(request sent to response read), and for the ended clients the time from
their request being sent until they read the stream error, and until their
socket read failed (p50/p99). A client answers the stream error with
</stream:stream> as a polite client does (--client-close), and the server
then closes at once; without it, the server waits its kick grace (2s).
With --floor, the same requests (same bodies, callers and count) then go to
a no-op echo handler in this process: the floor, and the ratio. The
"ceiling" line divides the CPUs by the tool's own CPU per request in the
adhocd phase: the most a server costing nothing could reach while the tool
and its clients share the machine with it.
--relogin logs every ended user in again (not timed) so the number online
stays --users; --requests may then exceed --users (users are reused in
turn). Compare one caller ending users among 10 and among 10,000 online:
  adhocbench --mode end-user-session --users 10 --callers 1 --requests 200 --relogin
  adhocbench --mode end-user-session --users 10000 --callers 1 --requests 200 --relogin

--mode churn: --sessions N accounts ("slots"), each with at most one session
at a time. For --duration, --concurrency workers take the slots in turn:
each closes the slot's kept session if it has one (cleanly or by dropping
the socket, in turn), logs in again over direct TLS with SCRAM-SHA-256 and
binds a new resource, then closes the new session with </stream:stream>,
drops its socket without a word, or keeps it (read in the background) until
the slot comes round again, in turn. Meanwhile --callers HTTP callers (as
admin@localhost) call end-user-session for random slots, page through
GET /rest/sessions and call get-online-users-num, without pause. At the
end the sessions GET /rest/sessions lists (every page) must be exactly the
kept sessions whose sockets are open (polled for 30s: ghosts and missing
ones are reported, and fail the run); then every session is closed and
the server's goroutines (/healthz) and open descriptors (/proc/PID/fd) are
polled for 30s until they are back at what they were before the churn.
Reported: sessions connected and bound per second over the churn, how they
left, the API calls and failures, ghosts, missing, goroutines and fds
before and after (and the fds' peak). For example:
  adhocbench --mode churn --sessions 5000 --duration 2m --json

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "adhocbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("adhocbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var cfg config
	fs.StringVar(&cfg.adhocd, "adhocd", "", "path of the adhocd binary; default: go build ./cmd/adhocd into a temporary directory")
	fs.StringVar(&cfg.data, "data", "", "data directory, kept between runs so that accounts are created once; default: a temporary one")
	fs.IntVar(&cfg.users, "users", 0, "accounts; sessions take them in turn with distinct resources; 0: one per session")
	fs.IntVar(&cfg.sessions, "sessions", 1000, "sessions to open and hold")
	fs.IntVar(&cfg.concurrency, "concurrency", 8*runtime.NumCPU(), "logins (and TLS handshakes) in flight at once")
	fs.IntVar(&cfg.sources, "sources", 8, "source addresses 127.0.0.1..127.0.0.N the connections are spread over (at most 254)")
	fs.DurationVar(&cfg.hold, "hold", 30*time.Second, "how long the sessions are held before the RSS is sampled")
	fs.DurationVar(&cfg.settle, "settle", time.Minute, "longest wait for the server's RSS to be stable")
	fs.BoolVar(&cfg.tlsOnly, "tls-only", true, "also time as many TLS-only connects (no XMPP) against the same port")
	fs.BoolVar(&cfg.resume, "resume", false, "use a TLS session cache (resumed handshakes); default: every handshake is full")
	fs.StringVar(&cfg.password, "password", "adhocbench-password", "password of every benchmark account")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&cfg.mode, "mode", modeLogin, "login: log sessions in, hold, ping, close; end-user-session: log --users in with one session each and end them over HTTP; churn: connect and disconnect sessions for --duration under HTTP calls")
	fs.StringVar(&cfg.adminPassword, "admin-password", "adhocbench-admin", "password of admin@localhost (ADHOCD_ADMIN_PASSWORD of the server; set in the store when the admin exists)")
	fs.IntVar(&cfg.callers, "callers", 16, "end-user-session: concurrent HTTP callers")
	fs.IntVar(&cfg.requests, "requests", 0, "end-user-session: requests, each ending one user; 0: one per user")
	fs.BoolVar(&cfg.relogin, "relogin", false, "end-user-session: log each ended user in again (not timed), so the number online stays --users")
	fs.BoolVar(&cfg.clientClose, "client-close", true, "end-user-session: clients answer the server's stream error with </stream:stream>")
	fs.BoolVar(&cfg.warmup, "warmup", true, "end-user-session: each caller first sends one untimed request (for a user who is not online)")
	fs.BoolVar(&cfg.floor, "floor", true, "end-user-session: also time the same requests against a no-op echo handler in this process")
	fs.DurationVar(&cfg.duration, "duration", 2*time.Minute, "churn: how long the workers churn sessions")
	fs.StringVar(&cfg.perf, "perf", "", "end-user-session: run perf record -g on the server during the HTTP phase, into this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.mode == modeChurn {
		cfg.users = cfg.sessions // one account per slot
	}
	if cfg.mode == modeEndUserSession {
		// One session per user: --users sets both.
		if cfg.users == 0 {
			cfg.users = cfg.sessions
		}
		cfg.sessions = cfg.users
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.sessions < 1, cfg.concurrency < 1, cfg.users < 0:
		return cfg, errors.New("--sessions and --concurrency must be positive, --users not negative")
	case cfg.sources < 1 || cfg.sources > 254:
		return cfg, errors.New("--sources must be 1..254")
	case cfg.mode != modeLogin && cfg.mode != modeEndUserSession && cfg.mode != modeChurn:
		return cfg, fmt.Errorf("--mode %q: want %s, %s or %s", cfg.mode, modeLogin, modeEndUserSession, modeChurn)
	case cfg.mode == modeChurn && cfg.duration <= 0:
		return cfg, errors.New("--duration must be positive")
	case cfg.callers < 1 || cfg.requests < 0:
		return cfg, errors.New("--callers must be positive, --requests not negative")
	case cfg.mode == modeEndUserSession && cfg.requests > cfg.users && !cfg.relogin:
		return cfg, fmt.Errorf("--requests %d is more than --users %d: each request ends a different online user (or use --relogin)", cfg.requests, cfg.users)
	}
	if cfg.users == 0 || cfg.users > cfg.sessions {
		cfg.users = cfg.sessions
	}
	if cfg.requests == 0 {
		cfg.requests = cfg.users
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "adhocbench: "+format+"\n", a...) }
	rep, err := bench(ctx, cfg, progress)
	if rep != nil {
		rep.Command = "adhocbench " + strings.Join(args, " ")
		if cfg.jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
		} else {
			rep.print(stdout)
		}
	}
	return err
}
