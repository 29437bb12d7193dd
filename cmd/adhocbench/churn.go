package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// churnReport is what --mode churn measured.
type churnReport struct {
	Slots    int     `json:"slots"` // --sessions: accounts, each with at most one session at a time
	Duration string  `json:"duration"`
	Seconds  float64 `json:"seconds"`
	// Connected counts logins that bound a resource; PerSecond is Connected
	// over Seconds.
	Connected  int64   `json:"connected"`
	PerSecond  float64 `json:"connected_per_second"`
	LoginFails int64   `json:"login_failures"`
	// How the sessions left: the client closed its stream, dropped the
	// socket without a word, or stayed until its slot came round again
	// (then closed or dropped); kicked ones were ended by end-user-session.
	Clean   int64 `json:"closed_cleanly"`
	Dropped int64 `json:"dropped"`
	Kept    int64 `json:"kept"`
	Kicked  int64 `json:"kicked"`
	// The HTTP callers: end-user-session, GET /rest/sessions pages and
	// get-online-users-num, and their failures (not 200).
	Ends      int64          `json:"end_user_session_calls"`
	Lists     int64          `json:"session_list_calls"`
	Counts    int64          `json:"online_count_calls"`
	APIFails  int64          `json:"api_failures"`
	APIErrors map[string]int `json:"api_errors,omitempty"`
	// At the end: the sessions the tool holds open, those the session API
	// lists, and the difference both ways.
	Open    int      `json:"open_at_end"`
	Listed  int      `json:"listed_at_end"`
	Healthz *int     `json:"healthz_sessions_at_end,omitempty"`
	Ghosts  []string `json:"ghosts"`  // listed, socket closed
	Missing []string `json:"missing"` // socket open, not listed
	// The server's goroutines (/healthz) and open descriptors (/proc/PID/fd)
	// before the churn, with no session, and after it, once every session
	// is closed (the lowest seen while polling for 30s). The descriptors
	// of the store's files are counted apart (see countFDs).
	GoroutinesBefore *int `json:"goroutines_before,omitempty"`
	GoroutinesAfter  *int `json:"goroutines_after,omitempty"`
	FDsBefore        int  `json:"fds_before"`
	FDsAfter         int  `json:"fds_after"`
	FDsPeak          int  `json:"fds_peak"`
	StoreFDsBefore   int  `json:"store_fds_before"`
	StoreFDsAfter    int  `json:"store_fds_after"`
}

// slot is one account's session, at most one at a time.
type slot struct {
	mu  sync.Mutex
	gen int
	v   *victim // the kept session, read in the background
	jid string
}

// countFDs counts the open file descriptors of pid, apart from those of
// the SQLite store (adhocd.db*), which it counts separately: database/sql
// opens connections as logins need them and keeps two idle, and SQLite
// defers closing a closed connection's descriptor while another connection
// holds a lock on the same file, so their number depends on timing.
func countFDs(pid int) (fds, store int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	for _, e := range ents {
		if l, _ := os.Readlink(dir + "/" + e.Name()); strings.Contains(l, "adhocd.db") { // closed since: not the store's
			store++
		} else {
			fds++
		}
	}
	return fds, store, err
}

// get reads url as the client's user.
func (h *httpClient) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
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

// listAll pages through GET /rest/sessions and returns every full JID.
func listAll(ctx context.Context, hc *httpClient, base string) ([]string, error) {
	var all []string
	for offset := 0; ; {
		status, body, err := hc.get(ctx, base+"/rest/sessions?limit=50&offset="+strconv.Itoa(offset))
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET /rest/sessions: %d %s", status, trim(string(body)))
		}
		var page struct {
			Count int `json:"count"`
			Items []struct {
				JID string `json:"jid"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("GET /rest/sessions: %w", err)
		}
		for _, it := range page.Items {
			all = append(all, it.JID)
		}
		offset += len(page.Items)
		if len(page.Items) == 0 || offset >= page.Count {
			return all, nil
		}
	}
}

// churn runs --mode churn: --concurrency workers take the slots in turn for
// --duration; each closes the slot's kept session if it has one (cleanly or
// by dropping it), logs in again with SCRAM-SHA-256 and binds, and then
// closes the new session cleanly, drops it, or keeps it, in turn. --callers
// HTTP callers meanwhile call end-user-session for random slots, page
// through /rest/sessions and call get-online-users-num.
func churn(ctx context.Context, cfg config, rep *report, srv *server, d *dialer, creds []creds, progress func(string, ...any)) error {
	c := &churnReport{Slots: cfg.sessions, Duration: cfg.duration.String()}
	rep.Churn = c
	pid := srv.cmd.Process.Pid
	base := "http://" + srv.httpAddr
	h, err := srv.health(ctx)
	if err != nil {
		return err
	}
	c.GoroutinesBefore = h.Goroutines
	if c.FDsBefore, c.StoreFDsBefore, err = countFDs(pid); err != nil {
		return err
	}
	c.FDsPeak = c.FDsBefore

	slots := make([]slot, cfg.sessions)
	defer func() { // on an early return
		for i := range slots {
			if v := slots[i].v; v != nil {
				_ = v.tc.Close() // abandoned
			}
		}
	}()
	var (
		next, apiFails atomic.Int64
		errMu          sync.Mutex
		stop           = make(chan struct{})
		deadline       = time.Now().Add(cfg.duration)
		wg, callers    sync.WaitGroup
	)
	apiErr := func(msg string) {
		apiFails.Add(1)
		errMu.Lock()
		defer errMu.Unlock()
		if c.APIErrors == nil {
			c.APIErrors = map[string]int{}
		}
		if len(c.APIErrors) < 10 {
			c.APIErrors[trim(msg)]++
		}
	}
	var connected, fails, clean, dropped, kept, kicked atomic.Int64
	leave := func(tc *tls.Conn, politely bool) {
		if politely {
			closeStream(tc)
			clean.Add(1)
		} else {
			_ = tc.Close() // dropped without a word, on purpose
			dropped.Add(1)
		}
	}
	progress("churning %d slots for %s: %d workers, %d HTTP callers", cfg.sessions, cfg.duration, cfg.concurrency, cfg.callers)
	start := time.Now()
	for range cfg.concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				n := int(next.Add(1) - 1)
				i := n % cfg.sessions
				s := &slots[i]
				s.mu.Lock()
				if s.v != nil {
					select {
					case <-s.v.done:
						kicked.Add(1)
					default:
						leave(s.v.tc, s.gen%2 == 0)
						<-s.v.done
					}
					s.v = nil
				}
				s.gen++
				resource := "r" + strconv.Itoa(i) + "-" + strconv.Itoa(s.gen)
				tc, err := login(ctx, d, n, &creds[i], resource, time.Now().Add(time.Minute))
				if err != nil {
					fails.Add(1)
					s.mu.Unlock()
					continue
				}
				connected.Add(1)
				switch s.gen % 3 {
				case 0:
					leave(tc, true)
				case 1:
					leave(tc, false)
				default:
					s.v, s.jid = watch(tc, true), userName(i)+"@"+domain+"/"+resource
					kept.Add(1)
				}
				s.mu.Unlock()
			}
		})
	}
	hc := newHTTPClient(cfg.callers, adminUser, cfg.adminPassword)
	defer hc.close()
	for k := range cfg.callers {
		callers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var (
					status int
					body   []byte
					err    error
				)
				switch (i + k) % 3 {
				case 0:
					status, body, err = hc.post(ctx, base+"/rest/adhoc/"+sessMan, endBody(userName(rand.IntN(cfg.sessions))+"@"+domain))
					c.count(&c.Ends)
				case 1:
					status, body, err = hc.get(ctx, base+"/rest/sessions?limit=50&offset="+strconv.Itoa(rand.IntN(cfg.sessions/2+1)))
					c.count(&c.Lists)
				default:
					status, body, err = hc.post(ctx, base+"/rest/adhoc/"+sessMan,
						[]byte(`{"command":{"node":"http://jabber.org/protocol/admin#get-online-users-num"}}`))
					c.count(&c.Counts)
				}
				switch {
				case err != nil:
					apiErr(err.Error())
				case status != http.StatusOK:
					apiErr(strconv.Itoa(status) + " " + string(body))
				}
			}
		})
	}
	// Sample the server's descriptors while the churn runs.
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if n, _, err := countFDs(pid); err == nil && n > c.FDsPeak {
					c.FDsPeak = n
				}
			}
		}
	}()
	wg.Wait()
	c.Seconds = time.Since(start).Seconds()
	close(stop)
	callers.Wait()
	<-sampled
	c.Connected, c.LoginFails, c.Clean, c.Dropped, c.Kept, c.Kicked = connected.Load(), fails.Load(), clean.Load(), dropped.Load(), kept.Load(), kicked.Load()
	c.PerSecond = float64(c.Connected) / c.Seconds
	c.APIFails = apiFails.Load()
	progress("churn done: %d sessions connected (%.0f/s); comparing the session API with the open sockets", c.Connected, c.PerSecond)

	// The registry, as the session API lists it, against the open sockets:
	// polled until they agree or 30s pass, for the server to notice drops
	// and kicks and the clients to notice closes.
	var want, got []string
	for poll := time.Now().Add(30 * time.Second); ; {
		want = want[:0]
		for i := range slots {
			if v := slots[i].v; v != nil {
				select {
				case <-v.done:
				default:
					want = append(want, slots[i].jid)
				}
			}
		}
		if got, err = listAll(ctx, hc, base); err != nil {
			return err
		}
		slices.Sort(want)
		slices.Sort(got)
		if slices.Equal(want, got) || time.Now().After(poll) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling another process, not synchronising goroutines
	}
	c.Open, c.Listed = len(want), len(got)
	c.Ghosts, c.Missing = []string{}, []string{}
	for _, j := range got {
		if _, ok := slices.BinarySearch(want, j); !ok {
			c.Ghosts = append(c.Ghosts, j)
		}
	}
	for _, j := range want {
		if _, ok := slices.BinarySearch(got, j); !ok {
			c.Missing = append(c.Missing, j)
		}
	}
	if h, err := srv.health(ctx); err == nil {
		c.Healthz = h.Sessions
	}

	progress("closing the %d open sessions; waiting for goroutines and descriptors", c.Open)
	_ = parallel(len(slots), cfg.concurrency, func(i int) error { // fn never fails
		if v := slots[i].v; v != nil {
			closeStream(v.tc)
			<-v.done
			slots[i].v = nil
		}
		return nil
	})
	hc.close()
	waitNoSessions(ctx, srv)
	c.FDsAfter, c.GoroutinesAfter = -1, nil
	for poll := time.Now().Add(30 * time.Second); time.Now().Before(poll); {
		fds, store, ferr := countFDs(pid)
		h, herr := srv.health(ctx)
		if ferr == nil && (c.FDsAfter < 0 || fds < c.FDsAfter) {
			c.FDsAfter, c.StoreFDsAfter = fds, store
		}
		if herr == nil && h.Goroutines != nil && (c.GoroutinesAfter == nil || *h.Goroutines < *c.GoroutinesAfter) {
			c.GoroutinesAfter = h.Goroutines
		}
		if c.FDsAfter <= c.FDsBefore+2 && c.GoroutinesAfter != nil && c.GoroutinesBefore != nil && *c.GoroutinesAfter <= *c.GoroutinesBefore+2 {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling another process, as above
	}
	if len(c.Ghosts) > 0 || len(c.Missing) > 0 {
		return fmt.Errorf("churn: %d ghost and %d missing sessions", len(c.Ghosts), len(c.Missing))
	}
	return nil
}

// count adds one to a call counter of c.
func (c *churnReport) count(n *int64) { atomic.AddInt64(n, 1) }

// print writes the churn part of the report.
func (c *churnReport) print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	intp := func(v *int) string {
		if v == nil {
			return "n/a"
		}
		return strconv.Itoa(*v)
	}
	p("churn:    %d slots for %.1fs: %d sessions connected and bound (%.0f/s), %d login failures", c.Slots, c.Seconds, c.Connected, c.PerSecond, c.LoginFails)
	p("          left: %d cleanly, %d dropped, %d kept a while, %d kicked by end-user-session", c.Clean, c.Dropped, c.Kept, c.Kicked)
	p("          HTTP: %d end-user-session, %d /rest/sessions pages, %d get-online-users-num; %d failed %v", c.Ends, c.Lists, c.Counts, c.APIFails, c.APIErrors)
	p("at end:   %d open sockets, %d listed by /rest/sessions, /healthz %s: %d ghosts, %d missing", c.Open, c.Listed, intp(c.Healthz), len(c.Ghosts), len(c.Missing))
	p("server:   goroutines %s before, %s after; fds %d before, %d after (peak %d during); store fds %d before, %d after",
		intp(c.GoroutinesBefore), intp(c.GoroutinesAfter), c.FDsBefore, c.FDsAfter, c.FDsPeak, c.StoreFDsBefore, c.StoreFDsAfter)
}
