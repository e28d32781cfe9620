package proxy

import (
	"bufio"
	"bytes"
)

// wipeBuffered overwrites br's whole buffer, which held the login command
// and so the password, and returns a reader with only what br still had
// buffered (commands the client sent behind its login), for forwarding. A
// forwarded session may last for days; its memory should not hold the
// password that long.
func wipeBuffered(br *bufio.Reader) *bufio.Reader {
	n := br.Buffered()
	rest, _ := br.Peek(n)
	keep := bytes.Clone(rest)
	br.Reset(zeros{})
	br.Peek(br.Size()) // fills the whole buffer from zeros
	br.Reset(nil)      // and never reads from it again
	nb := bufio.NewReaderSize(bytes.NewReader(keep), max(n, 16))
	nb.Peek(n)
	return nb
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
