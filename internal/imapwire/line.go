// Package imapwire is the one IMAP line and literal codec of imapwhy
// (RFC 9051 sections 2.2, 4, 7 and 9): bounded reading of lines with
// literal continuations "{n}" and "{n+}" (RFC 7888), the client commands
// the proxy and the imitated providers read before login, the server
// responses the upstream client and the checker read (tagged, untagged,
// continuation; status, response code and text), and the encoding of
// command arguments as atoms, quoted strings and literals.
//
// It only parses and encodes: it never writes to a connection, so the
// callers decide what a refusal looks like on the wire. Every read is
// bounded by limits the caller gives.
package imapwire

import (
	"bufio"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// TooLongError is input over one of the reader's bounds. Nothing more of
// it was read than one buffer past the bound.
type TooLongError struct {
	What  string // "line", "literal", "response"...
	Limit int64
}

func (e *TooLongError) Error() string {
	return e.What + " over " + strconv.FormatInt(e.Limit, 10) + " bytes"
}

// ReadLine reads one line of at most limit bytes, its line end (CRLF, or a
// bare LF from a lax peer) included, appending it to buf. It returns the
// line without its line end, and raw with it; both share buf's memory and
// are valid until buf is used again. A longer line is a *TooLongError, an
// end of input inside a line io.ErrUnexpectedEOF.
func ReadLine(br *bufio.Reader, buf []byte, limit int) (line, raw []byte, err error) {
	raw = buf[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if len(raw)+len(chunk) > limit {
			return nil, nil, &TooLongError{What: "line", Limit: int64(limit)}
		}
		raw = append(raw, chunk...)
		switch {
		case err == nil:
			line = raw[:len(raw)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, raw, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(raw) > 0:
			return nil, nil, io.ErrUnexpectedEOF
		default:
			return nil, nil, err
		}
	}
}

// Literal is the announcement of a literal at the end of a line.
type Literal struct {
	Size int64 // announced size, math.MaxInt64 if absurd
	Sync bool  // "{n}": the sender waits for a continuation request; "{n+}" (LITERAL+): it does not
}

// SplitLiteral separates a trailing literal announcement, "{n}" or
// "{n+}", from line. ok is false when line ends in none; line is then
// returned whole.
func SplitLiteral(line []byte) (rest []byte, lit Literal, ok bool) {
	end := len(line) - 1
	if end < 2 || line[end] != '}' {
		return line, Literal{}, false
	}
	lit.Sync = true
	j := end - 1
	if line[j] == '+' {
		lit.Sync = false
		j--
	}
	digitsEnd := j + 1
	for j >= 0 && line[j] >= '0' && line[j] <= '9' {
		j--
	}
	if j < 0 || line[j] != '{' || j+1 == digitsEnd {
		return line, Literal{}, false
	}
	digits := line[j+1 : digitsEnd]
	lit.Size = math.MaxInt64
	if len(digits) <= 18 {
		lit.Size, _ = strconv.ParseInt(string(digits), 10, 64) // cannot fail: at most 18 digits
	}
	return line[:j], lit, true
}

// Unsendable reports whether s holds CR, LF or NUL, which no IMAP string
// can carry: in a command line they could end it and start another one.
func Unsendable(s string) bool { return strings.ContainsAny(s, "\r\n\x00") }

// IsAtomChar reports whether c is an ATOM-CHAR: a 7-bit CHAR except
// atom-specials: "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]".
func IsAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// IsAstringChar is ASTRING-CHAR (ATOM-CHAR or "]"), plus 8-bit bytes:
// some clients send a UTF-8 user name or password unquoted.
func IsAstringChar(c byte) bool {
	return IsAtomChar(c) || c == ']' || c >= 0x80
}

// IsTagChar is a tag character: ASTRING-CHAR (7-bit) except "+".
func IsTagChar(c byte) bool {
	return (IsAtomChar(c) || c == ']') && c != '+'
}

// IsTag reports whether s is a tag of the IMAP grammar.
func IsTag(s string) bool { return s != "" && all(s, IsTagChar) }

// IsAtom reports whether s is a (7-bit) atom.
func IsAtom(s string) bool { return s != "" && all(s, IsAtomChar) }

// Quotable reports whether s can go as a quoted string: printable
// US-ASCII only, so no CR, LF, NUL, other controls or 8-bit bytes.
func Quotable(s string) bool { return all(s, func(c byte) bool { return c >= 0x20 && c <= 0x7e }) }

func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
