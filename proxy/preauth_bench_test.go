package proxy

import (
	"bytes"
	"testing"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// BenchmarkPreauthLogin measures the front end from greeting to a parsed
// login, over an in-memory connection: what one mail app connection costs
// before the upstream is dialled.
func BenchmarkPreauthLogin(b *testing.B) {
	plain := testkit.Plain("alice@example.com", "correct horse battery staple")
	cases := []struct{ name, input string }{
		{"atom", "a1 LOGIN alice@example.com secret\r\n"},
		{"quoted", "a1 CAPABILITY\r\na2 ID (\"name\" \"Mail\" \"version\" \"16.0\")\r\na3 LOGIN \"alice@example.com\" \"correct horse \\\"battery\\\" staple\"\r\n"},
		{"literal+", "a1 LOGIN {17+}\r\nalice@example.com {28+}\r\ncorrect horse battery staple\r\n"},
		{"authenticate", "a1 AUTHENTICATE PLAIN " + plain + "\r\n"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			input := []byte(c.input)
			b.SetBytes(int64(len(input)))
			b.ReportAllocs()
			for b.Loop() {
				conn := &frontFakeConn{in: bytes.NewReader(input)}
				f := newFront(conn, frontConfig{Secure: true})
				req, err := f.next()
				if err != nil || req.Username != "alice@example.com" {
					b.Fatalf("next() = %+v, %v", req, err)
				}
			}
		})
	}
}
