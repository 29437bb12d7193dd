package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
	"github.com/adhocd/adhocd/transport/c2s"
	"github.com/adhocd/adhocd/transport/httpapi"
	"github.com/adhocd/adhocd/transport/limit"
)

// serveConfig is everything `adhocd serve` takes from flags, environment
// and config file.
type serveConfig struct {
	domain, data        string
	c2sAddr, c2sTLSAddr string
	httpAddr            string
	admins              []jid.JID
	certFile, keyFile   string
	logLevel            zerolog.Level
	maxStanza           int64
	shutdownGracePeriod time.Duration
	negotiationTimeout  time.Duration
	idleTimeout         time.Duration
	writeTimeout        time.Duration
	commandTimeout      time.Duration
	maxUnauthPerAddr    int
	bodyLimit           int64
	pusherApps          []httpapi.PusherApp
	callerRate          float64
	callerBurst         int
	adminRate           float64
	trustedProxies      []netip.Prefix
	allowedOrigins      []string
}

// serveFlags are the flags of `adhocd serve` as given, before parseServe
// checks them into a serveConfig.
type serveFlags struct {
	cfg     serveConfig
	admins  commaList
	level   string
	pusher  stringList
	proxies commaList
	allow   commaList // --allowed-origins
}

// defineServeFlags defines the flags of `adhocd serve` on fs.
func defineServeFlags(fs *flag.FlagSet, f *serveFlags) {
	cfg := &f.cfg
	fs.StringVar(&cfg.domain, "domain", "localhost", "the XMPP domain served")
	fs.StringVar(&cfg.data, "data", "./data", "data directory: database and generated certificate")
	fs.StringVar(&cfg.c2sAddr, "c2s", ":5222", "client listen address, STARTTLS required; empty disables")
	fs.StringVar(&cfg.c2sTLSAddr, "c2s-tls", ":5223", "client listen address with direct TLS (XEP-0368); empty disables")
	fs.StringVar(&cfg.httpAddr, "http", "127.0.0.1:5280", "HTTP listen address: WebSocket at /xmpp-websocket, health at /healthz")
	fs.Var(&f.admins, "admins", "comma-separated JIDs that are admins besides the accounts marked admin")
	fs.StringVar(&cfg.certFile, "cert", "", "TLS certificate chain (PEM); default: a self-signed one made in the data directory")
	fs.StringVar(&cfg.keyFile, "key", "", "TLS private key (PEM) for --cert")
	fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.Int64Var(&cfg.maxStanza, "max-stanza", 256<<10, "largest stanza a client may send, in bytes; over it the stream ends with <policy-violation/>")
	fs.DurationVar(&cfg.negotiationTimeout, "negotiation-timeout", 30*time.Second, "time a client has from connecting to binding a resource")
	fs.IntVar(&cfg.maxUnauthPerAddr, "max-unauthenticated-per-address", 64, "client connections one IP address may hold before logging in, over the c2s ports and WebSocket together; over it a connection is refused with <policy-violation/> (0: no limit)")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", 5*time.Minute, "silence after which a client is pinged (and dropped if it stays silent 30s more)")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", 10*time.Second, "a client that does not read for this long is dropped")
	fs.DurationVar(&cfg.commandTimeout, "command-timeout", 10*time.Second, "deadline of every ad-hoc command (over HTTP or in-band) and every call of the session API")
	fs.Int64Var(&cfg.bodyLimit, "body-limit", 1<<20, "largest HTTP request body accepted, in bytes (413 over it)")
	fs.Var(&f.pusher, "pusher-app", "a Pusher-compatible app, id:key:secret:domain (repeatable; comma-separated in the environment)")
	fs.Float64Var(&cfg.callerRate, "rate", 10, "requests per second allowed to each account that is not an admin and to each API key (0: unlimited)")
	fs.IntVar(&cfg.callerBurst, "rate-burst", 20, "burst of requests allowed above --rate")
	fs.Float64Var(&cfg.adminRate, "admin-rate", 0, "requests per second allowed to each admin account (0: unlimited)")
	fs.Var(&f.proxies, "trusted-proxies", "comma-separated addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the client; default none: the peer is the client")
	fs.Var(&f.allow, "allowed-origins", "comma-separated origins (scheme://host[:port]) besides the server's own whose pages may send requests that change state; empty: none")
	fs.DurationVar(&cfg.shutdownGracePeriod, "shutdown-timeout", 5*time.Second, "time given to clients to close at shutdown")
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	fs := newFlagSet("serve", "adhocd serve [flags]")
	fs.SetOutput(stderr)
	var f serveFlags
	defineServeFlags(fs, &f)
	positional, err := parseFlags(fs, "serve", args, false)
	cfg := f.cfg
	if err != nil {
		return cfg, err
	}
	if len(positional) > 0 {
		return cfg, fmt.Errorf("serve: unexpected argument %q", positional[0])
	}
	if cfg.domain, err = parseDomain(cfg.domain); err != nil {
		return cfg, fmt.Errorf("serve: --domain: %w", err)
	}
	for _, a := range strings.Split(string(f.admins), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		j, err := parseAdmin(a, cfg.domain)
		if err != nil {
			return cfg, fmt.Errorf("serve: --admins: %w", err)
		}
		cfg.admins = append(cfg.admins, j)
	}
	for _, spec := range f.pusher {
		app, err := parsePusherApp(spec, cfg.domain)
		if err != nil {
			return cfg, fmt.Errorf("serve: --pusher-app: %w", err)
		}
		cfg.pusherApps = append(cfg.pusherApps, app)
	}
	for _, p := range strings.Split(string(f.proxies), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := parseProxy(p)
		if err != nil {
			return cfg, fmt.Errorf("serve: --trusted-proxies: %w", err)
		}
		cfg.trustedProxies = append(cfg.trustedProxies, prefix)
	}
	for _, o := range strings.Split(string(f.allow), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		origin, err := parseAllowedOrigin(o)
		if err != nil {
			return cfg, fmt.Errorf("serve: --allowed-origins: %w", err)
		}
		cfg.allowedOrigins = append(cfg.allowedOrigins, origin)
	}
	if cfg.logLevel, err = parseLevel(f.level); err != nil {
		return cfg, fmt.Errorf("serve: --log-level: %w", err)
	}
	return cfg, nil
}

// parseDomain returns the domainpart of s, a domain name.
func parseDomain(s string) (string, error) {
	d, err := jid.Parse(s)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" || d.Domainpart() == "" {
		return "", fmt.Errorf("%q is not a domain name; write example.org", s)
	}
	return d.Domainpart(), nil
}

// parseProxy parses one item of --trusted-proxies: a network in CIDR
// notation, or one address.
func parseProxy(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a network; write 10.0.0.0/8, 192.0.2.1 or fd00::/8", s)
}

// parseAdmin parses one JID of --admins: a bare JID with a user part.
func parseAdmin(s, domain string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("%q is not a bare JID like admin@%s", s, domain)
	}
	return j, nil
}

// parseLevel parses --log-level.
func parseLevel(s string) (zerolog.Level, error) {
	level, err := zerolog.ParseLevel(s)
	if err != nil || s == "" {
		return level, fmt.Errorf("%q is not a level; write debug, info, warn or error", s)
	}
	return level, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, newLogger(stderr, cfg.logLevel))
}

// serve builds the server's parts from cfg and starts them in order: the
// store, the accounts service, the c2s server and its listeners, the HTTP
// server and its listener.
// It runs until ctx is done or a listener fails, then stops the parts in
// reverse order within cfg.shutdownGracePeriod; a failure to start a part
// stops those already started.
func serve(ctx context.Context, cfg serveConfig, stdout io.Writer, log zerolog.Logger) error {
	parts := newLifecycle(log)
	defer parts.stop(cfg.shutdownGracePeriod)

	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	db, err := store.Open(filepath.Join(cfg.data, "adhocd.db"))
	if err != nil {
		return err
	}
	parts.add("store", func(context.Context) error { return db.Close() })
	if err := recordServedDomain(ctx, db, cfg.domain); err != nil {
		return err
	}

	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: cfg.domain, Admins: cfg.admins}, db, log)
	if err := ensureAdmin(ctx, accounts, stdout); err != nil {
		return err
	}
	if err := accounts.Start(ctx); err != nil {
		return err
	}
	parts.add("accounts", func(context.Context) error { accounts.Close(); return nil })

	tlsConfig, err := loadTLS(cfg.certFile, cfg.keyFile, cfg.data, cfg.domain)
	if err != nil {
		return err
	}
	reg := sessman.New(sessman.Config{}, log)
	manager := sessman.NewManager(sessman.ManagerConfig{Domain: cfg.domain}, reg, accounts, log)
	commands := adhoc.NewRegistry(adhoc.RegistryConfig{})
	if err := manager.Register(commands); err != nil {
		return err
	}
	failures := limit.NewDefaultFailures() // HTTP and XMPP logins alike
	// The same on every node and across restarts, so that unknown users keep
	// their fake SCRAM salts.
	fakeSaltKey, err := db.Secret(ctx, "scram-fake-salt")
	if err != nil {
		return err
	}

	c2sSrv := c2s.New(c2s.Config{
		Domain:             cfg.domain,
		TLS:                tlsConfig,
		MaxStanzaSize:      cfg.maxStanza,
		NegotiationTimeout: cfg.negotiationTimeout,
		// c2s takes 0 for its default and a negative value for no limit.
		MaxUnauthenticatedPerAddress: cmp.Or(max(cfg.maxUnauthPerAddr, 0), -1),
		IdleTimeout:                  cfg.idleTimeout,
		WriteTimeout:                 cfg.writeTimeout,
		CommandTimeout:               cfg.commandTimeout,
		FakeSaltKey:                  fakeSaltKey,
	}, c2s.Deps{
		Accounts: accounts,
		Registry: reg,
		Commands: commands,
		Failures: failures,
		Logger:   log,
	})
	// Close ends every bound session with <system-shutdown/>, WebSockets included.
	if err := parts.serve("c2s", c2sSrv.Close,
		listener{"c2s", cfg.c2sAddr, func(ln net.Listener) error { return c2sSrv.Serve(ln, false) }},
		listener{"c2s-tls", cfg.c2sTLSAddr, func(ln net.Listener) error { return c2sSrv.Serve(ln, true) }},
	); err != nil {
		return err
	}

	httpSrv := httpapi.New(httpapi.Config{
		Domain:         cfg.domain,
		WebSocket:      c2sSrv.WebSocketHandler(),
		Local:          reg,
		Accounts:       accounts,
		Commands:       commands,
		Sessions:       manager,
		PusherApps:     cfg.pusherApps,
		Audit:          manager,
		Failures:       failures,
		Rates:          limit.NewRates(cfg.callerRate, cfg.callerBurst),
		AdminRates:     limit.NewRates(cfg.adminRate, cfg.callerBurst),
		BodyLimit:      cfg.bodyLimit,
		TrustedProxies: cfg.trustedProxies,
		CommandTimeout: cfg.commandTimeout,
		AllowedOrigins: cfg.allowedOrigins,
	}, log)
	// Shutdown waits for the requests in flight; it stops before c2s, so
	// that they still find the sessions they act on.
	if err := parts.serve("http", httpSrv.Shutdown, listener{"http", cfg.httpAddr, httpSrv.Serve}); err != nil {
		return err
	}

	log.Info().Str("component", "adhocd").Msg("started")
	return parts.wait(ctx)
}

// newLogger logs JSON lines, or readable lines when stderr is a terminal.
func newLogger(w io.Writer, level zerolog.Level) zerolog.Logger {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			w = zerolog.ConsoleWriter{Out: f, TimeFormat: time.TimeOnly}
		}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// recordServedDomain notes in the database the domain served, which the
// command line checks the domain of new API keys against.
func recordServedDomain(ctx context.Context, db *store.DB, domain string) error {
	d, err := jid.Parse(domain)
	if err != nil {
		return fmt.Errorf("--domain: %q is not a domain name: %w", domain, err)
	}
	return db.SetServedDomain(ctx, d.Domainpart())
}

// ensureAdmin creates admin@domain when no admin account exists, with the
// password from ADHOCD_ADMIN_PASSWORD or a generated one printed once.
func ensureAdmin(ctx context.Context, accounts *sessman.Accounts, stdout io.Writer) error {
	password := os.Getenv("ADHOCD_ADMIN_PASSWORD")
	admin, generated, changed, err := accounts.EnsureAdmin(ctx, password)
	switch {
	case err != nil:
		return err
	case !changed && password != "":
		fmt.Fprintf(stdout, "ADHOCD_ADMIN_PASSWORD is ignored: an admin account exists already. "+
			"Set a password with 'adhocd user passwd %s', or start afresh with another --data.\n", admin)
	case !changed:
	case generated != "":
		fmt.Fprintf(stdout, "Created admin account %s with password %s (shown once).\n", admin, generated)
	default:
		fmt.Fprintf(stdout, "Admin account %s is ready.\n", admin)
	}
	return nil
}

// parsePusherApp reads id:key:secret[:domain]; the domain defaults to ours.
func parsePusherApp(spec, domain string) (httpapi.PusherApp, error) {
	parts := strings.Split(spec, ":")
	if len(parts) == 3 {
		parts = append(parts, domain)
	}
	if len(parts) != 4 || slices.Contains(parts, "") {
		return httpapi.PusherApp{}, fmt.Errorf("%q is not id:key:secret:domain", strings.Join(parts[:min(len(parts), 2)], ":")+":…")
	}
	return httpapi.PusherApp{ID: parts[0], Key: parts[1], Secret: parts[2], Domain: parts[3]}, nil
}

// parseAllowedOrigin reads one origin of --allowed-origins,
// scheme://host[:port], as the Origin header writes it.
func parseAllowedOrigin(s string) (string, error) {
	return httpapi.ParseOrigin(s)
}
