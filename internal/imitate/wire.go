package imitate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds on what a client may send before login. Real servers have similar
// ones (Dovecot: 8 KiB lines; go-imap: 4 KiB literals before login).
const (
	maxLine    = 8 << 10 // bytes in one line, without CRLF
	maxLiteral = 8 << 10 // bytes in one literal
)

// errLineTooLong ends the connection: the client is not speaking IMAP, or
// is trying to exhaust memory.
var errLineTooLong = errors.New("imitate: line too long")

// syntaxError is a malformed command. The connection goes on after a BAD.
type syntaxError struct {
	tag  string // "*" when the tag itself could not be read
	text string
}

func (e *syntaxError) Error() string { return "imitate: syntax error: " + e.text }

// command is one client command before login.
type command struct {
	tag  string
	name string   // upper case
	args []string // atoms, quoted strings (unquoted) and literals, in order
}

// commandReader reads commands from br. Before reading a synchronizing
// literal it calls cont, which must send a continuation request.
type commandReader struct {
	br   *bufio.Reader
	cont func() error
}

// readLine reads one line and strips its CRLF (or bare LF). It reads at most
// maxLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > maxLine+2 {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		return line, nil
	}
}

// read reads one command with its arguments. It returns *syntaxError for a
// malformed command (after reading the whole line), errLineTooLong, or an
// I/O error.
func (r *commandReader) read() (*command, error) {
	line, err := readLine(r.br)
	if err != nil {
		return nil, err
	}
	tag, rest, _ := strings.Cut(string(line), " ")
	if !isAtom(tag) {
		return nil, &syntaxError{tag: "*", text: "Error in IMAP command received by server."}
	}
	name, rest, _ := strings.Cut(rest, " ")
	if !isAtom(name) {
		return nil, &syntaxError{tag: tag, text: "Error in IMAP command received by server."}
	}
	cmd := &command{tag: tag, name: strings.ToUpper(name)}
	for rest != "" {
		var arg string
		arg, rest, err = r.arg(rest)
		if err != nil {
			var se *syntaxError
			if errors.As(err, &se) {
				se.tag = tag
			}
			return nil, err
		}
		cmd.args = append(cmd.args, arg)
		if rest == "" {
			break
		}
		if rest[0] != ' ' || len(rest) == 1 {
			return nil, &syntaxError{tag: tag, text: "Error in IMAP command received by server."}
		}
		rest = rest[1:]
	}
	return cmd, nil
}

// arg parses one argument at the start of s and returns it with the rest of
// the command. A literal ends the current line; the rest then comes from the
// next line.
func (r *commandReader) arg(s string) (arg, rest string, err error) {
	switch s[0] {
	case '"':
		return quoted(s)
	case '{':
		return r.literal(s)
	}
	arg, rest = s, ""
	if i := strings.IndexByte(s, ' '); i >= 0 {
		arg, rest = s[:i], s[i:]
	}
	if !isAString(arg) {
		return "", "", &syntaxError{text: "Error in IMAP command received by server."}
	}
	return arg, rest, nil
}

// quoted parses a quoted string at the start of s.
func quoted(s string) (arg, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			return "", "", &syntaxError{text: "Invalid escape in quoted string."}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", &syntaxError{text: "Missing '\"'"}
}

// literal reads a literal announced at the end of the line: {n} (the
// client waits for a continuation request) or {n+} (LITERAL+, RFC 7888).
func (r *commandReader) literal(s string) (arg, rest string, err error) {
	if !strings.HasSuffix(s, "}") {
		return "", "", &syntaxError{text: "Literal must end the line."}
	}
	spec := s[1 : len(s)-1]
	sync := true
	if strings.HasSuffix(spec, "+") {
		spec, sync = spec[:len(spec)-1], false
	}
	n, convErr := strconv.Atoi(spec)
	if convErr != nil || n < 0 {
		return "", "", &syntaxError{text: fmt.Sprintf("Invalid literal size %q.", spec)}
	}
	if n > maxLiteral {
		// A non-synchronizing literal's bytes are already on their way;
		// the stream cannot be resynchronized, so this ends the connection.
		return "", "", errLineTooLong
	}
	if sync {
		if err := r.cont(); err != nil {
			return "", "", err
		}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return "", "", err
	}
	next, err := readLine(r.br)
	if err != nil {
		return "", "", err
	}
	return string(buf), string(next), nil
}

// isAtom reports whether s is a non-empty IMAP atom (RFC 3501 ATOM-CHAR:
// no specials, no controls, no SP).
func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// isAString reports whether s may stand unquoted as an astring: an atom that
// may also contain ']' (RFC 3501 ASTRING-CHAR).
func isAString(s string) bool {
	return isAtom(strings.ReplaceAll(s, "]", "x"))
}
