package check

// The IMAP session, with go-imap's imapclient over the connection the
// earlier steps made: login, INBOX, LOGOUT.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/imapwire"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

var (
	errNoMechanism     = errors.New("the server offers no password login on this connection")
	errPlaintextRemote = errors.New("refusing to send a password unencrypted to another machine")
	errNoticeMailbox   = errors.New("imapwhy let the login into its notice mailbox: the real login failed")
	errUnsafePassword  = errors.New("the password contains CR, LF or NUL")
)

// replayedText is the text of the greeting startClient gives imapclient.
const replayedText = "imapwhy check: greeting already read"

// maxUntagged bounds the untagged responses kept in the Observation.
const maxUntagged = 64

// startClient hands the connection to imapclient. imapclient starts by
// reading a greeting, which was read already (and after STARTTLS
// there is none, RFC 9051 section 6.2.1), so it is given a greeting that
// says where the connection stands: OK, with the current capabilities.
// Knowing them, imapclient sends no CAPABILITY of its own, whose reply
// could mix with the login's. Bytes already buffered follow it.
func (r *runner) startClient() {
	greeting := "* OK [CAPABILITY " + strings.Join(r.obs.Capabilities, " ") + "] " + replayedText + "\r\n"
	br := r.up.Reader()
	buffered, _ := br.Peek(br.Buffered())
	r.rec.received(buffered)
	prefix := append([]byte(greeting), buffered...)
	conn := recordingConn{Conn: r.up.Conn(), rec: r.rec}
	conn.SetDeadline(time.Time{}) // imapclient sets its own, per response
	r.client = imapclient.New(replayConn{Conn: conn, r: io.MultiReader(bytes.NewReader(prefix), conn)}, nil)
}

// loginMethods lists how a password may be sent, for people.
func loginMethods(caps []string) []string {
	var m []string
	if !slices.Contains(caps, string(imap.CapLoginDisabled)) {
		m = append(m, "LOGIN")
	}
	for _, c := range caps {
		if mech, ok := strings.CutPrefix(c, "AUTH="); ok {
			m = append(m, "AUTHENTICATE "+mech)
		}
	}
	if len(m) == 0 {
		return []string{"none"}
	}
	return m
}

// login logs in with imapclient. It refuses, without sending anything, a
// password that would go unencrypted to another machine or that IMAP
// cannot carry.
func (r *runner) login(_ context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseLogin
	if r.opts.OAuth {
		return r.oauthLogin(s)
	}
	mech := upstream.ChooseMechanism(r.obs.Capabilities, upstream.Credentials{User: r.report.User, Password: r.password})
	r.obs.Mechanism = mech
	r.report.IMAP.Mechanism = mech
	switch {
	case mech == "":
		s.Summary = r.t("not tried: the server takes no password on this connection (LOGINDISABLED)")
		return errNoMechanism
	case !r.secure() && !r.loopback():
		s.Summary = r.t("not tried: the connection is not encrypted and the server is not on this machine")
		s.Diagnosis = r.diagnosis(diagnose.Of(diagnose.CauseServerPrivacyRequired))
		return errPlaintextRemote
	case imapwire.Unsendable(r.password):
		s.Summary = r.t("not tried: the password contains a line break or NUL, which IMAP cannot carry")
		s.Diagnosis = r.diagnosis(diagnose.Of(diagnose.CausePasswordNonASCII))
		return errUnsafePassword
	}
	r.startClient()
	mark := r.rec.mark()
	var err error
	if mech == sasl.Plain {
		err = r.client.Authenticate(sasl.NewPlainClient("", r.report.User, r.password))
	} else {
		err = r.client.Login(r.report.User, r.password).Wait()
	}
	s.Details = append(s.Details, r.observeReplies(mark, err)...) // [ALERT] and the like: worth reading even after a success
	if rep, ok := diagnose.ReportedBy(r.obs); ok {
		// imapwhy is on the other end and said what it diagnosed: that is
		// the diagnosis, not a second guess from its words.
		s.Details = append(s.Details, r.t("imapwhy answered: its diagnosis is %s", string(rep.Diagnosis.Cause)))
		if err == nil && rep.Notice {
			// Let into its notice mailbox: the app sees one message,
			// not the mail. The login failed.
			s.Summary = r.t("imapwhy let the login into its notice mailbox: the real server refused it")
			s.Diagnosis = r.diagnosis(rep.Diagnosis)
			return errNoticeMailbox
		}
	}
	if err != nil {
		s.Summary = r.t("the server refused the login")
		if r.obs.Reply == nil {
			s.Summary = r.t("no answer to the login")
		}
		return fmt.Errorf("login: %w", err)
	}
	s.Summary = r.t("logged in as %s (%s)", r.shown(r.report.User), mechanismName(mech))
	return nil
}

func mechanismName(mech string) string {
	if mech == sasl.Plain {
		return "AUTHENTICATE PLAIN"
	}
	return mech
}

// observeReplies puts what the server said to one command into the
// Observation, from the lines received since mark: every untagged status
// response, and as the reply the tagged line that imapclient's error stands
// for (it keeps what the error drops, such as a WEBALERT URL). Other tagged
// lines answer imapclient's own commands (a CAPABILITY after login). An
// error that is no server reply is a connection fact. It returns the lines
// for people.
func (r *runner) observeReplies(mark int, err error) []string {
	r.obs.Reply, r.obs.Untagged = nil, nil
	imapErr, isIMAP := errors.AsType[*imap.Error](err)
	var shown []string
	for _, line := range r.rec.since(mark) {
		wr := imapwire.ParseResponse(line)
		resp := upstream.StatusOf(wr)
		switch {
		case !wr.IsStatus():
			continue
		case !resp.Tagged:
			if len(r.obs.Untagged) < maxUntagged {
				r.obs.Untagged = append(r.obs.Untagged, resp)
			}
		case isIMAP && sameStatus(resp, imapErr):
			r.obs.Reply = &resp
			_, line, _ = strings.Cut(line, " ") // our tag says nothing to people
		default:
			continue
		}
		shown = append(shown, r.t("server said: %s", r.shown(line)))
	}
	switch {
	case err == nil:
	case isIMAP && r.obs.Reply == nil: // the line was not kept
		r.obs.Reply = &diagnose.Response{Tagged: true, Status: string(imapErr.Type), Code: strings.ToUpper(string(imapErr.Code)), Text: imapErr.Text}
	case !isIMAP:
		r.observe(err)
		if r.obs.NetError == diagnose.NetOK {
			// imapclient does not keep the type of every read error; no
			// reply at all means the connection ended.
			r.obs.NetError = diagnose.NetReset
		}
	}
	return shown
}

// sameStatus reports whether resp is the status response e was made from.
func sameStatus(resp diagnose.Response, e *imap.Error) bool {
	return resp.Status == string(e.Type) && strings.EqualFold(resp.Code, string(e.Code)) && resp.Text == e.Text
}

// inbox opens INBOX read-only (EXAMINE: the check changes nothing) and
// counts its messages.
func (r *runner) inbox(_ context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseAfterLogin
	mark := r.rec.mark()
	data, err := r.client.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		s.Details = append(s.Details, r.observeReplies(mark, err)...)
		s.Summary = r.t("INBOX could not be opened")
		return fmt.Errorf("select INBOX: %w", err)
	}
	n := data.NumMessages
	r.report.IMAP.Messages = &n
	s.Summary = r.t("INBOX has %d message%s", n, plural(n))
	return nil
}

func plural(n uint32) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// logout ends the session. A failure here is only a warning: the login and
// INBOX worked.
func (r *runner) logout(_ context.Context, s *Step) error {
	if err := r.client.Logout().Wait(); err != nil {
		s.Status = StatusWarning
		s.Summary = r.t("LOGOUT failed: %s", printable(err.Error(), maxShown))
		return nil
	}
	s.Summary = r.t("logged out")
	return nil
}
