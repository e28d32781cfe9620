package check

// The server's lines as imapclient reads them (recorded for the
// diagnosis), and server text made fit to show.

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

const (
	// maxLine bounds one recorded line (longer ones are cut).
	maxLine = 8 << 10
	// maxRecorded bounds the lines the recorder keeps (the last ones).
	maxRecorded = 256
	// maxShown bounds server text and errors shown to people, in runes.
	maxShown = 200
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
