package codec_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/adhocd/adhocd/codec"
)

// BenchmarkDecodeRequest decodes the seed's end-user-session request, the
// body of every call of issue 3's benchmark, in both Tigase dialects.
//
//	go test -run '^$' -bench . -benchmem ./codec
func BenchmarkDecodeRequest(b *testing.B) {
	for _, c := range []struct {
		file   string
		format codec.Format
	}{{"seed_request.json", codec.TigaseJSON}, {"seed_request.xml", codec.TigaseXML}} {
		body, err := os.ReadFile(filepath.Join("..", "testdata", "codec", c.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.file, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := codec.DecodeRequest(bytes.NewReader(body), c.format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeResponse encodes the seed's answer: one Notes line.
func BenchmarkEncodeResponse(b *testing.B) {
	for _, f := range []codec.Format{codec.TigaseJSON, codec.TigaseXML} {
		b.Run(f.String(), func(b *testing.B) {
			for b.Loop() {
				if err := codec.EncodeResponse(io.Discard, f, seedJID, seedResponse); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
