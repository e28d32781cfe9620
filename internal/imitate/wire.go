package imitate

import (
	"bufio"
	"errors"

	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// Bounds on what a client may send before login. Real servers have similar
// ones (Dovecot: 8 KiB lines; go-imap: 4 KiB literals before login).
const (
	maxLine    = 8 << 10 // bytes in one command's lines, without CRLF
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

// badCommandText is what the imitated servers answer a malformed command
// with (Dovecot's words).
const badCommandText = "Error in IMAP command received by server."

// command is one client command before login.
type command struct {
	tag  string
	name string   // upper case
	args []string // atoms, quoted strings (unquoted) and literals, in order
}

// commandReader reads commands from br with imapwire's CommandReader.
// Before reading a synchronizing literal it calls cont, which must send a
// continuation request.
type commandReader struct {
	br   *bufio.Reader
	cont func() error
	r    imapwire.CommandReader
}

// readLine reads one line (an AUTHENTICATE response) and strips its CRLF
// (or bare LF). It reads at most maxLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, _, err := imapwire.ReadLine(br, nil, maxLine+2)
	return line, wireErr(err)
}

// wireErr turns the command reader's limits into errLineTooLong.
func wireErr(err error) error {
	var tl *imapwire.TooLongError
	var le *imapwire.LiteralError
	if errors.As(err, &tl) || errors.As(err, &le) {
		// A non-synchronizing literal's bytes are already on their way;
		// the stream cannot be resynchronized, so this ends the connection.
		return errLineTooLong
	}
	return err
}

// read reads one command with its arguments. It returns *syntaxError for a
// malformed command (after reading the rest of it), errLineTooLong, or an
// I/O error.
func (r *commandReader) read() (*command, error) {
	r.r.MaxLine, r.r.MaxLiteral = maxLine+2, maxLiteral
	cmd, err := r.parse()
	if _, ok := errors.AsType[*imapwire.SyntaxError](err); ok {
		if err := r.r.Skip(); err != nil {
			return nil, wireErr(err)
		}
		tag := r.r.Tag
		if tag == "" {
			tag = "*"
		}
		return nil, &syntaxError{tag: tag, text: badCommandText}
	}
	return cmd, wireErr(err)
}

func (r *commandReader) parse() (*command, error) {
	if err := r.r.Next(r.br); err != nil {
		return nil, err
	}
	cmd := &command{tag: r.r.Tag, name: r.r.Name}
	invite := func(imapwire.Literal) error { return r.cont() }
	for !r.r.AtEnd() {
		if err := r.r.SP(); err != nil {
			return nil, err
		}
		arg, err := r.r.Astring(invite)
		if err != nil {
			return nil, err
		}
		cmd.args = append(cmd.args, arg)
	}
	return cmd, nil
}
