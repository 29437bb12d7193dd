package sessman

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

// Fields of the session commands.
const (
	fieldReason  = "reason"
	fieldSubject = "subject"
	fieldBody    = "body"
)

// endUserSession ends the sessions of accountjids and accountjid (XEP-0133
// §4.5): a bare JID every resource of the user, a full JID that resource.
// The result, built once the sessions are gone, has a Notes line per ended
// resource, or no field when none was online.
func (m *Manager) endUserSession(ctx context.Context, vals adhoc.Values) ([]adhoc.Field, error) {
	targets, err := m.accountTargets(vals, false)
	if err != nil {
		return nil, err
	}
	block, err := blockField(vals.Get(fieldBlock))
	if err != nil {
		return nil, err
	}
	if err := m.block(ctx, targets, block, vals.Get(fieldReason)); err != nil {
		return nil, err
	}
	ended, err := m.end(ctx, targets, vals.Get(fieldReason))
	if err != nil {
		return nil, err
	}
	return successNotes(ended), nil
}

// blockField parses the block field, a number of seconds from 0 to
// MaxBlock; empty is no block.
func blockField(seconds string) (time.Duration, error) {
	if seconds == "" {
		return 0, nil
	}
	maxSeconds := int(MaxBlock / time.Second)
	n, err := strconv.Atoi(seconds)
	if err != nil || n < 0 || n > maxSeconds {
		return 0, badRequest("Field %s: %q is not a number of seconds from 0 to %d.", fieldBlock, seconds, maxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}

// block refuses logins of users for d (no block when d is 0), before their
// sessions are ended so that they cannot come back, and tells
// OnAccountChange, so that cached credentials stop working too.
func (m *Manager) block(ctx context.Context, users []jid.JID, d time.Duration, reason string) error {
	if d <= 0 {
		return nil
	}
	until := time.Now().Add(d)
	for _, u := range users {
		if err := m.db.SetBlock(ctx, u.Bare(), until, reason); err != nil {
			return m.storeError(ctx, err, u)
		}
	}
	m.changed(users, "account blocked")
	return nil
}

// anyOnline selects every online user.
func anyOnline([]Conn) bool { return true }

// anyActive selects a user with a session that sent something within the
// active window.
func (m *Manager) anyActive(conns []Conn) bool {
	now := time.Now()
	for _, c := range conns {
		if now.Sub(c.LastActive()) < m.cfg.ActiveWindow {
			return true
		}
	}
	return false
}

// allIdle selects a user none of whose sessions is active: online users are
// active or idle (XEP-0133 §4.15 to §4.17).
func (m *Manager) allIdle(conns []Conn) bool { return !m.anyActive(conns) }

// countOnline counts the online users that keep selects.
func (m *Manager) countOnline(keep func([]Conn) bool) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		n := 0
		for _, u := range m.reg.Users() {
			if keep(u.Conns) {
				n++
			}
		}
		return n, nil
	}
}

// listOnline lists the bare JIDs of the online users that keep selects,
// in order.
func (m *Manager) listOnline(keep func([]Conn) bool) func(context.Context, int) ([]string, error) {
	return func(_ context.Context, limit int) ([]string, error) {
		online := m.reg.Users()
		slices.SortFunc(online, func(a, b UserConns) int { return strings.Compare(a.User, b.User) })
		var users []string
		for _, u := range online {
			if limit > 0 && len(users) == limit {
				break
			}
			if keep(u.Conns) {
				users = append(users, u.User)
			}
		}
		return users, nil
	}
}

// listResources lists the full JIDs of every bound resource.
func (m *Manager) listResources(_ context.Context, limit int) ([]string, error) {
	conns := m.reg.All()
	if limit > 0 && limit < len(conns) {
		conns = conns[:limit]
	}
	full := make([]string, len(conns))
	for i, c := range conns {
		full[i] = c.JID().String()
	}
	return full, nil
}

// userStats reports an account's online resources, with the IP address and
// login time of each in the same order (XEP-0133 §4.10).
// The server keeps no rosters, so rostersize is 0.
func (m *Manager) userStats(ctx context.Context, vals adhoc.Values) ([]adhoc.Field, error) {
	user, err := m.account(vals)
	if err != nil {
		return nil, err
	}
	if _, err := m.db.User(ctx, user); err != nil {
		return nil, m.storeError(ctx, err, user)
	}
	conns := m.reg.Resources(user)
	var resources, addrs, logins []string
	for _, c := range conns {
		resources = append(resources, c.JID().Resourcepart())
		addrs = append(addrs, ipOf(c.RemoteAddr()))
		logins = append(logins, dateTime(c.BoundAt()))
	}
	return []adhoc.Field{
		{Var: fieldAccountJID, Type: adhoc.FieldJIDSingle, Label: "The Jabber ID", Values: []string{user.String()}},
		{Var: "rostersize", Type: adhoc.FieldTextSingle, Label: "Roster size", Values: []string{"0"}},
		{Var: "onlineresources", Type: adhoc.FieldTextMulti, Label: "Online resources", Values: resources},
		{Var: "ipaddresses", Type: adhoc.FieldTextMulti, Label: "IP addresses, by resource", Values: addrs},
		{Var: "logintimes", Type: adhoc.FieldTextMulti, Label: "Login times (XEP-0082), by resource", Values: logins},
	}, nil
}

// ipOf is the host part of a remote address, or "" when there is none.
func ipOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}

// dateTime formats t in the DateTime profile of XEP-0082, in UTC.
func dateTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// announce sends a headline message from the domain to every online
// resource (XEP-0133 §4.23); the lines of body are joined with newlines.
func (m *Manager) announce(ctx context.Context, vals adhoc.Values) ([]adhoc.Field, error) {
	subject, body := vals.Get(fieldSubject), strings.Join(vals.All(fieldBody), "\n")
	conns := m.reg.All()
	sent := 0
	for _, c := range conns {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sessman: announce: %d of %d sent: %w", sent, len(conns), err)
		}
		if c.Deliver(headline(m.domain, c.JID(), subject, body)) {
			sent++
		}
	}
	m.log.Info().Str("node", AdminNS+"#announce").Msg("announcement sent")
	return notes([]string{fmt.Sprintf("Announcement sent to %d of %d online resources.", sent, len(conns))}), nil
}

// headline is a message stanza of type headline with an optional subject.
func headline(from, to jid.JID, subject, body string) []byte {
	var b bytes.Buffer
	b.WriteString(`<message xmlns='jabber:client' from='`)
	escape(&b, from.String())
	b.WriteString(`' to='`)
	escape(&b, to.String())
	b.WriteString(`' type='headline'>`)
	if subject != "" {
		b.WriteString(`<subject>`)
		escape(&b, subject)
		b.WriteString(`</subject>`)
	}
	b.WriteString(`<body>`)
	escape(&b, body)
	b.WriteString(`</body></message>`)
	return b.Bytes()
}

// escape writes s escaped for XML text and attribute values (quotes
// included).
func escape(b *bytes.Buffer, s string) {
	// Writing to a bytes.Buffer cannot fail.
	_ = xml.EscapeText(b, []byte(s))
}
