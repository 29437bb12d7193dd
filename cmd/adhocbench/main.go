// Command adhocbench is a load tool for adhocd: it starts `adhocd serve`,
// opens many authenticated direct-TLS (XEP-0368) sessions with SCRAM-SHA-256,
// holds them, and reports the login rate and the server's memory per idle
// session.
//
//	adhocbench --sessions 10000 --concurrency 32 --hold 2m
//
// It provisions the accounts before the server starts, derives each client's
// SCRAM keys before the timed phase (RFC 5802 §5.1: clients cache them), and
// spreads its connections over the source addresses 127.0.0.1..127.0.0.N.
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
}

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
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.sessions < 1, cfg.concurrency < 1, cfg.users < 0:
		return cfg, errors.New("--sessions and --concurrency must be positive, --users not negative")
	case cfg.sources < 1 || cfg.sources > 254:
		return cfg, errors.New("--sources must be 1..254")
	}
	if cfg.users == 0 || cfg.users > cfg.sessions {
		cfg.users = cfg.sessions
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
