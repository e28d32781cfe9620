// Package notify reaches the people whose mail app hides the server's
// words. Reach implements the proxy's refusal hook (proxy.Options.OnRefusal)
// by fanning each refused login out to:
//
//	incident page    incident.Store + incident.Server (web.address): its
//	                 link ends the ALERT, and the NO when it fits
//	notifications    webhook.Sender (notify.webhook), desktop.Notifier
//	                 (notify.desktop)
//	notice mailbox   notice.Server, for a listener with notice_mailbox:
//	                 true and a cause typing cannot fix (notice.Eligible):
//	                 the login is answered OK and handed to the mailbox
//
// cmd/imapwhy composes it with the proxy: New, Start, pass OnRefusal to
// proxy.New, Reload on SIGHUP, Shutdown after the proxy's.
package notify

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/notify/desktop"
	"github.com/imapwhy/imapwhy/internal/notify/incident"
	"github.com/imapwhy/imapwhy/internal/notify/notice"
	"github.com/imapwhy/imapwhy/internal/notify/webhook"
	"github.com/imapwhy/imapwhy/proxy"
)

// Options carries what the configuration cannot. Apart from Logger and
// TLS, the zero values are right for production (the rest are test hooks).
type Options struct {
	Logger zerolog.Logger
	// TLS is the proxy's own certificate configuration, which the pages
	// are served with. Required with web.address.
	TLS *tls.Config
	// Now is the incident store's clock (expiry tests); nil: time.Now.
	Now func() time.Time
	// DesktopPath runs this file as the desktop notification command.
	DesktopPath string
	// WebhookBackoff is the first retry wait of the webhook; 0: 1s.
	WebhookBackoff time.Duration
	// NoticeMaxSession bounds a notice session; 0: notice.DefaultMaxSession.
	NoticeMaxSession time.Duration
	// Shared, if set, keeps the incident pages where every instance behind
	// a load balancer opens them (state.Redis's Incidents).
	Shared incident.Shared
	// Pages, if set, are served next to the incident and status pages
	// under the patterns Paths (the set-up page).
	Pages http.Handler
	Paths []string
	// ClientAllowed, if set, is asked about each request's address; others
	// get 403 (config.Config.ClientAllowed).
	ClientAllowed func(netip.Addr) bool
}

// Reach holds the incident store, the web server, the notifiers and the
// notice mailbox server. Each part is nil when switched off. It is safe
// for concurrent use.
type Reach struct {
	log  zerolog.Logger
	opts Options

	// Fixed at New and Start: changing them needs a restart.
	fixed   config.Web // the settings the store and the pages were made with
	store   *incident.Store
	handler *incident.HandlerOptions
	web     *incident.Server
	started atomic.Bool // Start succeeded: Reload may start a webhook

	mu           sync.RWMutex // guards the reloadable parts below
	cfg          config.Config
	publicURL    string // base of links; "" in local mode: from the connection
	hook         *webhook.Sender
	desk         *desktop.Notifier
	noticeMu     sync.Mutex     // first use of noticeSrv, under mu's read lock
	noticeSrv    *notice.Server // made on first use
	noticeClosed bool
}

// New checks what the configuration names (the admin's hash file, the
// desktop command). Nothing is bound or started.
func New(cfg config.Config, opts Options) (*Reach, error) {
	r := &Reach{log: opts.Logger, opts: opts, cfg: cfg, fixed: cfg.Web}
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
		r.store = incident.NewStore(incident.StoreOptions{TTL: w.IncidentTTL.D(), Max: w.MaxIncidents, Now: opts.Now, Shared: opts.Shared})
	}
	r.publicURL = PublicURL(cfg)
	if cfg.Notify.Desktop {
		d, err := r.newDesktop()
		if err != nil {
			return nil, err
		}
		r.desk = d
	}
	return r, nil
}

// PublicURL is the base of the pages' links: web.public_url, else in
// gateway mode with ACME the first domain; "" (links from the connection)
// otherwise.
func PublicURL(cfg config.Config) string {
	u := strings.TrimRight(cfg.Web.PublicURL, "/")
	if u == "" && !cfg.LocalMode() && cfg.TLS.ACME != nil {
		u = "https://" + cfg.TLS.ACME.Domains[0]
	}
	return u
}

func (r *Reach) newDesktop() (*desktop.Notifier, error) {
	d, err := desktop.New(desktop.Options{Path: r.opts.DesktopPath, Log: r.log})
	if err != nil {
		return nil, fmt.Errorf("notify.desktop: %w", err)
	}
	return d, nil
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

// Start binds web.address and starts the web server and the webhook. On
// error nothing is left running but the desktop notifier (Shutdown ends it).
func (r *Reach) Start() error {
	if r.store != nil {
		srv, err := incident.Listen(r.fixed.Address, r.webHandler(), r.opts.TLS, r.log)
		if err != nil {
			return fmt.Errorf("web.address: %w", err)
		}
		srv.Start()
		r.web = srv
		r.log.Info().Str("event", "web_listening").Str("address", srv.Addr().String()).
			Bool("local_mode", r.handler.Local).Msg("incident and status pages")
	}
	hook, err := r.newWebhook(r.cfg.Notify.Webhook)
	if err != nil {
		if r.web != nil {
			r.web.Shutdown(context.Background()) // nothing is in flight yet
			r.web = nil
		}
		return err
	}
	r.mu.Lock()
	r.hook = hook
	r.mu.Unlock()
	r.started.Store(true)
	return nil
}

// webHandler is the incident and status pages, with Options.Pages next to
// them, behind Options.ClientAllowed.
func (r *Reach) webHandler() http.Handler {
	var h http.Handler = incident.NewHandler(r.store, *r.handler)
	if r.opts.Pages != nil {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		for _, p := range r.opts.Paths {
			mux.Handle(p, r.opts.Pages)
		}
		h = mux
	}
	allow := r.opts.ClientAllowed
	if allow == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ap, err := netip.ParseAddrPort(req.RemoteAddr)
		if err != nil || !allow(ap.Addr().Unmap()) {
			http.Error(w, "imapwhy serves its home network only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// OnUntrusted is the proxy's hook for a device that refused imapwhy's
// certificate: the status page says so until the device logs in.
func (r *Reach) OnUntrusted(client netip.Addr, _ string) {
	if r.store != nil {
		r.store.MarkUntrusted(client)
	}
}

// OnLogin is the proxy's hook for a login that worked: the device trusts
// imapwhy now.
func (r *Reach) OnLogin(l proxy.Login) {
	if r.store != nil {
		r.store.Trusted(l.Client)
	}
}

// newWebhook starts the sender notify.webhook asks for, nil if none.
func (r *Reach) newWebhook(h config.Webhook) (*webhook.Sender, error) {
	if h.URL == "" {
		return nil, nil
	}
	var secret []byte
	if h.SecretFile != "" {
		b, err := os.ReadFile(h.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("notify.webhook.secret_file: %w", err)
		}
		if secret = []byte(strings.TrimSpace(string(b))); len(secret) == 0 {
			return nil, fmt.Errorf("notify.webhook.secret_file: %s is empty", h.SecretFile)
		}
	}
	hook, err := webhook.New(webhook.Options{
		URL: h.URL, Secret: secret, PerMinute: h.PerMinute, Queue: h.Queue, MaxTries: h.MaxTries,
		Timeout: h.Timeout.D(), Backoff: r.opts.WebhookBackoff, Log: r.log,
	})
	if err != nil {
		return nil, fmt.Errorf("notify.webhook.url: %w", err)
	}
	return hook, nil
}

// WebAddr is the bound address of the incident and status pages, nil when
// web.address is not set or Start has not bound it.
func (r *Reach) WebAddr() net.Addr {
	if r == nil || r.web == nil {
		return nil
	}
	return r.web.Addr()
}

// Reload applies what can change while running: web.public_url, the
// webhook (notify.webhook, its secret file read again) and the desktop
// notifications. The incident store and the pages keep running as they
// started; the keys that need a restart to change (web.address, web.mode,
// web.incident_ttl, web.max_incidents, web.admin) are logged with event
// reload_needs_restart. On error nothing changes.
func (r *Reach) Reload(cfg config.Config) error {
	r.mu.RLock()
	old := r.cfg
	r.mu.RUnlock()
	if keys := restartKeys(old, cfg); len(keys) > 0 {
		r.log.Warn().Str("event", "reload_needs_restart").Strs("keys", keys).
			Msg("these settings keep their old values until imapwhy restarts")
	}
	var hook *webhook.Sender
	hookChanged := old.Notify.Webhook != cfg.Notify.Webhook || cfg.Notify.Webhook.SecretFile != ""
	if hookChanged && r.hookStarted() {
		var err error
		if hook, err = r.newWebhook(cfg.Notify.Webhook); err != nil {
			return err
		}
	}
	var desk *desktop.Notifier
	if cfg.Notify.Desktop && !old.Notify.Desktop {
		var err error
		if desk, err = r.newDesktop(); err != nil {
			if hook != nil {
				hook.Close(context.Background())
			}
			return err
		}
	}
	r.mu.Lock()
	if r.noticeClosed { // Shutdown has begun
		r.mu.Unlock()
		closeParts(hook, desk)
		return errors.New("notify: shutting down")
	}
	var oldHook *webhook.Sender
	var oldDesk *desktop.Notifier
	if hook != nil || (hookChanged && cfg.Notify.Webhook.URL == "") {
		oldHook, r.hook = r.hook, hook
	}
	if desk != nil || !cfg.Notify.Desktop {
		oldDesk, r.desk = r.desk, desk
	}
	r.cfg = cfg
	r.publicURL = PublicURL(cfg)
	r.mu.Unlock()
	closeParts(oldHook, oldDesk)
	r.log.Info().Str("event", "notify_reloaded").Bool("webhook", cfg.Notify.Webhook.URL != "").
		Bool("desktop", cfg.Notify.Desktop).Msg("web and notify settings reloaded")
	return nil
}

// hookStarted reports whether Start has run, so that Reload may start a
// webhook.
func (r *Reach) hookStarted() bool { return r.started.Load() }

// closeParts ends a replaced webhook (posting what it holds, for a while)
// and a replaced desktop notifier; nil ones are skipped.
func closeParts(hook *webhook.Sender, desk *desktop.Notifier) {
	if hook != nil {
		ctx, cancel := context.WithTimeout(context.Background(), webhookDrain)
		hook.Close(ctx)
		cancel()
	}
	if desk != nil {
		desk.Close()
	}
}

// webhookDrain bounds how long a replaced webhook goes on posting.
const webhookDrain = 5 * time.Second

// restartKeys names the settings that differ between old and cfg and that
// only a restart applies.
func restartKeys(old, cfg config.Config) []string {
	var keys []string
	o, n := old.Web, cfg.Web
	if o.Address != n.Address {
		keys = append(keys, "web.address")
	}
	if o.Mode != n.Mode || old.LocalMode() != cfg.LocalMode() {
		keys = append(keys, "web.mode")
	}
	if o.IncidentTTL != n.IncidentTTL {
		keys = append(keys, "web.incident_ttl")
	}
	if o.MaxIncidents != n.MaxIncidents {
		keys = append(keys, "web.max_incidents")
	}
	if o.Admin != n.Admin {
		keys = append(keys, "web.admin")
	}
	return keys
}

// Shutdown ends the notice sessions, stops the web server, flushes the
// webhook until ctx ends, and waits for a desktop notification in
// progress. Call it after the proxy's Shutdown: the pages stay up while
// the proxy drains.
func (r *Reach) Shutdown(ctx context.Context) {
	r.mu.Lock()
	srv, hook, desk := r.noticeSrv, r.hook, r.desk
	r.noticeClosed, r.hook, r.desk = true, nil, nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	if r.web != nil {
		r.web.Shutdown(ctx)
	}
	if hook != nil {
		hook.Close(ctx)
	}
	if desk != nil {
		desk.Close()
	}
}

// OnRefusal is the proxy's refusal hook: it records the incident, notifies,
// and decides between a NO with the incident link and the notice mailbox.
func (r *Reach) OnRefusal(ctx context.Context, rf proxy.Refusal) proxy.Answer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var ans proxy.Answer
	var srv *notice.Server
	// The notice mailbox answers OK: only for the password the server
	// accepted last (the account or provider changed, not the typing),
	// never for one the server refused or never saw.
	if rf.NoticeMailbox && rf.PasswordWorkedLast && notice.Eligible(rf.Diagnosis) {
		srv = r.noticeServerLocked()
	}
	d := rf.Diagnosis
	when := rf.Time
	if r.store != nil && r.web != nil {
		in := r.store.Add(incident.Incident{
			Client: rf.Client, User: rf.User, Lang: rf.Lang, Message: rf.Message,
			Cause: d.Cause, Alternative: d.Alternative, Code: d.Code, Temporary: d.Temporary,
			Provider: d.Provider, ProviderName: d.ProviderName, HelpURL: d.HelpURL,
			Notice: srv != nil,
		})
		when = in.Time
		ans.Link = r.linkLocked(rf.Local, in.ID)
	}
	if srv != nil {
		n := notice.Notice{
			User: rf.User, Lang: rf.Lang, Message: rf.Message, Cause: d.Cause, Temporary: d.Temporary,
			Steps: incident.Steps(d.Cause, rf.Lang), ProviderName: d.ProviderName, HelpURL: d.HelpURL, Time: when,
		}
		ans.Handoff = &proxy.Handoff{Capabilities: notice.Capabilities(), Serve: serveNotice(srv, n)}
	}
	r.notifyLocked(rf, ans, when)
	return ans
}

// noticeServerLocked returns the notice mailbox server, started on first
// use; nil once Shutdown has begun (the login then gets a NO). r.mu is
// read-locked: the server is made under its own lock.
func (r *Reach) noticeServerLocked() *notice.Server {
	r.noticeMu.Lock()
	defer r.noticeMu.Unlock()
	if r.noticeClosed {
		return nil
	}
	if r.noticeSrv == nil {
		r.noticeSrv = notice.NewServer(notice.Options{
			MaxSession: r.opts.NoticeMaxSession,
			Logger:     imapLogger{r.log},
		})
	}
	return r.noticeSrv
}

// serveNotice runs a notice session on a connection whose login the proxy
// answered with OK.
func serveNotice(srv *notice.Server, n notice.Notice) func(context.Context, net.Conn, *bufio.Reader) error {
	return func(ctx context.Context, conn net.Conn, br *bufio.Reader) error {
		log := zerolog.Ctx(ctx)
		pending, _ := br.Peek(br.Buffered()) // bytes pipelined after the login
		pending = append([]byte(nil), pending...)
		start := time.Now()
		log.Info().Str("event", "notice_start").Str("user", n.User).Str("cause", string(n.Cause)).
			Msg("login answered with the notice mailbox")
		err := srv.Serve(conn, pending, n)
		ev := log.Info()
		if err != nil {
			ev = log.Debug().Err(err)
		}
		ev.Str("event", "notice_end").Str("user", n.User).Int64("duration_ms", time.Since(start).Milliseconds()).Msg("notice mailbox session ended")
		return nil
	}
}

// linkLocked is the URL of an incident page: the public URL, or in local
// mode the address the mail app reached us on, with the web port.
func (r *Reach) linkLocked(local net.Addr, id string) string {
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

// notifyLocked tells the webhook and the desktop. Neither gets the
// password or any fact about it: the cause, the code, the user name, the
// link.
func (r *Reach) notifyLocked(rf proxy.Refusal, ans proxy.Answer, when time.Time) {
	d := rf.Diagnosis
	if r.hook != nil {
		ev := webhook.Event{
			Time: when, Cause: string(d.Cause), Code: d.Code, Temporary: d.Temporary,
			User: rf.User, Provider: d.Provider, Link: ans.Link, Notice: ans.Handoff != nil,
		}
		if rf.Client.IsValid() {
			ev.Client = rf.Client.String()
		}
		r.hook.Send(ev)
	}
	if r.desk != nil {
		body := rf.Message
		if ans.Link != "" {
			body += " " + ans.Link
		}
		r.desk.Notify(rf.User+"\x00"+string(d.Cause), "imapwhy: "+rf.User, body)
	}
}

// imapLogger sends go-imap's messages (mostly clients going away) to the
// debug log.
type imapLogger struct{ l zerolog.Logger }

func (l imapLogger) Printf(format string, args ...any) {
	l.l.Debug().Str("event", "notice_imap").Msg(fmt.Sprintf(format, args...))
}
