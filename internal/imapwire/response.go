package imapwire

// Reading server responses (RFC 9051 section 7): only what a login needs
// is parsed; everything else is read, bounded and passed over.

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Kind says what a response line is.
type Kind int

const (
	Untagged     Kind = iota // "* ..."
	Tagged                   // "<tag> ..."
	Continuation             // "+ ..."
)

// Status is the resp-text of a status response: "[CODE arg] text".
type Status struct {
	Type    imap.StatusResponseType // OK, NO, BAD, BYE or PREAUTH
	Code    imap.ResponseCode       // upper case, "" if none
	CodeArg string                  // what follows the code's name, trimmed
	Text    string
}

// Response is one server response.
type Response struct {
	Kind   Kind
	Tag    string // for Tagged
	Name   string // upper-case keyword: "OK", "NO", "BYE", "CAPABILITY", "EXISTS"...
	Status Status // set when Name is a status (IsStatus)
	Text   string // what follows the keyword, or the continuation's text
	Line   string // the first line as received, without its line end
}

// IsStatus reports whether r is a status response (OK, NO, BAD, BYE, PREAUTH).
func (r Response) IsStatus() bool { return r.Status.Type != "" }

// IsStatusName reports whether name (upper case) is a status response keyword.
func IsStatusName(name string) bool {
	switch imap.StatusResponseType(name) {
	case imap.StatusResponseTypeOK, imap.StatusResponseTypeNo, imap.StatusResponseTypeBad,
		imap.StatusResponseTypeBye, imap.StatusResponseTypePreAuth:
		return true
	}
	return false
}

// ParseResponse splits one response line into tag, keyword and text, and a
// status response further into code, code argument and text. Runs of
// spaces count as one. A number before the keyword of an untagged
// response ("* 23 EXISTS") is passed over.
func ParseResponse(line string) Response {
	r := Response{Line: line}
	tag, rest := cutWord(line)
	switch tag {
	case "+":
		r.Kind = Continuation
		r.Text = rest
		return r
	case "*":
		r.Kind = Untagged
	default:
		r.Kind = Tagged
		r.Tag = tag
	}
	name, rest := cutWord(rest)
	if r.Kind == Untagged && isNumber(name) {
		name, rest = cutWord(rest)
	}
	r.Name = strings.ToUpper(name)
	r.Text = rest
	if IsStatusName(r.Name) {
		r.Status = ParseStatus(r.Name, rest)
	}
	return r
}

// ParseStatus parses what follows a status keyword: an optional
// "[CODE arg]" and the text.
func ParseStatus(status, text string) Status {
	s := Status{Type: imap.StatusResponseType(status)}
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			code, arg := cutWord(text[1:end])
			s.Code = imap.ResponseCode(strings.ToUpper(code))
			s.CodeArg = strings.TrimSpace(arg)
			text = strings.TrimLeft(text[end+1:], " ")
		}
	}
	s.Text = text
	return s
}

// Caps splits a capability list, keeping the server's spelling (the
// post-login list goes to the client as the server wrote it).
func Caps(list string) []string { return strings.Fields(list) }

// Upper returns the capabilities upper-cased, for comparisons (capability
// names are case-insensitive).
func Upper(caps []string) []string {
	up := make([]string, len(caps))
	for i, c := range caps {
		up[i] = strings.ToUpper(c)
	}
	return up
}

// ResponseLimits bound what ReadResponse reads.
type ResponseLimits struct {
	MaxLine     int // one line, line end included
	MaxResponse int // one response with its literals
}

// ReadResponse reads one response. Literals of data responses (such as an
// ID reply) are read and dropped; status responses and continuation
// requests carry none (their text is TEXT-CHAR only), so a text that
// happens to end in "{5}" is not mistaken for one. Errors: *TooLongError,
// io.ErrUnexpectedEOF inside a response, or the reader's.
func ReadResponse(br *bufio.Reader, lim ResponseLimits) (Response, error) {
	line, raw, err := ReadLine(br, nil, lim.MaxLine)
	if err != nil {
		return Response{}, err
	}
	r := ParseResponse(string(line))
	if r.IsStatus() || r.Kind == Continuation {
		return r, nil
	}
	budget := int64(lim.MaxResponse - len(raw))
	for {
		_, lit, ok := SplitLiteral(line)
		if !ok {
			return r, nil
		}
		if lit.Size > budget {
			return Response{}, &TooLongError{What: "response with its literals", Limit: int64(lim.MaxResponse)}
		}
		if _, err := br.Discard(int(lit.Size)); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Response{}, err
		}
		budget -= lit.Size
		if line, raw, err = ReadLine(br, raw, int(min(int64(lim.MaxLine), budget))); err != nil {
			return Response{}, err
		}
		budget -= int64(len(raw))
	}
}

// cutWord splits off the first space-separated word; runs of spaces count
// as one.
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], strings.TrimLeft(s[i+1:], " ")
	}
	return s, ""
}

// isNumber reports whether s is a non-empty run of ASCII digits.
func isNumber(s string) bool {
	return s != "" && all(s, func(c byte) bool { return c >= '0' && c <= '9' })
}
