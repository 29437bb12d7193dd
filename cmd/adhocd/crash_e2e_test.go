package main

// End-to-end tests of what survives a crash (SIGKILL during concurrent
// writes) and a full disk: every acknowledged write is kept, nothing
// half-written is visible, the database passes its integrity check.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver, to check the database file

	"github.com/adhocd/adhocd/sessman/session"
)

const (
	nodeAddUser     = "http://jabber.org/protocol/admin#add-user"
	nodeAPIKeyMake  = "urn:adhocd:apikey#create"
	crashBlockSecs  = 600 // outlasts the test
	crashAckedGoal  = 300 // acknowledged writes before the kill
	crashWorkers    = 16
	crashUserPrefix = "crash"
)

// crashAnswer is one HTTP answer, for goroutines that must not call t.FailNow.
type crashAnswer struct {
	status    int
	requestID string
	body      []byte
}

// crashCall sends one request as the admin; err is a transport error (the
// server is gone), never an HTTP status.
func (d *daemon) crashCall(method, path, body string) (crashAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gatewayWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+d.addrs["http"]+path, strings.NewReader(body))
	if err != nil {
		return crashAnswer{}, err
	}
	req.SetBasicAuth(e2eAdmin, e2eAdminPassword)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return crashAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return crashAnswer{}, err
	}
	return crashAnswer{status: resp.StatusCode, requestID: resp.Header.Get("X-Request-Id"), body: b}, nil
}

// adhocBody is the JSON request of node with fields (var -> value).
func adhocBody(node string, fields map[string]any) string {
	var fs []any
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		fs = append(fs, map[string]any{"var": k, "value": fields[k]})
	}
	b, err := json.Marshal(map[string]any{"command": map[string]any{"node": node, "fields": fs}})
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return string(b)
}

// fieldValue is the first value of field name in a JSON command answer.
func fieldValue(body []byte, name string) (string, error) {
	var r struct {
		Command struct {
			Fields []struct {
				Var   string          `json:"var"`
				Value json.RawMessage `json:"value"`
			} `json:"fields"`
		} `json:"command"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", err
	}
	for _, f := range r.Command.Fields {
		if f.Var != name {
			continue
		}
		var one string
		if json.Unmarshal(f.Value, &one) == nil {
			return one, nil
		}
		var many []string
		if err := json.Unmarshal(f.Value, &many); err != nil || len(many) == 0 {
			return "", fmt.Errorf("field %s: %s", name, f.Value)
		}
		return many[0], nil
	}
	return "", fmt.Errorf("no field %s in %s", name, body)
}

// crashWrite is one acknowledged write.
type crashWrite struct {
	kind      string // user, key, block
	user      string // user added or blocked
	password  string
	keyID     string
	keySecret string
	requestID string
}

// crashLog collects the acknowledged writes of every worker.
type crashLog struct {
	mu     sync.Mutex
	writes []crashWrite
	acked  atomic.Int64
	goal   chan struct{} // closed once acked reaches crashAckedGoal
	once   sync.Once
}

func (l *crashLog) add(w crashWrite) {
	l.mu.Lock()
	l.writes = append(l.writes, w)
	l.mu.Unlock()
	if l.acked.Add(1) >= crashAckedGoal {
		l.once.Do(func() { close(l.goal) })
	}
}

// crashWorker writes until the server goes away: it adds users, creates
// keys, and blocks the users it added, by end-user-session and by the
// session API in turn. An answer other than 200 is a failure, reported on
// fail; a transport error ends the worker.
func (d *daemon) crashWorker(w int, l *crashLog, fail chan<- string) {
	var mine []string // users added and not yet blocked
	for i := 0; ; i++ {
		var (
			ans   crashAnswer
			err   error
			write crashWrite
		)
		switch {
		case i%4 == 1:
			name := fmt.Sprintf("crash-key-%d-%d", w, i)
			ans, err = d.crashCall(http.MethodPost, "/rest/adhoc/sess-man@localhost", adhocBody(nodeAPIKeyMake, map[string]any{"name": name}))
			write = crashWrite{kind: "key"}
			if err == nil && ans.status == http.StatusOK {
				write.keyID, err = fieldValue(ans.body, "id")
				if err == nil {
					write.keySecret, err = fieldValue(ans.body, "key")
				}
				if err != nil {
					fail <- fmt.Sprintf("key create answer: %v", err)
					return
				}
			}
		case i%4 == 3 && len(mine) > 0:
			user := mine[0]
			mine = mine[1:]
			write = crashWrite{kind: "block", user: user}
			if i%8 == 3 {
				ans, err = d.crashCall(http.MethodPost, "/rest/adhoc/sess-man@localhost", adhocBody(nodeEndUserSession, map[string]any{
					"accountjids": []string{user}, "reason": "Crash test.", "block": fmt.Sprint(crashBlockSecs)}))
			} else {
				q := url.Values{"block": {fmt.Sprint(crashBlockSecs)}, "reason": {"Crash test."}}
				ans, err = d.crashCall(http.MethodDelete, "/rest/users/"+user+"/sessions/all?"+q.Encode(), "")
			}
		default:
			user := fmt.Sprintf("%s-%d-%d@localhost", crashUserPrefix, w, i)
			password := fmt.Sprintf("pw-%d-%d", w, i)
			write = crashWrite{kind: "user", user: user, password: password}
			ans, err = d.crashCall(http.MethodPost, "/rest/adhoc/sess-man@localhost", adhocBody(nodeAddUser, map[string]any{
				"accountjid": user, "password": password, "password-verify": password}))
		}
		if err != nil {
			return // killed: this call is not acknowledged
		}
		if ans.status != http.StatusOK {
			fail <- fmt.Sprintf("worker %d call %d (%s): %d %s", w, i, write.kind, ans.status, ans.body)
			return
		}
		write.requestID = ans.requestID
		l.add(write)
		if write.kind == "user" {
			mine = append(mine, write.user)
		}
	}
}

// checkDatabase opens the database file of dir, whose server must have
// exited, and checks it: integrity_check and foreign_key_check, and nothing
// half-written (see the comments). It returns the number of actions that
// took effect without an audit entry (never acknowledged), for the log.
func checkDatabase(t *testing.T, dir string) (unaudited int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "adhocd.db")+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	col := func(query string) []string {
		t.Helper()
		rows, err := db.Query(query)
		require.NoError(t, err, query)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s sql.NullString
			require.NoError(t, rows.Scan(&s), query)
			out = append(out, s.String)
		}
		require.NoError(t, rows.Err(), query)
		return out
	}
	assert.Equal(t, []string{"ok"}, col(`PRAGMA integrity_check`), "PRAGMA integrity_check")
	assert.Empty(t, col(`SELECT "table" FROM pragma_foreign_key_check`), "PRAGMA foreign_key_check")
	// An account is written with both SCRAM credentials in one transaction.
	assert.Empty(t, col(`SELECT a.jid FROM accounts a WHERE (SELECT COUNT(*) FROM scram_credentials c WHERE c.jid = a.jid) <> 2`),
		"accounts without both SCRAM credentials")
	// An audit entry is written with its targets in one transaction.
	assert.Empty(t, col(`SELECT a.id FROM audit a WHERE json_array_length(a.targets) > 0 AND
		(SELECT COUNT(*) FROM audit_targets t WHERE t.audit_id = a.id) <>
		(SELECT COUNT(DISTINCT value) FROM json_each(a.targets))`), "audit entries without all of their targets")
	// A block is in force for an account only.
	assert.Empty(t, col(`SELECT jid FROM blocks WHERE jid NOT IN (SELECT jid FROM accounts)`), "blocks of no account")
	// An API key is written with its audit entry in one transaction: a key
	// without one would be active with a secret nobody was shown.
	assert.Empty(t, col(`SELECT name FROM api_keys WHERE id NOT IN (SELECT target FROM audit_targets)`),
		"API keys without their audit entry")
	// Other actions are committed, then audited, then acknowledged: a kill
	// in between leaves one done, unaudited and unacknowledged. Counted.
	noAudit := col(`SELECT jid FROM accounts WHERE jid LIKE '` + crashUserPrefix + `-%' AND
		jid NOT IN (SELECT target FROM audit_targets)`)
	noAudit = append(noAudit, col(`SELECT jid FROM blocks WHERE jid NOT IN (SELECT target FROM audit_targets t
		JOIN audit a ON a.id = t.audit_id WHERE a.detail LIKE '%blocked%' OR a.action LIKE '%end-user-session')`)...)
	if len(noAudit) > 0 {
		t.Logf("done but not audited (never acknowledged): accounts and blocks %v", noAudit)
	}
	return len(noAudit)
}

// auditPageLimit is the largest page of GET /rest/audit.
const auditPageLimit = 50

// auditByRequestID reads the whole audit over the API, keyed by request id.
func (d *daemon) auditByRequestID(t *testing.T) map[string]session.AuditEntry {
	t.Helper()
	rows := map[string]session.AuditEntry{}
	for offset := 0; ; offset += auditPageLimit {
		ans, err := d.crashCall(http.MethodGet, fmt.Sprintf("/rest/audit?limit=%d&offset=%d", auditPageLimit, offset), "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
		var p session.AuditPage
		require.NoError(t, json.Unmarshal(ans.body, &p))
		for _, e := range p.Items {
			rows[e.RequestID] = e
		}
		if len(p.Items) < auditPageLimit {
			return rows
		}
	}
}

// checkAcknowledged checks every write of writes over the API of d.
func (d *daemon) checkAcknowledged(t *testing.T, writes []crashWrite) {
	t.Helper()
	blocked := map[string]bool{}
	for _, w := range writes {
		if w.kind == "block" {
			blocked[w.user] = true
		}
	}
	audit := d.auditByRequestID(t)
	for _, w := range writes {
		e, ok := audit[w.requestID]
		if assert.True(t, ok, "no audit entry for acknowledged %s %s%s (request %s)", w.kind, w.user, w.keyID, w.requestID) {
			assert.Equal(t, "ok", e.Outcome, "audit entry of request %s", w.requestID)
		}
		switch w.kind {
		case "user":
			var l apiSessionList
			ans, err := d.crashCall(http.MethodGet, "/rest/users/"+w.user+"/sessions", "")
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, ans.status, "admin lists %s: %s", w.user, ans.body)
			require.NoError(t, json.Unmarshal(ans.body, &l))
			if blocked[w.user] {
				continue // cannot log in; the block is checked below
			}
			if l.Block != nil {
				// An unacknowledged block may have been kept: no login then.
				t.Logf("%s has a block that was not acknowledged: %+v", w.user, l.Block)
				continue
			}
			resp := d.sessCall(t, sessBasic(w.user, w.password), http.MethodGet, "/rest/users/"+w.user+"/sessions", "")
			assert.Equal(t, http.StatusOK, resp.status, "acknowledged user %s logs in: %s", w.user, resp.body)
		case "key":
			resp := d.sessCall(t, sessBearer(w.keySecret), http.MethodGet, "/rest/sessions", "")
			assert.Equal(t, http.StatusOK, resp.status, "acknowledged key %s authenticates: %s", w.keyID, resp.body)
		case "block":
			l := d.sessList(t, sessAdmin, "/rest/users/"+w.user+"/sessions")
			if assert.NotNil(t, l.Block, "acknowledged block of %s", w.user) {
				assert.True(t, l.Block.Until.After(time.Now().Add(crashBlockSecs*time.Second/2)), "block of %s ends %s", w.user, l.Block.Until)
			}
		}
	}
}

func TestE2ECrashKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)

	l := &crashLog{goal: make(chan struct{})}
	fail := make(chan string, crashWorkers)
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() { d.crashWorker(w, l, fail) })
	}
	select {
	case <-l.goal:
	case msg := <-fail:
		require.NoError(t, d.cmd.Process.Kill())
		wg.Wait()
		t.Fatal(msg)
	case <-time.After(40 * time.Second):
		t.Fatalf("only %d writes acknowledged in 40s", l.acked.Load())
	}
	require.NoError(t, d.cmd.Process.Kill(), "SIGKILL")
	<-d.exited
	wg.Wait()
	close(fail)
	for msg := range fail {
		t.Error(msg)
	}
	l.mu.Lock()
	writes := slices.Clone(l.writes)
	l.mu.Unlock()
	counts := map[string]int{}
	for _, w := range writes {
		counts[w.kind]++
	}
	t.Logf("killed after %d acknowledged writes: %v", len(writes), counts)

	// Before any restart: the file as the kill left it (opening it
	// recovers the WAL, as the server would).
	checkDatabase(t, dir)

	d = startDaemon(t, dir)
	d.checkAcknowledged(t, writes)
	d.stop(t)
	checkDatabase(t, dir)
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it at cleanup (after the cleanups registered later, such as a daemon's).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	require.NoError(t, os.Mkdir(dir, 0o700))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mounting a %d-byte tmpfs for the full-disk test needs root "+
		"(./test.sh runs as root; run `go test` as root too): %s", size, out)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC, "filling %s", path)
			break
		}
	}
	// The last pages may take a smaller write.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			return
		}
	}
}

func TestE2EDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 4<<20)
	d := startDaemon(t, dir)

	var writes []crashWrite
	addUser := func(i int) crashAnswer {
		t.Helper()
		user, password := fmt.Sprintf("%s-full-%d@localhost", crashUserPrefix, i), fmt.Sprintf("pw-full-%d", i)
		ans, err := d.crashCall(http.MethodPost, "/rest/adhoc/sess-man@localhost", adhocBody(nodeAddUser, map[string]any{
			"accountjid": user, "password": password, "password-verify": password}))
		require.NoError(t, err)
		if ans.status == http.StatusOK {
			writes = append(writes, crashWrite{kind: "user", user: user, password: password, requestID: ans.requestID})
		}
		return ans
	}
	for i := range 5 {
		require.Equal(t, http.StatusOK, addUser(i).status)
	}

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	// The database may still have room in pages it holds: write until it
	// needs more. Every write that succeeds counts as acknowledged.
	var full crashAnswer
	i := 5
	for ; i < 400; i++ {
		if full = addUser(i); full.status != http.StatusOK {
			break
		}
	}
	t.Logf("the disk is full: %d users added, then %d %s", len(writes), full.status, full.body)
	require.Equal(t, http.StatusServiceUnavailable, full.status, "add-user on a full disk: %s", full.body)
	var e gatewayError
	require.NoError(t, json.Unmarshal(full.body, &e), "%s", full.body)
	assert.Equal(t, "service-unavailable", e.Condition)
	assert.Contains(t, e.Error, "disk is full", "the answer says why")
	require.Eventually(t, func() bool { return d.loggedError("disk full") }, gatewayWait, 10*time.Millisecond,
		"no error-level log line names the full disk")

	// The acknowledged writes are readable while the disk is full.
	d.checkAcknowledged(t, writes)

	require.NoError(t, os.Remove(filler))
	ans := addUser(i)
	if strings.Contains(e.Error, "audit") {
		// The account fit and its audit entry did not: it exists,
		// unacknowledged, and the same add-user is a conflict.
		require.Equal(t, http.StatusConflict, ans.status, "add-user again after the audit's 503: %s", ans.body)
		ans = addUser(i + 1)
	}
	require.Equal(t, http.StatusOK, ans.status, "add-user once space is back, without a restart: %s", ans.body)
	d.checkAcknowledged(t, writes)
	d.stop(t)
	unaudited := checkDatabase(t, dir)
	// Only the last add-user may have been kept without its audit: the
	// disk filled between the two.
	assert.LessOrEqual(t, unaudited, 1, "actions done without their audit")
}
