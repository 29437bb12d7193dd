package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/store"
)

const domain = "localhost"

// creds are one account's SCRAM-SHA-256 client keys, derived once before the
// timed phase as RFC 5802 §5.1 lets a client cache them.
type creds struct {
	user       string // localpart
	salt       string // base64, as the server sends it
	iterations string
	clientKey  []byte
	storedKey  []byte
	serverKey  []byte
}

// userName is the localpart of account i.
func userName(i int) string { return fmt.Sprintf("bench%06d", i) }

// provision creates the accounts missing from the store in dataDir (the server
// is not running yet) and derives every account's client keys from the salt
// and iteration count stored for it.
func provision(ctx context.Context, dataDir string, n int, password string, workers int) (all []creds, created int, err error) {
	db, err := store.Open(filepath.Join(dataDir, "adhocd.db"))
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	all = make([]creds, n)
	var added atomic.Int64
	err = parallel(n, workers, func(i int) error {
		user, err := jid.New(userName(i), domain, "")
		if err != nil {
			return err
		}
		switch err := db.AddUser(ctx, user, password, false); {
		case err == nil:
			added.Add(1)
		case !errors.Is(err, store.ErrExists):
			return err
		}
		keys, err := db.SCRAM(ctx, user, store.HashSHA256)
		if err != nil {
			return err
		}
		salted, err := pbkdf2.Key(sha256.New, password, keys.Salt, keys.Iterations, sha256.Size)
		if err != nil {
			return err
		}
		c := creds{
			user:       userName(i),
			salt:       base64.StdEncoding.EncodeToString(keys.Salt),
			iterations: strconv.Itoa(keys.Iterations),
			clientKey:  hmacSHA256(salted, "Client Key"),
			serverKey:  hmacSHA256(salted, "Server Key"),
		}
		h := sha256.Sum256(c.clientKey)
		c.storedKey = h[:]
		if !bytes.Equal(c.storedKey, keys.StoredKey) || !bytes.Equal(c.serverKey, keys.ServerKey) {
			return fmt.Errorf("%s: --password does not match the stored keys (reused --data?)", user)
		}
		all[i] = c
		return nil
	})
	return all, int(added.Load()), err
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = err })
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// dialer connects over direct TLS from source address 127.0.0.(1 + i%sources).
type dialer struct {
	addr    string
	sources int
	tls     *tls.Config
	resumed atomic.Int64 // handshakes that resumed a session
}

func newDialer(addr, certFile string, sources int, resume bool) (*dialer, error) {
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", certFile)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: domain, NextProtos: []string{"xmpp-client"}, MinVersion: tls.VersionTLS12}
	if resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1024)
	}
	return &dialer{addr: addr, sources: sources, tls: cfg}, nil
}

// dial opens connection i and completes the TLS handshake by deadline.
func (d *dialer) dial(ctx context.Context, i int, deadline time.Time) (*tls.Conn, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%d.sources))}
	nd := net.Dialer{LocalAddr: src, Deadline: deadline}
	raw, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, d.tls)
	if err := tc.SetDeadline(deadline); err != nil {
		_ = raw.Close() // err is the one to report
		return nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close() // err is the one to report
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	if tc.ConnectionState().DidResume {
		d.resumed.Add(1)
	}
	return tc, nil
}

// stream reads a server's XML stream by markers: the server writes each
// element in one piece and in a known form, so a load client need not parse.
type stream struct {
	c   *tls.Conn
	buf []byte
}

const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// expect reads until end appears and returns the text read up to and
// including it. A SASL failure or a stream error is returned as an error.
func (s *stream) expect(end string) (string, error) {
	var tmp [4096]byte
	for {
		if i := bytes.Index(s.buf, []byte(end)); i >= 0 {
			out := string(s.buf[:i+len(end)])
			s.buf = s.buf[i+len(end):]
			return out, nil
		}
		for _, bad := range []string{"</failure>", "</stream:error>", "<failure xmlns='" + nsSASL + "'/>"} {
			if bytes.Contains(s.buf, []byte(bad)) {
				return "", fmt.Errorf("server: %s", trim(string(s.buf)))
			}
		}
		n, err := s.c.Read(tmp[:])
		s.buf = append(s.buf, tmp[:n]...)
		if err != nil {
			return "", fmt.Errorf("waiting for %s after %q: %w", end, trim(string(s.buf)), err)
		}
	}
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// between returns the text of s between the end of open's tag and close.
func between(s, open, close string) (string, bool) {
	i := strings.Index(s, open)
	if i < 0 {
		return "", false
	}
	s = s[i:]
	j, k := strings.IndexByte(s, '>'), strings.Index(s, close)
	if j < 0 || k < j {
		return "", false
	}
	return s[j+1 : k], true
}

const streamHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + domain + `' version='1.0'>`

// login runs one full client login over a fresh direct TLS connection:
// stream, SCRAM-SHA-256 (checking the server signature), restart, bind.
// It returns the idle, bound connection.
func login(ctx context.Context, d *dialer, i int, c *creds, resource string, deadline time.Time) (*tls.Conn, error) {
	tc, err := d.dial(ctx, i, deadline)
	if err != nil {
		return nil, err
	}
	if err := negotiate(&stream{c: tc}, c, resource); err != nil {
		_ = tc.Close() // err is the one to report
		return nil, err
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		_ = tc.Close() // err is the one to report
		return nil, err
	}
	return tc, nil
}

func negotiate(s *stream, c *creds, resource string) error {
	send := func(x string) error { _, err := s.c.Write([]byte(x)); return err }
	if err := send(streamHeader); err != nil {
		return err
	}
	features, err := s.expect("</stream:features>")
	if err != nil {
		return err
	}
	if !strings.Contains(features, "<mechanism>SCRAM-SHA-256</mechanism>") {
		return fmt.Errorf("SCRAM-SHA-256 not offered: %s", trim(features))
	}

	var nonce [18]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	cnonce := base64.RawStdEncoding.EncodeToString(nonce[:])
	clientFirstBare := "n=" + c.user + ",r=" + cnonce
	if err := send(`<auth xmlns='` + nsSASL + `' mechanism='SCRAM-SHA-256'>` +
		base64.StdEncoding.EncodeToString([]byte("n,,"+clientFirstBare)) + `</auth>`); err != nil {
		return err
	}
	ch, err := s.expect("</challenge>")
	if err != nil {
		return err
	}
	b64, _ := between(ch, "<challenge", "</challenge>")
	serverFirst, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	attrs := strings.Split(string(serverFirst), ",")
	if len(attrs) < 3 || !strings.HasPrefix(attrs[0], "r="+cnonce) ||
		attrs[1] != "s="+c.salt || attrs[2] != "i="+c.iterations {
		return fmt.Errorf("unexpected server-first-message %q", serverFirst)
	}
	finalNoProof := "c=biws," + attrs[0]
	authMessage := clientFirstBare + "," + string(serverFirst) + "," + finalNoProof
	proof := hmacSHA256(c.storedKey, authMessage)
	subtle.XORBytes(proof, proof, c.clientKey)
	if err := send(`<response xmlns='` + nsSASL + `'>` + base64.StdEncoding.EncodeToString(
		[]byte(finalNoProof+",p="+base64.StdEncoding.EncodeToString(proof))) + `</response>`); err != nil {
		return err
	}
	succ, err := s.expect("</success>")
	if err != nil {
		return err
	}
	b64, _ = between(succ, "<success", "</success>")
	want := "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(c.serverKey, authMessage))
	if got, err := base64.StdEncoding.DecodeString(b64); err != nil || !hmac.Equal(got, []byte(want)) {
		return errors.New("the server signature in <success/> is wrong")
	}

	if err := send(streamHeader); err != nil {
		return err
	}
	if features, err = s.expect("</stream:features>"); err != nil {
		return err
	}
	if !strings.Contains(features, "<bind ") {
		return fmt.Errorf("no bind feature: %s", trim(features))
	}
	if err := send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + resource + `</resource></bind></iq>`); err != nil {
		return err
	}
	res, err := s.expect("</iq>")
	if err != nil {
		return err
	}
	if !strings.Contains(res, "type='result'") || !strings.Contains(res, "/"+resource+"</jid>") {
		return fmt.Errorf("bind failed: %s", trim(res))
	}
	return nil
}

// ping checks that a held session is still alive (XEP-0199).
func ping(tc *tls.Conn, deadline time.Time) error {
	if err := tc.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := tc.Write([]byte(`<iq type='get' id='alive' to='` + domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)); err != nil {
		return err
	}
	res, err := (&stream{c: tc}).expect("</iq>")
	if err != nil {
		return err
	}
	if !strings.Contains(res, "type='result'") || !strings.Contains(res, "id='alive'") {
		return fmt.Errorf("unexpected ping answer: %s", trim(res))
	}
	return nil
}

// closeStream ends a session politely and closes the connection.
func closeStream(tc *tls.Conn) {
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second)) // the close is best effort
	_, _ = tc.Write([]byte(`</stream:stream>`))         // best effort, as above
	_ = tc.Close()                                      // best effort, as above
}
