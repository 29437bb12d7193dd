package codec

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

// MaxFields is the most fields a decoded request may carry.
// Each field carries at most adhoc.MaxFieldValues values.
const MaxFields = 1000

// NSData is the XML namespace of XEP-0004 data forms.
const NSData = "jabber:x:data"

// DecodeRequest reads a request envelope in the format f and returns the
// request and the dialect it was written in: TigaseJSON for f TigaseJSON,
// and for the XML formats NativeXML when the root element is in the
// http://jabber.org/protocol/commands namespace, TigaseXML otherwise.
//
// It sets Node, SessionID, Action, Fields (Var and Values only) and, for the
// native dialect, Lang; To, From and Admin are the caller's.
// Node, sessionid, action and var are trimmed of surrounding white space;
// values are kept as sent.
// Unknown elements and keys are ignored.
//
// Errors are *adhoc.Error values with condition bad-request: a body that is
// empty, not well-formed, has a DTD or data after the envelope, an envelope
// without node, a field without var, a value of the wrong JSON type, more
// than MaxFields fields or adhoc.MaxFieldValues values in a field; an
// unknown action matches adhoc.ErrMalformedAction.
// The reader is not limited: the caller bounds the body size.
// A successful decode has read r to io.EOF; an error reading r is kept as
// the Err of the *adhoc.Error, for errors.As.
func DecodeRequest(r io.Reader, f Format) (adhoc.Request, Format, error) {
	if f == TigaseJSON {
		req, err := decodeJSON(r)
		return req, TigaseJSON, err
	}
	return decodeXML(r)
}

func badRequest(format string, args ...any) *adhoc.Error {
	return &adhoc.Error{Condition: stanza.BadRequest, Text: fmt.Sprintf(format, args...)}
}

// finish checks and normalises what every dialect decoded.
func finish(node, sessionID, action string, fields []adhoc.Field) (adhoc.Request, error) {
	req := adhoc.Request{
		Node:      strings.TrimSpace(node),
		SessionID: strings.TrimSpace(sessionID),
	}
	if req.Node == "" {
		return adhoc.Request{}, badRequest("The command envelope has no node.")
	}
	a, err := adhoc.ParseAction(strings.TrimSpace(action))
	if err != nil {
		return adhoc.Request{}, err
	}
	req.Action = a
	if len(fields) > MaxFields {
		return adhoc.Request{}, badRequest("The command has more than %d fields.", MaxFields)
	}
	for i := range fields {
		fields[i].Var = strings.TrimSpace(fields[i].Var)
		if fields[i].Var == "" {
			return adhoc.Request{}, badRequest("Field %d has no var.", i+1)
		}
		if len(fields[i].Values) > adhoc.MaxFieldValues {
			return adhoc.Request{}, badRequest("Field %s has more than %d values.", fields[i].Var, adhoc.MaxFieldValues)
		}
		if len(fields[i].Values) == 0 {
			fields[i].Values = nil
		}
	}
	if len(fields) > 0 {
		req.Fields = fields
	}
	return req, nil
}

// XML

type tigaseXMLCommand struct {
	Node      string          `xml:"node"`
	SessionID string          `xml:"sessionid"`
	Action    string          `xml:"action"`
	Fields    []tigaseXMLItem `xml:"fields>item"`
}

type tigaseXMLItem struct {
	Var    string           `xml:"var"`
	Values []tigaseXMLValue `xml:"value"`
}

// tigaseXMLValue is <value>x</value> or <value><item>a</item>…</value>.
type tigaseXMLValue struct {
	Text  string   `xml:",chardata"`
	Items []string `xml:"item"`
}

type nativeCommand struct {
	Node      string       `xml:"node,attr"`
	SessionID string       `xml:"sessionid,attr"`
	Action    string       `xml:"action,attr"`
	Lang      string       `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Forms     []nativeForm `xml:"jabber:x:data x"`
}

type nativeForm struct {
	Fields []nativeField `xml:"field"`
}

type nativeField struct {
	Var    string   `xml:"var,attr"`
	Values []string `xml:"value"`
}

var errDTD = badRequest("The request body has a document type declaration; DTDs are not allowed.")

func xmlError(err error) error {
	var e *adhoc.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &adhoc.Error{Condition: stanza.BadRequest, Text: "The request body is not well-formed XML: it ends too early.", Err: err}
	}
	return &adhoc.Error{
		Condition: stanza.BadRequest,
		Text:      "The request body is not well-formed XML: " + strings.TrimSuffix(err.Error(), ".") + ".",
		Err:       err,
	}
}

func decodeXML(r io.Reader) (adhoc.Request, Format, error) {
	in := newTokenBytes(r)
	raw := xml.NewDecoder(in)
	d := xml.NewTokenDecoder(&guard{tr: raw, in: in, offset: raw.InputOffset})
	start, err := rootElement(d)
	if err != nil {
		return adhoc.Request{}, TigaseXML, err
	}
	if start.Name.Local != "command" {
		return adhoc.Request{}, TigaseXML, badRequest("The root element must be command, not %s.", start.Name.Local)
	}
	var req adhoc.Request
	format := TigaseXML
	if start.Name.Space == adhoc.NS {
		format = NativeXML
		req, err = decodeNative(d, start)
	} else {
		req, err = decodeTigaseXML(d, start)
	}
	if err == nil {
		err = afterRoot(d)
	}
	if err != nil {
		return adhoc.Request{}, format, err
	}
	return req, format, nil
}

// DecodeNativeCommand decodes a XEP-0050 <command/> element from tokens
// that were already read, such as an XMPP stream reader holds: tr returns
// the command's start element first (white space, comments and processing
// instructions may come before it) and io.EOF after its end element.
// Names must be resolved to namespaces, as xml.Decoder.Token does.
//
// It returns what DecodeRequest returns for the same element as a body in
// the native dialect, with the same errors; a root element other than
// command in the commands namespace is a bad-request too.
func DecodeNativeCommand(tr xml.TokenReader) (adhoc.Request, error) {
	d := xml.NewTokenDecoder(&guard{tr: tr})
	start, err := rootElement(d)
	if err != nil {
		return adhoc.Request{}, err
	}
	if start.Name.Space != adhoc.NS || start.Name.Local != "command" {
		return adhoc.Request{}, badRequest("The root element must be command in the namespace %s, not %s.", adhoc.NS, start.Name.Local)
	}
	req, err := decodeNative(d, start)
	if err == nil {
		err = afterRoot(d)
	}
	if err != nil {
		return adhoc.Request{}, err
	}
	return req, nil
}

// rootElement reads up to the root element and returns its start.
func rootElement(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, badRequest("The request body is empty.")
		}
		if err != nil {
			return xml.StartElement{}, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if text := bytes.TrimSpace(t); len(text) > 0 {
				if text[0] == '{' || text[0] == '[' {
					return xml.StartElement{}, badRequest("The request body is not XML; JSON needs the Content-Type application/json.")
				}
				return xml.StartElement{}, badRequest("The request body has text before the root element.")
			}
		}
	}
}

// decodeNative decodes the native dialect's <command/>, whose start d has
// just returned.
func decodeNative(d *xml.Decoder, start xml.StartElement) (adhoc.Request, error) {
	var cmd nativeCommand
	if err := d.DecodeElement(&cmd, &start); err != nil {
		return adhoc.Request{}, xmlError(err)
	}
	var fields []adhoc.Field
	if len(cmd.Forms) > 0 {
		for _, nf := range cmd.Forms[0].Fields {
			fields = append(fields, adhoc.Field{Var: nf.Var, Values: nf.Values})
		}
	}
	req, err := finish(cmd.Node, cmd.SessionID, cmd.Action, fields)
	if err != nil {
		return adhoc.Request{}, err
	}
	req.Lang = strings.TrimSpace(cmd.Lang)
	return req, nil
}

// decodeTigaseXML decodes Tigase's <command/>, whose start d has just
// returned.
func decodeTigaseXML(d *xml.Decoder, start xml.StartElement) (adhoc.Request, error) {
	var cmd tigaseXMLCommand
	if err := d.DecodeElement(&cmd, &start); err != nil {
		return adhoc.Request{}, xmlError(err)
	}
	fields := make([]adhoc.Field, 0, len(cmd.Fields))
	for _, item := range cmd.Fields {
		var values []string
		for _, v := range item.Values {
			if len(v.Items) > 0 {
				values = append(values, v.Items...)
			} else {
				values = append(values, v.Text)
			}
			if len(values) > adhoc.MaxFieldValues {
				break // finish reports it
			}
		}
		fields = append(fields, adhoc.Field{Var: item.Var, Values: values})
	}
	return finish(cmd.Node, cmd.SessionID, cmd.Action, fields)
}

// afterRoot checks that nothing but white space, comments and processing
// instructions follows the root element.
func afterRoot(d *xml.Decoder) error {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return badRequest("The request body has more than one root element.")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return badRequest("The request body has text after the root element.")
			}
		}
	}
}

// JSON

// decodeJSON parses the body once into generic values and then checks their
// shape: parsing each level again into its own type cost several passes.
func decodeJSON(r io.Reader) (adhoc.Request, error) {
	in := &jsonBytes{r: &utf8Reader{r: r}}
	dec := json.NewDecoder(in)
	dec.UseNumber() // a number is a wrong type below, never a float overflow here
	p := jsonParser{dec: dec, in: in}
	top, err := p.value(0)
	if err != nil {
		var e *adhoc.Error
		if errors.As(err, &e) && e.Err == nil {
			return adhoc.Request{}, e
		}
		if err == io.EOF {
			return adhoc.Request{}, badRequest("The request body is empty.")
		}
		return adhoc.Request{}, jsonSyntaxError(err, dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		// err is kept: a body over the caller's limit fails here, and the
		// caller tells that apart by it.
		return adhoc.Request{}, &adhoc.Error{Condition: stanza.BadRequest, Text: "The request body has data after the JSON object.", Err: err}
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return adhoc.Request{}, badRequest(`The request body must be a JSON object with a "command" object.`)
	}
	cmd, ok := obj["command"].(map[string]any)
	if !ok {
		return adhoc.Request{}, badRequest(`The request body must be a JSON object with a "command" object.`)
	}
	node, err := optString(cmd, "node", "The node must be a string.")
	if err != nil {
		return adhoc.Request{}, err
	}
	sessionID, err := optString(cmd, "sessionid", "The sessionid must be a string.")
	if err != nil {
		return adhoc.Request{}, err
	}
	action, err := optString(cmd, "action", "The action must be a string.")
	if err != nil {
		return adhoc.Request{}, err
	}

	var fields []adhoc.Field
	if raw := cmd["fields"]; raw != nil {
		items, ok := raw.([]any)
		if !ok {
			return adhoc.Request{}, badRequest("The fields must be an array.")
		}
		for i, item := range items {
			fd, err := decodeJSONField(i, item)
			if err != nil {
				return adhoc.Request{}, err
			}
			fields = append(fields, fd)
		}
	}
	return finish(node, sessionID, action, fields)
}

func decodeJSONField(i int, item any) (adhoc.Field, error) {
	obj, ok := item.(map[string]any)
	if !ok {
		return adhoc.Field{}, badRequest("Field %d must be an object.", i+1)
	}
	name, err := optString(obj, "var", fmt.Sprintf("Field %d: var must be a string.", i+1))
	if err != nil {
		return adhoc.Field{}, err
	}
	name = strings.TrimSpace(name)
	fd := adhoc.Field{Var: name}
	switch v := obj["value"].(type) {
	case nil:
		return fd, nil
	case string:
		fd.Values = []string{v}
		return fd, nil
	case []any:
		for _, el := range v {
			s, ok := el.(string)
			if !ok {
				return adhoc.Field{}, badRequest("Field %s: value must be a string or an array of strings.", name)
			}
			fd.Values = append(fd.Values, s)
		}
		return fd, nil
	default:
		return adhoc.Field{}, badRequest("Field %s: value must be a string or an array of strings.", name)
	}
}

// optString reads an optional string key; null counts as absent.
func optString(obj map[string]any, key, wrongType string) (string, error) {
	switch v := obj[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", badRequest("%s", wrongType)
	}
}

// jsonParser reads a JSON value token by token into the values
// json.Unmarshal gives an any, within MaxDepth, MaxJSONValues and
// MaxTextBytes: json.Decoder.Decode holds the whole value, and a map of
// every member, before anything can be checked.
type jsonParser struct {
	dec    *json.Decoder
	in     *jsonBytes
	values int
}

// value reads the next value, whose container is at depth.
func (p *jsonParser) value(depth int) (any, error) {
	tok, err := p.token(depth)
	if err != nil {
		return nil, err
	}
	return p.rest(tok, depth)
}

// token reads the next token inside a container at depth; the end of the
// input inside one is unexpected.
func (p *jsonParser) token(depth int) (json.Token, error) {
	p.in.mark(p.dec.InputOffset())
	tok, err := p.dec.Token()
	if err == io.EOF && depth > 0 {
		err = io.ErrUnexpectedEOF
	}
	return tok, err
}

// rest reads what follows tok in the value tok starts.
func (p *jsonParser) rest(tok json.Token, depth int) (any, error) {
	p.values++
	if p.values > MaxJSONValues {
		return nil, errTooManyValues
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxDepth {
			return nil, errTooDeep
		}
		if t == '{' {
			return p.object(depth + 1)
		}
		return p.array(depth + 1)
	case string:
		if len(t) > MaxTextBytes {
			return nil, errStringTooLong
		}
	}
	return tok, nil
}

func (p *jsonParser) object(depth int) (any, error) {
	obj := map[string]any{}
	for {
		tok, err := p.token(depth)
		if err != nil {
			return nil, err
		}
		if tok == json.Delim('}') {
			return obj, nil
		}
		key, ok := tok.(string)
		if !ok { // json.Decoder.Token refuses this already
			return nil, &json.SyntaxError{}
		}
		if len(key) > MaxTextBytes {
			return nil, errStringTooLong
		}
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	items := []any{}
	for {
		tok, err := p.token(depth)
		if err != nil {
			return nil, err
		}
		if tok == json.Delim(']') {
			return items, nil
		}
		v, err := p.rest(tok, depth)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
}

// jsonBytes bounds what a json.Decoder reads past the start of the token it
// is on, so that one string costs at most a few MiB before its length is
// checked.
type jsonBytes struct {
	r     io.Reader
	n     int64
	start int64
}

func (b *jsonBytes) mark(offset int64) { b.start = offset }

// Read implements io.Reader.
func (b *jsonBytes) Read(p []byte) (int, error) {
	if b.n-b.start > 2*MaxTextBytes {
		return 0, errStringTooLong
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// jsonSyntaxError is the error for err from json.Decoder.Token, which
// stopped at offset.
func jsonSyntaxError(err error, offset int64) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		// Token counts the offset of a misplaced delimiter from the start
		// of the input, and that of a bad literal from the literal's start.
		// The text counts bytes from 1 to the bad one, as json.Unmarshal.
		at := offset + 1
		if syn.Offset != offset {
			at = offset + syn.Offset
		}
		return &adhoc.Error{
			Condition: stanza.BadRequest,
			Text:      fmt.Sprintf("The request body is not valid JSON: %s (at byte %d).", syn.Error(), at),
			Err:       err,
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &adhoc.Error{Condition: stanza.BadRequest, Text: "The request body is not valid JSON: it ends too early.", Err: err}
	}
	return &adhoc.Error{Condition: stanza.BadRequest, Text: "The request body is not valid JSON: " + err.Error() + ".", Err: err}
}
