package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/transport/limit"
)

// Config configures a Server. Zero values take the defaults shown.
type Config struct {
	Domain             string        // the domain served; required
	TLS                *tls.Config   // certificate for STARTTLS and direct TLS; required
	NegotiationTimeout time.Duration // connect to bound resource; default 30s
	MaxStanzaSize      int64         // bytes per top-level element; default 256 KiB
	WriteTimeout       time.Duration // per write; a client that does not read is dropped; default 10s
	MaxQueuedBytes     int           // queued for one client before it is dropped; default 1 MiB
	IdleTimeout        time.Duration // silence before a keepalive ping; default 5m
	PingTimeout        time.Duration // silence after the ping before the client is dropped; default 30s
	KickGrace          time.Duration // wait for an ended client to close its side; default 2s
	MaxAuthFailures    int           // failed SASL attempts before the connection is closed; default 3
	CommandTimeout     time.Duration // deadline of an in-band ad-hoc command; default 10s
	// MaxUnauthenticatedPerAddress bounds the connections from one IP
	// address that have not authenticated yet (SASL success), counted
	// across the STARTTLS port, direct TLS and WebSocket together; one over
	// it is refused (see refuse). Default 64; negative: no limit.
	MaxUnauthenticatedPerAddress int
	// FakeSaltKey keys the fake SCRAM salts of unknown users. It must be
	// the same on every node and across restarts, or probing would tell
	// unknown users (whose salt changed) from real ones (whose salt did
	// not); cmd/adhocd takes it from the store. Default: random, for this
	// process only (tests).
	FakeSaltKey []byte
}

func (cfg *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.NegotiationTimeout, 30*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.IdleTimeout, 5*time.Minute)
	def(&cfg.PingTimeout, 30*time.Second)
	def(&cfg.KickGrace, 2*time.Second)
	if cfg.MaxStanzaSize <= 0 {
		cfg.MaxStanzaSize = 256 << 10
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = 1 << 20
	}
	def(&cfg.CommandTimeout, 10*time.Second)
	if cfg.MaxAuthFailures <= 0 {
		cfg.MaxAuthFailures = 3
	}
	if cfg.MaxUnauthenticatedPerAddress == 0 {
		cfg.MaxUnauthenticatedPerAddress = 64
	}
	if len(cfg.FakeSaltKey) == 0 {
		cfg.FakeSaltKey = make([]byte, 32)
		_, _ = rand.Read(cfg.FakeSaltKey) // crypto/rand.Read never fails (Go 1.24+)
	}
}

// Registry is the session registry the listener binds resources in and routes
// through, and ends them with at shutdown. *sessman.Registry implements it.
type Registry interface {
	Bind(c session.Conn) error
	Unbind(c session.Conn)
	Lookup(full jid.JID) (session.Conn, bool)
	Resources(user jid.JID) []session.Conn
	End(ctx context.Context, req session.EndRequest) (session.EndResult, error)
}

// Deps are what the listener works with.
type Deps struct {
	Accounts Accounts
	Registry Registry
	Commands Commands // optional: in-band XEP-0050
	// Failures throttles failed logins per (account, address), address and
	// account; shared with the HTTP server. Default:
	// limit.NewDefaultFailures().
	Failures *limit.Failures
	Logger   zerolog.Logger
}

// Server accepts client connections on any number of listeners.
type Server struct {
	cfg      Config
	accounts Accounts
	reg      Registry
	commands Commands
	failures *limit.Failures
	log      zerolog.Logger

	wg sync.WaitGroup // connection, writer and command goroutines

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	unauth    map[netip.Addr]int // connections not yet authenticated, per address
}

// New returns a Server. It accepts nothing until Serve is called.
func New(cfg Config, deps Deps) *Server {
	cfg.setDefaults()
	if deps.Failures == nil {
		deps.Failures = limit.NewDefaultFailures()
	}
	return &Server{
		failures:  deps.Failures,
		cfg:       cfg,
		accounts:  deps.Accounts,
		reg:       deps.Registry,
		commands:  deps.Commands,
		log:       deps.Logger.With().Str("component", "c2s").Logger(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		unauth:    make(map[netip.Addr]int),
	}
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("c2s: server closed")

// Serve accepts connections on ln until Close. With directTLS each connection
// starts with a TLS handshake (XEP-0368); otherwise the client must use
// STARTTLS before it may authenticate.
func (s *Server) Serve(ln net.Listener, directTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Str("duration", delay.String()).Msg("accept failed, backing off")
				time.Sleep(delay) // backoff, not synchronisation
				continue
			}
			return err
		}
		delay = 0
		transport := TransportTCP
		if directTLS {
			nc = tls.Server(nc, s.cfg.TLS)
			transport = TransportTLS
		}
		s.start(nc, transport, nc.RemoteAddr(), false)
	}
}

// start runs a connection in its own goroutine. A connection over the
// per-address limit of unauthenticated connections is refused instead.
func (s *Server) start(nc net.Conn, transport string, remote net.Addr, secure bool) *conn {
	c := newConn(s, nc, transport, remote)
	c.secure = c.secure || secure
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return nil
	}
	refused := !s.countUnauthLocked(c)
	if refused && transport == TransportTLS {
		s.mu.Unlock()
		// Nothing can be said before the handshake, and a handshake is
		// what the flood costs us: hang up at once.
		c.log.Warn().Msg("too many unauthenticated connections from the address, hanging up")
		_ = c.sock.Close()
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if refused {
			c.refuse()
		} else {
			c.serve()
		}
		s.uncount(c)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	return c
}

// addrKey is the address a connection is counted under.
func addrKey(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap(), err == nil
}

// countUnauthLocked counts c as unauthenticated under its address, unless
// that address is at the limit: then it reports false.
func (s *Server) countUnauthLocked(c *conn) bool {
	limit := s.cfg.MaxUnauthenticatedPerAddress
	ip, ok := addrKey(c.remote)
	if limit < 0 || !ok {
		return true
	}
	if s.unauth[ip] >= limit {
		return false
	}
	s.unauth[ip]++
	c.counted, c.countedAs = true, ip
	return true
}

// uncount stops counting c as unauthenticated: at SASL success, and when
// it ends. Only the connection's goroutine calls it; it is idempotent.
func (s *Server) uncount(c *conn) {
	if !c.counted {
		return
	}
	c.counted = false
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unauth[c.countedAs]--; s.unauth[c.countedAs] <= 0 {
		delete(s.unauth, c.countedAs)
	}
}

// Close stops accepting, ends every bound session with <system-shutdown/>
// through the registry, hangs up on the connections still negotiating, and
// waits for every connection goroutine to finish or ctx to expire.
// It is safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close() // Serve returns ErrServerClosed
	}
	s.listeners = map[net.Listener]struct{}{}
	s.mu.Unlock()

	_, endErr := s.reg.End(ctx, session.EndRequest{Everyone: true, Condition: session.ConditionSystemShutdown,
		Reason: "The server is shutting down."})
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Kick(session.ConditionSystemShutdown, "The server is shutting down.") // those not bound hang up
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return endErr
	case <-ctx.Done():
		for _, c := range conns {
			c.out.hangup()
		}
		<-done
		return ctx.Err()
	}
}
