package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
)

// Item is one command in a listing (GET /rest/adhoc/{jid}).
type Item struct {
	JID  string `json:"jid"`
	Node string `json:"node"`
	Name string `json:"name"`
}

// NewItems lists the commands of a component as Items.
func NewItems(component jid.JID, infos []adhoc.Info) []Item {
	items := make([]Item, 0, len(infos))
	for _, info := range infos {
		items = append(items, Item{JID: component.String(), Node: info.Node, Name: info.Name})
	}
	return items
}

// EncodeResponse writes the response envelope of resp, answered by
// component, in the format f.
//
// Tigase dialects write jid, node, title and instructions of the form, and
// its fields (an empty list when there is no form); sessionid and status
// only when the response belongs to a session or did not complete, and
// actions and notes when there are any.
// A field of a multi type, or with several values, carries a JSON array;
// otherwise a string.
// In XML one value is text and several are <item>s.
// The native dialect writes the <command/> element of XEP-0050 §4.1; the
// component is not part of it.
func EncodeResponse(w io.Writer, f Format, component jid.JID, resp adhoc.Response) error {
	switch f {
	case TigaseJSON:
		return writeJSON(w, jsonResponseOf(component, resp))
	case NativeXML:
		return writeString(w, nativeResponse(resp))
	}
	return writeString(w, tigaseXMLResponse(component, resp))
}

// EncodeRequest writes the request envelope of req in the format f: the
// inverse of DecodeRequest, for clients and tests.
// Only Node, SessionID, Action, Fields (Var and Values) and, in the native
// dialect, Lang are written.
func EncodeRequest(w io.Writer, f Format, req adhoc.Request) error {
	switch f {
	case TigaseJSON:
		cmd := jsonRequestCommand{Node: req.Node, SessionID: req.SessionID, Action: string(req.Action)}
		for _, fd := range req.Fields {
			cmd.Fields = append(cmd.Fields, jsonField{Var: fd.Var, Value: jsonValue(fd.Values, false)})
		}
		return writeJSON(w, jsonRequest{Command: cmd})
	case NativeXML:
		return writeString(w, nativeRequest(req))
	}
	return writeString(w, tigaseXMLRequest(req))
}

// EncodeError writes e in the format f: in JSON
// {"error":text,"condition":…,"type":…,"specific":…}, in XML an <error/>
// element with text, condition, type and specific children (the native
// dialect uses the same XML).
// Specific is left out when empty.
// An error without text or condition gets generic ones, as adhoc.AsError
// gives them; the cause is never written.
func EncodeError(w io.Writer, f Format, e *adhoc.Error) error {
	if e == nil {
		e = adhoc.AsError(errors.New("codec: EncodeError called without an error"))
	} else {
		e = adhoc.AsError(e)
	}
	if f == TigaseJSON {
		return writeJSON(w, jsonError{
			Error:     e.Text,
			Condition: string(e.Condition),
			Type:      string(e.Type()),
			Specific:  e.Specific,
		})
	}
	var x xmlWriter
	x.open("error")
	x.text("text", e.Text)
	x.text("condition", string(e.Condition))
	x.text("type", string(e.Type()))
	if e.Specific != "" {
		x.text("specific", e.Specific)
	}
	x.close("error")
	return writeString(w, x.b.String())
}

// EncodeItems writes a command listing: {"items":[{"jid","node","name"}]}
// or <items><item><jid/><node/><name/></item></items>.
func EncodeItems(w io.Writer, f Format, items []Item) error {
	if f == TigaseJSON {
		if items == nil {
			items = []Item{}
		}
		return writeJSON(w, struct {
			Items []Item `json:"items"`
		}{items})
	}
	var x xmlWriter
	if len(items) == 0 {
		x.empty("items")
		return writeString(w, x.b.String())
	}
	x.open("items")
	for _, it := range items {
		x.open("item")
		x.text("jid", it.JID)
		x.text("node", it.Node)
		x.text("name", it.Name)
		x.close("item")
	}
	x.close("items")
	return writeString(w, x.b.String())
}

func writeString(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}

// writeJSON writes v indented by two spaces, without HTML escaping: values
// are plain text.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// status is the status a response reports; empty counts as completed.
func status(resp adhoc.Response) adhoc.Status {
	if resp.Status == "" {
		return adhoc.StatusCompleted
	}
	return resp.Status
}

// showSession reports whether a Tigase envelope carries sessionid and status:
// a completed response outside a session looks exactly like Tigase's.
func showSession(resp adhoc.Response) bool {
	return resp.SessionID != "" || status(resp) != adhoc.StatusCompleted
}

// formType is the type a form is written with.
func formType(resp adhoc.Response) string {
	if resp.Form.Type != "" {
		return resp.Form.Type
	}
	if status(resp) == adhoc.StatusExecuting {
		return adhoc.FormTypeForm
	}
	return adhoc.FormTypeResult
}

func noteType(n adhoc.Note) string {
	if n.Type == "" {
		return adhoc.NoteInfo
	}
	return n.Type
}

// arrayValue reports whether a field's values are written as a list.
func arrayValue(fd adhoc.Field) bool {
	return fd.Type.Multi() || len(fd.Values) > 1
}

// JSON

type jsonResponse struct {
	Command jsonCommand `json:"command"`
}

type jsonCommand struct {
	JID          string       `json:"jid"`
	Node         string       `json:"node"`
	SessionID    string       `json:"sessionid,omitempty"`
	Status       string       `json:"status,omitempty"`
	Title        string       `json:"title,omitempty"`
	Instructions string       `json:"instructions,omitempty"`
	Fields       []jsonField  `json:"fields"`
	Actions      *jsonActions `json:"actions,omitempty"`
	Notes        []jsonNote   `json:"notes,omitempty"`
}

type jsonField struct {
	Var      string       `json:"var,omitempty"`
	Type     string       `json:"type,omitempty"`
	Label    string       `json:"label,omitempty"`
	Desc     string       `json:"desc,omitempty"`
	Required bool         `json:"required,omitempty"`
	Value    any          `json:"value,omitempty"` // string or []string
	Options  []jsonOption `json:"options,omitempty"`
}

type jsonOption struct {
	Label string `json:"label,omitempty"`
	Value string `json:"value"`
}

type jsonActions struct {
	Execute string   `json:"execute,omitempty"`
	Allowed []string `json:"allowed"`
}

type jsonNote struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type jsonError struct {
	Error     string `json:"error"`
	Condition string `json:"condition"`
	Type      string `json:"type"`
	Specific  string `json:"specific,omitempty"`
}

type jsonRequest struct {
	Command jsonRequestCommand `json:"command"`
}

type jsonRequestCommand struct {
	Node      string      `json:"node"`
	SessionID string      `json:"sessionid,omitempty"`
	Action    string      `json:"action,omitempty"`
	Fields    []jsonField `json:"fields,omitempty"`
}

// jsonValue is nil (left out) without values, a string for one value of a
// single-value field, an array otherwise.
func jsonValue(values []string, multi bool) any {
	switch {
	case len(values) == 0:
		return nil
	case len(values) == 1 && !multi:
		return values[0]
	}
	return values
}

func jsonResponseOf(component jid.JID, resp adhoc.Response) jsonResponse {
	cmd := jsonCommand{JID: component.String(), Node: resp.Node, Fields: []jsonField{}}
	if showSession(resp) {
		cmd.SessionID = resp.SessionID
		cmd.Status = string(status(resp))
	}
	if resp.Form != nil {
		cmd.Title = resp.Form.Title
		cmd.Instructions = resp.Form.Instructions
		for _, fd := range resp.Form.Fields {
			jf := jsonField{
				Var:      fd.Var,
				Type:     string(fd.Type),
				Label:    fd.Label,
				Desc:     fd.Desc,
				Required: fd.Required,
				Value:    jsonValue(fd.Values, arrayValue(fd)),
			}
			for _, o := range fd.Options {
				jf.Options = append(jf.Options, jsonOption(o))
			}
			cmd.Fields = append(cmd.Fields, jf)
		}
	}
	if len(resp.Actions) > 0 || resp.Default != "" {
		a := &jsonActions{Execute: string(resp.Default), Allowed: []string{}}
		for _, act := range resp.Actions {
			a.Allowed = append(a.Allowed, string(act))
		}
		cmd.Actions = a
	}
	for _, n := range resp.Notes {
		cmd.Notes = append(cmd.Notes, jsonNote{Type: noteType(n), Text: n.Text})
	}
	return jsonResponse{Command: cmd}
}

// Tigase XML

func tigaseXMLResponse(component jid.JID, resp adhoc.Response) string {
	var x xmlWriter
	x.open("command")
	x.text("jid", component.String())
	x.text("node", resp.Node)
	if showSession(resp) {
		if resp.SessionID != "" {
			x.text("sessionid", resp.SessionID)
		}
		x.text("status", string(status(resp)))
	}
	var fields []adhoc.Field
	if resp.Form != nil {
		if resp.Form.Title != "" {
			x.text("title", resp.Form.Title)
		}
		if resp.Form.Instructions != "" {
			x.text("instructions", resp.Form.Instructions)
		}
		fields = resp.Form.Fields
	}
	if len(fields) == 0 {
		x.empty("fields")
	} else {
		x.open("fields")
		for _, fd := range fields {
			x.open("item")
			if fd.Var != "" {
				x.text("var", fd.Var)
			}
			if fd.Type != "" {
				x.text("type", string(fd.Type))
			}
			if fd.Label != "" {
				x.text("label", fd.Label)
			}
			if fd.Desc != "" {
				x.text("desc", fd.Desc)
			}
			if fd.Required {
				x.text("required", "true")
			}
			tigaseXMLValues(&x, fd.Values)
			if len(fd.Options) > 0 {
				x.open("options")
				for _, o := range fd.Options {
					x.open("item")
					if o.Label != "" {
						x.text("label", o.Label)
					}
					x.text("value", o.Value)
					x.close("item")
				}
				x.close("options")
			}
			x.close("item")
		}
		x.close("fields")
	}
	if len(resp.Actions) > 0 || resp.Default != "" {
		x.open("actions")
		if resp.Default != "" {
			x.text("execute", string(resp.Default))
		}
		if len(resp.Actions) == 0 {
			x.empty("allowed")
		} else {
			x.open("allowed")
			for _, a := range resp.Actions {
				x.text("item", string(a))
			}
			x.close("allowed")
		}
		x.close("actions")
	}
	if len(resp.Notes) > 0 {
		x.open("notes")
		for _, n := range resp.Notes {
			x.open("item")
			x.text("type", noteType(n))
			x.text("text", n.Text)
			x.close("item")
		}
		x.close("notes")
	}
	x.close("command")
	return x.b.String()
}

// tigaseXMLValues writes one value as text, several as <item>s.
func tigaseXMLValues(x *xmlWriter, values []string) {
	switch len(values) {
	case 0:
	case 1:
		x.text("value", values[0])
	default:
		x.open("value")
		for _, v := range values {
			x.text("item", v)
		}
		x.close("value")
	}
}

func tigaseXMLRequest(req adhoc.Request) string {
	var x xmlWriter
	x.open("command")
	x.text("node", req.Node)
	if req.SessionID != "" {
		x.text("sessionid", req.SessionID)
	}
	if req.Action != "" {
		x.text("action", string(req.Action))
	}
	if len(req.Fields) > 0 {
		x.open("fields")
		for _, fd := range req.Fields {
			x.open("item")
			x.text("var", fd.Var)
			tigaseXMLValues(&x, fd.Values)
			x.close("item")
		}
		x.close("fields")
	}
	x.close("command")
	return x.b.String()
}

// Native XML

func nativeResponse(resp adhoc.Response) string {
	var x xmlWriter
	attrs := []string{"xmlns", adhoc.NS, "node", resp.Node, "sessionid", resp.SessionID, "status", string(status(resp))}
	if len(resp.Actions) == 0 && resp.Default == "" && len(resp.Notes) == 0 && resp.Form == nil {
		x.empty("command", attrs...)
		return x.b.String()
	}
	x.open("command", attrs...)
	switch {
	case len(resp.Actions) > 0:
		x.open("actions", "execute", string(resp.Default))
		for _, a := range resp.Actions {
			x.empty(string(a))
		}
		x.close("actions")
	case resp.Default != "":
		x.empty("actions", "execute", string(resp.Default))
	}
	for _, n := range resp.Notes {
		x.text("note", n.Text, "type", noteType(n))
	}
	if f := resp.Form; f != nil {
		formAttrs := []string{"xmlns", NSData, "type", formType(resp)}
		if f.Title == "" && f.Instructions == "" && len(f.Fields) == 0 {
			x.empty("x", formAttrs...)
		} else {
			x.open("x", formAttrs...)
			if f.Title != "" {
				x.text("title", f.Title)
			}
			if f.Instructions != "" {
				x.text("instructions", f.Instructions)
			}
			for _, fd := range f.Fields {
				writeNativeField(&x, fd, "var", fd.Var, "type", string(fd.Type), "label", fd.Label)
			}
			x.close("x")
		}
	}
	x.close("command")
	return x.b.String()
}

// writeNativeField writes a <field/> of XEP-0004 §3.2.
func writeNativeField(x *xmlWriter, fd adhoc.Field, attrs ...string) {
	if fd.Desc == "" && !fd.Required && len(fd.Values) == 0 && len(fd.Options) == 0 {
		x.empty("field", attrs...)
		return
	}
	x.open("field", attrs...)
	if fd.Desc != "" {
		x.text("desc", fd.Desc)
	}
	if fd.Required {
		x.empty("required")
	}
	for _, v := range fd.Values {
		x.text("value", v)
	}
	for _, o := range fd.Options {
		x.open("option", "label", o.Label)
		x.text("value", o.Value)
		x.close("option")
	}
	x.close("field")
}

func nativeRequest(req adhoc.Request) string {
	var x xmlWriter
	attrs := []string{"xmlns", adhoc.NS, "node", req.Node, "sessionid", req.SessionID, "action", string(req.Action), "xml:lang", req.Lang}
	if len(req.Fields) == 0 {
		x.empty("command", attrs...)
		return x.b.String()
	}
	x.open("command", attrs...)
	x.open("x", "xmlns", NSData, "type", adhoc.FormTypeSubmit)
	for _, fd := range req.Fields {
		writeNativeField(&x, adhoc.Field{Var: fd.Var, Values: fd.Values}, "var", fd.Var)
	}
	x.close("x")
	x.close("command")
	return x.b.String()
}
