package upstream

// The wire format of the upstream client: reading server responses
// (RFC 9051 section 7) and encoding command arguments (section 4). Only what
// a login needs is parsed; everything else is read, bounded and passed over.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/imapwhy/imapwhy/diagnose"
)

const (
	// wireMaxLine bounds one response line; a login never needs more.
	wireMaxLine = 64 << 10
	// wireMaxResponse bounds one response with its literals (an ID reply,
	// say, may carry literals).
	wireMaxResponse = 256 << 10
	// wireMaxNonSyncLiteral is the largest literal LITERAL- allows without
	// a continuation request (RFC 7888 section 5).
	wireMaxNonSyncLiteral = 4096
)

// wireKind says what a response line is.
type wireKind int

const (
	wireUntagged     wireKind = iota // "* ..."
	wireTagged                       // "<tag> ..."
	wireContinuation                 // "+ ..."
)

// wireResponse is one server response.
type wireResponse struct {
	kind   wireKind
	tag    string            // for wireTagged
	name   string            // upper-case keyword: "OK", "NO", "BYE", "CAPABILITY", "EXISTS"...
	status diagnose.Response // set when name is a status (wireIsStatus)
	text   string            // what follows the keyword, or the continuation's text
	line   string            // the first line as received, without CRLF
}

// isStatus reports whether r is a status response (OK, NO, BAD, BYE, PREAUTH).
func (r wireResponse) isStatus() bool { return r.status.Status != "" }

// wireIsStatus reports whether name is a status response keyword.
func wireIsStatus(name string) bool {
	switch name {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// wireRead reads one response. Literals of data responses (such as an ID
// reply) are read and dropped; status responses and continuation requests
// carry none (their text is TEXT-CHAR only), so a text that happens to end
// in "{5}" is not mistaken for one.
func wireRead(br *bufio.Reader) (wireResponse, error) {
	line, err := wireReadLine(br, wireMaxLine)
	if err != nil {
		return wireResponse{}, err
	}
	r := wireParse(string(line))
	if r.isStatus() || r.kind == wireContinuation {
		return r, nil
	}
	budget := wireMaxResponse - len(line)
	for {
		n, ok := wireLiteralSize(line)
		if !ok {
			return r, nil
		}
		if n > budget {
			return wireResponse{}, &ProtocolError{what: "response literal over " + strconv.Itoa(wireMaxResponse) + " bytes"}
		}
		if _, err := br.Discard(n); err != nil {
			return wireResponse{}, wireEOF(err)
		}
		budget -= n
		if line, err = wireReadLine(br, min(wireMaxLine, budget)); err != nil {
			return wireResponse{}, err
		}
		budget -= len(line)
	}
}

// wireReadLine reads one line of at most limit bytes and returns it without
// its line ending (CRLF, or a bare LF from a lax server).
func wireReadLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, &ProtocolError{what: "response line over " + strconv.Itoa(limit) + " bytes"}
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// wireEOF turns an EOF inside a literal into io.ErrUnexpectedEOF.
func wireEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// wireLiteralSize reports whether line ends with a literal's announcement,
// "{n}" (or literal8's "~{n}"), and its size.
func wireLiteralSize(line []byte) (int, bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := line[open+1 : len(line)-1]
	if len(digits) == 0 || len(digits) > 10 {
		return 0, false
	}
	n, err := strconv.Atoi(string(digits))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// wireParse splits one response line into tag, keyword and text, and a
// status response further into code, code argument and text.
func wireParse(line string) wireResponse {
	r := wireResponse{line: line}
	tag, rest, _ := strings.Cut(line, " ")
	switch tag {
	case "+":
		r.kind = wireContinuation
		r.text = rest
		return r
	case "*":
		r.kind = wireUntagged
	default:
		r.kind = wireTagged
		r.tag = tag
	}
	name, rest, _ := strings.Cut(rest, " ")
	if r.kind == wireUntagged && wireIsNumber(name) { // "* 23 EXISTS"
		name, rest, _ = strings.Cut(rest, " ")
	}
	r.name = strings.ToUpper(name)
	r.text = rest
	if wireIsStatus(r.name) {
		r.status = wireStatus(r.kind == wireTagged, r.name, rest)
	}
	return r
}

// wireStatus parses resp-text: an optional "[CODE arg]" and the text.
func wireStatus(tagged bool, status, text string) diagnose.Response {
	resp := diagnose.Response{Tagged: tagged, Status: status}
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			code, arg, _ := strings.Cut(text[1:end], " ")
			resp.Code = strings.ToUpper(code)
			resp.CodeArg = arg
			text = strings.TrimPrefix(text[end+1:], " ")
		}
	}
	resp.Text = text
	return resp
}

// wireIsNumber reports whether s is a non-empty run of ASCII digits.
func wireIsNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// wireCaps splits a capability list, keeping the server's spelling: the
// post-login list goes to the client as the server wrote it.
func wireCaps(list string) []string { return strings.Fields(list) }

// wireUpper returns the capabilities upper-cased, for comparisons and the
// Observation (capability names are case-insensitive).
func wireUpper(caps []string) []string {
	up := make([]string, len(caps))
	for i, c := range caps {
		up[i] = strings.ToUpper(c)
	}
	return up
}

// wireCommand is a command ready to send. Its chunks are separated by the
// points where the server must first answer with a continuation request
// ("+"): after a synchronising literal's "{n}", and between AUTHENTICATE and
// the client's response.
type wireCommand struct {
	tag    string
	chunks [][]byte
	// cancel is sent when the server asks for more after the last chunk
	// (an AUTHENTICATE challenge the mechanism cannot answer); nil: such a
	// request breaks the protocol.
	cancel []byte
}

// wipe overwrites the command's bytes, which may hold credentials.
func (c *wireCommand) wipe() {
	for _, b := range c.chunks {
		clear(b)
	}
}

// wireEncoder builds a command argument by argument, each preceded by a
// space. Values go out as quoted strings or literals, never pasted in: the
// model is go-imap's internal imapwire.Encoder.
type wireEncoder struct {
	cmd wireCommand
	buf []byte
	// nonSync reports whether a literal of n bytes may be sent without
	// waiting for a continuation request (LITERAL+, or LITERAL- up to 4 KiB).
	nonSync func(n int) bool
	err     error
}

// errWireNUL: a literal (and so an IMAP string) cannot carry NUL (RFC 9051 CHAR8).
var errWireNUL = errors.New("a string argument contains NUL")

// wireNewCommand starts the command with the given tag and name.
func wireNewCommand(tag, name string, nonSync func(n int) bool) *wireEncoder {
	e := &wireEncoder{cmd: wireCommand{tag: tag}, nonSync: nonSync}
	e.buf = append(e.buf, tag...)
	return e.atom(name)
}

// atom appends a protocol keyword or a value already known to be atom-safe
// (a mechanism name, base64).
func (e *wireEncoder) atom(s string) *wireEncoder {
	e.buf = append(e.buf, ' ')
	e.buf = append(e.buf, s...)
	return e
}

// str appends s as a quoted string when it is printable 7-bit text, else as
// a literal (RFC 9051 section 4.3).
func (e *wireEncoder) str(s string) *wireEncoder {
	e.buf = append(e.buf, ' ')
	e.value(s)
	return e
}

// list appends a parenthesised list of strings.
func (e *wireEncoder) list(values ...string) *wireEncoder {
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

func (e *wireEncoder) value(s string) {
	if wireQuotable(s) {
		e.quoted(s)
	} else {
		e.literal(s)
	}
}

// wireQuotable reports whether s can go as a quoted string: printable
// US-ASCII only, so no CR, LF, NUL, other controls or 8-bit bytes.
func wireQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (e *wireEncoder) quoted(s string) {
	e.buf = append(e.buf, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			e.buf = append(e.buf, '\\')
		}
		e.buf = append(e.buf, s[i])
	}
	e.buf = append(e.buf, '"')
}

func (e *wireEncoder) literal(s string) {
	if strings.IndexByte(s, 0) >= 0 {
		e.err = errWireNUL
		return
	}
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

// respond ends the command line; line is sent once the server asks for it
// with a continuation request (AUTHENTICATE without SASL-IR).
func (e *wireEncoder) respond(line string) *wireEncoder {
	e.buf = append(e.buf, "\r\n"...)
	e.cut()
	e.buf = append(e.buf, line...)
	return e
}

// cancelWith sets the line that answers an unexpected further challenge.
func (e *wireEncoder) cancelWith(line string) *wireEncoder {
	e.cmd.cancel = []byte(line + "\r\n")
	return e
}

// cut ends the current chunk: the next one waits for a continuation request.
func (e *wireEncoder) cut() {
	e.cmd.chunks = append(e.cmd.chunks, e.buf)
	e.buf = nil
}

// finish ends the command with CRLF.
func (e *wireEncoder) finish() (wireCommand, error) {
	if e.err != nil {
		e.cmd.wipe()
		clear(e.buf)
		return wireCommand{}, e.err
	}
	e.buf = append(e.buf, "\r\n"...)
	e.cut()
	return e.cmd, nil
}
