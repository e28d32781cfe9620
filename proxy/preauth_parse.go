package proxy

// Reading client commands before login, with imapwire's CommandReader: the
// front end's limits (config.Limits MaxLine and MaxLiteral), and what a
// refusal looks like on the wire (BAD, NO [TOOBIG], BYE).

import (
	"errors"
	"fmt"

	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// frontCmd is the command being read.
type frontCmd struct {
	tag  string // "" until a valid tag was read
	name string // upper case

	r *imapwire.CommandReader // its arguments, read as the handler asks

	// credentials marks a command that carries a password: a synchronising
	// literal of it is refused, before the client sends it, on a connection
	// that is not private.
	credentials bool
}

// readCommand reads the first segment of a command and parses its tag and
// name. Errors are a *frontBad (answer BAD) or fatal.
func (f *front) readCommand() error {
	r := f.cur.r
	if r == nil {
		r = &imapwire.CommandReader{}
	}
	r.MaxLine, r.MaxLiteral = f.lim.MaxLine, f.lim.MaxLiteral
	f.cur = frontCmd{r: r}
	err := r.Next(f.br)
	f.cur.tag, f.cur.name = r.Tag, r.Name
	return f.wireErr(err)
}

// wireErr turns an error of the command reader into the front end's: a
// syntax error gets BAD, a line over MaxLine or a literal over MaxLiteral
// their answers.
func (f *front) wireErr(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*imapwire.SyntaxError](err); ok {
		return frontSyntax(se.Text)
	}
	if _, ok := errors.AsType[*imapwire.TooLongError](err); ok {
		return f.byeErr("Command line too long", errFrontLimit, "command line over %d bytes", f.lim.MaxLine)
	}
	if le, ok := errors.AsType[*imapwire.LiteralError](err); ok {
		return f.refuseLiteral(le.Literal)
	}
	return err
}

// readSegment reads one line of at most limit bytes (line end included),
// outside a command (an AUTHENTICATE response), and returns it without its
// line end, and the bytes consumed. The returned slice is valid until the
// next call. A longer line gets BYE.
func (f *front) readSegment(limit int) ([]byte, int, error) {
	line, raw, err := imapwire.ReadLine(f.br, f.line, limit)
	if _, ok := errors.AsType[*imapwire.TooLongError](err); ok {
		return nil, 0, f.byeErr("Command line too long", errFrontLimit, "command line over %d bytes", f.lim.MaxLine)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read command: %w", err)
	}
	f.line = raw
	return line, len(raw), nil
}

// skipCommand drops what is left of a command answered before its end, so
// that the next command starts on a line boundary (imapwire's Skip).
func (f *front) skipCommand() error {
	if f.cur.r == nil {
		return nil
	}
	return f.wireErr(f.cur.r.Skip())
}

// refuseLiteral answers a literal over the limits: a synchronising one was
// not sent yet, so the command is refused and the dialog goes on; a
// non-synchronising one is arriving regardless, so the client is told BYE.
func (f *front) refuseLiteral(lit imapwire.Literal) error {
	if lit.Sync {
		f.tagged("NO", "TOOBIG", "Literal too large")
		return errFrontAnswered
	}
	return f.byeErr("Literal too large", errFrontLimit, "non-synchronizing literal of %d bytes", lit.Size)
}

// inviteLiteral sends the continuation request for a synchronising
// literal, unless it would carry a password over a connection that is not
// private.
func (f *front) inviteLiteral(imapwire.Literal) error {
	if f.cur.credentials && !f.secure() {
		return f.refusePlaintext()
	}
	f.writeLine("+ Ready for literal data")
	return f.flush()
}

// The arguments of the current command (imapwire.CommandReader's), with
// the front end's errors.

func (f *front) argEnd() error       { return f.wireErr(f.cur.r.End()) }
func (f *front) argSP() error        { return f.wireErr(f.cur.r.SP()) }
func (f *front) argByte(c byte) bool { return f.cur.r.Byte(c) }

func (f *front) scan(ok func(byte) bool) string { return f.cur.r.Scan(ok) }

func (f *front) argNext() (bool, error) {
	more, err := f.cur.r.More()
	return more, f.wireErr(err)
}

func (f *front) argAtom() (string, error) {
	s, err := f.cur.r.Atom()
	return s, f.wireErr(err)
}

func (f *front) argAstring() (string, error) {
	s, err := f.cur.r.Astring(f.inviteLiteral)
	return s, f.wireErr(err)
}

func (f *front) argNString() (string, bool, error) {
	s, isNil, err := f.cur.r.NString(f.inviteLiteral)
	return s, isNil, f.wireErr(err)
}
