// Package codec converts the envelopes of the /rest/adhoc gateway to and from
// adhoc values, as pure functions over io.Reader and io.Writer.
//
// # Formats
//
// Three dialects are spoken:
//
//   - Tigase XML: <command><node/><fields><item><var/><value/></item></fields></command>,
//     a multi-value being <value><item>a</item><item>b</item></value>.
//   - Tigase JSON: {"command":{"node":…,"fields":[{"var":…,"value":"x" | ["a","b"]}]}}.
//   - Native XML: the <command/> element of XEP-0050 §4.1 in the
//     http://jabber.org/protocol/commands namespace, with a jabber:x:data form
//     (XEP-0004 §3) inside, answered in the same dialect.
//
// [Negotiate] picks JSON or XML from the HTTP headers; [DecodeRequest] tells
// the two XML dialects apart by the root element of the body.
// [DecodeNativeCommand] decodes the native <command/> from the tokens an
// XMPP stream reader already holds (in-band XEP-0050), with the same checks
// and errors.
//
// # Additions to Tigase's format
//
// Tigase drops what multi-stage commands need; these keys are added, and
// unknown keys are ignored:
// requests may carry sessionid and action; responses carry sessionid,
// status (when the command is part of a session or did not complete),
// actions ({"execute": default, "allowed": [...]}) and notes
// ([{"type","text"}]).
// A completed single-stage response looks exactly like Tigase's.
//
// # Errors
//
// Decoding errors are [*adhoc.Error] values with condition bad-request and a
// sentence for the requester.
// [EncodeError] writes {"error","condition","type","specific"} or the same
// as <error/> children.
//
// Output is deterministic (fixed key and attribute order, two-space
// indentation), so that golden files compare byte for byte.
package codec
