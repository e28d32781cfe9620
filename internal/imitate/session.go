package imitate

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// Bounds of the pre-login dialog.
const (
	preLoginTimeout = 60 * time.Second // from accept to a successful login
	writeTimeout    = 10 * time.Second // for each reply
	maxCommands     = 50               // commands before login, then BYE
	maxBad          = 5                // BAD replies before login, then BYE
)

var (
	// errLogout ends a connection after the client's LOGOUT was answered.
	errLogout = errors.New("imitate: client logged out")
	// errTooMany ends a connection that sent too many (bad) commands.
	errTooMany = errors.New("imitate: too many commands before login")
)

// loginSession is the scripted dialog before login: the provider's
// greeting, CAPABILITY, NOOP, ID, LOGOUT, LOGIN and AUTHENTICATE PLAIN,
// answered with the provider's texts. go-imap's imapserver cannot do this
// part: it writes its own greeting ("* OK [CAPABILITY ...] IMAP server
// ready"), computes its own capability list, and cannot send an untagged
// line (Gmail's WEBALERT) before a tagged NO.
type loginSession struct {
	p      *Provider
	texts  sessionTexts
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	cr     commandReader
	client string // the client's IP address, for the greeting
	bad    int
	// notConnected: the login succeeded into a Scenario.NotConnected.
	notConnected bool
}

func newLoginSession(s *Server, c net.Conn) *loginSession {
	ls := &loginSession{
		p:     &s.p,
		texts: s.p.sessionTexts(),
		conn:  c,
		br:    bufio.NewReader(c),
		bw:    bufio.NewWriter(c),
	}
	ls.client, _, _ = net.SplitHostPort(c.RemoteAddr().String())
	ls.cr = commandReader{br: ls.br, cont: func() error { return ls.send(ls.texts.literal) }}
	return ls
}

// run greets the client and answers commands until a login succeeds; it
// then returns the user name. Otherwise it returns why the dialog ended:
// errLogout, errTooMany, errLineTooLong or an I/O error.
func (ls *loginSession) run() (string, error) {
	ls.conn.SetDeadline(time.Now().Add(preLoginTimeout))
	greeting := strings.ReplaceAll(ls.p.Greeting, "{client}", ls.client)
	if err := ls.send(greeting); err != nil {
		return "", err
	}
	for n := 0; ; n++ {
		if n == maxCommands {
			return "", ls.bye("Too many commands before login.", errTooMany)
		}
		cmd, err := ls.cr.read()
		var se *syntaxError
		switch {
		case errors.As(err, &se):
			err = ls.badReply(se.tag, se.text)
		case errors.Is(err, errLineTooLong):
			return "", ls.bye("Command line too long.", err)
		case err == nil:
			var user string
			if user, err = ls.handle(cmd); err == nil && user != "" {
				return user, nil
			}
		}
		if err != nil {
			return "", err
		}
	}
}

// handle answers one command. It returns the user name after a successful
// login, "" otherwise.
func (ls *loginSession) handle(cmd *command) (string, error) {
	t := ls.texts
	switch cmd.name {
	case "CAPABILITY":
		return "", ls.send("* CAPABILITY "+strings.Join(ls.p.Capabilities, " "), cmd.tag+" "+ls.p.CapabilityOK)
	case "NOOP":
		return "", ls.send(cmd.tag + " " + t.noop)
	case "ID":
		if !slices.Contains(ls.p.Capabilities, "ID") {
			return "", ls.badReply(cmd.tag, "Unknown command.")
		}
		return "", ls.send(t.id, cmd.tag+" "+t.idOK)
	case "LOGOUT":
		if err := ls.send(t.logoutBye, cmd.tag+" "+t.logout); err != nil {
			return "", err
		}
		return "", errLogout
	case "LOGIN":
		if len(cmd.args) != 2 {
			return "", ls.badReply(cmd.tag, "LOGIN needs a user name and a password.")
		}
		return ls.login(cmd.tag, cmd.args[0], cmd.args[1], "LOGIN")
	case "AUTHENTICATE":
		return ls.authenticate(cmd)
	}
	// STARTTLS included: the connection is already TLS.
	return "", ls.badReply(cmd.tag, "Unknown command or not allowed before login.")
}

// login answers a login with the scenario it reaches.
func (ls *loginSession) login(tag, user, password, mech string) (string, error) {
	sc := ls.p.decide(user, password, mech)
	lines := append([]string(nil), sc.Untagged...)
	reply := strings.ReplaceAll(sc.ReplyFor(mech), "{user}", sanitize(user))
	if sc.Challenge != "" {
		// The error challenge; the client's answer (an empty line,
		// or a lone ^A) is read and not judged.
		if err := ls.send("+ " + sc.Challenge); err != nil {
			return "", err
		}
		if _, err := readLine(ls.br); err != nil {
			return "", err
		}
	}
	if err := ls.send(append(lines, tag+" "+reply)...); err != nil {
		return "", err
	}
	if !sc.OK() {
		return "", nil
	}
	ls.notConnected = sc.NotConnected
	return user, nil
}

// authenticate runs AUTHENTICATE PLAIN (RFC 4616), and XOAUTH2 and
// OAUTHBEARER (RFC 7628) where the provider offers them, with the initial
// response on the command line (SASL-IR, RFC 4959) or after an empty
// continuation request.
func (ls *loginSession) authenticate(cmd *command) (string, error) {
	if len(cmd.args) < 1 || len(cmd.args) > 2 {
		return "", ls.badReply(cmd.tag, "AUTHENTICATE needs a mechanism.")
	}
	oauthMech, isOAuth := oauthsasl.Is(cmd.args[0])
	if isOAuth && !slices.Contains(ls.p.Capabilities, "AUTH="+oauthMech) {
		isOAuth = false
	}
	if !strings.EqualFold(cmd.args[0], "PLAIN") && !isOAuth {
		return "", ls.send(cmd.tag + " NO Unsupported authentication mechanism.")
	}
	var resp string
	if len(cmd.args) == 2 {
		resp = cmd.args[1]
	} else {
		if err := ls.send("+ "); err != nil {
			return "", err
		}
		line, err := readLine(ls.br)
		if err != nil {
			return "", err
		}
		resp = string(line)
	}
	if resp == "*" {
		return "", ls.badReply(cmd.tag, "Authentication aborted by client.")
	}
	if resp == "=" {
		resp = ""
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return "", ls.badReply(cmd.tag, "Invalid base64 data in AUTHENTICATE response.")
	}
	if isOAuth {
		m, err := oauthsasl.Parse(oauthMech, raw)
		if err != nil {
			return "", ls.send(cmd.tag + " NO Invalid SASL argument.") // Gmail's, corpus #8
		}
		return ls.login(cmd.tag, m.User, m.Token, mechOAuth)
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 {
		return "", ls.badReply(cmd.tag, "Invalid PLAIN response.")
	}
	authzid, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	if authzid != "" && authzid != user {
		return "", ls.send(cmd.tag + " NO [AUTHORIZATIONFAILED] Authorization failed")
	}
	return ls.login(cmd.tag, user, password, "PLAIN")
}

// badReply answers BAD; after maxBad of them it says BYE and returns
// errTooMany.
func (ls *loginSession) badReply(tag, text string) error {
	ls.bad++
	if ls.bad >= maxBad {
		return ls.bye("Too many invalid IMAP commands.", errTooMany)
	}
	return ls.send(tag + " BAD " + text)
}

// bye sends an untagged BYE and returns why (an I/O error if the BYE could
// not be sent).
func (ls *loginSession) bye(text string, why error) error {
	if err := ls.send("* BYE " + text); err != nil {
		return err
	}
	return why
}

// send writes lines, each followed by CRLF, within writeTimeout.
func (ls *loginSession) send(lines ...string) error {
	ls.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, l := range lines {
		ls.bw.WriteString(l)
		ls.bw.WriteString("\r\n")
	}
	return ls.bw.Flush()
}

// buffered returns the bytes the client sent after its login command that
// are already read from the connection.
func (ls *loginSession) buffered() []byte {
	b, _ := ls.br.Peek(ls.br.Buffered())
	return bytes.Clone(b)
}

// sanitize makes s safe inside a response line: control characters, which
// a literal may carry, become '?'.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
