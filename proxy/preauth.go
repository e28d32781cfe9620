package proxy

// The pre-auth front end: our own small IMAP server state machine for the
// not-authenticated state (RFC 9051 §6.1, §6.2; RFC 3501 for IMAP4rev1
// clients). It owns the client connection and its bufio.Reader so that, once
// a login arrives, the caller can log in upstream and splice the very same
// connection with nothing lost: bytes the client pipelined after LOGIN stay in
// reader(). go-imap's imapserver cannot do this.
//
// Files: preauth.go (state machine, replies), reply.go (the answer to a
// refused login, loggedIn, bye), preauth_parse.go (command
// reader and argument parser), preauth_login.go (LOGIN, AUTHENTICATE PLAIN),
// preauth_starttls.go, preauth_id.go (ID, LANGUAGE), preauth_text.go (text
// sanitising and the front end's own user texts).

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"unsafe"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// frontConfig is how one listener's connections are served before login.
type frontConfig struct {
	TLSConfig *tls.Config   // non-nil: STARTTLS offered (plain listener); nil: implicit TLS or tls:none
	Secure    bool          // connection already private (implicit TLS, or loopback tls:none): LOGIN allowed
	Limits    config.Limits // zero fields take config's defaults
	Language  string        // "ja"|"en": default language of messages
	OAuth     bool          // advertise AUTH=XOAUTH2 and AUTH=OAUTHBEARER once private
}

// loginRequest is a complete login received from the client. The password
// must never be logged or stored: use it for the upstream login and forget it.
type loginRequest struct {
	Tag       string
	Mechanism string // "LOGIN", "PLAIN", "XOAUTH2" or "OAUTHBEARER"
	Username  string
	Password  string // the password, or for XOAUTH2 and OAUTHBEARER the bearer token
	Authzid   string // PLAIN authorization identity, "" normally
	// bridged is the access token the OAuth bridge got for this password
	// login ("" when it did not): masked like the password.
	bridged string
	// secret holds the bytes Password is a view of (no copy), for wipe;
	// nil for a bearer token.
	secret *[]byte
}

// setPassword makes b, which the request now owns, its password.
func (r *loginRequest) setPassword(b []byte) {
	r.secret = &b
	r.Password = unsafe.String(unsafe.SliceData(b), len(b))
}

// wipe overwrites the password's bytes once the login is over: the
// session may last for days. Nothing may use Password afterwards.
func (r *loginRequest) wipe() {
	if r.secret != nil {
		clear(*r.secret)
		r.secret = nil
	}
	r.Password = ""
}

// errLogout is returned by next after the client's LOGOUT was answered.
var errLogout = errors.New("client logged out")

// Classes of the other errors next returns. A BYE has been sent for both.
var (
	// errFrontLimit: the client went past one of config.Limits.
	errFrontLimit = errors.New("pre-auth limit exceeded")
	// errFrontProtocol: the client did something that cannot be answered
	// safely, such as pipelining data after STARTTLS.
	errFrontProtocol = errors.New("pre-auth protocol violation")
)

// errFrontAnswered tells the dispatcher that a command was refused by a
// tagged reply written deep inside argument parsing (a literal that is too
// big, or credentials about to be sent in the clear). next never returns it.
var errFrontAnswered = errors.New("command already answered")

// frontMaxText bounds the runes of any text the front end puts on a line.
const frontMaxText = 200

// front is one client connection before login. It is not safe for
// concurrent use.
type front struct {
	c   net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	cfg frontConfig
	lim config.Limits // cfg.Limits with defaults filled in

	tlsActive bool              // STARTTLS completed
	lang      string            // "en" or "ja": the listener's, or the one the client chose
	langAsked bool              // the client chose lang with LANGUAGE: it reads UTF-8 text in it
	id        map[string]string // the client's ID fields, nil if none

	greeted  bool
	commands int         // command lines read
	bads     int         // BAD replies sent
	failures int         // failed or refused logins
	alerted  alertMemory // diagnoses already shown in an ALERT (reply.go)

	cur  frontCmd // the command being parsed
	line []byte   // reused buffer for command segments
	err  error    // sticky: set once next has failed
}

// newFront prepares the front end for conn. Nothing is written until the
// first call to next.
func newFront(conn net.Conn, cfg frontConfig) *front {
	lang := cfg.Language
	if lang != "ja" {
		lang = "en"
	}
	cfg.Language = lang
	return &front{
		c:    conn,
		br:   bufio.NewReader(conn),
		bw:   bufio.NewWriter(conn),
		cfg:  cfg,
		lim:  frontLimits(cfg.Limits),
		lang: lang,
	}
}

// frontLimits fills the unset (zero or negative) fields of l from config's
// defaults, so that a zero frontConfig is still bounded.
func frontLimits(l config.Limits) config.Limits {
	if l.MaxLine > 0 && l.MaxLiteral > 0 && l.MaxCommands > 0 && l.MaxBadCommands > 0 && l.MaxLoginTries > 0 {
		return l
	}
	d := config.Default().Limits
	set := func(p *int, def int) {
		if *p <= 0 {
			*p = def
		}
	}
	set(&l.MaxLine, d.MaxLine)
	set(&l.MaxLiteral, d.MaxLiteral)
	set(&l.MaxCommands, d.MaxCommands)
	set(&l.MaxBadCommands, d.MaxBadCommands)
	set(&l.MaxLoginTries, d.MaxLoginTries)
	return l
}

// next runs the pre-auth dialog (greeting on the first call, CAPABILITY,
// NOOP, ID, LANGUAGE, STARTTLS, LOGOUT, LOGIN, AUTHENTICATE PLAIN) until a
// complete login arrives. It returns errLogout after the client's LOGOUT was
// answered; other errors after a BYE was sent where possible. Before TLS,
// LOGIN and AUTHENTICATE are refused with NO [PRIVACYREQUIRED] here and the
// dialog goes on. After fail, next may be called again for the client's
// retry.
func (f *front) next() (*loginRequest, error) {
	if f.err != nil {
		return nil, f.err
	}
	req, err := f.run()
	if err != nil {
		f.err = err
		return nil, err
	}
	return req, nil
}

func (f *front) run() (*loginRequest, error) {
	if !f.greeted {
		f.greeted = true
		f.writeLine("* OK [CAPABILITY ", strings.Join(f.capabilities(), " "), "] imapwhy ready.")
		if err := f.flush(); err != nil {
			return nil, err
		}
	}
	for {
		if f.failures >= f.lim.MaxLoginTries {
			return nil, f.byeErr(f.text(frontMsgTooManyLogins), errFrontLimit, "%d failed logins", f.failures)
		}
		if f.commands >= f.lim.MaxCommands {
			return nil, f.byeErr("Too many commands before login", errFrontLimit, "%d commands", f.commands)
		}
		req, err := f.step()
		if err != nil || req != nil {
			return req, err
		}
	}
}

// frontCommands maps command names to their handlers. A handler returns a
// login request, nil to go on, or an error: a *frontBad is answered with BAD,
// errFrontAnswered was answered already, anything else ends the dialog.
var frontCommands = map[string]func(*front) (*loginRequest, error){
	"CAPABILITY":   (*front).cmdCapability,
	"NOOP":         (*front).cmdNoop,
	"LOGOUT":       (*front).cmdLogout,
	"ID":           (*front).cmdID,
	"LANGUAGE":     (*front).cmdLanguage,
	"STARTTLS":     (*front).cmdStartTLS,
	"LOGIN":        (*front).cmdLogin,
	"AUTHENTICATE": (*front).cmdAuthenticate,
}

// step reads and answers one command.
func (f *front) step() (*loginRequest, error) {
	f.commands++
	req, err := f.dispatch()
	var bad *frontBad
	switch {
	case err == nil:
		return req, f.flush()
	case errors.As(err, &bad):
		if err := f.skipCommand(); err != nil {
			return nil, err
		}
		return nil, f.badReply(bad)
	case errors.Is(err, errFrontAnswered):
		if err := f.skipCommand(); err != nil {
			return nil, err
		}
		return nil, f.flush()
	default:
		return nil, err
	}
}

// dispatch reads a command and runs its handler.
func (f *front) dispatch() (*loginRequest, error) {
	if err := f.readCommand(); err != nil {
		return nil, err
	}
	handler, ok := frontCommands[f.cur.name]
	if !ok {
		return nil, &frontBad{text: "Unknown command or not valid before login"}
	}
	return handler(f)
}

func (f *front) cmdCapability() (*loginRequest, error) {
	if err := f.argEnd(); err != nil {
		return nil, err
	}
	f.writeLine("* CAPABILITY ", strings.Join(f.capabilities(), " "))
	f.tagged("OK", "", "CAPABILITY completed")
	return nil, nil
}

func (f *front) cmdNoop() (*loginRequest, error) {
	if err := f.argEnd(); err != nil {
		return nil, err
	}
	f.tagged("OK", "", "NOOP completed")
	return nil, nil
}

func (f *front) cmdLogout() (*loginRequest, error) {
	if err := f.argEnd(); err != nil {
		return nil, err
	}
	f.writeLine("* BYE Logging out")
	f.tagged("OK", "", "LOGOUT completed")
	if err := f.flush(); err != nil {
		return nil, err
	}
	return nil, errLogout
}

// capabilities lists what the client may use now (RFC 9051 §7.2.2). Before
// TLS on a plain listener the client learns that it must start TLS and that
// LOGIN is disabled (RFC 9051 §6.2.3); AUTH=PLAIN only once the connection is
// private, and the OAuth mechanisms then too when the upstream takes them.
func (f *front) capabilities() []string {
	caps := []string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "LANGUAGE"}
	if f.cfg.TLSConfig != nil && !f.tlsActive {
		caps = append(caps, "STARTTLS")
	}
	if f.secure() {
		caps = append(caps, "AUTH=PLAIN")
		if f.cfg.OAuth {
			caps = append(caps, "AUTH=XOAUTH2", "AUTH=OAUTHBEARER")
		}
		return caps
	}
	return append(caps, "LOGINDISABLED")
}

// secure reports whether credentials may be received on this connection.
func (f *front) secure() bool { return f.cfg.Secure || f.tlsActive }

// conn is the current connection: the *tls.Conn after STARTTLS.
func (f *front) conn() net.Conn { return f.c }

// reader holds the bytes the client pipelined after its login.
func (f *front) reader() *bufio.Reader { return f.br }

// language is the language of texts on the wire: the one negotiated with
// LANGUAGE, else English.
func (f *front) language() string {
	if f.langAsked {
		return f.lang
	}
	// Response text is 7-bit until the client has agreed to UTF-8 (RFC
	// 3501; RFC 5255 LANGUAGE): a client that did not ask reads Japanese
	// as garbage, so it gets English, which is ASCII.
	return "en"
}

// pageLanguage is the language of what the client is pointed to (incident
// pages, the notice mailbox): the listener's, or the one the client chose.
func (f *front) pageLanguage() string { return f.lang }

// clientApp names the client's software from its ID fields ("name
// version", each bounded to frontMaxIDLogged runes), "" without ID.
func (f *front) clientApp() string {
	name := sanitizeText(f.id["name"], frontMaxIDLogged)
	if v := sanitizeText(f.id["version"], frontMaxIDLogged); v != "" {
		return strings.TrimSpace(name + " " + v)
	}
	return name
}

// byeErr says BYE and returns class wrapped with the formatted detail.
func (f *front) byeErr(text string, class error, format string, args ...any) error {
	err := fmt.Errorf("%w: %s", class, fmt.Sprintf(format, args...))
	if werr := f.bye(text); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// frontBad is a command the client got wrong: it is answered with a tagged
// (or, without a usable tag, untagged) BAD and the dialog goes on.
type frontBad struct {
	code string // RFC 5530 response code or ""
	text string
}

func (e *frontBad) Error() string { return "bad command: " + e.text }

// frontSyntax is a syntax error in the current command (RFC 5530 CLIENTBUG).
func frontSyntax(text string) error { return &frontBad{code: "CLIENTBUG", text: text} }

// badReply answers the current command with BAD; after MaxBadCommands of
// them the client is told BYE.
func (f *front) badReply(bad *frontBad) error {
	f.bads++
	tag := f.cur.tag
	if tag == "" {
		tag = "*"
	}
	f.writeLine(tag, " BAD ", frontCode(bad.code), bad.text)
	if f.bads >= f.lim.MaxBadCommands {
		return f.byeErr("Too many invalid commands", errFrontLimit, "%d invalid commands", f.bads)
	}
	return f.flush()
}

// tagged writes the tagged completion of the current command.
func (f *front) tagged(status, code, text string) {
	f.writeLine(f.cur.tag, " ", status, " ", frontCode(code), text)
}

// writeLine buffers the parts and CRLF. Write errors stick in the
// bufio.Writer and surface at flush.
func (f *front) writeLine(parts ...string) {
	for _, p := range parts {
		f.bw.WriteString(p)
	}
	f.bw.WriteString("\r\n")
}

func (f *front) flush() error {
	if err := f.bw.Flush(); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

// frontCode renders "[code] " for a response code that is an atom with
// optional atom arguments, and "" otherwise.
func frontCode(code string) string {
	if code == "" {
		return ""
	}
	for _, w := range strings.Split(code, " ") {
		if !imapwire.IsAtom(w) {
			return ""
		}
	}
	return "[" + code + "] "
}
