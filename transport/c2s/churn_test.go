package c2s_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
)

// churnConn is a client connection of the churn test. Unlike rawClient it
// returns errors instead of failing the test: the test's end-user-session
// callers may kick it at any point after the bind.
type churnConn struct {
	tcp  net.Conn
	conn net.Conn
	dec  *xml.Decoder
	jid  string
	done chan struct{} // closed when a background read failed (see watch)
}

func (c *churnConn) send(s string) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	_, err := io.WriteString(c.conn, s)
	return err
}

// next reads the next top-level element within 10s.
func (c *churnConn) next() (node, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return node{}, err
	}
	return c.read()
}

// read reads the next top-level element, skipping stream headers; the end
// of the stream is io.EOF.
func (c *churnConn) read() (node, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return node{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "stream" {
				continue
			}
			var n node
			err := c.dec.DecodeElement(&n, &t)
			return n, err
		case xml.EndElement:
			return node{}, io.EOF
		}
	}
}

func (c *churnConn) expect(local string) (node, error) {
	n, err := c.next()
	if err == nil && n.XMLName.Local != local {
		err = fmt.Errorf("want <%s>, got <%s> %+v", local, n.XMLName.Local, n)
	}
	return n, err
}

const churnHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + domain + `' version='1.0'>`

// dialChurn connects over STARTTLS and logs user in with PLAIN; with bind,
// it also binds resource.
func (e *env) dialChurn(user jid.JID, password, resource string, bind bool) (*churnConn, error) {
	tcp, err := net.Dial("tcp", e.addr)
	if err != nil {
		return nil, err
	}
	c := &churnConn{tcp: tcp, conn: tcp, dec: xml.NewDecoder(tcp)}
	if err := c.negotiate(e.client, user, password, resource, bind); err != nil {
		_ = tcp.Close()
		return nil, err
	}
	return c, nil
}

func (c *churnConn) negotiate(cfg *tls.Config, user jid.JID, password, resource string, bind bool) error {
	step := func(send, expect string) (node, error) {
		if send != "" {
			if err := c.send(send); err != nil {
				return node{}, err
			}
		}
		return c.expect(expect)
	}
	if _, err := step(churnHeader, "features"); err != nil {
		return err
	}
	if _, err := step(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, "proceed"); err != nil {
		return err
	}
	c.conn = tls.Client(c.tcp, cfg.Clone())
	c.dec = xml.NewDecoder(c.conn)
	if _, err := step(churnHeader, "features"); err != nil {
		return err
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user.Localpart() + "\x00" + password))
	if _, err := step(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+plain+`</auth>`, "success"); err != nil {
		return err
	}
	c.dec = xml.NewDecoder(c.conn)
	if _, err := step(churnHeader, "features"); err != nil {
		return err
	}
	if !bind {
		return nil
	}
	res, err := step(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>`+resource+`</resource></bind></iq>`, "iq")
	if err != nil {
		return err
	}
	j, ok := res.find("jid")
	if res.attr("type") != "result" || !ok {
		return fmt.Errorf("bind failed: %+v", res)
	}
	c.jid = j.Text
	return nil
}

// watch reads c in the background until the read fails, as a client that
// stays online does; a polite one answers a stream error with the end of its
// stream. When the read failed (the server ended the session), it closes
// the socket and then done. Reads have no deadline: a session that stays
// online may be idle for as long as the test runs.
func (c *churnConn) watch(polite bool) {
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		defer c.tcp.Close()
		if err := c.conn.SetReadDeadline(time.Time{}); err != nil {
			return
		}
		for {
			n, err := c.read()
			if err != nil {
				return
			}
			if polite && n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams" {
				_ = c.send("</stream:stream>") // the server may have gone already
			}
		}
	}()
}

func (c *churnConn) open() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// openFDs counts this process's open file descriptors, apart from the
// files of the SQLite store: database/sql opens connections as logins need
// them and keeps two idle, and SQLite defers closing a file descriptor of a
// closed connection while another connection holds a lock on the same file,
// so the store's count depends on timing, not on sessions.
func openFDs(t *testing.T) (fds, store int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.Contains(l, "adhocd.db") { // gone already: not the store's
			store++
		} else {
			fds++
		}
	}
	return fds, store
}

// fdLinks describes this process's open file descriptors.
func fdLinks() []string {
	ents, _ := os.ReadDir("/proc/self/fd") // for a failure message only
	links := make([]string, 0, len(ents))
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name()) // likewise
		links = append(links, e.Name()+"="+l)
	}
	return links
}

// TestChurn connects, binds and disconnects sessions from several workers
// (cleanly, by dropping the socket, before binding, or staying online) while
// other goroutines end users' sessions with end-user-session and list and
// count the sessions. Afterwards the registry holds exactly the sessions
// whose sockets are open, and once those close too, goroutines and file
// descriptors are back at their baseline. Run under -race, it is also a
// race test of the listener, the registry and the session manager.
func TestChurn(t *testing.T) {
	const (
		workers  = 8
		sessions = 320 // in all
		maxTime  = 8 * time.Second
	)
	e := newEnv(t)
	admin := adhoc.Caller{JID: e.addAccount(t, "root", "pw", true), Auth: adhoc.AuthXMPP, Admin: true}
	users := make([]jid.JID, workers)
	for w := range users {
		users[w] = e.addUser(t, fmt.Sprintf("churn%d", w), "pw")
	}
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	baseFDs, baseStore := openFDs(t)

	var (
		next     atomic.Int64
		stop     = make(chan struct{})
		deadline = time.Now().Add(maxTime)
		mu       sync.Mutex
		kept     []*churnConn
		counts   [5]atomic.Int64 // clean, dropped, unbound, kept, failed
		errs     = make(chan error, 1)
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= sessions {
					return
				}
				way := int(i % 4)
				c, err := e.dialChurn(users[w], "pw", fmt.Sprintf("r%d", i), way != 2)
				if err != nil {
					// A kick right after the bind is the only expected failure.
					counts[4].Add(1)
					continue
				}
				switch way {
				case 0: // clean: </stream:stream>, and wait for the server's end
					if c.send("</stream:stream>") == nil {
						for {
							if _, err := c.next(); err != nil {
								break
							}
						}
					}
					_ = c.conn.Close() // the server closed it already
				case 1, 2: // dropped after the bind, or before it
					_ = c.tcp.Close()
				case 3:
					c.watch(i%8 == 3)
					mu.Lock()
					kept = append(kept, c)
					mu.Unlock()
				}
				counts[way].Add(1)
			}
		})
	}

	// The callers: end-user-session for a random worker's user (in-band and
	// through the session service), and the listing and counting calls.
	var callers sync.WaitGroup
	var ends, lists atomic.Int64
	callers.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond) // pacing, not synchronisation
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			u := users[rand.IntN(workers)]
			_, err := e.cmds.Execute(t.Context(), adhoc.Request{To: jid.MustParse(domain), Node: endUserSession, Caller: admin,
				Fields: []adhoc.Field{{Var: "accountjids", Values: []string{u.String()}}}})
			if err != nil {
				fail(fmt.Errorf("end-user-session %s: %w", u, err))
				return
			}
			ends.Add(1)
		}
	})
	callers.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_, err := e.reg.List(t.Context(), session.ListRequest{Limit: 50, Offset: rand.IntN(20), Caller: admin})
			if err == nil {
				_, err = e.reg.Count(t.Context(), session.CountRequest{PerUser: true, Activity: true, Caller: admin})
			}
			if err == nil {
				_, err = e.cmds.Execute(t.Context(), adhoc.Request{To: jid.MustParse(domain),
					Node: "http://jabber.org/protocol/admin#get-online-users-num", Caller: admin})
			}
			if err != nil {
				fail(fmt.Errorf("list or count: %w", err))
				return
			}
			lists.Add(1)
		}
	})
	wg.Wait()
	close(stop)
	callers.Wait()
	select {
	case err := <-errs:
		require.NoError(t, err)
	default:
	}
	t.Logf("%d sessions: %d closed cleanly, %d dropped, %d dropped before binding, %d kept, %d failed (kicked at once); %d end-user-session calls, %d list/count rounds",
		min(next.Load(), sessions), counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load(), counts[4].Load(), ends.Load(), lists.Load())

	assert.Positive(t, ends.Load(), "end-user-session was called")

	// The registry holds exactly the sessions whose sockets are open.
	var want, got []string
	if !assert.Eventually(t, func() bool {
		want, got = want[:0], got[:0]
		mu.Lock()
		for _, c := range kept {
			if c.open() {
				want = append(want, c.jid)
			}
		}
		mu.Unlock()
		page, err := e.reg.List(t.Context(), session.ListRequest{Caller: admin})
		if err != nil {
			return false
		}
		for _, s := range page.Items {
			got = append(got, s.JID)
		}
		slices.Sort(want)
		slices.Sort(got)
		return slices.Equal(want, got)
	}, 15*time.Second, 20*time.Millisecond, "registry against open sockets") {
		ghosts, missing := []string{}, []string{}
		for _, j := range got {
			if !slices.Contains(want, j) {
				ghosts = append(ghosts, j)
			}
		}
		for _, j := range want {
			if !slices.Contains(got, j) {
				missing = append(missing, j)
			}
		}
		t.Fatalf("ghost sessions (in the registry, socket closed): %v; missing (socket open, not in the registry): %v", ghosts, missing)
	}
	assert.NotEmpty(t, want, "some kept sessions survived")
	counted, err := e.reg.Count(t.Context(), session.CountRequest{})
	require.NoError(t, err)
	assert.Equal(t, len(want), counted.Sessions)

	// Close the rest; goroutines and descriptors return to the baseline.
	for _, c := range kept {
		_ = c.tcp.Close()
		<-c.done
	}
	require.Eventually(t, func() bool {
		n, err := e.reg.Count(t.Context(), session.CountRequest{})
		return err == nil && n.Sessions == 0
	}, 10*time.Second, 10*time.Millisecond, "registry empty")
	var goroutines, fds, store int
	ok := assert.Eventually(t, func() bool {
		goroutines = runtime.NumGoroutine()
		fds, store = openFDs(t)
		return goroutines <= baseGoroutines+2 && fds <= baseFDs+2
	}, 10*time.Second, 20*time.Millisecond)
	t.Logf("goroutines %d (baseline %d), file descriptors %d (baseline %d) and %d of the store (baseline %d)",
		goroutines, baseGoroutines, fds, baseFDs, store, baseStore)
	if !ok {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Logf("file descriptors %v:\n%s", fdLinks(),
			strings.Join(strings.SplitAfterN(string(buf), "\n\n", 40), ""))
	}
}
