package check

// The IMAP steps before imapclient takes over: the greeting (is it IMAP?
// which server?), STARTTLS and CAPABILITY, each a step of the upstream
// client the proxy logs in with (internal/upstream), run one at a time so
// that each is reported: a greeting from another protocol is seen as raw
// text, and STARTTLS and the handshake after it are separate steps.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// greeting reads the server's first line: is it IMAP, and which server?
func (r *runner) greeting(ctx context.Context, s *Step) error {
	r.up.SetDeadline(time.Now().Add(greetingTimeout))
	err := r.up.ReadGreeting(ctx)
	if r.obs.Greeting == "" {
		return r.noGreeting(s, err)
	}
	r.report.IMAP.Greeting = r.shown(r.obs.Greeting)
	s.Details = append(s.Details, r.report.IMAP.Greeting)
	_, refused := errors.AsType[*upstream.StatusError](err)
	switch {
	case err == nil:
	case r.obs.NotIMAP != "":
		s.Summary = r.t("%s answered, not IMAP", r.protocolServer(r.obs.NotIMAP))
		return err
	case refused:
		s.Summary = r.t("the server refused the connection")
		return err
	case errors.Is(err, upstream.ErrPreauth):
		s.Summary = r.t("PREAUTH: logged in before any password; a login cannot be checked")
		return err
	default:
		r.observe(err)
		s.Summary = r.t("the greeting is not OK, PREAUTH or BYE")
		return err
	}
	r.setCaps()
	s.Summary = r.recognise()
	return nil
}

// noGreeting records a greeting that did not come.
func (r *runner) noGreeting(s *Step, err error) error {
	r.observe(err)
	switch r.obs.NetError {
	case diagnose.NetPlainToTLS:
		s.Summary = r.t("the port speaks SSL/TLS, but %s was chosen (SSL/TLS, port 993?)", r.t(modeName(r.mode)))
	case diagnose.NetTimeout:
		s.Summary = r.t("no greeting in time")
	case diagnose.NetReset:
		s.Summary = r.t("the server closed the connection without a greeting")
	default:
		s.Summary = r.t("no greeting: %s", printable(err.Error(), maxShown))
	}
	return fmt.Errorf("greeting: %w", err)
}

// recognise names the provider or server software, as far as the catalog
// knows it from what was seen so far.
func (r *runner) recognise() string {
	p, ok := diagnose.Recognize(r.obs)
	if !ok {
		return r.t("an IMAP server (not one imapwhy recognises)")
	}
	r.report.IMAP.Software, r.report.IMAP.SoftwareID = p.Name, p.ID
	if p.Kind == diagnose.KindSoftware {
		return r.t("%s (server software)", p.Name)
	}
	return r.t("%s (mail provider)", p.Name)
}

// startTLS makes sure STARTTLS is offered and sends it; the handshake is
// the next step.
func (r *runner) startTLS(_ context.Context, s *Step) error {
	r.up.SetDeadline(time.Now().Add(commandTimeout))
	if err := r.up.LoadCapabilities(); err != nil {
		r.observe(err)
		s.Summary = r.t("CAPABILITY failed")
		return err
	}
	r.setCaps()
	err := r.up.StartTLS()
	_, refused := errors.AsType[*upstream.StatusError](err)
	switch {
	case err == nil:
		s.Summary = r.t("offered and accepted")
		return nil
	case errors.Is(err, upstream.ErrNoStartTLS):
		r.noStartTLS = true
		s.Summary = r.t("the server does not offer STARTTLS on this port (SSL/TLS, port 993?)")
		s.Details = append(s.Details, r.t("capabilities: %s", r.shown(strings.Join(r.obs.Capabilities, " "))))
	case refused && r.obs.Reply != nil && r.obs.Reply.Tagged:
		s.Summary = r.t("the server refused STARTTLS")
		s.Details = append(s.Details, r.t("server said: %s", r.shown(formatResponse(*r.obs.Reply))))
	case errors.Is(err, upstream.ErrStartTLSInjection):
		s.Summary = r.t("the server sent data after its STARTTLS OK, before TLS: stopped (command injection?)")
	default:
		r.observe(err)
		s.Summary = r.t("no answer to STARTTLS")
	}
	return err
}

// setCaps records the current capabilities in the report.
func (r *runner) setCaps() {
	caps := r.obs.Capabilities
	r.report.IMAP.Capabilities = caps
	r.report.IMAP.LoginDisabled = slices.Contains(caps, string(imap.CapLoginDisabled))
	if !r.secure() {
		r.report.IMAP.StartTLS = r.obs.StartTLSOffered
	}
}

// capability learns the login methods: from the greeting, or (after
// STARTTLS, or when the greeting had none) from a CAPABILITY command.
func (r *runner) capability(_ context.Context, s *Step) error {
	source := "from the greeting"
	r.up.SetDeadline(time.Now().Add(commandTimeout))
	if r.mode == config.TLSStartTLS || r.obs.Capabilities == nil {
		if err := r.up.Capability(); err != nil {
			r.observe(err)
			s.Summary = r.t("CAPABILITY failed")
			return fmt.Errorf("capability: %w", err)
		}
		r.setCaps()
		source = "from CAPABILITY"
	}
	r.obs.Phase = diagnose.PhaseCapability
	if r.report.IMAP.SoftwareID == "" {
		if name := r.recognise(); r.report.IMAP.SoftwareID != "" {
			s.Details = append(s.Details, r.t("server: %s", name))
		}
	}
	s.Details = append(s.Details, r.t("capabilities (%s): %s", r.t(source), r.shown(strings.Join(r.obs.Capabilities, " "))))
	if r.report.IMAP.LoginDisabled {
		s.Status = StatusWarning
		s.Summary = r.t("LOGINDISABLED: the server takes no password on this connection")
		return nil
	}
	s.Summary = r.t("login methods: %s", strings.Join(loginMethods(r.obs.Capabilities), ", "))
	return nil
}

// observe records the connection fact of err, unless one is known already:
// as the proxy's upstream login does.
func (r *runner) observe(err error) {
	if r.obs.NetError != diagnose.NetOK {
		return
	}
	r.obs.NetError = upstream.NetErrorOf(err, r.obs.Phase)
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
