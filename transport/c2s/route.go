package c2s

import (
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
)

// readLoop handles stanzas until the stream ends.
func (c *conn) readLoop() error {
	for {
		el, err := c.readElement()
		if err != nil {
			return err
		}
		if c.out.isClosing() {
			continue // being ended: what the client still sends is dropped
		}
		if el.name().Space != nsClient {
			return newStreamErr("unsupported-stanza-type", "Only message, presence and iq stanzas are accepted.")
		}
		switch el.name().Local {
		case "iq":
			c.handleIQ(el)
		case "message":
			c.handleMessage(el)
		case "presence":
			c.handlePresence(el)
		default:
			return newStreamErr("unsupported-stanza-type", "Only message, presence and iq stanzas are accepted.")
		}
	}
}

// destination parses a stanza's to address. A stanza without one is
// addressed to the sender's own account (RFC 6120 §10.3). It replies with a
// stanza error and reports false when the address is unusable.
func (c *conn) destination(el element) (jid.JID, bool) {
	to := el.attr("to")
	if to == "" {
		return c.addr.Bare(), true
	}
	dst, err := jid.Parse(to)
	if err != nil {
		c.replyError(el, "modify", "jid-malformed", "The 'to' address is not a valid JID.")
		return jid.JID{}, false
	}
	if dst.Domainpart() != c.srv.cfg.Domain {
		c.replyError(el, "cancel", "remote-server-not-found", "This server does not federate; only "+c.srv.cfg.Domain+" is reachable.")
		return jid.JID{}, false
	}
	return dst, true
}

func (c *conn) handleIQ(el element) {
	typ := el.attr("type")
	request := typ == "get" || typ == "set"
	if !request && typ != "result" && typ != "error" {
		c.replyError(el, "modify", "bad-request", "An iq needs a type of get, set, result or error.")
		return
	}
	payload, hasPayload := el.child()
	if request && (!hasPayload || len(el.children()) != 1 || el.attr("id") == "") {
		c.replyError(el, "modify", "bad-request", "An iq get or set needs an id and exactly one child element.")
		return
	}
	dst, ok := c.destination(el)
	if !ok {
		return
	}
	switch {
	case dst.Resourcepart() != "":
		if target, ok := c.srv.reg.Lookup(dst); ok {
			target.Deliver(el.stamped(c.addr.String(), "").marshal())
		} else if request {
			c.replyError(el, "cancel", "service-unavailable", "")
		}
	case !request:
		// Results and errors for the server or an account: answers to our
		// keepalive pings, nothing to route.
	case payload.is(adhoc.NS, "command") && c.srv.isComponent(dst):
		if typ != "set" {
			c.replyError(el, "modify", "bad-request", "A command is executed with an iq of type set.")
			return
		}
		c.executeCommand(el, payload, dst)
	case typ == "get" && payload.is(nsDiscoIts, "query") && payload.attr("node") == adhoc.NS && c.srv.isComponent(dst):
		c.commandItems(el, dst)
	case dst.Localpart() == "" || dst.Equal(c.addr.Bare()):
		c.handleServerIQ(el, payload, dst)
	default:
		c.replyError(el, "cancel", "service-unavailable", "")
	}
}

// handleServerIQ answers what the server and the user's own account answer
// for: ping, disco, the (empty) roster, session establishment.
func (c *conn) handleServerIQ(el, payload element, dst jid.JID) {
	typ := el.attr("type")
	ns := payload.name().Space
	switch {
	case typ == "get" && payload.is(nsPing, "ping"):
		c.replyResult(el, nil)
	case typ == "set" && payload.is(nsSession, "session"):
		c.replyResult(el, nil)
	case typ == "get" && payload.is(nsRoster, "query"):
		c.replyResult(el, func(w *xmlWriter) { w.empty("query", "xmlns", nsRoster) })
	case typ == "get" && payload.is(nsDiscoInf, "query") && dst.Localpart() == "":
		if payload.attr("node") != "" {
			c.replyError(el, "cancel", "item-not-found", "")
			return
		}
		c.replyResult(el, func(w *xmlWriter) {
			w.start("query", "xmlns", nsDiscoInf)
			w.empty("identity", "category", "server", "type", "im", "name", "adhocd")
			for _, f := range []string{nsDiscoInf, nsDiscoIts, nsPing, adhoc.NS} {
				w.empty("feature", "var", f)
			}
			w.end("query")
		})
	case typ == "get" && payload.is(nsDiscoIts, "query") && dst.Localpart() == "":
		c.replyResult(el, func(w *xmlWriter) { w.empty("query", "xmlns", nsDiscoIts) })
	case ns == nsRoster:
		c.replyError(el, "cancel", "feature-not-implemented", "This server does not store rosters.")
	default:
		c.replyError(el, "cancel", "service-unavailable", "")
	}
}

func (c *conn) handleMessage(el element) {
	dst, ok := c.destination(el)
	if !ok {
		return
	}
	typ := el.attr("type")
	if dst.Localpart() == "" {
		if typ != "error" {
			c.replyError(el, "cancel", "service-unavailable", "The server does not take messages.")
		}
		return
	}
	b := el.stamped(c.addr.String(), "").marshal()
	if dst.Resourcepart() != "" {
		if target, ok := c.srv.reg.Lookup(dst); ok {
			target.Deliver(b)
			return
		}
		if typ != "" && typ != "normal" && typ != "chat" {
			if typ == "groupchat" {
				c.replyError(el, "cancel", "service-unavailable", "")
			}
			return // headline and error to an offline resource are dropped (RFC 6121 §8.5.3.2)
		}
	}
	// To a bare JID, or a chat to a resource that is gone: the user's
	// available resources, or every bound one if none has sent presence.
	targets := c.srv.reg.Resources(dst)
	available := targets[:0:0]
	for _, t := range targets {
		if t.Presence() != "unavailable" {
			available = append(available, t)
		}
	}
	if len(available) > 0 {
		targets = available
	}
	for _, t := range targets {
		t.Deliver(b)
	}
	if len(targets) == 0 && (typ == "" || typ == "normal" || typ == "chat") {
		c.replyError(el, "cancel", "service-unavailable", "")
	}
}

func (c *conn) handlePresence(el element) {
	typ := el.attr("type")
	if el.attr("to") == "" {
		// Broadcast presence (RFC 6121 §4.2): track it and tell the user's
		// other resources; with no roster there are no contacts to tell.
		switch typ {
		case "":
			show := "available"
			for _, ch := range el.children() {
				if ch.is(nsClient, "show") {
					switch s := strings.TrimSpace(ch.text()); s {
					case "away", "chat", "dnd", "xa":
						show = s
					}
				}
			}
			c.setPresence(show)
		case "unavailable":
			c.setPresence("unavailable")
		default:
			return
		}
		b := el.stamped(c.addr.String(), c.addr.Bare().String()).marshal()
		for _, t := range c.srv.reg.Resources(c.addr) {
			if t != session.Conn(c) {
				t.Deliver(b)
			}
		}
		return
	}
	dst, ok := c.destination(el)
	if !ok || dst.Localpart() == "" {
		return
	}
	b := el.stamped(c.addr.String(), "").marshal()
	if dst.Resourcepart() != "" {
		if target, ok := c.srv.reg.Lookup(dst); ok {
			target.Deliver(b)
		}
		return // presence to a resource that is gone is dropped
	}
	for _, t := range c.srv.reg.Resources(dst) {
		t.Deliver(b)
	}
}

// broadcastUnavailable tells a user's other resources that c went offline.
func (s *Server) broadcastUnavailable(c *conn) {
	var w xmlWriter
	w.empty("presence", "xmlns", nsClient, "type", "unavailable", "from", c.addr.String(), "to", c.addr.Bare().String())
	for _, t := range s.reg.Resources(c.addr) {
		t.Deliver(w.bytes())
	}
}

// replyResult answers an iq with a result; payload, if not nil, writes its
// content. An empty result is <iq ...></iq>, as clients match "</iq>".
func (c *conn) replyResult(iq element, payload func(w *xmlWriter)) {
	var w xmlWriter
	w.start("iq", "xmlns", nsClient, "type", "result", "id", iq.attr("id"), "to", c.addr.String())
	w.optAttr("from", iq.attr("to"))
	w.content()
	if payload != nil {
		payload(&w)
	}
	w.end("iq")
	c.out.send(w.bytes())
}

// replyError answers a stanza with a stanza error (RFC 6120 §8.3). Errors
// are never answered with errors.
func (c *conn) replyError(el element, typ, condition, text string) {
	if el.attr("type") == "error" {
		return
	}
	c.out.send(stanzaError(el, c.addr.String(), typ, condition, text, ""))
}

// stanzaError builds the error reply to el, addressed to "to" (if not
// empty). specific, if not empty, is an XEP-0050 condition element after
// the text (RFC 6120 §8.3.2).
func stanzaError(el element, to, typ, condition, text, specific string) []byte {
	name := el.name().Local
	var w xmlWriter
	w.start(name, "xmlns", nsClient, "type", "error")
	w.optAttr("id", el.attr("id"))
	w.optAttr("from", el.attr("to"))
	w.optAttr("to", to)
	w.start("error", "type", typ)
	w.empty(condition, "xmlns", nsStanzas)
	if text != "" {
		w.elem("text", text, "xmlns", nsStanzas, "xml:lang", "en")
	}
	if specific != "" {
		w.empty(specific, "xmlns", adhoc.NS)
	}
	w.end("error")
	w.end(name)
	return w.bytes()
}

// pingRequest is the XEP-0199 keepalive the server sends an idle client.
func pingRequest(domain, to, id string) []byte {
	var w xmlWriter
	w.start("iq", "xmlns", nsClient, "type", "get", "id", "ping-"+id, "from", domain, "to", to)
	w.empty("ping", "xmlns", nsPing)
	w.end("iq")
	return w.bytes()
}

// message encodes a message from the server.
func message(m session.Message) []byte {
	var w xmlWriter
	w.start("message", "xmlns", nsClient, "from", m.From.String(), "to", m.To.String())
	w.optAttr("type", m.Type)
	if m.Subject != "" {
		w.elem("subject", m.Subject)
	}
	w.elem("body", m.Body)
	w.end("message")
	return w.bytes()
}
