package httpapi

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // Pusher's body_md5 is defined on MD5; it is not a security boundary
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

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

// pusherMaxSkew is how far auth_timestamp may be from now.
const pusherMaxSkew = 600 * time.Second

// pusherError answers in Pusher's shape, {"error": "…"}, as its SDKs expect.
func pusherError(c echo.Context, status int, text string) error {
	return c.JSON(status, map[string]string{"error": text})
}

// terminateConnections answers POST /apps/{app_id}/users/{user_id}/terminate_connections,
// signed as Pusher's HTTP API requests are: every session of the user ends.
func (s *Server) terminateConnections(c echo.Context) error {
	app, ok := s.pusherApps[c.Param("app_id")]
	if !ok {
		return pusherError(c, http.StatusNotFound, "Application not found.")
	}
	if wait := s.cfg.Failures.CheckAddr(c.Request().RemoteAddr); wait > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return pusherError(c, http.StatusTooManyRequests, "Too many failed requests; try again later.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.BodyLimit))
	if err != nil {
		return pusherError(c, http.StatusRequestEntityTooLarge, "Request body too large.")
	}
	if err := verifyPusher(c.Request(), body, app, time.Now()); err != nil {
		s.cfg.Failures.FailAddr(c.Request().RemoteAddr)
		s.log.Debug().Err(err).Str("remote_addr", c.RealIP()).Msg("pusher request refused")
		// Pusher's SDKs know one answer for every signing failure.
		return pusherError(c, http.StatusUnauthorized, "Authentication failed: Invalid signature.")
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
		Caller: adhoc.Caller{JID: user.Domain(), Auth: adhoc.AuthPusher, Name: "pusher:" + app.ID, RemoteAddr: c.RealIP(),
			RequestID: c.Response().Header().Get(echo.HeaderXRequestID)},
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
// '&'; body_md5 is the hex MD5 of a non-empty body.
func verifyPusher(r *http.Request, body []byte, app PusherApp, now time.Time) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errors.New("pusher: bad signature")
	}
	if q.Get("auth_key") != app.Key {
		return errors.New("pusher: unknown auth_key")
	}
	ts, err := strconv.ParseInt(q.Get("auth_timestamp"), 10, 64)
	if err != nil || now.Sub(time.Unix(ts, 0)).Abs() > pusherMaxSkew {
		return errors.New("pusher: auth_timestamp missing or more than 600 s off")
	}
	if q.Get("auth_version") != "1.0" {
		return errors.New("pusher: auth_version is not 1.0")
	}
	if len(body) > 0 {
		sum := md5.Sum(body) //nolint:gosec // see the import
		if !hmac.Equal([]byte(q.Get("body_md5")), []byte(hex.EncodeToString(sum[:]))) {
			return errors.New("pusher: body_md5 does not match the body")
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
	if !hmac.Equal([]byte(want), []byte(q.Get("auth_signature"))) {
		return errors.New("pusher: bad signature")
	}
	return nil
}
