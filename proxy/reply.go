package proxy

// A refused login, once diagnosed: what the proxy tells the outside world
// about it (the OnRefusal hook, in the shape of httputil.ReverseProxy's
// ErrorHandler), its auth_failure event, and the one function that writes
// every refusal to the client (front.refuse).

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// Refusal is a login the proxy refused after trying it: the upstream's
// refusal diagnosed, or one of the proxy's own (rate limit, the shield,
// routing). Options.OnRefusal receives it before the client is answered.
type Refusal struct {
	Diagnosis diagnose.Diagnosis
	// Message is diagnose.Message(Diagnosis, Lang): the text of the NO.
	Message string
	// User is the user name as the client sent it, cleaned for the
	// outside (diagnose.CleanUsername). Never the password.
	User string
	// Client is the client's IP address, the zero Addr if not TCP.
	Client netip.Addr
	// Local is the address the client reached the proxy on.
	Local net.Addr
	// Lang is the language of the answer, "en" or "ja": the listener's,
	// or the one the client chose with LANGUAGE.
	Lang string
	// NoticeMailbox is the listener's notice_mailbox setting.
	NoticeMailbox bool
	// PasswordWorkedLast: the password given is the one the upstream
	// accepted last for this user (it matches the shield's verifier), so
	// the account or the provider changed, not the typing. Only then may
	// the login be answered with OK (Answer.Handoff); false without the
	// shield. Looked up only for a listener with NoticeMailbox.
	PasswordWorkedLast bool
	// Time is when the refusal was decided.
	Time time.Time
}

// Answer is what the client is told about a Refusal. The zero Answer is
// the plain "* OK [ALERT] Message" and "tag NO [code] Message".
type Answer struct {
	// Text replaces Refusal.Message in the ALERT and the NO; "" keeps it.
	Text string
	// Link, if set, ends the ALERT (and the NO when it fits in its
	// 200 characters), e.g. a page that explains the refusal.
	Link string
	// Handoff, if set, answers the login with OK instead of NO and gives
	// the connection to Handoff.Serve; the session ends with it. The proxy
	// ignores it (and answers NO) while it is shutting down, and unless
	// Refusal.PasswordWorkedLast: no OK for a password nobody checked.
	Handoff *Handoff
}

// Handoff takes over a connection whose login the proxy answered with
// "tag OK [CAPABILITY Capabilities...] Logged in" (after the ALERT).
type Handoff struct {
	Capabilities []string
	// Serve runs the rest of the session on conn; br holds what the client
	// sent after its login. The proxy closes conn when Serve returns, and
	// at Shutdown (a handed-off session is not drained). ctx is the one
	// OnRefusal got.
	Serve func(ctx context.Context, conn net.Conn, br *bufio.Reader) error
}

// refuse asks Options.OnRefusal what to answer a diagnosed failure, logs
// auth_failure, answers the client (front.refuse) and runs a Handoff. It
// reports whether the connection was handed off and the session is over.
func (ss *session) refuse(f *front, g *guard, d diagnose.Diagnosis, obs *diagnose.Observation, loginErr error, log *zerolog.Logger) bool {
	req := g.req
	lang := f.pageLanguage()
	// The server's words go to the hook too: without the secret, in any
	// form the proxy sent it.
	d.Detail = redactPassword(d.Detail, req, g.user)
	r := Refusal{
		Diagnosis: d, Message: diagnose.Message(d, lang), User: diagnose.CleanUsername(req.Username),
		Client: ss.addr, Local: ss.localAddr(), Lang: lang,
		NoticeMailbox: ss.st.cfg.NoticeMailbox, Time: time.Now(),
	}
	if r.NoticeMailbox {
		r.PasswordWorkedLast = g.lastWorked()
	}
	ctx := log.WithContext(context.Background())
	var ans Answer
	if hook := ss.srv.opts.OnRefusal; hook != nil {
		ans = hook(ctx, r)
	}
	if ans.Handoff != nil && (!r.PasswordWorkedLast || !ss.beginHandoff()) {
		ans.Handoff = nil // an unchecked password, or shutting down: a NO
	}
	logLocalFailure(obs, redactPassword(loginErr.Error(), req, g.user), log)
	// The event is written before the answer, so that whoever reads the
	// NO can rely on the log already holding its cause.
	ev := log.Info().Str("event", "auth_failure").
		Str("cause", string(d.Cause)).Str("code", d.Code).
		Str("confidence", string(d.Confidence)).Bool("temporary", d.Temporary).
		Str("user", r.User).Str("mechanism", req.Mechanism).
		Str("upstream", upstreamName(obs)).Str("provider", d.Provider).
		Str("phase", string(obs.Phase))
	if d.Alternative != "" {
		ev = ev.Str("alternative", string(d.Alternative))
	}
	if obs.NetError != diagnose.NetOK {
		ev = ev.Str("net_error", string(obs.NetError))
	}
	if d.Detail != "" {
		ev = ev.Str("detail", d.Detail)
	}
	if g.held {
		ev = ev.Bool("held", true).Int("repeated_failures", obs.History.RepeatedFailures)
	}
	if g.failureDelay > 0 {
		ev = ev.Dur("failure_delay", g.failureDelay)
	}
	ev = logOAuth(ev, obs.OAuth)
	ev = logClientApp(ev, f)
	ev.Bool("incident_page", ans.Link != "").Bool("notice", ans.Handoff != nil).
		Str("error", loginErr.Error()).Msg("login failed")

	rep := reply{tag: req.Tag, code: d.Code, text: r.Message, link: ans.Link}
	// Clients retry on the same connection (LOGIN after AUTHENTICATE
	// PLAIN, neomutt's three tries): the same diagnosis for the same
	// password gets the ALERT once; later refusals carry the NO only.
	rep.noAlert = f.alerted.seen(string(d.Cause)+"\x00"+r.Message, req.Password) && ans.Handoff == nil
	if ans.Text != "" {
		rep.text = ans.Text
	}
	if wire := f.language(); wire != lang && !isASCII(rep.text) {
		// The client did not ask for UTF-8: the ASCII message, with the
		// link to the page in the listener's language.
		rep.text = diagnose.Message(d, wire)
	}
	if ans.Handoff != nil {
		rep.loggedIn = append([]string{}, ans.Handoff.Capabilities...)
	}
	rep.report = d.Report(ans.Handoff != nil)
	if err := f.refuse(rep); err != nil {
		log.Debug().Err(err).Msg("writing the answer failed")
	}
	if ans.Handoff == nil {
		return false
	}
	if err := ans.Handoff.Serve(ctx, f.conn(), f.reader()); err != nil {
		log.Debug().Err(err).Msg("handed-off session ended with an error")
	}
	f.conn().Close()
	return true
}

// frontValidCodeArgs: s can stand inside a response code's brackets as
// it is (printable ASCII, no brackets).
func frontValidCodeArgs(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '[' || c == ']' {
			return false
		}
	}
	return true
}

// isASCII reports whether s is 7-bit.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// beginHandoff marks the session handed off, so that Shutdown closes its
// connection instead of draining it (interruptPreAuth); false when
// Shutdown has begun already.
func (ss *session) beginHandoff() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopping {
		return false
	}
	ss.handedOff = true
	return true
}

// logLocalFailure tells the admin, at error level, that the proxy itself
// could not open or use the upstream connection (out of file descriptors,
// memory or ephemeral ports): the mail app only hears of a temporary
// failure, and the fix is on this computer. errText is the login error
// without the secret.
func logLocalFailure(obs *diagnose.Observation, errText string, log *zerolog.Logger) {
	if obs.NetError != diagnose.NetLocal {
		return
	}
	log.Error().Str("event", "upstream_dial_local_error").
		Str("upstream", upstreamName(obs)).Str("phase", string(obs.Phase)).Str("error", errText).
		Msg("imapwhy could not open the upstream connection: this computer is short of file descriptors, memory or ephemeral ports (see error); the mail app was told of a temporary failure")
}

// upstreamName is host:port of the upstream as observed, "" if none was chosen.
func upstreamName(obs *diagnose.Observation) string {
	if obs.Host == "" {
		return ""
	}
	return net.JoinHostPort(obs.Host, strconv.Itoa(obs.Port))
}

// logClientApp adds the client's software, as its ID command named it, to
// a login's event.
func logClientApp(ev *zerolog.Event, f *front) *zerolog.Event {
	if app := f.clientApp(); app != "" {
		return ev.Str("client_app", app)
	}
	return ev
}

// reply is what a refused client is told. With a tag: "* OK [ALERT] text
// link" and "tag NO [code] text" (or, with loggedIn set, "tag OK
// [CAPABILITY ...] Logged in"); without: "* BYE text".
type reply struct {
	tag, code string
	text      string
	link      string   // ends the ALERT; the NO too when it fits
	loggedIn  []string // non-nil: answer the login with OK and these capabilities
	noAlert   bool     // this connection was shown this ALERT already: the NO only
	// report, if set, is the diagnosis for programs: an untagged
	// "* OK [X-IMAPWHY report] ..." that mail apps ignore (unknown code).
	report string
}

// alertMemory remembers, for one connection, which diagnosis was shown
// in an ALERT for which password: a keyed hash of both under a key of
// its own (random, per connection), never the password.
type alertMemory struct {
	key   []byte
	shown map[[sha256.Size]byte]bool
}

// seen records diagnosis and password, and reports whether they were
// recorded before.
func (m *alertMemory) seen(diagnosis, password string) bool {
	if m.key == nil {
		m.key = make([]byte, 32)
		rand.Read(m.key)
		m.shown = map[[sha256.Size]byte]bool{}
	}
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(diagnosis))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var k [sha256.Size]byte
	copy(k[:], mac.Sum(nil))
	if m.shown[k] {
		return true
	}
	m.shown[k] = true
	return false
}

// refuse writes r and flushes: the one place that answers a refusal, from
// the front end's own limits to a diagnosed upstream refusal (RFC 9051
// §7.1: clients must show ALERT text to the user). Texts are sanitised to
// frontMaxText runes; a code that is not an atom is left out.
func (f *front) refuse(r reply) error {
	if r.tag == "" {
		f.writeLine("* BYE ", frontRespText(r.text, "Closing connection"))
		return f.flush()
	}
	if !imapwire.IsTag(r.tag) {
		return fmt.Errorf("refuse: invalid tag %q", r.tag)
	}
	text := frontRespText(r.text, "Login failed")
	alert, no := text, text
	if link := sanitizeText(r.link, frontMaxText); link != "" {
		alert = text + " " + link
		if utf8.RuneCountInString(alert) <= frontMaxText {
			no = alert
		}
	}
	if r.report != "" && frontValidCodeArgs(r.report) {
		f.writeLine("* OK [", diagnose.ResponseCode, " ", r.report, "] ", diagnose.ReportText)
	}
	if !r.noAlert || r.loggedIn != nil {
		f.writeLine("* OK [ALERT] ", alert)
	}
	if r.loggedIn != nil {
		return f.loggedIn(r.tag, r.loggedIn)
	}
	f.failures++
	f.writeLine(r.tag, " NO ", frontCode(r.code), no)
	return f.flush()
}

// loggedIn answers a successful login: "tag OK [CAPABILITY caps...] Logged in".
// Capabilities that are not atoms are dropped.
func (f *front) loggedIn(tag string, caps []string) error {
	if !imapwire.IsTag(tag) {
		return fmt.Errorf("logged in: invalid tag %q", tag)
	}
	valid := make([]string, 0, len(caps))
	for _, c := range caps {
		if imapwire.IsAtom(c) {
			valid = append(valid, c)
		}
	}
	code := ""
	if len(valid) > 0 {
		code = "CAPABILITY " + strings.Join(valid, " ")
	}
	f.writeLine(tag, " OK ", frontCode(code), "Logged in")
	return f.flush()
}

// bye writes "* BYE text" (sanitised) and flushes.
func (f *front) bye(text string) error { return f.refuse(reply{text: text}) }
