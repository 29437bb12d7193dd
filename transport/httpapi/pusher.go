package httpapi

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // Pusher's body_md5 is defined on MD5; it is not a security boundary
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
)

// PusherApp is an application of the Pusher-compatible API: its requests
// are signed with Secret and act on the users of Domain.
type PusherApp struct {
	ID, Key, Secret, Domain string
}

// pusherWindow is how far auth_timestamp may be from now, either way, as on
// Pusher's servers.
// A signature accepted is remembered until its timestamp leaves the window.
const pusherWindow = 600 * time.Second

// pusherError answers in Pusher's shape, {"error": "…"}, as its SDKs expect.
func pusherError(c echo.Context, status int, text string) error {
	return c.JSON(status, map[string]string{"error": text})
}

// pusherRefusal is why a Pusher request is refused: the status and the
// sentence its sender gets, which names nothing secret.
type pusherRefusal struct {
	status int
	text   string
}

func (r *pusherRefusal) Error() string { return "pusher: " + r.text }

// refused is a 401 with the sentence "Authentication failed: " + text.
func refused(text string) *pusherRefusal {
	return &pusherRefusal{status: http.StatusUnauthorized, text: "Authentication failed: " + text}
}

// errPusherSignature is the answer to every signing failure that Pusher's
// SDKs know: a wrong secret, key or auth_version.
var errPusherSignature = refused("Invalid signature.")

// errPusherReplay is the answer to a signature accepted before.
var errPusherReplay = refused("This request was already received; Pusher requests cannot be replayed.")

// pusherAuth is what a verified request was signed with.
type pusherAuth struct {
	signature string
	timestamp time.Time
}

// terminateConnections answers POST /apps/{app_id}/users/{user_id}/terminate_connections,
// signed as Pusher's HTTP API requests are: every session of the user ends.
// A request is carried out once: its signature is remembered (ReplayCache)
// until its auth_timestamp is outside the window, when it would be refused
// anyway.
func (s *Server) terminateConnections(c echo.Context) error {
	app, ok := s.pusherApps[c.Param("app_id")]
	if !ok {
		return pusherError(c, http.StatusNotFound, "Application not found.")
	}
	if wait := s.cfg.Failures.CheckAddr(c.RealIP()); wait > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return pusherError(c, http.StatusTooManyRequests, "Too many failed requests; try again later.")
	}
	body, err := io.ReadAll(s.body(c))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			s.drainBody(c)
		}
		return pusherError(c, http.StatusRequestEntityTooLarge, "Request body too large.")
	}
	now := s.cfg.Now()
	auth, err := verifyPusher(c.Request(), body, app, now)
	if err != nil {
		var r *pusherRefusal
		if !errors.As(err, &r) {
			r = errPusherSignature
		}
		s.cfg.Failures.FailAddr(c.RealIP())
		s.log.Debug().Err(err).Str("remote_addr", c.RealIP()).Msg("pusher request refused")
		return pusherError(c, r.status, r.text)
	}
	// Only a request whose signature verified is remembered: no one without
	// the secret can fill the cache or make it refuse the app's requests.
	fresh, err := s.cfg.PusherReplay.Remember(c.Request().Context(),
		"pusher:"+app.ID+":"+auth.signature, auth.timestamp.Add(pusherWindow))
	var full *ReplayCacheFullError
	switch {
	case errors.As(err, &full):
		s.log.Warn().Err(err).Str("remote_addr", c.RealIP()).Msg("pusher replay cache full")
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(full.Retry.Sub(now).Seconds())+1))
		return pusherError(c, http.StatusTooManyRequests,
			"Too many Pusher requests within the timestamp window to tell them from replays; try again later.")
	case err != nil:
		s.log.Error().Err(err).Str("remote_addr", c.RealIP()).Msg("pusher replay check failed")
		return pusherError(c, http.StatusServiceUnavailable,
			"This server cannot tell whether the request is a replay now; try again later.")
	case !fresh:
		s.cfg.Failures.FailAddr(c.RealIP())
		s.log.Warn().Str("remote_addr", c.RealIP()).Msg("pusher request replayed")
		return pusherError(c, errPusherReplay.status, errPusherReplay.text)
	}
	userID, err := url.PathUnescape(c.Param("user_id"))
	if err != nil || strings.TrimSpace(userID) == "" {
		return pusherError(c, http.StatusBadRequest, "Invalid request: 'user_id' cannot be empty.")
	}
	user, err := pusherUser(userID, app.Domain)
	if err != nil {
		return pusherError(c, http.StatusBadRequest, "Invalid request: 'user_id' is not a user of "+app.Domain+".")
	}
	// The app is who asks, for its domain: the user's.
	_, err = s.cfg.Sessions.End(c.Request().Context(), session.EndRequest{
		Users: []jid.JID{user}, All: true,
		Caller: withOrigin(c, adhoc.Caller{JID: user.Domain(), Auth: adhoc.AuthPusher, Name: "pusher:" + app.ID}),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct{}{})
}

// pusherUser takes a localpart or a bare JID of the app's domain.
func pusherUser(userID, domain string) (jid.JID, error) {
	if !strings.Contains(userID, "@") {
		return jid.New(userID, domain, "")
	}
	user, err := jid.Parse(userID)
	if err != nil || user.Localpart() == "" || user.Resourcepart() != "" || user.Domainpart() != domain {
		return jid.JID{}, errors.New("not a user of the domain")
	}
	return user, nil
}

// verifyPusher checks a Pusher HTTP API signature: auth_signature is the
// hex HMAC-SHA256, under the app secret, of "METHOD\nPATH\nQUERY", where
// QUERY is every other parameter as key=value sorted by key and joined with
// '&' (no percent-encoding: Pusher's SDKs sign the values as they are);
// body_md5 is the hex MD5 of the body, required if the body is not empty.
//
// Whatever the signature does not cover is refused, not ignored: a key given
// twice (only one value would be signed; a second auth_timestamp or
// auth_signature must not slip through), two keys that differ only in case
// (both are signed lowercased), and a key or value whose '&' or '=' would
// let one signed string stand for two different queries. A body_md5 is
// checked even against an empty body, so that a body cannot be removed
// after signing either.
// Its errors are *pusherRefusal.
func verifyPusher(r *http.Request, body []byte, app PusherApp, now time.Time) (pusherAuth, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return pusherAuth{}, &pusherRefusal{status: http.StatusBadRequest,
			text: "Invalid request: the query string is not valid URL encoding."}
	}
	lower := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 1 {
			return pusherAuth{}, refused("the parameter " + quoteParam(k) + " is given more than once; " +
				"a signature covers one value of each parameter.")
		}
		if other, dup := lower[strings.ToLower(k)]; dup {
			return pusherAuth{}, refused("the parameters " + quoteParam(min(k, other)) + " and " + quoteParam(max(k, other)) +
				" differ only in case; a signature covers one of each name, lowercased.")
		}
		lower[strings.ToLower(k)] = k
		if strings.ContainsAny(k, "&=") || strings.Contains(vs[0], "&") {
			return pusherAuth{}, refused("the parameter " + quoteParam(k) + " holds '&' or '=' once decoded, " +
				"which the signature cannot tell from a separator.")
		}
	}
	sig := q.Get("auth_signature")
	if sig == "" {
		return pusherAuth{}, refused("auth_signature is missing.")
	}
	if q.Get("auth_key") != app.Key {
		return pusherAuth{}, fmt.Errorf("pusher: unknown auth_key: %w", errPusherSignature)
	}
	secs, err := strconv.ParseInt(q.Get("auth_timestamp"), 10, 64)
	if err != nil {
		return pusherAuth{}, refused("auth_timestamp is missing or not a number of seconds since 1970.")
	}
	ts := time.Unix(secs, 0)
	if now.Sub(ts).Abs() > pusherWindow {
		return pusherAuth{}, refused("auth_timestamp " + ts.UTC().Format(time.RFC3339) + " is more than " + strconv.Itoa(int(pusherWindow.Seconds())) + " s from " +
			"this server's time, " + now.UTC().Format(time.RFC3339) + ": the clock of the sender or of this server is off.")
	}
	if q.Get("auth_version") != "1.0" {
		return pusherAuth{}, fmt.Errorf("pusher: auth_version is not 1.0: %w", errPusherSignature)
	}
	if _, given := q["body_md5"]; given || len(body) > 0 {
		sum := md5.Sum(body) //nolint:gosec // see the import
		if !hmac.Equal([]byte(q.Get("body_md5")), []byte(hex.EncodeToString(sum[:]))) {
			return pusherAuth{}, refused("body_md5 does not match the body.")
		}
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "auth_signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = strings.ToLower(k) + "=" + q.Get(k)
	}
	mac := hmac.New(sha256.New, []byte(app.Secret))
	mac.Write([]byte(r.Method + "\n" + r.URL.Path + "\n" + strings.Join(pairs, "&")))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return pusherAuth{}, fmt.Errorf("pusher: bad signature: %w", errPusherSignature)
	}
	return pusherAuth{signature: want, timestamp: ts}, nil
}

// quoteParam quotes a parameter's name for an error sentence, cut short:
// it comes from the request.
func quoteParam(k string) string {
	const most = 40
	if len(k) > most {
		cut := most
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut--
		}
		k = k[:cut] + "…"
	}
	return strconv.Quote(k)
}
