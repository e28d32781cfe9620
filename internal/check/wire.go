package check

// What the check reads off the wire itself: the server's lines (recorded
// for the diagnosis), the greeting and the replies to CAPABILITY and
// STARTTLS before imapclient takes over.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/imapwhy/imapwhy/diagnose"
)

const (
	// maxLine bounds one line read before imapclient takes over, and one
	// recorded line (longer ones are cut).
	maxLine = 8 << 10
	// maxRecorded bounds the lines the recorder keeps (the last ones).
	maxRecorded = 256
	// maxResponses bounds the lines read while waiting for a tagged reply.
	maxResponses = 1000
	// maxShown bounds server text and errors shown to people, in runes.
	maxShown = 200
)

var (
	errLineTooLong = errors.New("line longer than 8 KiB")
	errNoReply     = errors.New("no tagged reply after 1000 lines")
)

// lineRecorder keeps the last lines the server sent. It only ever sees the
// server's side: the password goes the other way.
type lineRecorder struct {
	mu      sync.Mutex
	lines   []string // the last maxRecorded complete lines
	first   int      // number of lines dropped before lines[0]
	partial []byte   // the line being received, at most maxLine bytes
}

func newLineRecorder() *lineRecorder { return &lineRecorder{} }

// received adds bytes read from the server.
func (l *lineRecorder) received(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if room := maxLine - len(l.partial); room > 0 {
			l.partial = append(l.partial, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			return
		}
		l.lines = append(l.lines, strings.TrimSuffix(string(l.partial), "\r"))
		l.partial = l.partial[:0]
		if len(l.lines) > maxRecorded {
			l.lines = l.lines[1:]
			l.first++
		}
		b = b[i+1:]
	}
}

// mark is the number of complete lines received so far.
func (l *lineRecorder) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + len(l.lines)
}

// since returns the lines received after mark (those still kept).
func (l *lineRecorder) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := max(mark-l.first, 0)
	if i >= len(l.lines) {
		return nil
	}
	return append([]string(nil), l.lines[i:]...)
}

// recordingConn gives what it reads to a lineRecorder.
type recordingConn struct {
	net.Conn
	rec *lineRecorder
}

func (c recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.received(b[:n])
	return n, err
}

// replayConn reads from r (bytes already read off Conn, then Conn itself),
// and otherwise is Conn: how a connection changes hands without losing
// buffered bytes (go-imap's STARTTLS does the same).
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// readLine reads one line and returns it without its line end, and raw with
// it. Lines longer than maxLine are an error.
func readLine(br *bufio.Reader) (line string, raw []byte, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		raw = append(raw, chunk...)
		if len(raw) > maxLine {
			return "", nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(raw) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", nil, err
		}
		return strings.TrimRight(string(raw), "\r\n"), raw, nil
	}
}

// parseResponse parses a status response: untagged ("* OK [CODE arg]
// text") or tagged ("a1 NO ..."). ok is false for other lines (data such as
// "* CAPABILITY ...", continuation requests).
func parseResponse(line string) (r diagnose.Response, tag string, ok bool) {
	first, rest, _ := strings.Cut(line, " ")
	word, rest, _ := strings.Cut(rest, " ")
	status := strings.ToUpper(word)
	switch status {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
	default:
		return diagnose.Response{}, "", false
	}
	if first == "" || first == "+" {
		return diagnose.Response{}, "", false
	}
	r = diagnose.Response{Tagged: first != "*", Status: status}
	rest = strings.TrimLeft(rest, " ")
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			code, arg, _ := strings.Cut(rest[1:end], " ")
			r.Code, r.CodeArg = strings.ToUpper(code), strings.TrimSpace(arg)
			rest = strings.TrimLeft(rest[end+1:], " ")
		}
	}
	r.Text = rest
	if r.Tagged {
		tag = first
	}
	return r, tag, true
}

// capabilityList returns the capabilities of a "* CAPABILITY ..." line,
// upper case; ok is false for other lines.
func capabilityList(line string) ([]string, bool) {
	fields := strings.Fields(line)
	if len(fields) < 2 || fields[0] != "*" || !strings.EqualFold(fields[1], "CAPABILITY") {
		return nil, false
	}
	return upperAll(fields[2:]), true
}

func upperAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToUpper(x)
	}
	return out
}

// printable makes text from a server or an error safe to show on a
// terminal: one line, no control or format characters (a server could send
// escape sequences or bidirectional overrides), valid UTF-8, at most max
// runes.
func printable(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n := 0
	for _, c := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.In(c, unicode.Cc, unicode.Cf) || c == utf8.RuneError {
			c = '?'
		}
		b.WriteRune(c)
		n++
	}
	return b.String()
}
