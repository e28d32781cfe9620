package imapwire

// Encoding commands (RFC 9051 section 4): values go out as quoted strings
// or literals, never pasted in. The model is go-imap's internal
// imapwire.Encoder.

import (
	"errors"
	"strconv"
	"strings"
)

// MaxNonSyncLiteral is the largest literal LITERAL- allows without a
// continuation request (RFC 7888 section 5).
const MaxNonSyncLiteral = 4096

// ErrNUL: a literal (and so an IMAP string) cannot carry NUL (RFC 9051 CHAR8).
var ErrNUL = errors.New("a string argument contains NUL")

// Command is a command ready to send. Its chunks are separated by the
// points where the server must first answer with a continuation request
// ("+"): after a synchronising literal's "{n}", and between AUTHENTICATE
// and the client's response.
type Command struct {
	Tag    string
	Chunks [][]byte
	// Cancel is sent when the server asks for more after the last chunk
	// (an AUTHENTICATE challenge the mechanism cannot answer); nil: such a
	// request breaks the protocol.
	Cancel []byte
	// OnChallenge, when set, sees the text of that further request (such
	// as an OAuth error challenge) before Cancel answers it.
	OnChallenge func(text string)
}

// Wipe overwrites the command's bytes, which may hold credentials.
func (c *Command) Wipe() {
	for _, b := range c.Chunks {
		clear(b)
	}
}

// Encoder builds a command argument by argument, each preceded by a space.
type Encoder struct {
	cmd Command
	buf []byte
	// nonSync reports whether a literal of n bytes may be sent without
	// waiting for a continuation request (LITERAL+, or LITERAL- up to 4 KiB).
	nonSync func(n int) bool
	err     error
}

// NewCommand starts the command with the given tag and name. nonSync (nil:
// never) says whether a literal of n bytes may go without waiting for the
// server's "+".
func NewCommand(tag, name string, nonSync func(n int) bool) *Encoder {
	e := &Encoder{cmd: Command{Tag: tag}, nonSync: nonSync}
	e.buf = append(e.buf, tag...)
	return e.Atom(name)
}

// Atom appends a protocol keyword or a value already known to be atom-safe
// (a mechanism name, base64).
func (e *Encoder) Atom(s string) *Encoder {
	e.grow(1 + len(s))
	e.buf = append(e.buf, ' ')
	e.buf = append(e.buf, s...)
	return e
}

// String appends s as a quoted string when it is printable 7-bit text,
// else as a literal (RFC 9051 section 4.3).
func (e *Encoder) String(s string) *Encoder {
	e.grow(1)
	e.buf = append(e.buf, ' ')
	e.value(s)
	return e
}

// List appends a parenthesised list of strings.
func (e *Encoder) List(values ...string) *Encoder {
	e.buf = append(e.buf, " ("...)
	for i, v := range values {
		if i > 0 {
			e.buf = append(e.buf, ' ')
		}
		e.value(v)
	}
	e.buf = append(e.buf, ')')
	return e
}

func (e *Encoder) value(s string) {
	if Quotable(s) {
		e.quoted(s)
	} else {
		e.literal(s)
	}
}

func (e *Encoder) quoted(s string) {
	e.grow(2*len(s) + 2)
	e.buf = append(e.buf, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			e.buf = append(e.buf, '\\')
		}
		e.buf = append(e.buf, s[i])
	}
	e.buf = append(e.buf, '"')
}

func (e *Encoder) literal(s string) {
	if strings.IndexByte(s, 0) >= 0 {
		e.err = ErrNUL
		return
	}
	e.grow(len(s) + 32) // "{n+}\r\n" fits in 32
	e.buf = append(e.buf, '{')
	e.buf = strconv.AppendInt(e.buf, int64(len(s)), 10)
	if e.nonSync != nil && e.nonSync(len(s)) {
		e.buf = append(e.buf, "+}\r\n"...)
	} else {
		e.buf = append(e.buf, "}\r\n"...)
		e.cut()
	}
	e.buf = append(e.buf, s...)
}

// Respond ends the command line; line is sent once the server asks for it
// with a continuation request (AUTHENTICATE without SASL-IR).
func (e *Encoder) Respond(line string) *Encoder {
	e.grow(2)
	e.buf = append(e.buf, "\r\n"...)
	e.cut()
	e.grow(len(line))
	e.buf = append(e.buf, line...)
	return e
}

// CancelWith sets the line that answers an unexpected further challenge
// ("*" cancels an AUTHENTICATE; some mechanisms answer an error challenge
// with an empty line).
func (e *Encoder) CancelWith(line string) *Encoder {
	e.cmd.Cancel = []byte(line + "\r\n")
	return e
}

// cut ends the current chunk: the next one waits for a continuation request.
func (e *Encoder) cut() {
	e.cmd.Chunks = append(e.cmd.Chunks, e.buf)
	e.buf = nil
}

// Finish ends the command with CRLF. On error nothing of it is kept.
func (e *Encoder) Finish() (Command, error) {
	if e.err != nil {
		e.cmd.Wipe()
		clear(e.buf)
		return Command{}, e.err
	}
	e.grow(2)
	e.buf = append(e.buf, "\r\n"...)
	e.cut()
	return e.cmd, nil
}

// grow makes room for n more bytes in the chunk being built. A smaller
// buffer it leaves is wiped: it may hold credentials, which append would
// leave behind in memory.
func (e *Encoder) grow(n int) {
	if len(e.buf)+n <= cap(e.buf) {
		return
	}
	nb := make([]byte, len(e.buf), max(2*cap(e.buf), len(e.buf)+n, 64))
	copy(nb, e.buf)
	clear(e.buf)
	e.buf = nb
}
