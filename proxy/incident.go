package proxy

// Issue 8: the ways a diagnosis reaches people whose mail app hides the
// server's words. For each refused login, refuse asks answer (below) for:
//
//	incident page    incident.Store + incident.Server (web.address): the
//	                 link https://<proxy>/why/<id> ends the ALERT, and the
//	                 NO when it fits in frontMaxText runes
//	notifications    webhook (notify.webhook) and desktop (notify.desktop)
//	notice mailbox   notice.Server (notice.go), for a listener with
//	                 notice_mailbox: true and a cause typing cannot fix
//
// The Server owns one reach: newReach in New (reads the files the config
// names), start in Start (binds web.address), closeNotice and shutdown in
// Shutdown. Web and notify settings take effect at start; a listener's
// notice_mailbox follows Reload.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/notify/desktop"
	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/notify/incident"
	"github.com/imapwhy/imapwhy/internal/notify/notice"
	"github.com/imapwhy/imapwhy/internal/notify/webhook"
)

// ReachOptions are test hooks for the incident pages, notifications and
// the notice mailbox. The zero value is right for production.
type ReachOptions struct {
	// Now is the incident store's clock (expiry tests); nil: time.Now.
	Now func() time.Time
	// DesktopPath runs this file as the desktop notification command.
	DesktopPath string
	// WebhookBackoff is the first retry wait of the webhook; 0: 1s.
	WebhookBackoff time.Duration
	// NoticeMaxSession bounds a notice session; 0: notice.DefaultMaxSession.
	NoticeMaxSession time.Duration
}

// reach holds the incident store, the web server, the notifiers and the
// notice mailbox server. Each part is nil when switched off.
type reach struct {
	log       zerolog.Logger
	cfg       config.Config
	opts      Options
	store     *incident.Store
	handler   *incident.HandlerOptions
	publicURL string // base of links; "" in local mode: from the connection
	web       *incident.Server
	hook      *webhook.Sender
	desk      *desktop.Notifier

	mu           sync.Mutex
	noticeSrv    *notice.Server // made on first use
	noticeClosed bool
}

// newReach checks what the configuration names (the admin's hash file, the
// webhook's secret file, the desktop command). Nothing is bound or started.
func newReach(cfg config.Config, opts Options) (*reach, error) {
	r := &reach{log: opts.Logger, cfg: cfg, opts: opts}
	w := cfg.Web
	if w.Address != "" {
		if opts.TLS == nil {
			return nil, errors.New("web.address: the pages need the proxy's certificate")
		}
		ho := &incident.HandlerOptions{Local: cfg.LocalMode(), Log: opts.Logger}
		if w.Admin.Set() {
			hash, err := adminHash(w.Admin)
			if err != nil {
				return nil, err
			}
			ho.Admin = &incident.Admin{User: w.Admin.User, Hash: hash}
		}
		r.handler = ho
		r.store = incident.NewStore(incident.StoreOptions{TTL: w.IncidentTTL.D(), Max: w.MaxIncidents, Now: opts.Reach.Now})
		r.publicURL = strings.TrimRight(w.PublicURL, "/")
		if r.publicURL == "" && !cfg.LocalMode() && cfg.TLS.ACME != nil {
			r.publicURL = "https://" + cfg.TLS.ACME.Domains[0]
		}
	}
	if cfg.Notify.Desktop {
		d, err := desktop.New(desktop.Options{Path: opts.Reach.DesktopPath, Log: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("notify.desktop: %w", err)
		}
		r.desk = d
	}
	return r, nil
}

// adminHash is the bcrypt hash of the admin's password, from the config
// or its file.
func adminHash(a config.WebAdmin) ([]byte, error) {
	if a.PasswordHash != "" {
		return []byte(a.PasswordHash), nil
	}
	b, err := os.ReadFile(a.PasswordHashFile)
	if err != nil {
		return nil, fmt.Errorf("web.admin.password_hash_file: %w", err)
	}
	h := strings.TrimSpace(string(b))
	if err := config.CheckPasswordHash(h); err != nil {
		return nil, fmt.Errorf("web.admin.password_hash_file: %s: %w", a.PasswordHashFile, err)
	}
	return []byte(h), nil
}

// start binds web.address and starts the web server and the webhook. On
// error nothing is left running.
func (r *reach) start() error {
	h := r.cfg.Notify.Webhook
	var secret []byte
	if h.SecretFile != "" {
		b, err := os.ReadFile(h.SecretFile)
		if err != nil {
			return fmt.Errorf("notify.webhook.secret_file: %w", err)
		}
		if secret = []byte(strings.TrimSpace(string(b))); len(secret) == 0 {
			return fmt.Errorf("notify.webhook.secret_file: %s is empty", h.SecretFile)
		}
	}
	if r.store != nil {
		srv, err := incident.Listen(r.cfg.Web.Address, incident.NewHandler(r.store, *r.handler), r.opts.TLS, r.log)
		if err != nil {
			return fmt.Errorf("web.address: %w", err)
		}
		srv.Start()
		r.web = srv
		r.log.Info().Str("event", "web_listening").Str("address", srv.Addr().String()).
			Bool("local_mode", r.handler.Local).Msg("incident and status pages")
	}
	if h.URL == "" {
		return nil
	}
	hook, err := webhook.New(webhook.Options{
		URL: h.URL, Secret: secret, PerMinute: h.PerMinute, Queue: h.Queue, MaxTries: h.MaxTries,
		Timeout: h.Timeout.D(), Backoff: r.opts.Reach.WebhookBackoff, Log: r.log,
	})
	if err != nil {
		r.shutdown(context.Background()) // the web server, if started: nothing is in flight yet
		return fmt.Errorf("notify.webhook.url: %w", err)
	}
	r.hook = hook
	return nil
}

// webAddr is the web server's bound address, nil when off.
func (r *reach) webAddr() net.Addr {
	if r == nil || r.web == nil {
		return nil
	}
	return r.web.Addr()
}

// shutdown stops the web server, flushes the webhook until ctx ends, and
// waits for a desktop notification in progress.
func (r *reach) shutdown(ctx context.Context) {
	r.closeNotice()
	if r.web != nil {
		r.web.Shutdown(ctx)
	}
	if r.hook != nil {
		r.hook.Close(ctx)
	}
	if r.desk != nil {
		r.desk.Close()
	}
}

// WebAddr is the bound address of the incident and status pages, nil when
// web.address is not set or the server has not started.
func (s *Server) WebAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reach.webAddr()
}

// answer is how one refused login is answered and told about.
type answer struct {
	tag, code string
	alert, no string         // texts of the ALERT and of the NO
	link      string         // the incident page, "" if none
	notice    *notice.Notice // non-nil: answer OK and show the notice mailbox
	srv       *notice.Server
}

// answer records the incident, notifies, and decides between a NO and the
// notice mailbox. text is the diagnosed message (at most frontMaxText).
func (ss *session) answer(f *front, req *loginRequest, d diagnose.Diagnosis, text string) *answer {
	r := ss.srv.reach
	lang := f.language()
	a := &answer{tag: req.Tag, code: d.Code, alert: text, no: text}
	if ss.st.cfg.NoticeMailbox && notice.Eligible(d) {
		a.srv = r.noticeServer()
	}
	client := remoteIP(ss.raw)
	var when time.Time
	if r.store != nil {
		in := r.store.Add(incident.Incident{
			Client: client, User: req.Username, Lang: lang, Message: text,
			Cause: d.Cause, Alternative: d.Alternative, Code: d.Code, Temporary: d.Temporary,
			Provider: d.Provider, ProviderName: d.ProviderName, HelpURL: d.HelpURL,
			Notice: a.srv != nil,
		})
		when = in.Time
		a.link = r.link(ss.raw.LocalAddr(), in.ID)
		a.alert = text + " " + a.link
		if utf8.RuneCountInString(a.alert) <= frontMaxText {
			a.no = a.alert
		}
	} else {
		when = time.Now()
	}
	if a.srv != nil {
		a.notice = &notice.Notice{
			User: req.Username, Lang: lang, Message: text, Cause: d.Cause, Temporary: d.Temporary,
			Steps: incident.Steps(d.Cause, lang), ProviderName: d.ProviderName, HelpURL: d.HelpURL, Time: when,
		}
	}
	r.notify(req.Username, client, d, text, a, when)
	return a
}

// link is the URL of an incident page: web.public_url, or in local mode
// the address the mail app reached us on, with the web port.
func (r *reach) link(local net.Addr, id string) string {
	if r.publicURL != "" {
		return r.publicURL + incident.Path(id)
	}
	host, port, _ := net.SplitHostPort(r.web.Addr().String())
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "localhost"
		if ta, ok := local.(*net.TCPAddr); ok {
			host = ta.AddrPort().Addr().Unmap().WithZone("").String()
		}
	}
	return "https://" + net.JoinHostPort(host, port) + incident.Path(id)
}

// notify tells the webhook and the desktop. Neither gets the password or
// any fact about it: the cause, the code, the user name, the link.
func (r *reach) notify(user string, client netip.Addr, d diagnose.Diagnosis, text string, a *answer, when time.Time) {
	if r.hook != nil {
		ev := webhook.Event{
			Time: when, Cause: string(d.Cause), Code: d.Code, Temporary: d.Temporary,
			User: user, Provider: d.Provider, Link: a.link, Notice: a.notice != nil,
		}
		if client.IsValid() {
			ev.Client = client.String()
		}
		r.hook.Send(ev)
	}
	if r.desk != nil {
		body := text
		if a.link != "" {
			body += " " + a.link
		}
		r.desk.Notify(user+"\x00"+string(d.Cause), "imapwhy: "+user, body)
	}
}

// send writes the answer: "* OK [ALERT] ..." and then the tagged NO, or for
// the notice mailbox the tagged OK that logs the app in.
func (a *answer) send(f *front) error {
	if a.notice != nil {
		f.writeLine("* OK [ALERT] ", a.alertText())
		return f.loggedIn(a.tag, notice.Capabilities())
	}
	if !frontValidTag(a.tag) {
		return fmt.Errorf("fail: invalid tag %q", a.tag)
	}
	f.failures++
	f.writeLine("* OK [ALERT] ", a.alertText())
	f.writeLine(a.tag, " NO ", frontCode(a.code), frontRespText(a.no, "Login failed"))
	return f.flush()
}

// alertText is the sanitised ALERT text, which may be longer than a NO's
// by the link.
func (a *answer) alertText() string {
	max := frontMaxText
	if a.link != "" {
		max += 1 + utf8.RuneCountInString(a.link)
	}
	if t := strings.TrimLeft(sanitizeText(a.alert, max), "[ "); t != "" {
		return t
	}
	return "Login failed"
}

// logFacts adds the answer to the auth_failure event.
func (a *answer) logFacts(ev *zerolog.Event) *zerolog.Event {
	return ev.Bool("incident_page", a.link != "").Bool("notice", a.notice != nil)
}

// remoteIP is the client's IP address, the zero Addr if not TCP.
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
