package proxy

// Reading and parsing client commands before login (RFC 9051 §2.2, §4, §9).
//
// A command is read one segment at a time: a segment is a line up to LF,
// and a segment that ends in a literal marker "{n}" or "{n+}" (LITERAL+,
// RFC 7888) continues, after the n literal bytes, with the next segment.
// Arguments are parsed from the segment as the handler asks for them, so a
// literal is read only where the command expects a string, and only once the
// command has been judged acceptable: the "+" continuation that invites a
// synchronising literal is never sent for a literal that would be refused.
//
// Bounds: the segments of one command together hold at most MaxLine bytes
// (CRLFs included); one literal holds at most MaxLiteral bytes, and all the
// literals of one command at most twice that (LOGIN has two). A line over
// the budget is not buffered whole: at most one bufio buffer more is read
// before BYE.
//
// Leniency, where it harms nothing: runs of spaces separate arguments as one
// space does, trailing spaces are ignored, a bare LF ends a line like CRLF,
// and 8-bit bytes are accepted in the atoms and quoted strings that carry a
// user name or password (RFC 9051 allows UTF-8 in quoted strings; some
// clients send it unquoted). Tags and command names are strict.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// frontCmd is the command being read.
type frontCmd struct {
	tag  string // "" until a valid tag was read
	name string // upper case

	seg []byte       // current segment, without line end and literal marker
	pos int          // parse position in seg
	lit frontLiteral // literal announced at the end of seg

	textBytes int   // bytes of this command's segments so far, line ends included
	litBytes  int64 // bytes of this command's literals so far

	// credentials marks a command that carries a password: a synchronising
	// literal of it is refused, before the client sends it, on a connection
	// that is not private.
	credentials bool
}

// frontLiteral is a literal marker at the end of a segment.
type frontLiteral struct {
	ok   bool  // a marker is there
	sync bool  // "{n}": the client waits for "+"; "{n+}": it does not
	n    int64 // announced size, math.MaxInt64 if absurd
}

// readCommand reads the first segment of a command and parses its tag and
// name. Errors are a *frontBad (answer BAD) or fatal.
func (f *front) readCommand() error {
	f.cur = frontCmd{}
	if err := f.nextSegment(); err != nil {
		return err
	}
	seg := f.cur.seg
	i := 0
	for i < len(seg) && frontTagChar(seg[i]) {
		i++
	}
	if i == 0 || (i < len(seg) && seg[i] != ' ') {
		return frontSyntax("Invalid tag")
	}
	f.cur.tag = string(seg[:i])
	f.cur.pos = i
	if f.atEnd() {
		return frontSyntax("Missing command")
	}
	if err := f.argSP(); err != nil {
		return err
	}
	name, err := f.argAtom()
	if err != nil {
		return frontSyntax("Invalid command name")
	}
	f.cur.name = strings.ToUpper(name)
	return nil
}

// nextSegment reads the next segment of the current command within what is
// left of its MaxLine budget.
func (f *front) nextSegment() error {
	line, n, err := f.readSegment(f.lim.MaxLine - f.cur.textBytes)
	if err != nil {
		return err
	}
	f.cur.textBytes += n
	f.cur.seg, f.cur.lit = frontSplitLiteral(line)
	f.cur.pos = 0
	return nil
}

// readSegment reads one line of at most limit bytes (line end included) and
// returns it without its line end, and the bytes consumed. The returned
// slice is valid until the next call. A longer line gets BYE.
func (f *front) readSegment(limit int) ([]byte, int, error) {
	buf := f.line[:0]
	for {
		chunk, err := f.br.ReadSlice('\n')
		if len(buf)+len(chunk) > limit {
			return nil, 0, f.byeErr("Command line too long", errFrontLimit, "command line over %d bytes", f.lim.MaxLine)
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(buf) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, fmt.Errorf("read command: %w", err)
	}
	f.line = buf
	n := len(buf)
	buf = buf[:n-1]
	if len(buf) > 0 && buf[len(buf)-1] == '\r' {
		buf = buf[:len(buf)-1]
	}
	return buf, n, nil
}

// frontSplitLiteral separates a trailing literal marker from line.
func frontSplitLiteral(line []byte) ([]byte, frontLiteral) {
	end := len(line) - 1
	if end < 2 || line[end] != '}' {
		return line, frontLiteral{}
	}
	lit := frontLiteral{ok: true, sync: true}
	j := end - 1
	if line[j] == '+' {
		lit.sync = false
		j--
	}
	digitsEnd := j + 1
	for j >= 0 && line[j] >= '0' && line[j] <= '9' {
		j--
	}
	if j < 0 || line[j] != '{' || j+1 == digitsEnd {
		return line, frontLiteral{}
	}
	digits := line[j+1 : digitsEnd]
	lit.n = math.MaxInt64
	if len(digits) <= 18 {
		lit.n, _ = strconv.ParseInt(string(digits), 10, 64) // cannot fail: at most 18 digits
	}
	return line[:j], lit
}

// skipCommand drops what is left of a command answered before its end, so
// that the next command starts on a line boundary. A synchronising literal
// is never invited: the client waits for "+" and gets the tagged reply
// instead. Non-synchronising literals are on their way already; they are
// read and dropped within the same limits as literals that are used, so
// their content is never taken for a command.
func (f *front) skipCommand() error {
	for f.cur.lit.ok && !f.cur.lit.sync {
		lit := f.cur.lit
		if f.literalTooBig(lit) {
			return f.refuseLiteral(lit)
		}
		if _, err := io.CopyN(io.Discard, f.br, lit.n); err != nil {
			return fmt.Errorf("read literal: %w", err)
		}
		f.cur.litBytes += lit.n
		if err := f.nextSegment(); err != nil {
			return err
		}
	}
	return nil
}

// literalTooBig applies MaxLiteral to one literal and twice that to all the
// literals of the command.
func (f *front) literalTooBig(lit frontLiteral) bool {
	limit := int64(f.lim.MaxLiteral)
	return lit.n > limit || f.cur.litBytes+lit.n > 2*limit
}

// refuseLiteral answers a literal over the limits: a synchronising one was
// not sent yet, so the command is refused and the dialog goes on; a
// non-synchronising one is arriving regardless, so the client is told BYE.
func (f *front) refuseLiteral(lit frontLiteral) error {
	if lit.sync {
		f.tagged("NO", "TOOBIG", "Literal too large")
		return errFrontAnswered
	}
	return f.byeErr("Literal too large", errFrontLimit, "non-synchronizing literal of %d bytes", lit.n)
}

// readLiteral reads the literal announced at the end of the segment and the
// segment that follows it.
func (f *front) readLiteral() (string, error) {
	lit := f.cur.lit
	if f.literalTooBig(lit) {
		return "", f.refuseLiteral(lit)
	}
	if lit.sync {
		if f.cur.credentials && !f.secure() {
			return "", f.refusePlaintext()
		}
		f.writeLine("+ Ready for literal data")
		if err := f.flush(); err != nil {
			return "", err
		}
	}
	buf := make([]byte, lit.n)
	if _, err := io.ReadFull(f.br, buf); err != nil {
		return "", fmt.Errorf("read literal: %w", err)
	}
	f.cur.litBytes += lit.n
	if err := f.nextSegment(); err != nil {
		return "", err
	}
	if bytes.IndexByte(buf, 0) >= 0 {
		return "", frontSyntax("NUL in literal")
	}
	return string(buf), nil
}

// atEnd reports whether only spaces are left of the command.
func (f *front) atEnd() bool {
	return len(bytes.TrimLeft(f.cur.seg[f.cur.pos:], " ")) == 0 && !f.cur.lit.ok
}

// argEnd requires the end of the command.
func (f *front) argEnd() error {
	if !f.atEnd() {
		return frontSyntax("Unexpected arguments")
	}
	f.cur.pos = len(f.cur.seg)
	return nil
}

// argNext reports whether another argument follows and consumes the spaces
// before it.
func (f *front) argNext() (bool, error) {
	if f.atEnd() {
		return false, nil
	}
	return true, f.argSP()
}

// argSP consumes the space (or spaces) between two arguments.
func (f *front) argSP() error {
	start := f.cur.pos
	for f.cur.pos < len(f.cur.seg) && f.cur.seg[f.cur.pos] == ' ' {
		f.cur.pos++
	}
	switch {
	case f.cur.pos == len(f.cur.seg) && !f.cur.lit.ok:
		return frontSyntax("Missing argument")
	case f.cur.pos == start:
		return frontSyntax("Missing space between arguments")
	}
	return nil
}

// argByte consumes c if it comes next.
func (f *front) argByte(c byte) bool {
	if f.cur.pos < len(f.cur.seg) && f.cur.seg[f.cur.pos] == c {
		f.cur.pos++
		return true
	}
	return false
}

// argAtom reads an atom (strict: 7-bit ATOM-CHARs).
func (f *front) argAtom() (string, error) {
	tok := f.scan(frontAtomChar)
	if tok == "" {
		return "", frontSyntax("Expected an atom")
	}
	return tok, nil
}

// argToken reads everything up to the next space (for base64 data, which
// the caller validates).
func (f *front) argToken() string {
	return f.scan(func(c byte) bool { return c != ' ' })
}

// argAstring reads an atom, a quoted string or a literal.
func (f *front) argAstring() (string, error) {
	if f.cur.pos == len(f.cur.seg) {
		if f.cur.lit.ok {
			return f.readLiteral()
		}
		return "", frontSyntax("Missing argument")
	}
	if f.cur.seg[f.cur.pos] == '"' {
		return f.argQuoted()
	}
	tok := f.scan(frontAstringChar)
	if tok == "" {
		return "", frontSyntax("Invalid argument")
	}
	return tok, nil
}

// argNString reads an astring or NIL; nil reports NIL.
func (f *front) argNString() (s string, isNil bool, err error) {
	start := f.cur.pos
	if tok := f.scan(frontAtomChar); strings.EqualFold(tok, "NIL") {
		return "", true, nil
	}
	f.cur.pos = start
	s, err = f.argAstring()
	return s, false, err
}

// argQuoted reads a quoted string: "\" escapes only '"' and "\"; CR, LF and
// NUL are not allowed (RFC 9051 §4.3).
func (f *front) argQuoted() (string, error) {
	seg := f.cur.seg
	var b strings.Builder
	for i := f.cur.pos + 1; i < len(seg); i++ {
		switch c := seg[i]; c {
		case '"':
			f.cur.pos = i + 1
			return b.String(), nil
		case '\\':
			if i+1 == len(seg) || (seg[i+1] != '"' && seg[i+1] != '\\') {
				return "", frontSyntax("Invalid escape in quoted string")
			}
			i++
			b.WriteByte(seg[i])
		case 0, '\r', '\n':
			return "", frontSyntax("Invalid character in quoted string")
		default:
			b.WriteByte(c)
		}
	}
	return "", frontSyntax("Unterminated quoted string")
}

// scan consumes the run of bytes accepted by ok.
func (f *front) scan(ok func(byte) bool) string {
	start := f.cur.pos
	for f.cur.pos < len(f.cur.seg) && ok(f.cur.seg[f.cur.pos]) {
		f.cur.pos++
	}
	return string(f.cur.seg[start:f.cur.pos])
}

// frontAtomChar reports whether c is an ATOM-CHAR: a 7-bit CHAR except
// atom-specials: "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]".
func frontAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// frontAstringChar is ASTRING-CHAR (ATOM-CHAR or "]"), plus 8-bit bytes.
func frontAstringChar(c byte) bool {
	return frontAtomChar(c) || c == ']' || c >= 0x80
}

// frontTagChar is a tag character: ASTRING-CHAR except "+".
func frontTagChar(c byte) bool {
	return (frontAtomChar(c) || c == ']') && c != '+'
}

// frontValidTag reports whether tag is a tag of the IMAP grammar.
func frontValidTag(tag string) bool {
	for i := 0; i < len(tag); i++ {
		if !frontTagChar(tag[i]) {
			return false
		}
	}
	return tag != ""
}

// frontIsAtom reports whether s is a (7-bit) atom.
func frontIsAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		if !frontAtomChar(s[i]) {
			return false
		}
	}
	return s != ""
}
