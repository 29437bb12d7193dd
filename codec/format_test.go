package codec_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name              string
		givenContentType  string
		givenType         string
		givenAccept       string
		expectFormat      codec.Format
		expectUnsupported bool
		expectBadRequest  bool
	}{
		{name: "nothing", expectFormat: codec.TigaseXML},
		{name: "json", givenContentType: "application/json", expectFormat: codec.TigaseJSON},
		{name: "json with charset", givenContentType: "application/json; charset=utf-8", expectFormat: codec.TigaseJSON},
		{name: "json upper case", givenContentType: "Application/JSON", expectFormat: codec.TigaseJSON},
		{name: "xml", givenContentType: "application/xml", expectFormat: codec.TigaseXML},
		{name: "text xml", givenContentType: "text/xml; charset=UTF-8", expectFormat: codec.TigaseXML},
		{name: "content type wins over type", givenContentType: "application/xml", givenType: "json", givenAccept: "application/json", expectFormat: codec.TigaseXML},
		{name: "type json", givenType: "json", givenAccept: "application/xml", expectFormat: codec.TigaseJSON},
		{name: "type xml", givenType: "XML", givenAccept: "application/json", expectFormat: codec.TigaseXML},
		{name: "type json media type", givenType: "application/json", givenAccept: "application/xml", expectFormat: codec.TigaseJSON},
		{name: "type json media type upper case", givenType: "Application/JSON", expectFormat: codec.TigaseJSON},
		{name: "type xml media type", givenType: "application/xml", givenAccept: "application/json", expectFormat: codec.TigaseXML},
		{name: "type text xml media type", givenType: "text/xml", givenAccept: "application/json", expectFormat: codec.TigaseXML},
		{name: "content type wins over type media type", givenContentType: "application/xml", givenType: "application/json", expectFormat: codec.TigaseXML},
		{name: "type media type with parameters", givenType: "application/json; charset=utf-8", givenAccept: "application/json", expectFormat: codec.TigaseJSON, expectBadRequest: true},
		{name: "type other media type", givenType: "text/plain", expectFormat: codec.TigaseXML, expectBadRequest: true},
		{name: "accept json", givenAccept: "application/json", expectFormat: codec.TigaseJSON},
		{name: "accept xml", givenAccept: "text/xml", expectFormat: codec.TigaseXML},
		{name: "accept by quality", givenAccept: "application/xml;q=0.5, application/json", expectFormat: codec.TigaseJSON},
		{name: "accept by order", givenAccept: "application/json, application/xml", expectFormat: codec.TigaseJSON},
		{name: "accept any", givenAccept: "*/*", expectFormat: codec.TigaseXML},
		{name: "accept json refused", givenAccept: "application/json;q=0, */*;q=0.1", expectFormat: codec.TigaseXML},
		{name: "accept unknown", givenAccept: "text/html", expectFormat: codec.TigaseXML},
		{name: "accept garbage", givenAccept: ";;;,", expectFormat: codec.TigaseXML},
		{name: "form content type", givenContentType: "application/x-www-form-urlencoded", expectFormat: codec.TigaseXML, expectUnsupported: true},
		{name: "unsupported answers in type", givenContentType: "text/plain", givenType: "json", expectFormat: codec.TigaseJSON, expectUnsupported: true},
		{name: "unsupported answers in accept", givenContentType: "text/plain", givenAccept: "application/json", expectFormat: codec.TigaseJSON, expectUnsupported: true},
		{name: "unparsable content type", givenContentType: "json;;=", expectFormat: codec.TigaseXML, expectUnsupported: true},
		{name: "unknown type", givenType: "yaml", givenAccept: "application/json", expectFormat: codec.TigaseJSON, expectBadRequest: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := codec.Negotiate(tc.givenContentType, tc.givenType, tc.givenAccept)
			assert.Equal(t, tc.expectFormat, f)
			switch {
			case tc.expectUnsupported:
				require.Error(t, err)
				assert.ErrorIs(t, err, codec.ErrUnsupportedMediaType)
				assert.Equal(t, stanza.BadRequest, adhoc.AsError(err).Condition)
			case tc.expectBadRequest:
				require.Error(t, err)
				assert.NotErrorIs(t, err, codec.ErrUnsupportedMediaType)
				assert.Equal(t, "The type parameter must be json, xml, application/json, application/xml or text/xml.", adhoc.AsError(err).Text)
			default:
				assert.NoError(t, err)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		givenFormat       codec.Format
		expectString      string
		expectContentType string
	}{
		{codec.TigaseXML, "tigase-xml", "application/xml; charset=utf-8"},
		{codec.TigaseJSON, "tigase-json", "application/json; charset=utf-8"},
		{codec.NativeXML, "native-xml", "application/xml; charset=utf-8"},
		{codec.Format(9), "format(9)", "application/xml; charset=utf-8"},
	}
	for _, tc := range tests {
		t.Run(tc.expectString, func(t *testing.T) {
			assert.Equal(t, tc.expectString, tc.givenFormat.String())
			assert.Equal(t, tc.expectContentType, tc.givenFormat.ContentType())
		})
	}
	var zero codec.Format
	assert.Equal(t, codec.TigaseXML, zero, "the zero value is the default format")
}
