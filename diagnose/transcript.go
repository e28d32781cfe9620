package diagnose

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// MaxTranscript is the largest transcript ParseTranscript reads (1 MiB).
const MaxTranscript = 1 << 20

// ErrTranscriptTooLarge is returned for input over MaxTranscript bytes.
var ErrTranscriptTooLarge = errors.New("transcript larger than 1 MiB")

// ErrNoServerLines is returned when a transcript has nothing the server said.
var ErrNoServerLines = errors.New("transcript has no server responses")

// ParseTranscript reads what a server sent during a failed login, as
// copied from a mail app's log or a terminal, and returns the Observation
// it describes (the caller sets Host and the like).
//
// Server lines are as on the wire ("* OK ... greeting", "* CAPABILITY ...",
// "* NO [WEBALERT url] ...", "a1 NO [ALERT] ..."), optionally prefixed
// "S: ". Lines starting "C: " are the client's: a LOGIN or AUTHENTICATE
// PLAIN/LOGIN gives the mechanism and the facts about the typed user name
// and password (the password itself is dropped at once). A line in
// parentheses is a note and is ignored. A line without a tag, such as
// "NO [AUTHENTICATIONFAILED] Invalid credentials" or just "LOGIN failed.",
// is taken as the tagged reply.
func ParseTranscript(r io.Reader) (Observation, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTranscript+1))
	if err != nil {
		return Observation{}, fmt.Errorf("read transcript: %w", err)
	}
	if len(data) > MaxTranscript {
		return Observation{}, ErrTranscriptTooLarge
	}
	p := newTranscriptParser()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxTranscript+1)
	for sc.Scan() {
		p.line(strings.ToValidUTF8(strings.TrimRight(sc.Text(), "\r"), "\uFFFD"))
	}
	if err := sc.Err(); err != nil {
		return Observation{}, fmt.Errorf("read transcript: %w", err)
	}
	return p.finish()
}

// transcriptParser accumulates an Observation line by line.
type transcriptParser struct {
	obs        Observation
	servers    int // server lines seen
	responses  []Response
	loginTag   string // tag of the client's LOGIN/AUTHENTICATE, if shown
	loginOK    int    // index in responses of the login's tagged OK, -1 if none
	client     clientState
	clientSeen bool // a client line came before
}

// clientState follows a client command across lines: literals, and SASL
// responses that come on lines of their own.
type clientState struct {
	command  string // a command waiting for its literal's data
	sasl     string // "PLAIN" or "LOGIN": waiting for SASL response lines
	gotUser  bool   // SASL LOGIN: the user name line was read
	saslUser string
}

func newTranscriptParser() *transcriptParser {
	return &transcriptParser{loginOK: -1}
}

func (p *transcriptParser) line(line string) {
	left := strings.TrimLeft(line, " \t")
	switch {
	case strings.TrimSpace(left) == "" || strings.HasPrefix(left, "("):
		return // blank, or a note
	case hasPrefixFold(left, "C:"):
		// Trailing space is kept: in a literal it is part of the password.
		p.clientLine(strings.TrimPrefix(left[2:], " "))
	case hasPrefixFold(left, "S:"):
		p.serverLine(strings.TrimSpace(left[2:]), false)
	default:
		appText := false
		if !strings.HasPrefix(left, "*") {
			unwrapped := unwrapClientText(left)
			appText = unwrapped == left // no server words found inside
			left = unwrapped
		}
		p.serverLine(strings.TrimSpace(left), appText)
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// serverLine records one line the server sent. appText: the line was
// pasted without "S:" and held no server words a wrapper quoted, so a line
// without a status word is the mail app's text.
func (p *transcriptParser) serverLine(line string, appText bool) {
	if line == "" {
		return
	}
	first := p.servers == 0
	p.servers++
	if first {
		if text, ok := otherLoginRefusal(line); ok {
			// A POP3 or SMTP login refusal pasted on its own: the same
			// account's login failing, not a server on the wrong port.
			line = "NO " + text
		} else if proto := notIMAP(line); proto != "" {
			p.obs.NotIMAP = proto
			p.obs.Greeting = line
			return
		}
	}
	if p.obs.NotIMAP != "" {
		return
	}
	if strings.HasPrefix(line, "+") {
		p.oauthChallenge(line)
		return // a continuation request
	}
	if strings.HasPrefix(line, "* ") || line == "*" {
		p.untagged(line, first)
		return
	}
	r, tag := parseTaggedOrBare(line)
	word, _ := cutWord(line)
	r.FromApp = appText && tag == "" && !imapwire.IsStatusName(strings.ToUpper(word))
	p.responses = append(p.responses, r)
	if r.Status == "OK" && p.isLoginOK(tag, r) {
		p.loginOK = len(p.responses) - 1
	}
	if r.Code == "CAPABILITY" && p.loginOK < 0 {
		p.setCapabilities(r.CodeArg)
	}
}

// untagged handles a "* ..." line.
func (p *transcriptParser) untagged(line string, first bool) {
	wr := imapwire.ParseResponse(line)
	status := wr.Name
	if !wr.IsStatus() {
		if status == "CAPABILITY" && p.loginOK < 0 {
			p.setCapabilities(wr.Text)
		}
		return
	}
	r := fromStatus(wr.Status)
	if first && !p.clientSeen && status != "BAD" && !strings.EqualFold(r.Code, ResponseCode) {
		// OK and PREAUTH greet; BYE (and NO, from servers that bend
		// RFC 3501) refuse the connection before any login.
		p.obs.Greeting = line
		if r.Code == "CAPABILITY" {
			p.setCapabilities(r.CodeArg)
		}
		if status == "OK" || status == "PREAUTH" {
			return
		}
	}
	p.responses = append(p.responses, r)
}

// isLoginOK reports whether a tagged OK answers the login. Without the
// client's lines, the wording tells ("Logged in", "AUTHENTICATE completed").
func (p *transcriptParser) isLoginOK(tag string, r Response) bool {
	if p.loginTag != "" {
		return tag == p.loginTag
	}
	return tag != "" && loginOKRE.MatchString(r.Text)
}

// setCapabilities records a capability list, up to a trailing note such
// as "(after STARTTLS)" (a capability is an atom and never has parentheses).
func (p *transcriptParser) setCapabilities(list string) {
	var caps []string
	for _, c := range strings.Fields(list) {
		if strings.ContainsAny(c, "()") {
			break
		}
		caps = append(caps, strings.ToUpper(c))
	}
	p.obs.Capabilities = caps
	p.obs.StartTLSOffered = hasCap(caps, "STARTTLS")
}

// notIMAP recognises a first line from another protocol.
func notIMAP(line string) string {
	switch {
	case strings.HasPrefix(line, "+OK"), strings.HasPrefix(line, "-ERR"):
		return "pop3"
	case smtpRE.MatchString(line) && !imapwire.IsStatusName(strings.ToUpper(secondWord(line))):
		return "smtp"
	case strings.HasPrefix(line, "HTTP/"), hasPrefixFold(line, "<!doctype"), hasPrefixFold(line, "<html"):
		return "http"
	}
	return ""
}

var smtpRE = regexp.MustCompile(`^[2-5][0-9][0-9]([ -]|$)`)

// smtpRefusalRE is an SMTP AUTH refusal: a 4xx or 5xx reply, with an
// enhanced status code perhaps ("535 5.7.8 Username and Password not
// accepted").
var smtpRefusalRE = regexp.MustCompile(`^[45][0-9][0-9][ -](?:[245]\.[0-9]{1,3}\.[0-9]{1,3} )?(.+)$`)

// otherLoginRefusal finds the text of a POP3 ("-ERR ...") or SMTP (5xx)
// refusal; a greeting ("+OK", "220") is no refusal.
func otherLoginRefusal(line string) (string, bool) {
	if rest, ok := strings.CutPrefix(line, "-ERR "); ok && strings.TrimSpace(rest) != "" {
		return strings.TrimSpace(rest), true
	}
	if m := smtpRefusalRE.FindStringSubmatch(line); m != nil && !imapwire.IsStatusName(strings.ToUpper(secondWord(line))) {
		return strings.TrimSpace(m[1]), true
	}
	return "", false
}

func secondWord(s string) string {
	_, rest := cutWord(s)
	w, _ := cutWord(rest)
	return w
}

// finish chooses the reply and the phase.
func (p *transcriptParser) finish() (Observation, error) {
	if p.servers == 0 {
		return Observation{}, ErrNoServerLines
	}
	o := p.obs
	if o.NotIMAP != "" {
		o.Phase = PhaseGreeting
		return o, nil
	}
	reply := p.chooseReply()
	switch {
	case p.loginOK >= 0 && reply < 0:
		o.Phase = PhaseAfterLogin
		o.LoginSucceeded = true
	case p.loginOK >= 0 && p.loginOK < reply:
		o.Phase = PhaseAfterLogin
	case reply >= 0 && afterLoginCommand(p.responses[reply].Text):
		o.Phase = PhaseAfterLogin
	case reply >= 0 || o.Mechanism != "":
		o.Phase = PhaseLogin
	case o.Greeting != "" || len(o.Capabilities) > 0:
		o.Phase = PhaseCapability
	default:
		o.Phase = PhaseGreeting
	}
	for i, r := range p.responses {
		switch {
		case i == reply:
			r := r
			o.Reply = &r
		case !r.Tagged:
			o.Untagged = append(o.Untagged, r)
		}
	}
	if rep, ok := reported(&o); ok && o.LoginSucceeded && rep.Notice {
		// imapwhy let the app into its notice mailbox: the real login
		// failed.
		o.LoginSucceeded = false
	}
	return o, nil
}

// chooseReply picks the response that ended the login: the last NO or BAD,
// else the last BYE, else the last OK with a response code that is not the
// login's own ("e OK [CONTACTADMIN]"). -1 if none.
func (p *transcriptParser) chooseReply() int {
	last := func(ok func(i int, r Response) bool) int {
		for i := len(p.responses) - 1; i >= 0; i-- {
			if ok(i, p.responses[i]) {
				return i
			}
		}
		return -1
	}
	if i := last(func(_ int, r Response) bool { return r.Tagged && (r.Status == "NO" || r.Status == "BAD") }); i >= 0 {
		return i
	}
	if i := last(func(_ int, r Response) bool { return r.Status == "BYE" }); i >= 0 {
		return i
	}
	return last(func(i int, r Response) bool {
		return r.Tagged && i != p.loginOK && r.Code != "" && r.Code != "CAPABILITY"
	})
}

// afterLoginCommand: some servers start the text with the command they
// refuse ("NO EXAMINE Unsafe Login"); a mailbox command means the login
// itself had worked.
func afterLoginCommand(text string) bool {
	word, _ := cutWord(text)
	switch strings.ToUpper(word) {
	case "SELECT", "EXAMINE", "FETCH", "LIST", "LSUB", "STATUS", "NAMESPACE", "APPEND", "UID",
		"SEARCH", "IDLE", "COPY", "MOVE", "STORE", "EXPUNGE", "CREATE", "DELETE", "RENAME",
		"SUBSCRIBE", "UNSUBSCRIBE", "CLOSE", "CHECK", "ENABLE":
		return true
	}
	return false
}
