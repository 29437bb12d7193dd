package sessman

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
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
func (m *Manager) endUserSession(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	targets, err := m.accountTargets(vals, false)
	if err != nil {
		return nil, err
	}
	block, err := blockField(vals.Get(fieldBlock))
	if err != nil {
		return nil, err
	}
	res, err := m.end(ctx, session.EndRequest{Users: targets, All: true, Reason: vals.Get(fieldReason), Block: block, Caller: c})
	if err != nil {
		return nil, err
	}
	ended := make([]string, len(res.Ended))
	for i, s := range res.Ended {
		ended[i] = s.JID
	}
	return successNotes(ended), nil
}

// blockField parses the block field, a number of seconds from 0 to
// session.MaxBlock; empty is no block.
func blockField(seconds string) (time.Duration, error) {
	if seconds == "" {
		return 0, nil
	}
	maxSeconds := int(session.MaxBlock / time.Second)
	n, err := strconv.Atoi(seconds)
	if err != nil || n < 0 || n > maxSeconds {
		return 0, badRequest("Field %s: %q is not a number of seconds from 0 to %d.", fieldBlock, seconds, maxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}

// onlineUsers returns the users online that keep selects, in no order;
// keep is nil for every one, and then their activity is not looked up.
func (m *Manager) onlineUsers(ctx context.Context, c adhoc.Caller, keep func(session.OnlineUser) bool) ([]session.OnlineUser, error) {
	counts, err := m.Count(ctx, session.CountRequest{PerUser: true, Activity: keep != nil, Caller: c})
	if err != nil || keep == nil {
		return counts.Online, err
	}
	return slices.DeleteFunc(counts.Online, func(u session.OnlineUser) bool { return !keep(u) }), nil
}

// active selects a user with a session that sent something within the
// active window.
func (m *Manager) active(u session.OnlineUser) bool {
	return time.Since(u.LastActive) < m.cfg.ActiveWindow
}

// idle selects a user none of whose sessions is active: online users are
// active or idle (XEP-0133 §4.15 to §4.17).
func (m *Manager) idle(u session.OnlineUser) bool { return !m.active(u) }

// countOnline counts the online users, by the registry's numbers.
func (m *Manager) countOnline(ctx context.Context, c adhoc.Caller) (int, error) {
	counts, err := m.Count(ctx, session.CountRequest{Caller: c})
	return counts.Users, err
}

// countUsers counts the online users that keep selects.
func (m *Manager) countUsers(keep func(session.OnlineUser) bool) func(context.Context, adhoc.Caller) (int, error) {
	return func(ctx context.Context, c adhoc.Caller) (int, error) {
		users, err := m.onlineUsers(ctx, c, keep)
		return len(users), err
	}
}

// listOnline lists the bare JIDs of the online users that keep selects
// (every one for nil), in order.
func (m *Manager) listOnline(keep func(session.OnlineUser) bool) func(context.Context, adhoc.Caller, int) ([]string, error) {
	return func(ctx context.Context, c adhoc.Caller, limit int) ([]string, error) {
		online, err := m.onlineUsers(ctx, c, keep)
		if err != nil {
			return nil, err
		}
		users := make([]string, len(online))
		for i, u := range online {
			users[i] = u.User
		}
		slices.Sort(users)
		if limit > 0 && limit < len(users) {
			users = users[:limit]
		}
		return users, nil
	}
}

// listResources lists the full JIDs of every bound resource.
func (m *Manager) listResources(ctx context.Context, c adhoc.Caller, limit int) ([]string, error) {
	page, err := m.List(ctx, session.ListRequest{Limit: limit, Caller: c})
	if err != nil {
		return nil, err
	}
	full := make([]string, len(page.Items))
	for i, s := range page.Items {
		full[i] = s.JID
	}
	return full, nil
}

// userStats reports an account's online resources, with the IP address and
// login time of each in the same order (XEP-0133 §4.10), and its block:
// blockeduntil and blockreason, empty when it may log in.
// The server keeps no rosters, so rostersize is 0.
func (m *Manager) userStats(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	user, err := m.account(vals)
	if err != nil {
		return nil, err
	}
	if _, err := m.accounts.User(ctx, user); err != nil {
		return nil, m.storeError(ctx, err, user)
	}
	page, err := m.List(ctx, session.ListRequest{User: user, Caller: c})
	if err != nil {
		return nil, err
	}
	var resources, addrs, logins []string
	for _, s := range page.Items {
		resources = append(resources, s.Resource)
		addrs = append(addrs, ipOf(s.RemoteAddr))
		logins = append(logins, dateTime(s.BoundAt))
	}
	return append([]adhoc.Field{
		{Var: fieldAccountJID, Type: adhoc.FieldJIDSingle, Label: "The Jabber ID", Values: []string{user.String()}},
		{Var: "rostersize", Type: adhoc.FieldTextSingle, Label: "Roster size", Values: []string{"0"}},
		{Var: "onlineresources", Type: adhoc.FieldTextMulti, Label: "Online resources", Values: resources},
		{Var: "ipaddresses", Type: adhoc.FieldTextMulti, Label: "IP addresses, by resource", Values: addrs},
		{Var: "logintimes", Type: adhoc.FieldTextMulti, Label: "Login times (XEP-0082), by resource", Values: logins},
	}, blockStats(page.Block)...), nil
}

// ipOf is the host part of a remote address, or the address itself when it
// has no port.
func ipOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// dateTime formats t in the DateTime profile of XEP-0082, in UTC.
func dateTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// announceCommand sends a headline message from the domain to every
// online resource (XEP-0133 §4.23); the lines of body are joined with
// newlines.
func (m *Manager) announceCommand(ctx context.Context, c adhoc.Caller, vals adhoc.Values) ([]adhoc.Field, error) {
	res, err := m.announce(ctx, session.AnnounceRequest{
		Subject: vals.Get(fieldSubject), Body: strings.Join(vals.All(fieldBody), "\n"), Caller: c,
	})
	if err != nil {
		return nil, err
	}
	m.log.Info().Str("node", AdminNS+"#announce").Msg("announcement sent")
	return notes([]string{fmt.Sprintf("Announcement sent to %d of %d online resources.", res.Sent, res.Online)}), nil
}
