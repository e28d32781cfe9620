package imapwire

// Reading client commands (RFC 9051 sections 2.2, 4 and 9).
//
// A command is read one segment at a time: a segment is a line up to LF,
// and a segment that ends in a literal announcement "{n}" or "{n+}"
// continues, after the n literal bytes, with the next segment. Arguments
// are parsed from the segment as the caller asks for them, so a literal is
// read only where the command expects a string, and only once the caller
// has judged the command acceptable: the continuation request that invites
// a synchronising literal is never sent for a literal that is refused.
//
// Bounds: the segments of one command together hold at most MaxLine bytes
// (line ends included); one literal holds at most MaxLiteral bytes, and all
// the literals of one command at most twice that (LOGIN has two). A line
// over the budget is not buffered whole: at most one bufio buffer more is
// read.
//
// Leniency, where it harms nothing: runs of spaces separate arguments as one
// space does, trailing spaces are ignored, a bare LF ends a line like CRLF,
// and 8-bit bytes are accepted in the atoms and quoted strings that carry a
// user name or password (RFC 9051 allows UTF-8 in quoted strings; some
// clients send it unquoted). Tags and command names are strict.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// SyntaxError is a malformed command: it is answered with BAD, and the
// dialog can go on once the rest of the command is skipped.
type SyntaxError struct{ Text string }

func (e *SyntaxError) Error() string { return "syntax error: " + e.Text }

func syntax(text string) error { return &SyntaxError{Text: text} }

// LiteralError is a literal over the limits. A synchronising one was not
// sent yet, so the command can be refused and the dialog go on; a
// non-synchronising one is arriving regardless.
type LiteralError struct{ Literal Literal }

func (e *LiteralError) Error() string {
	return fmt.Sprintf("literal of %d bytes over the limit", e.Literal.Size)
}

// CommandReader reads the commands of one client, one at a time. Its
// zero value with the limits set is ready to use.
type CommandReader struct {
	MaxLine    int // bytes of one command's lines together, line ends included
	MaxLiteral int // bytes of one literal; a command's literals together get twice that

	Tag  string // of the current command; "" until a valid tag was read
	Name string // of the current command, upper case

	br        *bufio.Reader
	buf       []byte  // reused for segments
	seg       []byte  // current segment, without line end and literal announcement
	pos       int     // parse position in seg
	lit       Literal // announced at the end of seg, when hasLit
	hasLit    bool
	textBytes int   // bytes of this command's segments so far, line ends included
	litBytes  int64 // bytes of this command's literals so far
}

// Next reads the first segment of the next command from br and parses its
// tag and name. Errors: *SyntaxError (Tag is set when it was valid),
// *TooLongError, or the reader's.
func (r *CommandReader) Next(br *bufio.Reader) error {
	r.br = br
	r.Tag, r.Name = "", ""
	r.textBytes, r.litBytes = 0, 0
	if err := r.nextSegment(); err != nil {
		return err
	}
	i := 0
	for i < len(r.seg) && IsTagChar(r.seg[i]) {
		i++
	}
	if i == 0 || (i < len(r.seg) && r.seg[i] != ' ') {
		return syntax("Invalid tag")
	}
	r.Tag = string(r.seg[:i])
	r.pos = i
	if r.AtEnd() {
		return syntax("Missing command")
	}
	if err := r.SP(); err != nil {
		return err
	}
	name, err := r.Atom()
	if err != nil {
		return syntax("Invalid command name")
	}
	r.Name = strings.ToUpper(name)
	return nil
}

// nextSegment reads the next segment of the current command within what is
// left of its MaxLine budget.
func (r *CommandReader) nextSegment() error {
	line, raw, err := ReadLine(r.br, r.buf, r.MaxLine-r.textBytes)
	if raw != nil {
		r.buf = raw
	}
	if err != nil {
		if _, ok := err.(*TooLongError); ok {
			return &TooLongError{What: "command line", Limit: int64(r.MaxLine)}
		}
		return fmt.Errorf("read command: %w", err)
	}
	r.textBytes += len(raw)
	r.seg, r.lit, r.hasLit = SplitLiteral(line)
	r.pos = 0
	return nil
}

// literalTooBig applies MaxLiteral to one literal and twice that to all the
// literals of the command.
func (r *CommandReader) literalTooBig(lit Literal) bool {
	limit := int64(r.MaxLiteral)
	return lit.Size > limit || r.litBytes+lit.Size > 2*limit
}

// Skip drops what is left of a command answered before its end, so that
// the next command starts on a line boundary. A synchronising literal is
// never invited: the client waits for a continuation request and gets the
// tagged reply instead. Non-synchronising literals are on their way
// already; they are read and dropped within the same limits as literals
// that are used (a *LiteralError past them), so their content is never
// taken for a command.
func (r *CommandReader) Skip() error {
	for r.hasLit && !r.lit.Sync {
		lit := r.lit
		if r.literalTooBig(lit) {
			return &LiteralError{Literal: lit}
		}
		if _, err := io.CopyN(io.Discard, r.br, lit.Size); err != nil {
			return fmt.Errorf("read literal: %w", err)
		}
		r.litBytes += lit.Size
		if err := r.nextSegment(); err != nil {
			return err
		}
	}
	return nil
}

// readLiteral reads the literal announced at the end of the segment and the
// segment that follows it. A synchronising literal is first passed to
// invite, which sends the continuation request or refuses the literal with
// an error; nil invite refuses every synchronising literal.
func (r *CommandReader) readLiteral(invite func(Literal) error) ([]byte, error) {
	lit := r.lit
	if r.literalTooBig(lit) {
		return nil, &LiteralError{Literal: lit}
	}
	if lit.Sync {
		if invite == nil {
			return nil, syntax("Literal not allowed here")
		}
		if err := invite(lit); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, lit.Size)
	if _, err := io.ReadFull(r.br, buf); err != nil {
		clear(buf)
		return nil, fmt.Errorf("read literal: %w", err)
	}
	r.litBytes += lit.Size
	if err := r.nextSegment(); err != nil {
		clear(buf)
		return nil, err
	}
	if bytes.IndexByte(buf, 0) >= 0 {
		clear(buf)
		return nil, syntax("NUL in literal")
	}
	return buf, nil
}

// AtEnd reports whether only spaces are left of the command.
func (r *CommandReader) AtEnd() bool {
	return len(bytes.TrimLeft(r.seg[r.pos:], " ")) == 0 && !r.hasLit
}

// End requires the end of the command.
func (r *CommandReader) End() error {
	if !r.AtEnd() {
		return syntax("Unexpected arguments")
	}
	r.pos = len(r.seg)
	return nil
}

// More reports whether another argument follows and consumes the spaces
// before it.
func (r *CommandReader) More() (bool, error) {
	if r.AtEnd() {
		return false, nil
	}
	return true, r.SP()
}

// SP consumes the space (or spaces) between two arguments.
func (r *CommandReader) SP() error {
	start := r.pos
	for r.pos < len(r.seg) && r.seg[r.pos] == ' ' {
		r.pos++
	}
	switch {
	case r.pos == len(r.seg) && !r.hasLit:
		return syntax("Missing argument")
	case r.pos == start:
		return syntax("Missing space between arguments")
	}
	return nil
}

// Byte consumes c if it comes next.
func (r *CommandReader) Byte(c byte) bool {
	if r.pos < len(r.seg) && r.seg[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// Atom reads an atom (strict: 7-bit ATOM-CHARs).
func (r *CommandReader) Atom() (string, error) {
	tok := r.Scan(IsAtomChar)
	if tok == "" {
		return "", syntax("Expected an atom")
	}
	return tok, nil
}

// Token reads everything up to the next space (for base64 data, which the
// caller validates).
func (r *CommandReader) Token() string {
	return string(r.TokenBytes())
}

// TokenBytes is Token without a copy, for a secret (a SASL response): the
// bytes alias the line buffer until the next read or Wipe.
func (r *CommandReader) TokenBytes() []byte {
	return r.scan(func(c byte) bool { return c != ' ' })
}

// Astring reads an atom, a quoted string or a literal (see readLiteral
// for invite).
func (r *CommandReader) Astring(invite func(Literal) error) (string, error) {
	b, err := r.SecretAstring(invite)
	s := string(b)
	clear(b)
	return s, err
}

// SecretAstring is Astring for a password: the bytes are the caller's,
// made in one allocation with no other copy left behind, for the caller
// to wipe (and Wipe the reader) once done with them.
func (r *CommandReader) SecretAstring(invite func(Literal) error) ([]byte, error) {
	if r.pos == len(r.seg) {
		if r.hasLit {
			return r.readLiteral(invite)
		}
		return nil, syntax("Missing argument")
	}
	if r.seg[r.pos] == '"' {
		return r.quoted()
	}
	tok := r.scan(IsAstringChar)
	if len(tok) == 0 {
		return nil, syntax("Invalid argument")
	}
	return bytes.Clone(tok), nil
}

// Wipe overwrites the line buffer, which may hold a password, once a
// login command's arguments are read: none are left to parse, but a
// literal still announced is still skipped by Skip.
func (r *CommandReader) Wipe() {
	clear(r.buf[:cap(r.buf)])
	r.seg, r.pos = nil, 0
}

// NString reads an astring or NIL; isNil reports NIL.
func (r *CommandReader) NString(invite func(Literal) error) (s string, isNil bool, err error) {
	start := r.pos
	if tok := r.Scan(IsAtomChar); strings.EqualFold(tok, "NIL") {
		return "", true, nil
	}
	r.pos = start
	s, err = r.Astring(invite)
	return s, false, err
}

// Quoted reads a quoted string: "\" escapes only '"' and "\"; CR, LF and
// NUL are not allowed (RFC 9051 section 4.3).
func (r *CommandReader) Quoted() (string, error) {
	b, err := r.quoted()
	s := string(b)
	clear(b)
	return s, err
}

// quoted is Quoted's content in one allocation the caller owns.
func (r *CommandReader) quoted() ([]byte, error) {
	seg := r.seg
	if r.pos >= len(seg) || seg[r.pos] != '"' {
		return nil, syntax("Expected a quoted string")
	}
	b := make([]byte, 0, len(seg)-r.pos)
	for i := r.pos + 1; i < len(seg); i++ {
		switch c := seg[i]; c {
		case '"':
			r.pos = i + 1
			return b, nil
		case '\\':
			if i+1 == len(seg) || (seg[i+1] != '"' && seg[i+1] != '\\') {
				clear(b)
				return nil, syntax("Invalid escape in quoted string")
			}
			i++
			b = append(b, seg[i])
		case 0, '\r', '\n':
			clear(b)
			return nil, syntax("Invalid character in quoted string")
		default:
			b = append(b, c)
		}
	}
	clear(b)
	return nil, syntax("Unterminated quoted string")
}

// Scan consumes the run of bytes accepted by ok.
func (r *CommandReader) Scan(ok func(byte) bool) string {
	return string(r.scan(ok))
}

// scan is Scan without a copy: the bytes alias the line buffer.
func (r *CommandReader) scan(ok func(byte) bool) []byte {
	start := r.pos
	for r.pos < len(r.seg) && ok(r.seg[r.pos]) {
		r.pos++
	}
	return r.seg[start:r.pos]
}
