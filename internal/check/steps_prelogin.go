package check

// The IMAP steps before imapclient takes over: the greeting (is it IMAP?
// which server?), STARTTLS and CAPABILITY, with our own small exchange: a
// greeting from another protocol must be seen as raw text, and STARTTLS
// and the handshake after it are separate steps.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/diagnose"
)

// protocolError is the server breaking IMAP, or not speaking it
// (diagnose.NetProtocol).
type protocolError struct{ what string }

func (e *protocolError) Error() string { return "server broke the protocol: " + e.what }

var (
	errPlainToTLS = errors.New("no plaintext greeting, and the port completes a TLS handshake")
	errTLSRecord  = &protocolError{what: "a TLS record where the plaintext greeting belongs"}
	errNoStartTLS = errors.New("the server does not offer STARTTLS")
	errInjection  = &protocolError{what: "data after the STARTTLS OK, before TLS (command injection)"}
	errRefused    = errors.New("the server said no")
)

// greeting reads the server's first line: is it IMAP, and which server?
func (r *runner) greeting(ctx context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseGreeting
	if r.br == nil {
		r.br = bufio.NewReader(r.conn)
	}
	deadline := time.Now().Add(greetingTimeout)
	if !r.secure {
		if err := r.awaitPlaintextGreeting(ctx, deadline); err != nil {
			return r.noGreeting(s, err)
		}
	}
	r.conn.SetReadDeadline(deadline)
	line, raw, err := readLine(r.br)
	if err != nil {
		return r.noGreeting(s, err)
	}
	r.greetingRaw = raw
	r.obs.Greeting = line
	r.report.IMAP.Greeting = r.shown(line)
	s.Details = append(s.Details, r.report.IMAP.Greeting)
	if p := diagnose.SniffProtocol([]byte(line)); p != "" {
		r.obs.NetError, r.obs.NotIMAP = diagnose.NetProtocol, p
		s.Summary = protocolServer(p) + " answered, not IMAP"
		return &protocolError{what: "the greeting is not IMAP (" + p + ")"}
	}
	resp, _, _ := parseResponse(line)
	switch resp.Status {
	case "OK":
	case "BYE":
		r.obs.Reply = &resp
		s.Summary = "the server refused the connection"
		return errRefused
	case "PREAUTH":
		r.obs.NetError = diagnose.NetProtocol
		s.Summary = "PREAUTH: logged in before any password; a login cannot be checked"
		return &protocolError{what: "PREAUTH greeting"}
	default:
		r.obs.NetError = diagnose.NetProtocol
		s.Summary = "the greeting is not OK, PREAUTH or BYE"
		return &protocolError{what: "the greeting is not OK, PREAUTH or BYE"}
	}
	if resp.Code == "CAPABILITY" {
		r.setCaps(strings.Fields(resp.CodeArg))
	}
	s.Summary = r.recognise()
	return nil
}

// noGreeting records a greeting that did not come.
func (r *runner) noGreeting(s *Step, err error) error {
	r.observe(err)
	switch r.obs.NetError {
	case diagnose.NetPlainToTLS:
		s.Summary = "the port speaks SSL/TLS, but " + modeName(r.mode) + " was chosen (SSL/TLS, port 993?)"
	case diagnose.NetTimeout:
		s.Summary = "no greeting in time"
	case diagnose.NetReset:
		s.Summary = "the server closed the connection without a greeting"
	default:
		s.Summary = "no greeting: " + printable(err.Error(), maxShown)
	}
	return fmt.Errorf("greeting: %w", err)
}

// awaitPlaintextGreeting waits for the first bytes of a plaintext greeting
// and refuses a TLS record. When nothing comes for probeDelay, the port may
// speak implicit TLS and be waiting for our ClientHello: a second
// connection tries a handshake, and if that fails this one goes on waiting
// (a slow greeting is still read; the probe only costs time).
func (r *runner) awaitPlaintextGreeting(ctx context.Context, deadline time.Time) error {
	probe := time.Now().Add(probeDelay)
	if deadline.Before(probe) {
		probe = deadline
	}
	r.raw.SetReadDeadline(probe)
	_, err := r.br.Peek(1)
	if err != nil && diagnose.NetErrorOf(err) == diagnose.NetTimeout && ctx.Err() == nil {
		if r.portSpeaksTLS(ctx) {
			r.obs.NetError = diagnose.NetPlainToTLS
			return errPlainToTLS
		}
		r.raw.SetReadDeadline(deadline)
		_, err = r.br.Peek(1)
	}
	if err != nil {
		return err
	}
	if head, _ := r.br.Peek(2); diagnose.LooksLikeTLSRecord(head) {
		r.obs.NetError = diagnose.NetPlainToTLS
		return errTLSRecord
	}
	return nil
}

// portSpeaksTLS reports whether a new connection to the same address
// completes a TLS handshake. Only "is this TLS?" is asked and nothing is
// sent, so the certificate does not matter here.
func (r *runner) portSpeaksTLS(ctx context.Context) bool {
	conn, err := r.dial(ctx, r.report.Server.Connected, probeTimeout)
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	tc := tls.Client(conn, &tls.Config{ServerName: r.host, InsecureSkipVerify: true})
	return tc.HandshakeContext(ctx) == nil
}

// recognise names the provider or server software, as far as the catalog
// knows it from what was seen so far.
func (r *runner) recognise() string {
	p, ok := diagnose.Recognize(r.obs)
	if !ok {
		return "an IMAP server (not one imapwhy recognises)"
	}
	r.report.IMAP.Software, r.report.IMAP.SoftwareID = p.Name, p.ID
	if p.Kind == diagnose.KindSoftware {
		return p.Name + " (server software)"
	}
	return p.Name + " (mail provider)"
}

// startTLS makes sure STARTTLS is offered and sends it; the handshake is
// the next step.
func (r *runner) startTLS(_ context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseCapability
	if r.obs.Capabilities == nil {
		caps, err := r.ownCapability()
		if err != nil {
			s.Summary = "CAPABILITY failed"
			return err
		}
		r.setCaps(caps)
	}
	r.obs.Phase = diagnose.PhaseStartTLS
	if !r.obs.StartTLSOffered {
		r.noStartTLS = true
		s.Summary = "the server does not offer STARTTLS on this port (SSL/TLS, port 993?)"
		s.Details = append(s.Details, "capabilities: "+r.shown(strings.Join(r.obs.Capabilities, " ")))
		return errNoStartTLS
	}
	reply, err := r.command("STARTTLS", nil)
	if err != nil {
		r.observe(err)
		s.Summary = "no answer to STARTTLS"
		return err
	}
	if reply.Status != "OK" {
		r.obs.Reply = &reply
		s.Summary = "the server refused STARTTLS"
		s.Details = append(s.Details, "server said: "+r.shown(formatResponse(reply)))
		return errRefused
	}
	if r.br.Buffered() > 0 {
		r.obs.NetError = diagnose.NetProtocol
		s.Summary = "the server sent data after its STARTTLS OK, before TLS: stopped (command injection?)"
		return errInjection
	}
	s.Summary = "offered and accepted"
	return nil
}

// ownCapability asks for the capabilities before imapclient takes over.
func (r *runner) ownCapability() ([]string, error) {
	var caps []string
	reply, err := r.command("CAPABILITY", func(line string) {
		if c, ok := capabilityList(line); ok {
			caps = c
		}
	})
	if err != nil {
		r.observe(err)
		return nil, err
	}
	if reply.Status != "OK" {
		r.obs.Reply = &reply
		return nil, errRefused
	}
	if caps == nil {
		r.obs.NetError = diagnose.NetProtocol
		return nil, &protocolError{what: "CAPABILITY answered without a capability list"}
	}
	return caps, nil
}

// command sends one command of our own and reads until its tagged reply.
// Untagged lines go to onUntagged; an untagged BYE ends the exchange.
func (r *runner) command(name string, onUntagged func(line string)) (diagnose.Response, error) {
	r.tags++
	tag := "c" + strconv.Itoa(r.tags)
	r.conn.SetDeadline(time.Now().Add(commandTimeout))
	if _, err := io.WriteString(r.conn, tag+" "+name+"\r\n"); err != nil {
		return diagnose.Response{}, fmt.Errorf("send %s: %w", name, err)
	}
	for range maxResponses {
		line, _, err := readLine(r.br)
		if errors.Is(err, errLineTooLong) {
			return diagnose.Response{}, &protocolError{what: err.Error()}
		}
		if err != nil {
			return diagnose.Response{}, fmt.Errorf("reading the reply to %s: %w", name, err)
		}
		resp, t, ok := parseResponse(line)
		switch {
		case ok && t == tag:
			return resp, nil
		case ok && resp.Status == "BYE":
			r.obs.Reply = &resp
			return resp, errRefused
		case onUntagged != nil:
			onUntagged(line)
		}
	}
	return diagnose.Response{}, &protocolError{what: errNoReply.Error()}
}

// setCaps records the current capabilities.
func (r *runner) setCaps(caps []string) {
	caps = upperAll(caps)
	r.obs.Capabilities = caps
	r.report.IMAP.Capabilities = caps
	r.report.IMAP.LoginDisabled = slices.Contains(caps, string(imap.CapLoginDisabled))
	if !r.secure {
		r.obs.StartTLSOffered = slices.Contains(caps, string(imap.CapStartTLS))
		r.report.IMAP.StartTLS = r.obs.StartTLSOffered
	}
}

// capability learns the login methods: from the greeting, or (after
// STARTTLS, or when the greeting had none) from a CAPABILITY command.
func (r *runner) capability(_ context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseCapability
	source := "from the greeting"
	if r.mode == config.TLSStartTLS || r.obs.Capabilities == nil {
		caps, err := r.ownCapability()
		if err != nil {
			s.Summary = "CAPABILITY failed"
			return fmt.Errorf("capability: %w", err)
		}
		r.setCaps(caps)
		source = "from CAPABILITY"
	}
	if r.report.IMAP.SoftwareID == "" {
		if name := r.recognise(); r.report.IMAP.SoftwareID != "" {
			s.Details = append(s.Details, "server: "+name)
		}
	}
	s.Details = append(s.Details, "capabilities ("+source+"): "+r.shown(strings.Join(r.obs.Capabilities, " ")))
	if r.report.IMAP.LoginDisabled {
		s.Status = StatusWarning
		s.Summary = "LOGINDISABLED: the server takes no password on this connection"
		return nil
	}
	s.Summary = "login methods: " + strings.Join(loginMethods(r.obs.Capabilities), ", ")
	return nil
}

// observe records the connection fact of err, unless one is known already.
func (r *runner) observe(err error) {
	if r.obs.NetError != diagnose.NetOK {
		return
	}
	r.obs.NetError = diagnose.NetErrorOf(err)
	if _, ok := errors.AsType[*protocolError](err); ok && r.obs.NetError == diagnose.NetOK {
		r.obs.NetError = diagnose.NetProtocol
	}
}

// shown is server text made safe to show: printable, without the password.
func (r *runner) shown(s string) string {
	return printable(r.scrub(s), maxShown)
}

// formatResponse writes a response back as a line, without its tag.
func formatResponse(resp diagnose.Response) string {
	s := resp.Status
	if resp.Code != "" {
		s += " [" + strings.TrimSpace(resp.Code+" "+resp.CodeArg) + "]"
	}
	if resp.Text != "" {
		s += " " + resp.Text
	}
	return s
}
