package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a running `adhocd serve` child.
type server struct {
	cmd      *exec.Cmd
	tlsAddr  string // direct TLS c2s listener
	httpAddr string
	logPath  string
	done     chan struct{} // closed when the process has exited
	waitErr  error

	mu       sync.Mutex
	warnings int      // log lines at level warn
	errors   int      // log lines at level error or above
	samples  []string // the first few warn/error lines
	lastGC   string   // the last GODEBUG=gctrace=1 line, if the server prints them
}

// buildAdhocd builds ./cmd/adhocd of the module in the working directory.
func buildAdhocd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "adhocd")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/adhocd/adhocd/cmd/adhocd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build adhocd (run from the module, or pass --adhocd): %w\n%s", err, out)
	}
	return bin, nil
}

// freePort returns a loopback address whose port is free now. The server is
// run at --log-level warn, where it does not log the addresses it listens on
// (that line is info), so the ports are chosen here.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs bin serve on 127.0.0.1 ports and waits until /healthz
// answers. The plain c2s listener is disabled. env is added to the
// environment the server inherits.
func startServer(ctx context.Context, bin, data string, idle time.Duration, env ...string) (*server, error) {
	var err error
	s := &server{logPath: filepath.Join(data, "adhocd.log"), done: make(chan struct{})}
	if s.tlsAddr, err = freePort(); err != nil {
		return nil, err
	}
	if s.httpAddr, err = freePort(); err != nil {
		return nil, err
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve", "--data", data, "--c2s=", "--c2s-tls", s.tlsAddr,
		"--http", s.httpAddr, "--log-level", "warn", "--idle-timeout", idle.String())
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout = io.Discard // the admin password it prints on first start
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go s.readLog(stderr, logFile)
	go func() {
		s.waitErr = s.cmd.Wait()
		logFile.Close()
		close(s.done)
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.health(ctx)
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("adhocd exited at start (%v); see %s", s.waitErr, s.logPath)
		case <-ctx.Done():
			_ = s.stop() // the context's error is the one to report
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop() // the timeout is the one to report
			return nil, fmt.Errorf("adhocd did not answer /healthz within 30s (%v); see %s", err, s.logPath)
		}
	}
}

// readLog copies the server's log (JSON lines, warn and above) to w and
// counts warnings and errors.
func (s *server) readLog(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		_, _ = w.Write(append(sc.Bytes(), '\n'))                                    // the log file is a convenience
		if bytes.HasPrefix(sc.Bytes(), []byte("gc ")) || sc.Text() == "GC forced" { // GODEBUG=gctrace=1
			s.mu.Lock()
			if sc.Text() != "GC forced" {
				s.lastGC = sc.Text()
			}
			s.mu.Unlock()
			continue
		}
		var l struct{ Level string }
		_ = json.Unmarshal(sc.Bytes(), &l) // a line that is not JSON counts as an error
		s.mu.Lock()
		if l.Level == "warn" {
			s.warnings++
		} else {
			s.errors++
		}
		if len(s.samples) < 5 {
			s.samples = append(s.samples, sc.Text())
		}
		s.mu.Unlock()
	}
}

// logCounts returns the warnings and errors logged so far, and a few of them.
func (s *server) logCounts() (int, int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.warnings, s.errors, append([]string(nil), s.samples...)
}

// stop sends SIGTERM and waits up to 15s before killing.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // it may be gone already
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill() // it did not stop in time
		<-s.done
		return errors.New("adhocd did not stop within 15s of SIGTERM")
	}
	return s.waitErr
}

// procStatus reads VmRSS (KiB) and Threads from /proc/PID/status.
func procStatus(pid int) (rssKiB, threads int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rssKiB, err = strconv.ParseInt(f[0], 10, 64)
		case "Threads":
			threads, err = strconv.ParseInt(f[0], 10, 64)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return rssKiB, threads, nil
}

// sample is the server's state at one point of the run.
type sample struct {
	RSSKiB     int64 `json:"rss_kib"`
	Threads    int64 `json:"threads"`
	Goroutines *int  `json:"goroutines,omitempty"` // from /healthz, when it reports them
	Sessions   *int  `json:"sessions,omitempty"`   // from /healthz, when it reports them
	Stable     bool  `json:"rss_stable"`
	WaitedMS   int64 `json:"rss_wait_ms"`
	// LastGC is the server's last GC trace line when it runs with
	// GODEBUG=gctrace=1 (set it for adhocbench: the server inherits it).
	LastGC string `json:"last_gctrace,omitempty"`
}

// settle samples the RSS every 500ms until the last three samples differ by
// less than 1%, or max has passed, then reads /healthz.
func (s *server) settle(ctx context.Context, max time.Duration) (sample, error) {
	pid := s.cmd.Process.Pid
	start := time.Now()
	var last []int64
	var out sample
	for {
		rss, threads, err := procStatus(pid)
		if err != nil {
			return out, fmt.Errorf("read server status: %w", err)
		}
		out.RSSKiB, out.Threads = rss, threads
		if last = append(last, rss); len(last) > 3 {
			last = last[1:]
		}
		if len(last) == 3 {
			lo, hi := min(last[0], last[1], last[2]), max3(last)
			if float64(hi-lo) < 0.01*float64(hi) {
				out.Stable = true
				break
			}
		}
		if time.Since(start) >= max {
			break
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	out.WaitedMS = time.Since(start).Milliseconds()
	s.mu.Lock()
	out.LastGC = s.lastGC
	s.mu.Unlock()
	h, err := s.health(ctx)
	if err != nil {
		return out, err
	}
	out.Goroutines, out.Sessions = h.Goroutines, h.Sessions
	return out, nil
}

func max3(v []int64) int64 { return max(v[0], v[1], v[2]) }

type health struct {
	Status     string `json:"status"`
	Goroutines *int   `json:"goroutines"`
	Sessions   *int   `json:"sessions"`
}

// health reads /healthz.
func (s *server) health(ctx context.Context) (health, error) {
	var h health
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.httpAddr+"/healthz", nil)
	if err != nil {
		return h, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, fmt.Errorf("healthz: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Status != "ok" {
		return h, fmt.Errorf("healthz: status %s, %q, %v", resp.Status, h.Status, err)
	}
	return h, nil
}

// serverNoFile reads the open-file limit of the running server.
func serverNoFile(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no open-file limit in /proc/PID/limits")
}

// raiseNoFile raises this process's open-file limit (inherited by the server)
// to want, beyond the hard limit when allowed (root), else to the hard limit.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want {
		try := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
