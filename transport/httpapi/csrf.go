package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// Cross-site request forgery.
//
// A browser that has HTTP Basic credentials for adhocd cached sends them with
// every request to adhocd's origin, whichever page makes the request; so does
// it with credentials: "include" from a fetch in no-cors mode.
// adhocd answers no CORS preflight, so the only requests another page can
// make are the "simple" ones of the Fetch standard: GET, HEAD or POST, with
// no Content-Type or one of text/plain, application/x-www-form-urlencoded and
// multipart/form-data.
// Their answers are opaque to the page, but a POST is executed all the same.
// refuseCrossSite closes that door with two rules:
//
//  1. A POST must carry a Content-Type adhocd decodes (application/json,
//     application/xml, text/xml; the native XEP-0050 dialect is
//     application/xml too, told from the body). None of them is one a
//     simple request may carry, so a page of another origin cannot send
//     one without a preflight, which fails. `?type=` no longer stands in
//     for a missing Content-Type; it still picks the format of the answer.
//  2. A request that may change state (any method but GET, HEAD, OPTIONS)
//     is refused when the browser says it comes from another origin:
//     Sec-Fetch-Site cross-site or same-site (a sibling subdomain, another
//     port of the same host), or, from browsers too old to send
//     Sec-Fetch-*, an Origin that is neither the server's own
//     (scheme://Host of the request) nor in Config.AllowedOrigins.
//     Sec-Fetch-Site same-origin and none pass, as do requests with neither
//     header: curl, scripts, SDKs, which hold their own credentials and are
//     no confused deputy.
//
// A DELETE (or PUT, PATCH) needs no Content-Type: its method is not one of a
// simple request, so a browser sends it cross-origin only after a preflight
// that adhocd never answers (fetch in no-cors mode refuses it outright, and a
// form cannot use it). Asking for one would only break `curl -X DELETE -d`,
// whose default type is form-urlencoded. Rule 2 applies to it all the same,
// for the day a proxy in front answers preflights.
//
// AllowedOrigins is for such a deployment: a console on another origin whose
// preflights a reverse proxy answers. Its requests still carry
// application/json, so rule 1 holds for them.
//
// The checks run before authentication: a forged request is refused whether
// or not the browser attached credentials, and counts as no failed login.

// ParseOrigin checks an origin as Config.AllowedOrigins and the Origin
// header write it, scheme://host[:port] with scheme http or https and no
// path, and returns it in the form browsers send: lower case, without the
// scheme's default port.
func ParseOrigin(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is not an origin like https://admin.example.org or http://127.0.0.1:8080: %s", s, why)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", bad("it does not parse as a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", bad("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return "", bad("it has no host")
	case u.User != nil:
		return "", bad("an origin has no user name or password")
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", bad("an origin has no path, query or fragment, not even a trailing /")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", bad("it has no host")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", bad("the port must be a number from 1 to 65535")
		}
		if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
			port = ""
		}
	}
	if port != "" {
		return u.Scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	return u.Scheme + "://" + host, nil
}

// allowedOrigins reads Config.AllowedOrigins, which the caller has checked
// with ParseOrigin; an entry that does not parse is logged and ignored.
func (s *Server) allowedOrigins(origins []string) map[string]bool {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		canon, err := ParseOrigin(o)
		if err != nil {
			s.log.Error().Err(err).Msg("allowed origin ignored")
			continue
		}
		allowed[canon] = true
	}
	return allowed
}

// errCrossSite is the cause of a request refused by rule 2.
var errCrossSite = errors.New("httpapi: cross-site request")

// refuseCrossSite is middleware enforcing the two rules above on the routes
// that change state: /rest and Pusher's terminate_connections.
func (s *Server) refuseCrossSite(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c) // safe: a page of another origin cannot read the answer
		}
		if err := s.checkOrigin(c); err != nil {
			s.log.Warn().Str("remote_addr", c.RealIP()).Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID)).
				Int("http_status", http.StatusForbidden).Msg("cross-site request refused")
			return err
		}
		if r.Method == http.MethodPost {
			if err := requireBodyType(r.Header.Get(echo.HeaderContentType)); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// checkOrigin is rule 2.
func (s *Server) checkOrigin(c echo.Context) error {
	h := c.Request().Header
	origin := h.Get("Origin")
	canon, err := ParseOrigin(origin)
	allowed := err == nil && s.allowed[canon] // "null" and garbage are never allowed
	shown := strconv.Quote(origin)
	if len(origin) > 100 {
		shown = strconv.Quote(origin[:100] + "…")
	}
	switch site := strings.ToLower(strings.TrimSpace(h.Get("Sec-Fetch-Site"))); site {
	case "same-origin", "none":
		// The browser vouches for it; Host may have been rewritten by a
		// proxy, so the Origin is not compared with it.
		return nil
	case "":
		if origin == "" || allowed {
			return nil
		}
		self, selfErr := ParseOrigin(c.Scheme() + "://" + c.Request().Host)
		if selfErr == nil && canon == self {
			return nil
		}
		return &adhoc.Error{Condition: stanza.Forbidden, Err: errCrossSite,
			Text: fmt.Sprintf("This request comes from a page of %s, which is not this server's origin nor one it allows; it is refused as a possible cross-site request forgery.", shown)}
	default: // cross-site, same-site, or a value of a future standard
		if allowed {
			return nil
		}
		if origin == "" {
			shown = "another site"
		}
		return &adhoc.Error{Condition: stanza.Forbidden, Err: errCrossSite,
			Text: fmt.Sprintf("This request comes from a page of %s (Sec-Fetch-Site: %s), and the server allows no such origin; it is refused as a possible cross-site request forgery.", shown, site)}
	}
}

// requireBodyType is rule 1: the Content-Type of a POST must be one the
// codec decodes, whatever the type query parameter says.
func requireBodyType(contentType string) error {
	const accepted = "application/json or application/xml (or text/xml)"
	if strings.TrimSpace(contentType) == "" {
		return &adhoc.Error{Condition: stanza.BadRequest, Err: codec.ErrUnsupportedMediaType,
			Text: "A POST needs the Content-Type " + accepted + "; without one it is refused, as a page of another site could have sent it."}
	}
	if _, err := codec.Negotiate(contentType, "", ""); err != nil {
		mt, _, _ := strings.Cut(contentType, ";")
		mt = strings.TrimSpace(mt)
		if len(mt) > 100 {
			mt = mt[:100] + "…"
		}
		return &adhoc.Error{Condition: stanza.BadRequest, Err: codec.ErrUnsupportedMediaType,
			Text: fmt.Sprintf("The Content-Type %q is not accepted: a POST needs %s.", mt, accepted)}
	}
	return nil
}
