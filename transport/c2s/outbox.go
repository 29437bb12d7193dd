package c2s

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// outState is where an outbox is in the life of its connection.
type outState uint8

const (
	negotiating outState = iota // the connection's goroutine writes, synchronously
	bound                       // writes are queued and a writer goroutine drains the queue
	closing                     // nothing more is queued; what is queued is still written
	closed                      // the connection's goroutine is closing the socket; timers do nothing
)

// outbox is the write side of a connection: how bytes reach the client,
// and how the server ends the stream.
//
// States, in order (a connection that never binds skips bound):
//   - negotiating: only the connection's goroutine writes, with write.
//     A kick hangs up.
//   - bound: send queues complete elements, at most MaxQueuedBytes; a writer
//     goroutine exists only while the queue is not empty, so an idle session
//     costs none. The idle timer pings a silent client (XEP-0199).
//   - closing: nothing more is queued; what is queued is still written.
//     A kick of a bound connection queued the stream error and the stream
//     end, and armed the grace timer: if the client has not closed its
//     stream when it runs out, the read loop is stopped so that teardown
//     closes cleanly, or the socket is closed at once if the stream end is
//     not even written.
//   - closed: the connection's goroutine has written what it will and is
//     closing the socket; the timers do nothing.
//
// Lock rule: mu guards the fields below it and is held only for work that
// does not block, never across a write. Hanging up (closing the TCP socket)
// is done under it; so is the registry's Bind, once, so that nothing routed
// to the client can overtake its bind result. Bind takes the registry's
// lock, and kicks an older connection with the same resource (its mu);
// neither is held by anyone who then takes this mu.
type outbox struct {
	c *conn

	mu       sync.Mutex
	state    outState
	bound    bool // the registry was given the connection
	failed   bool // hung up, or a write failed
	cutOff   bool // a kicked client did not close its stream within KickGrace
	queue    [][]byte
	queued   int           // bytes in queue
	writing  chan struct{} // closed when the writer goroutine exits; nil while none runs
	grace    *time.Timer   // armed by a kick
	idle     *time.Timer   // keepalive, from bind on
	pingedAt int64         // unix nanoseconds of the unanswered keepalive ping; 0 if none
}

// write writes elements at once, while negotiating; only the connection's
// goroutine calls it.
func (o *outbox) write(items ...[]byte) error {
	nc := o.c.nc
	err := nc.SetWriteDeadline(time.Now().Add(o.c.srv.cfg.WriteTimeout))
	for _, b := range items {
		if err != nil {
			break
		}
		_, err = nc.Write(b)
	}
	if err != nil {
		o.mu.Lock()
		o.failed = true // a TLS conn is unusable after a write timeout: write nothing more
		o.mu.Unlock()
	}
	return err
}

// bind moves to bound: it queues the bind result, starts the keepalive and
// calls register, all under mu.
func (o *outbox) bind(result []byte, register func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != negotiating {
		return net.ErrClosed // kicked while negotiating: hung up
	}
	o.state = bound
	o.bound = true
	o.idle = time.AfterFunc(o.c.srv.cfg.IdleTimeout, o.keepalive)
	o.enqueueLocked(result)
	return register()
}

// send queues one complete element. It reports false if the connection is
// not bound, is closing, or was dropped because its queue overflowed.
func (o *outbox) send(b []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != bound {
		return false
	}
	if o.queued+len(b) > o.c.srv.cfg.MaxQueuedBytes {
		o.c.log.Warn().Msg("client does not read, dropping it")
		o.state = closing
		o.queue, o.queued = nil, 0
		o.hangupLocked()
		return false
	}
	o.enqueueLocked(b)
	return true
}

// kick starts ending the stream with a stream error (see session.Conn).
func (o *outbox) kick(condition, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kickLocked(condition, text)
}

func (o *outbox) kickLocked(condition, text string) {
	switch o.state {
	case negotiating:
		// Its own goroutine writes, so just hang up: the read loop fails.
		o.state = closing
		o.hangupLocked()
	case bound:
		o.enqueueLocked(streamError(condition, text))
		o.enqueueLocked(streamEnd(o.c.framed))
		o.state = closing
		o.grace = time.AfterFunc(o.c.srv.cfg.KickGrace, o.graceOver)
	}
}

// graceOver runs when a kicked client has had KickGrace to close its stream.
func (o *outbox) graceOver() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != closing {
		return // closed: teardown has the socket
	}
	o.cutOff = true
	if o.writing != nil {
		o.hangupLocked() // the client does not even read the stream end
		return
	}
	// Stop the read loop; its teardown closes cleanly.
	if o.c.sock.SetReadDeadline(time.Now()) != nil {
		o.hangupLocked()
	}
}

// isClosing reports whether the stream is being ended.
func (o *outbox) isClosing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state >= closing
}

// end is the connection's goroutine ending the stream with final, unless a
// kick already did. It waits for what is queued to be written, at most
// KickGrace, and hangs up if that is not enough. It reports whether
// everything reached the socket, so that it may be closed cleanly.
func (o *outbox) end(final ...[]byte) (flushed bool) {
	o.mu.Lock()
	state, failed := o.state, o.failed
	if state < closing {
		o.state = closing
	}
	switch state {
	case negotiating:
		o.mu.Unlock()
		return !failed && (len(final) == 0 || o.write(final...) == nil)
	case bound:
		for _, b := range final {
			o.enqueueLocked(b)
		}
	}
	done := o.writing
	o.mu.Unlock()
	if done != nil {
		t := time.NewTimer(o.c.srv.cfg.KickGrace)
		select {
		case <-done:
		case <-t.C:
			o.hangup()
		}
		t.Stop()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.failed
}

// shut moves to closed and stops the timers. It reports whether the
// connection was bound, and whether a kicked client was cut off.
func (o *outbox) shut() (wasBound, cutOff bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.state = closed
	if o.grace != nil {
		o.grace.Stop()
	}
	if o.idle != nil {
		o.idle.Stop()
	}
	return o.bound, o.cutOff
}

// hangup closes the socket at once, from any goroutine.
func (o *outbox) hangup() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hangupLocked()
}

// hangupLocked closes the TCP socket, which does not block: the socket
// beneath TLS, as a TLS close would first try to send a close_notify.
func (o *outbox) hangupLocked() {
	o.failed = true
	_ = o.c.sock.Close() // the read loop fails and tears the session down
}

// enqueueLocked appends b and makes sure a writer goroutine runs.
func (o *outbox) enqueueLocked(b []byte) {
	o.queue = append(o.queue, b)
	o.queued += len(b)
	if o.writing == nil {
		o.writing = make(chan struct{})
		o.c.srv.wg.Add(1)
		go o.writeLoop(o.writing)
	}
}

// writeLoop writes the queue until it is empty, then exits.
func (o *outbox) writeLoop(done chan struct{}) {
	defer o.c.srv.wg.Done()
	defer close(done)
	var buf []byte // lives as long as the writer, not the session
	for {
		o.mu.Lock()
		batch := o.queue
		o.queue, o.queued = nil, 0
		if len(batch) == 0 || o.failed {
			o.writing = nil
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()

		var err error
		buf, err = o.writeBatch(batch, buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				o.c.log.Warn().Msg("write deadline exceeded, dropping client")
			}
			o.mu.Lock()
			if o.state == bound {
				o.state = closing
			}
			o.hangupLocked()
			o.mu.Unlock()
		}
	}
}

// writeBatch writes queued elements under one write deadline: one write
// for a stream, one message per element for WebSocket (RFC 7395 §3.3.3).
func (o *outbox) writeBatch(batch [][]byte, buf []byte) ([]byte, error) {
	nc := o.c.nc
	if err := nc.SetWriteDeadline(time.Now().Add(o.c.srv.cfg.WriteTimeout)); err != nil {
		return buf, err
	}
	if o.c.framed {
		for _, b := range batch {
			if _, err := nc.Write(b); err != nil {
				return buf, err
			}
		}
		return buf, nil
	}
	buf = buf[:0]
	for _, b := range batch {
		buf = append(buf, b...)
	}
	_, err := nc.Write(buf)
	return buf, err
}

// keepalive runs on the idle timer while the session is bound: after
// IdleTimeout of silence it pings the client (XEP-0199), and ends the
// session if the client stays silent for PingTimeout more. It costs no
// goroutine while idle.
func (o *outbox) keepalive() {
	c := o.c
	cfg := c.srv.cfg
	last := c.LastActive()
	idle := time.Since(last)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pingedAt != 0 && last.UnixNano() > o.pingedAt {
		o.pingedAt = 0 // the client spoke after the ping
	}
	switch {
	case o.state != bound:
		return
	case idle < cfg.IdleTimeout:
		o.idle.Reset(cfg.IdleTimeout - idle)
	case o.pingedAt == 0:
		o.pingedAt = time.Now().UnixNano()
		o.enqueueLocked(pingRequest(cfg.Domain, c.addr.String(), c.id))
		o.idle.Reset(cfg.PingTimeout)
	default:
		c.log.Info().Str("duration", idle.String()).Msg("client did not answer the keepalive ping")
		o.kickLocked("connection-timeout", "The client did not answer a ping.")
	}
}
