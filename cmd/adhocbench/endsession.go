package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/store"
)

// What --mode end-user-session sends and expects.
const (
	endUserSessionNode = "http://jabber.org/protocol/admin#end-user-session"
	sessMan            = "sess-man@" + domain
	adminUser          = "admin@" + domain
	// warmupUser is never online: ending it answers "fields": [].
	warmupUser = "adhocbench-warmup@" + domain
	// noopAnswer is the no-op handler's fixed answer.
	noopAnswer = `{"command":{"jid":"` + sessMan + `","node":"` + endUserSessionNode + `","fields":[]}}`
	// closeWait bounds how long an ended client's socket may take to close.
	closeWait = 15 * time.Second
)

// endReport is what --mode end-user-session measured.
type endReport struct {
	Users        int  `json:"users"`
	Callers      int  `json:"callers"`
	Requests     int  `json:"requests"`
	Relogin      bool `json:"relogin"`
	ClientClose  bool `json:"client_answers_stream_end"`
	Warmup       bool `json:"warmup"`
	OnlineBefore *int `json:"online_before,omitempty"` // /healthz sessions before the phase
	OnlineAfter  *int `json:"online_after,omitempty"`  // and right after it
	// Adhocd is the HTTP phase against adhocd: latency from request sent to
	// response read; server CPU is adhocd's, client CPU this tool's.
	Adhocd      phase `json:"adhocd"`
	AdhocdConns int64 `json:"adhocd_http_connections"` // TCP connections the callers opened, warm-up included
	// From each request being sent until its client read the stream error,
	// and until its socket read failed (the server closed the connection).
	StreamError  spread `json:"sent_to_stream_error"`
	SocketClosed spread `json:"sent_to_socket_closed"`
	// SocketErrors counts how the ended clients' reads failed (EOF, reset…).
	SocketErrors map[string]int `json:"socket_errors,omitempty"`
	// Floor is the same requests against the no-op handler in this process:
	// its server CPU is 0 (in the client CPU).
	Floor      *phase  `json:"floor,omitempty"`
	FloorConns int64   `json:"floor_http_connections,omitempty"`
	RatioPct   float64 `json:"adhocd_pct_of_floor,omitempty"` // adhocd's requests/s over the floor's
	// Ceiling is what a server costing no CPU could reach on this machine,
	// given the tool's own CPU per request in the adhocd phase.
	CeilingPerSecond float64 `json:"tool_ceiling_per_second,omitempty"`
	CeilingPct       float64 `json:"tool_ceiling_pct_of_floor,omitempty"`
	Perf             string  `json:"perf_data,omitempty"`
}

// spread summarises durations: how many were seen, how many were not
// (with why), and percentiles in milliseconds.
type spread struct {
	N       int            `json:"n"`
	Missing int            `json:"missing"`
	Why     map[string]int `json:"why_missing,omitempty"`
	P50MS   float64        `json:"p50_ms"`
	P99MS   float64        `json:"p99_ms"`
	MaxMS   float64        `json:"max_ms"`
}

func spreadOf(d []time.Duration) spread {
	s := spread{N: len(d)}
	if len(d) == 0 {
		return s
	}
	slices.Sort(d)
	s.P50MS, s.P99MS, s.MaxMS = ms(d[(len(d)-1)*50/100]), ms(d[(len(d)-1)*99/100]), ms(d[len(d)-1])
	return s
}

func (s *spread) miss(why string) {
	s.Missing++
	if s.Why == nil {
		s.Why = map[string]int{}
	}
	s.Why[why]++
}

// setAdminPassword gives admin@localhost the password when the account
// exists already (a reused --data); otherwise the server creates it from
// ADHOCD_ADMIN_PASSWORD.
func setAdminPassword(ctx context.Context, dataDir, password string) error {
	db, err := store.Open(filepath.Join(dataDir, "adhocd.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	admin, err := jid.Parse(adminUser)
	if err != nil {
		return err
	}
	switch _, err := db.User(ctx, admin); {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if err := db.SetPassword(ctx, admin, password); err != nil {
		return err
	}
	return db.SetAdmin(ctx, admin, true)
}

// victim is a bound client connection that a goroutine reads until it
// fails, noting when the server's stream error arrived and when the socket
// read failed. Its fields are set before done is closed.
type victim struct {
	tc       *tls.Conn
	done     chan struct{}
	errAt    time.Time // the stream error was read
	closedAt time.Time // the read failed
	policy   bool      // the stream error was <policy-violation/>
	readErr  error
}

// watch starts reading tc in the background. With answer, the client
// closes its stream when it reads a stream error, as RFC 6120 §4.4 asks.
func watch(tc *tls.Conn, answer bool) *victim {
	v := &victim{tc: tc, done: make(chan struct{})}
	go v.read(answer)
	return v
}

func (v *victim) read(answer bool) {
	defer close(v.done)
	var buf []byte
	tmp := make([]byte, 512)
	for {
		n, err := v.tc.Read(tmp)
		if n > 0 && v.errAt.IsZero() {
			buf = append(buf, tmp[:n]...)
			if i := bytes.Index(buf, []byte("</stream:error>")); i >= 0 {
				v.errAt = time.Now()
				v.policy = bytes.Contains(buf[:i], []byte("<policy-violation"))
				buf = nil
				if answer {
					_ = v.tc.SetWriteDeadline(time.Now().Add(5 * time.Second)) // best effort: the server closes anyway
					_, _ = v.tc.Write([]byte(`</stream:stream>`))              // as above
				}
			}
		}
		if err != nil {
			v.closedAt, v.readErr = time.Now(), err
			// The server has closed (close_notify and FIN): close the socket.
			_ = v.tc.NetConn().Close() // already failed
			return
		}
	}
}

// httpClient posts JSON envelopes with Basic auth over keep-alive
// connections, and counts the connections it opens.
type httpClient struct {
	c     *http.Client
	tr    *http.Transport
	user  string
	pass  string
	dials atomic.Int64
}

func newHTTPClient(callers int, user, pass string) *httpClient {
	h := &httpClient{user: user, pass: pass}
	var nd net.Dialer
	h.tr = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			h.dials.Add(1)
			return nd.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        2 * callers,
		MaxIdleConnsPerHost: callers,
		MaxConnsPerHost:     callers, // no extra dial racing a busy connection
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	h.c = &http.Client{Transport: h.tr, Timeout: 30 * time.Second}
	return h
}

// post sends body to url and reads the whole answer.
func (h *httpClient) post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(h.user, h.pass)
	resp, err := h.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read to the end: the connection is reused
	return resp.StatusCode, b, err
}

func (h *httpClient) close() { h.tr.CloseIdleConnections() }

// endBody is the JSON end-user-session request for one bare JID.
func endBody(bare string) []byte {
	b, _ := json.Marshal(bare) // a string always marshals
	return []byte(`{"command":{"node":"` + endUserSessionNode + `","fields":[{"var":"accountjids","value":[` + string(b) + `]}]}}`)
}

// answer is a JSON response envelope, as far as the checks need it.
type answer struct {
	Command *struct {
		JID    string `json:"jid"`
		Node   string `json:"node"`
		Fields []struct {
			Var   string          `json:"var"`
			Value json.RawMessage `json:"value"`
		} `json:"fields"`
	} `json:"command"`
}

// parseAnswer decodes a 200 answer and returns the values of field v.
func parseAnswer(status int, body []byte, v string) ([]string, error) {
	if status != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", status, trim(string(body)))
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || a.Command == nil || a.Command.Node != endUserSessionNode {
		return nil, fmt.Errorf("not an end-user-session answer (%v): %s", err, trim(string(body)))
	}
	var out []string
	for _, f := range a.Command.Fields {
		if f.Var != v {
			continue
		}
		var vals []string
		if len(f.Value) > 0 && f.Value[0] == '[' {
			if err := json.Unmarshal(f.Value, &vals); err != nil {
				return nil, fmt.Errorf("field %s: %w", v, err)
			}
		} else {
			var one string
			if err := json.Unmarshal(f.Value, &one); err != nil {
				return nil, fmt.Errorf("field %s: %w", v, err)
			}
			vals = []string{one}
		}
		out = append(out, vals...)
	}
	return out, nil
}

// checkEnded checks an answer that ended one resource.
func checkEnded(status int, body []byte, want string) error {
	notes, err := parseAnswer(status, body, "Notes")
	if err != nil {
		return err
	}
	if len(notes) != 1 || notes[0] != want {
		return fmt.Errorf("want the single Notes line %q, got %q", want, notes)
	}
	return nil
}

// checkNothingEnded checks an answer that ended nothing.
func checkNothingEnded(status int, body []byte) error {
	notes, err := parseAnswer(status, body, "Notes")
	if err == nil && len(notes) > 0 {
		err = fmt.Errorf("unexpected Notes %q", notes)
	}
	return err
}

// startNoop serves the no-op handler on a 127.0.0.1 port: Basic auth must be
// present, the body is read, and the answer is a fixed JSON envelope.
func startNoop() (addr string, stop func(), err error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/rest/adhoc/:jid", func(c echo.Context) error {
		if _, _, ok := c.Request().BasicAuth(); !ok {
			return echo.NewHTTPError(http.StatusUnauthorized)
		}
		if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, []byte(noopAnswer))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		_ = srv.Serve(ln) // ErrServerClosed after Close
		close(done)
	}()
	return ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

// startPerf runs perf record -g on pid into out until the returned stop.
func startPerf(pid int, out string) (stop func() error, err error) {
	var msgs bytes.Buffer
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = &msgs, &msgs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // waiting for perf to attach, not for a goroutine
	return func() error {
		_ = cmd.Process.Signal(os.Interrupt) // it may have failed already
		if err := cmd.Wait(); err != nil {
			if _, statErr := os.Stat(out); statErr != nil {
				return fmt.Errorf("perf: %w: %s", err, trim(msgs.String()))
			}
		}
		return nil
	}, nil
}

// endUserSessions is --mode end-user-session after the logins: every user
// has one session, conns[i] of user i with resource r<i>.
func endUserSessions(ctx context.Context, cfg config, rep *report, srv *server, d *dialer,
	creds []creds, conns []*tls.Conn, progress func(string, ...any)) error {
	e := &endReport{
		Users: cfg.users, Callers: cfg.callers, Requests: cfg.requests, Relogin: cfg.relogin,
		ClientClose: cfg.clientClose, Warmup: cfg.warmup,
	}
	rep.EndUserSession = e
	if rep.Login.Failed > 0 {
		return fmt.Errorf("%d of %d users did not log in: every user must be online", rep.Login.Failed, cfg.users)
	}
	note := func(format string, a ...any) { rep.Notes = append(rep.Notes, fmt.Sprintf(format, a...)) }

	victims := make([]*victim, cfg.users)
	for i, c := range conns {
		victims[i] = watch(c, cfg.clientClose)
		conns[i] = nil // closed below, not by the caller
	}
	defer func() {
		// Close what is left; a victim that the server closed is done already.
		_ = parallel(len(victims), cfg.concurrency, func(i int) error { // fn never fails
			select {
			case <-victims[i].done:
			default:
				closeStream(victims[i].tc)
			}
			return nil
		})
		waitNoSessions(ctx, srv)
	}()

	online := func() *int {
		if h, err := srv.health(ctx); err == nil {
			return h.Sessions
		}
		return nil
	}
	bodies := make([][]byte, cfg.users)
	for u := range bodies {
		bodies[u] = endBody(userName(u) + "@" + domain)
	}
	user := func(i int) int { return i % cfg.users } // i < cfg.users unless --relogin

	// The phase against adhocd.
	hc := newHTTPClient(cfg.callers, adminUser, cfg.adminPassword)
	defer hc.close()
	url := "http://" + srv.httpAddr + "/rest/adhoc/" + sessMan
	if cfg.warmup {
		progress("warming up %d HTTP callers (one request each for a user who is not online, not timed)", cfg.callers)
		body := endBody(warmupUser)
		if err := parallel(cfg.callers, cfg.callers, func(int) error {
			status, b, err := hc.post(ctx, url, body)
			if err == nil {
				err = checkNothingEnded(status, b)
			}
			return err
		}); err != nil {
			return fmt.Errorf("warm-up request to adhocd: %w", err)
		}
	}
	e.OnlineBefore = online()

	var (
		sent   = make([]time.Time, cfg.requests)
		ended  = make([]*victim, cfg.requests)
		locks  = make([]sync.Mutex, cfg.users) // --relogin: one request at a time per user
		pid    = srv.cmd.Process.Pid
		endOne = func(i int) (time.Duration, error) {
			u := user(i)
			if cfg.relogin {
				locks[u].Lock()
				defer locks[u].Unlock()
			}
			v := victims[u]
			want := fmt.Sprintf("Operation successful for user %s@%s/r%d", userName(u), domain, u)
			t := time.Now()
			status, body, err := hc.post(ctx, url, bodies[u])
			lat := time.Since(t)
			sent[i], ended[i] = t, v
			if err == nil {
				err = checkEnded(status, body, want)
			}
			if !cfg.relogin {
				return lat, err
			}
			// Log the user in again, not timed, once its socket is closed.
			select {
			case <-v.done:
			case <-time.After(closeWait):
			}
			c, lerr := login(ctx, d, u, &creds[u], "r"+strconv.Itoa(u), time.Now().Add(time.Minute))
			if lerr != nil {
				return lat, errors.Join(err, fmt.Errorf("login again: %w", lerr))
			}
			victims[u] = watch(c, cfg.clientClose)
			return lat, err
		}
	)
	var stopPerf func() error
	if cfg.perf != "" {
		var err error
		if stopPerf, err = startPerf(pid, cfg.perf); err != nil {
			return err
		}
		e.Perf = cfg.perf
		note("perf record ran on the server during the adhocd phase: its CPU counts as other processes'")
	}
	progress("ending %d users over HTTP, %d callers, %d online", cfg.requests, cfg.callers, cfg.users)
	e.Adhocd = measure(pid, cfg.requests, cfg.callers, endOne)
	if stopPerf != nil {
		if err := stopPerf(); err != nil {
			return err
		}
	}
	e.OnlineAfter = online()
	e.AdhocdConns = hc.dials.Load()
	hc.close()
	if cfg.relogin {
		note("--relogin: the phase's wall time, and so its requests/s, includes logging each ended user in again")
	}

	// The ended clients' view.
	var errLat, closeLat []time.Duration
	deadline := time.Now().Add(closeWait)
	for i, v := range ended {
		if v == nil {
			e.StreamError.miss("request not sent")
			e.SocketClosed.miss("request not sent")
			continue
		}
		select {
		case <-v.done:
		case <-time.After(time.Until(deadline)):
			e.StreamError.miss("socket not closed within " + closeWait.String())
			e.SocketClosed.miss("socket not closed within " + closeWait.String())
			continue
		}
		switch {
		case v.errAt.IsZero():
			e.StreamError.miss("closed without a stream error")
		case !v.policy:
			e.StreamError.miss("stream error other than policy-violation")
		default:
			errLat = append(errLat, v.errAt.Sub(sent[i]))
		}
		closeLat = append(closeLat, v.closedAt.Sub(sent[i]))
		if e.SocketErrors == nil {
			e.SocketErrors = map[string]int{}
		}
		e.SocketErrors[readErrorKind(v.readErr)]++
	}
	missErr, missClose := e.StreamError, e.SocketClosed
	e.StreamError, e.SocketClosed = spreadOf(errLat), spreadOf(closeLat)
	e.StreamError.Missing, e.StreamError.Why = missErr.Missing, missErr.Why
	e.SocketClosed.Missing, e.SocketClosed.Why = missClose.Missing, missClose.Why

	if !cfg.floor {
		return nil
	}
	// The floor: the same requests against the no-op handler.
	addr, stop, err := startNoop()
	if err != nil {
		return err
	}
	defer stop()
	nc := newHTTPClient(cfg.callers, adminUser, cfg.adminPassword)
	defer nc.close()
	nurl := "http://" + addr + "/rest/adhoc/" + sessMan
	if cfg.warmup {
		body := endBody(warmupUser)
		if err := parallel(cfg.callers, cfg.callers, func(int) error {
			status, b, err := nc.post(ctx, nurl, body)
			if err == nil {
				err = checkNothingEnded(status, b)
			}
			return err
		}); err != nil {
			return fmt.Errorf("warm-up request to the no-op handler: %w", err)
		}
	}
	progress("sending the same %d requests to the no-op handler, %d callers", cfg.requests, cfg.callers)
	floor := measure(0, cfg.requests, cfg.callers, func(i int) (time.Duration, error) {
		t := time.Now()
		status, body, err := nc.post(ctx, nurl, bodies[user(i)])
		lat := time.Since(t)
		if err == nil {
			err = checkNothingEnded(status, body)
		}
		return lat, err
	})
	e.Floor, e.FloorConns = &floor, nc.dials.Load()
	if floor.PerSecond > 0 {
		e.RatioPct = 100 * e.Adhocd.PerSecond / floor.PerSecond
	}
	e.CeilingPerSecond, e.CeilingPct = toolCeiling(rep.CPUs, e.Adhocd.ClientCPUUS, floor.PerSecond)
	return nil
}

// toolCeiling is the rate a server costing no CPU at all could reach when
// the tool shares the machine's cpus with it and spends toolCPUUS of CPU
// per request, and that rate as a share of the no-op's floorPerSecond.
// Both are 0 when the tool's CPU was not measured (under one 10 ms tick).
func toolCeiling(cpus int, toolCPUUS, floorPerSecond float64) (perSecond, pctOfFloor float64) {
	if cpus <= 0 || toolCPUUS <= 0 {
		return 0, 0
	}
	perSecond = float64(cpus) * 1e6 / toolCPUUS
	if floorPerSecond > 0 {
		pctOfFloor = 100 * perSecond / floorPerSecond
	}
	return perSecond, pctOfFloor
}

// readErrorKind names how a read failed, without addresses.
func readErrorKind(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "deadline"
	case errors.Is(err, net.ErrClosed):
		return "closed by the tool"
	}
	return err.Error()
}

// print writes the end-user-session part of the report.
func (e *endReport) print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	intp := func(v *int) string {
		if v == nil {
			return "n/a"
		}
		return strconv.Itoa(*v)
	}
	p("end-user-session over HTTP: %d requests ending one user each, %d callers, JSON, Basic auth %s, keep-alive",
		e.Requests, e.Callers, adminUser)
	opts := fmt.Sprintf("clients answer the stream error with </stream:stream>: %v; warm-up: %v; relogin: %v", e.ClientClose, e.Warmup, e.Relogin)
	p("          %s", opts)
	p("          online (/healthz) before %s, after %s", intp(e.OnlineBefore), intp(e.OnlineAfter))
	printHTTPPhase(w, "adhocd", e.Adhocd, e.AdhocdConns, true)
	s := func(name string, v spread) {
		line := fmt.Sprintf("          sent -> %s: %d, p50 %.1fms p99 %.1fms max %.1fms", name, v.N, v.P50MS, v.P99MS, v.MaxMS)
		if v.Missing > 0 {
			line += fmt.Sprintf("; %d missing %v", v.Missing, v.Why)
		}
		p("%s", line)
	}
	s("stream error read", e.StreamError)
	s("socket closed", e.SocketClosed)
	if len(e.SocketErrors) > 0 {
		p("          the ended clients' reads failed with: %v", e.SocketErrors)
	}
	if e.Floor != nil {
		printHTTPPhase(w, "no-op", *e.Floor, e.FloorConns, false)
		p("ratio:    adhocd at %.0f%% of the no-op handler's requests/s (p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms)",
			e.RatioPct, e.Adhocd.P50MS, e.Floor.P50MS, e.Adhocd.P99MS, e.Floor.P99MS)
		if e.CeilingPerSecond > 0 {
			p("ceiling:  the tool alone used %.0f us per request on the CPUs it shares with the server: a server costing nothing could do %.0f requests/s here, %.0f%% of the no-op",
				e.Adhocd.ClientCPUUS, e.CeilingPerSecond, e.CeilingPct)
		}
	}
	if e.Perf != "" {
		p("perf:     %s (perf report -i %s --children)", e.Perf, e.Perf)
	}
}

func printHTTPPhase(w io.Writer, name string, ph phase, conns int64, server bool) {
	fmt.Fprintf(w, "%-9s %d ok, %d failed in %.3fs: %.0f requests/s; latency p50 %.2fms p99 %.2fms max %.2fms; %d connections opened\n",
		name+":", ph.OK, ph.Failed, ph.Seconds, ph.PerSecond, ph.P50MS, ph.P99MS, ph.MaxMS, conns)
	if server {
		fmt.Fprintf(w, "          CPU per request: server %.0f us, tool %.0f us; other processes used %.0f%% of the CPUs\n",
			ph.ServerCPUUS, ph.ClientCPUUS, ph.OtherCPUPct)
	} else {
		fmt.Fprintf(w, "          CPU per request: tool (callers and handler) %.0f us; other processes used %.0f%% of the CPUs\n",
			ph.ClientCPUUS, ph.OtherCPUPct)
	}
	for msg, n := range ph.Errors {
		fmt.Fprintf(w, "          %d x %s\n", n, trim(msg))
	}
}
