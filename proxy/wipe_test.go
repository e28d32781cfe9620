package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestWipeBuffered: after a login, the front end's read buffer (which held
// the LOGIN line with the password) is all zeros, and what the client sent
// behind the login is still handed on.
func TestWipeBuffered(t *testing.T) {
	in := "a LOGIN alice s3cret-Passw0rd\r\nb SELECT INBOX\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	whole, _ := br.Peek(len(in)) // the buffer itself, from its start
	whole = whole[:cap(whole)]
	if l, _ := br.ReadString('\n'); !strings.Contains(l, "s3cret") {
		t.Fatalf("read %q", l)
	}
	nb := wipeBuffered(br)
	if rest, _ := io.ReadAll(nb); string(rest) != "b SELECT INBOX\r\n" {
		t.Errorf("handed on %q", rest)
	}
	if len(whole) != br.Size() || len(bytes.Trim(whole, "\x00")) != 0 {
		t.Errorf("the old buffer still holds %q", bytes.Trim(whole, "\x00"))
	}
}
