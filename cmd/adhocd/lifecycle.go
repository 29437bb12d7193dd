package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/adhocd/adhocd/transport/c2s"
)

// lifecycle holds the parts of a running server in the order they started,
// so that they stop in the reverse order.
// A part is added once it has started (or begun to), so a failure to start
// one stops only what came before it.
type lifecycle struct {
	log     zerolog.Logger
	parts   []part
	serving sync.WaitGroup // one per listener being served
	failed  chan error     // the first error of a listener
}

// part is a started part of the server and how to stop it.
type part struct {
	name string // the log's component
	stop func(context.Context) error
}

// listener is an address that a server serves.
type listener struct {
	name  string // the log's component: c2s, c2s-tls, http
	addr  string // empty: not served
	serve func(net.Listener) error
}

func newLifecycle(log zerolog.Logger) *lifecycle {
	return &lifecycle{log: log, failed: make(chan error, 1)}
}

// add records a started part.
func (l *lifecycle) add(name string, stop func(context.Context) error) {
	l.parts = append(l.parts, part{name: name, stop: stop})
}

// serve opens the listeners of a server, logs their resolved addresses and
// serves each in a goroutine.
// The server is a part: stop ends it, then its listeners are closed, in
// case one had not yet been handed to its Serve when stop ran.
func (l *lifecycle) serve(name string, stop func(context.Context) error, listeners ...listener) error {
	var opened []net.Listener
	l.add(name, func(ctx context.Context) error {
		err := stop(ctx)
		for _, ln := range opened {
			_ = ln.Close() // usually closed already by stop
		}
		return err
	})
	for _, spec := range listeners {
		if spec.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", spec.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.name, err)
		}
		opened = append(opened, ln)
		l.log.Info().Str("component", spec.name).Str("listen_addr", ln.Addr().String()).Msg("listening")
		l.serving.Add(1)
		go func() {
			defer l.serving.Done()
			err := spec.serve(ln)
			if err == nil || errors.Is(err, c2s.ErrServerClosed) {
				return
			}
			select {
			case l.failed <- fmt.Errorf("%s: %w", spec.name, err):
			default: // not the first: the shutdown has begun
			}
		}()
	}
	return nil
}

// wait blocks until ctx is done, then returns nil, or until a listener
// fails, then returns its error.
func (l *lifecycle) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		l.log.Info().Str("component", "adhocd").Msg("shutting down")
		return nil
	case err := <-l.failed:
		l.log.Error().Err(err).Str("component", "adhocd").Msg("a listener failed, shutting down")
		return err
	}
}

// stop stops the started parts in reverse order, all within timeout, and
// waits for the listeners' goroutines to return.
// A part that fails to stop is logged and the others still stop: the
// process is exiting either way.
func (l *lifecycle) stop(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i := len(l.parts) - 1; i >= 0; i-- {
		p := l.parts[i]
		if err := p.stop(ctx); err != nil {
			l.log.Warn().Err(err).Str("component", p.name).Msg("stop failed")
		}
	}
	l.parts = nil
	l.serving.Wait()
}
