package c2s

import (
	"bytes"
	"context"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

// Commands is the ad-hoc command registry as the listener uses it for
// XEP-0050 in-band. *adhoc.Registry implements it; the HTTP gateway uses the
// same registry.
type Commands interface {
	Commands(component jid.JID, caller adhoc.Caller) ([]adhoc.Info, error)
	Execute(ctx context.Context, req adhoc.Request) (adhoc.Response, error)
}

// isComponent reports whether addr is a bare JID that holds ad-hoc commands
// (the domain itself, sess-man@domain).
func (s *Server) isComponent(addr jid.JID) bool {
	if s.commands == nil || addr.Resourcepart() != "" {
		return false
	}
	_, err := s.commands.Commands(addr, adhoc.Caller{JID: addr})
	return err == nil
}

// commandItems answers a disco#items request for the commands node
// (XEP-0050 §2.2) with the commands the requester may run.
// It runs on the read loop, so the admin lookup has the command deadline.
func (c *conn) commandItems(iq element, component jid.JID) {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.CommandTimeout)
	defer cancel()
	who, err := c.srv.accounts.Caller(ctx, c.addr, adhoc.AuthXMPP)
	if err != nil {
		c.log.Error().Err(err).Msg("admin lookup failed")
		who = adhoc.Caller{JID: c.addr, Auth: adhoc.AuthXMPP} // lists what anyone may run
	}
	infos, _ := c.srv.commands.Commands(component, who) // a component here
	c.replyResult(iq, func(w *xmlWriter) {
		w.start("query", "xmlns", nsDiscoIts, "node", adhoc.NS)
		w.content() // no commands is <query ...></query>, as before
		for _, info := range infos {
			w.empty("item", "jid", component.String(), "node", info.Node, "name", info.Name)
		}
		w.end("query")
	})
}

// maxCommandsPerClient is how many in-band commands one client may have
// running at once; each runs in a goroutine until the command deadline.
const maxCommandsPerClient = 4

// errTooManyCommands answers a command past maxCommandsPerClient.
var errTooManyCommands = &adhoc.Error{Condition: stanza.ResourceConstraint,
	Text: fmt.Sprintf("You have %d commands running; wait for one to finish.", maxCommandsPerClient)}

// executeCommand runs a XEP-0050 command IQ in its own goroutine: a command
// may end the requester's own session, whose read loop must keep running
// for that to finish. Any client may send command IQs (the admin check runs
// in the goroutine), so the goroutines of one client are bounded.
func (c *conn) executeCommand(iq, payload element, component jid.JID) {
	req, err := codec.DecodeNativeCommand(payload.reader())
	if err != nil {
		c.replyCommandError(iq, adhoc.AsError(err))
		return
	}
	if c.commandSlots == nil {
		c.commandSlots = make(chan struct{}, maxCommandsPerClient)
	}
	select {
	case c.commandSlots <- struct{}{}:
	default:
		c.replyCommandError(iq, errTooManyCommands)
		return
	}
	slots := c.commandSlots
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.CommandTimeout)
		defer cancel()
		who, err := c.srv.accounts.Caller(ctx, c.addr, adhoc.AuthXMPP)
		if err != nil {
			c.log.Error().Err(err).Msg("admin lookup failed")
			c.replyCommandError(iq, adhoc.AsError(err))
			return
		}
		who.RemoteAddr, who.RequestID = c.remote.String(), iq.attr("id")
		req.To, req.Caller = component, who
		resp, err := c.srv.commands.Execute(ctx, req)
		if err != nil {
			e := adhoc.AsError(err)
			// Our fault, or a server that cannot serve (a full disk);
			// a service-unavailable without a cause hides an account.
			if e.Condition == stanza.InternalServerError || e.Condition == stanza.ServiceUnavailable && e.Err != nil {
				c.log.Error().Err(err).Str("node", req.Node).Msg("command failed")
			}
			c.replyCommandError(iq, e)
			return
		}
		var b bytes.Buffer
		if err := codec.EncodeResponse(&b, codec.NativeXML, component, resp); err != nil {
			c.replyCommandError(iq, adhoc.AsError(err))
			return
		}
		c.replyResult(iq, func(w *xmlWriter) { w.raw(b.Bytes()) })
	}()
}

// replyCommandError answers with the stanza error of e and, when it has
// one, its XEP-0050 specific condition.
func (c *conn) replyCommandError(iq element, e *adhoc.Error) {
	c.out.send(stanzaError(iq, c.addr.String(), string(e.Type()), string(e.Condition), e.Text, e.Specific))
}
