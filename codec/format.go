package codec

import (
	"errors"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
)

// Format is an envelope dialect.
// The zero value is TigaseXML, the default.
type Format int

// The dialects.
const (
	// TigaseXML is Tigase's XML envelope.
	TigaseXML Format = iota
	// TigaseJSON is Tigase's JSON envelope.
	TigaseJSON
	// NativeXML is the <command/> element of XEP-0050 with a jabber:x:data
	// form.
	NativeXML
)

// String names the format.
func (f Format) String() string {
	switch f {
	case TigaseXML:
		return "tigase-xml"
	case TigaseJSON:
		return "tigase-json"
	case NativeXML:
		return "native-xml"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// ContentType is the media type of responses in the format.
func (f Format) ContentType() string {
	if f == TigaseJSON {
		return "application/json; charset=utf-8"
	}
	return "application/xml; charset=utf-8"
}

// ErrUnsupportedMediaType is in the chain of the error Negotiate returns for
// a request Content-Type it cannot decode; the HTTP layer answers it with
// 415.
var ErrUnsupportedMediaType = errors.New("codec: unsupported media type")

// Negotiate picks the format of a request and its response from the request's
// Content-Type, then the type query parameter ("json" or "xml", or one of
// the media types application/json, application/xml and text/xml, as some
// Tigase users write it), then the Accept header; the default is XML.
// Media type parameters such as charset are ignored.
// XML means TigaseXML here: DecodeRequest tells the dialect from the body.
//
// A Content-Type other than application/json, application/xml and text/xml
// is an *adhoc.Error with condition bad-request and ErrUnsupportedMediaType
// as its cause; an unknown type parameter is a bad-request *adhoc.Error.
// On error the returned Format is still the one to answer in, from the
// remaining sources.
func Negotiate(contentType, typeParam, accept string) (Format, error) {
	var ctErr error
	if contentType != "" {
		if f, ok := mediaFormat(contentType); ok {
			return f, nil
		}
		ctErr = &adhoc.Error{
			Condition: stanza.BadRequest,
			Text:      fmt.Sprintf("The Content-Type %s is not supported; use application/json or application/xml.", mediaName(contentType)),
			Err:       ErrUnsupportedMediaType,
		}
	}
	if typeParam = strings.TrimSpace(typeParam); typeParam != "" {
		if f, ok := typeFormat(typeParam); ok {
			return f, ctErr
		}
		if ctErr == nil {
			ctErr = &adhoc.Error{Condition: stanza.BadRequest,
				Text: "The type parameter must be json, xml, application/json, application/xml or text/xml."}
		}
	}
	return acceptFormat(accept), ctErr
}

// typeFormat maps a type query parameter to a format: json, xml, or one of
// the three media types, in any case and without parameters.
func typeFormat(s string) (Format, bool) {
	switch strings.ToLower(s) {
	case "json", "application/json":
		return TigaseJSON, true
	case "xml", "application/xml", "text/xml":
		return TigaseXML, true
	}
	return TigaseXML, false
}

// mediaFormat maps a media type to a format.
func mediaFormat(s string) (Format, bool) {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return TigaseXML, false
	}
	switch mt {
	case "application/json":
		return TigaseJSON, true
	case "application/xml", "text/xml":
		return TigaseXML, true
	}
	return TigaseXML, false
}

// mediaName is the media type of a Content-Type for error texts, without
// parameters and limited in length.
func mediaName(s string) string {
	s, _, _ = strings.Cut(s, ";")
	s = strings.TrimSpace(s)
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strconv.Quote(s)
}

// acceptFormat picks the preferred of JSON and XML from an Accept header,
// by quality and then by order; XML when neither is acceptable or preferred.
func acceptFormat(accept string) Format {
	type choice struct {
		f Format
		q float64
	}
	var choices []choice
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		if q <= 0 {
			continue
		}
		switch mt {
		case "application/json":
			choices = append(choices, choice{TigaseJSON, q})
		case "application/xml", "text/xml", "*/*", "application/*", "text/*":
			choices = append(choices, choice{TigaseXML, q})
		}
	}
	slices.SortStableFunc(choices, func(a, b choice) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	if len(choices) == 0 {
		return TigaseXML
	}
	return choices[0].f
}
