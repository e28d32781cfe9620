package config

// The ways a diagnosis reaches people whose mail app hides the
// server's words: incident and status pages (web), the notice mailbox (a
// listener's notice_mailbox), and notifications (notify).

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Web modes.
const (
	// WebModeAuto is gateway when web.admin is set or a listener is on a
	// public or wildcard address, local otherwise.
	WebModeAuto = "auto"
	// WebModeLocal: one person or a household. The status page shows each
	// viewer the failures from the viewer's own address.
	WebModeLocal = "local"
	// WebModeGateway: an office gateway. The status page is behind the
	// admin credentials and shows every failure.
	WebModeGateway = "gateway"
)

// Web is imapwhy's HTTPS server for incident pages (/why/<id>) and the
// status page (/), served with the proxy's own certificate.
type Web struct {
	// Address is host:port to serve on; "" (the default) turns the pages,
	// and the links in the NO texts, off.
	Address string `yaml:"address"`
	// PublicURL is the base of the links put in NO texts
	// ("https://mail-gw.example.com:8443"). Default in local mode: https://
	// and the address the mail app connected to, with the web port; in
	// gateway mode: the first tls.acme domain. Gateway mode without ACME
	// needs it.
	PublicURL string `yaml:"public_url"`
	// Mode is auto, local or gateway (see the WebMode constants).
	Mode string `yaml:"mode"`
	// IncidentTTL is how long an incident page (and its line on the status
	// page) lives. Default 1h.
	IncidentTTL Duration `yaml:"incident_ttl"`
	// MaxIncidents bounds the incidents kept; past it the oldest go first.
	// Default 10000.
	MaxIncidents int `yaml:"max_incidents"`
	// Admin guards the status page in gateway mode.
	Admin WebAdmin `yaml:"admin"`
}

// WebAdmin are the status page's credentials in gateway mode (HTTP Basic
// over TLS). The password is only ever stored as a bcrypt hash.
type WebAdmin struct {
	User string `yaml:"user"`
	// PasswordHash is a bcrypt hash ("$2y$10$..."), e.g. from
	// `htpasswd -nbBC 12 "" 'the password' | tr -d ':\n'`.
	PasswordHash string `yaml:"password_hash"`
	// PasswordHashFile is a file holding the bcrypt hash instead (read at
	// start), for configurations kept where others can read them.
	PasswordHashFile string `yaml:"password_hash_file"`
}

// Set reports whether admin credentials are configured.
func (a WebAdmin) Set() bool { return a.User != "" }

// Notify sends each diagnosed failure somewhere people look.
type Notify struct {
	Webhook Webhook `yaml:"webhook"`
	// Desktop shows a desktop notification through the platform's own
	// command (notify-send on Linux, osascript on macOS). Local mode only;
	// default false.
	Desktop bool `yaml:"desktop"`
}

// Webhook posts one JSON object per failure, for gateway admins.
type Webhook struct {
	// URL receives the POSTs; "" (the default) turns the webhook off.
	// https://, or http:// to a loopback address only.
	URL string `yaml:"url"`
	// SecretFile holds a key for the X-Imapwhy-Signature header
	// (HMAC-SHA256 of the body); "" sends no signature.
	SecretFile string `yaml:"secret_file"`
	// PerMinute bounds the POSTs; failures past it are counted in the
	// next POST's "suppressed" field instead. Default 30.
	PerMinute int `yaml:"per_minute"`
	// Queue bounds the failures waiting to be sent; past it they are
	// dropped (and counted). Default 100.
	Queue int `yaml:"queue"`
	// MaxTries is how many times one POST is tried, with backoff. Default 5.
	MaxTries int `yaml:"max_tries"`
	// Timeout bounds one POST. Default 10s.
	Timeout Duration `yaml:"timeout"`
}

func (c *Config) applyReachDefaults() {
	w := &c.Web
	if w.Mode == "" {
		w.Mode = WebModeAuto
	}
	setDur(&w.IncidentTTL, time.Hour)
	setInt(&w.MaxIncidents, 10000)
	h := &c.Notify.Webhook
	setInt(&h.PerMinute, 30)
	setInt(&h.Queue, 100)
	setInt(&h.MaxTries, 5)
	setDur(&h.Timeout, 10*time.Second)
}

// LocalMode reports whether the web pages and notifications work in local
// mode (web.mode, or for auto: no admin credentials, no listener that takes
// PROXY headers, and every listener on a loopback or private address).
func (c *Config) LocalMode() bool {
	switch c.Web.Mode {
	case WebModeLocal:
		return true
	case WebModeGateway:
		return false
	}
	if c.Web.Admin.Set() {
		return false
	}
	for _, l := range c.Listeners {
		host, _, err := net.SplitHostPort(l.Address)
		if err != nil || !isHomeHost(host) || len(l.ProxyProtocol.Trusted) > 0 {
			return false
		}
	}
	return true
}

// isHomeHost: "localhost", or a loopback or private (RFC 1918, RFC 4193)
// address. A wildcard address is not: it may face the internet.
func isHomeHost(host string) bool {
	if IsLoopbackHost(host) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsPrivate()
}

func (c *Config) validateReach() error {
	if err := c.validateWeb(); err != nil {
		return err
	}
	if err := c.Notify.Webhook.validate(); err != nil {
		return err
	}
	if c.Notify.Desktop && !c.LocalMode() {
		return fmt.Errorf("notify.desktop: only in local mode (web.mode is %s and resolves to gateway)", c.Web.Mode)
	}
	return nil
}

func (c *Config) validateWeb() error {
	w := &c.Web
	switch w.Mode {
	case WebModeAuto, WebModeLocal, WebModeGateway:
	default:
		return fmt.Errorf("web.mode: %q is not auto, local or gateway", w.Mode)
	}
	if w.Address != "" {
		host, _, err := net.SplitHostPort(w.Address)
		if err != nil {
			return fmt.Errorf("web.address: %q is not host:port", w.Address)
		}
		if host == "" {
			return fmt.Errorf("web.address: %q has no host; write 127.0.0.1%s for loopback (0.0.0.0 for every interface)", w.Address, w.Address)
		}
	}
	if w.PublicURL != "" {
		if err := checkPublicURL(w.PublicURL); err != nil {
			return fmt.Errorf("web.public_url: %w", err)
		}
	}
	if w.Address != "" && !c.LocalMode() && w.PublicURL == "" && c.TLS.ACME == nil {
		return fmt.Errorf("web.public_url: needed in gateway mode without tls.acme (the https:// address mail app users can open)")
	}
	if w.Mode == WebModeLocal {
		// Local mode shows each viewer the failures of the viewer's TCP
		// source address; behind a load balancer every viewer has the
		// balancer's.
		for i, l := range c.Listeners {
			if len(l.ProxyProtocol.Trusted) > 0 {
				return fmt.Errorf("web.mode: local trusts the TCP source address, but listeners[%d] takes PROXY headers (a load balancer in front); use gateway", i)
			}
		}
	}
	if w.MaxIncidents < 1 {
		return fmt.Errorf("web.max_incidents: %d; at least 1", w.MaxIncidents)
	}
	return w.Admin.validate()
}

// checkPublicURL: https, a host, no user, query or fragment. A path is
// allowed (a reverse proxy's prefix).
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%q must start with https://", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("%q must be scheme, host, port and path only", s)
	}
	return nil
}

func (a *WebAdmin) validate() error {
	hasHash := a.PasswordHash != "" || a.PasswordHashFile != ""
	switch {
	case a.User == "" && hasHash:
		return fmt.Errorf("web.admin.user: needed with a password hash")
	case a.User != "" && !hasHash:
		return fmt.Errorf("web.admin.password_hash: needed with web.admin.user (a bcrypt hash, or password_hash_file)")
	case a.PasswordHash != "" && a.PasswordHashFile != "":
		return fmt.Errorf("web.admin.password_hash: and password_hash_file exclude each other")
	case strings.ContainsAny(a.User, ":\r\n"):
		return fmt.Errorf("web.admin.user: may not contain ':' or line breaks")
	}
	if a.PasswordHash != "" {
		if err := CheckPasswordHash(a.PasswordHash); err != nil {
			return fmt.Errorf("web.admin.password_hash: %w", err)
		}
	}
	return nil
}

// CheckPasswordHash reports whether h is a bcrypt hash; the error never
// quotes h.
func CheckPasswordHash(h string) error {
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("not a bcrypt hash (like $2y$12$...): %w", err)
	}
	return nil
}

func (h *Webhook) validate() error {
	if h.URL == "" {
		return nil
	}
	u, err := url.Parse(h.URL)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("notify.webhook.url: %q is not an http(s) URL with a host", h.URL)
	}
	switch {
	case u.User != nil:
		return fmt.Errorf("notify.webhook.url: no user or password in the URL; use secret_file for a signature")
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("notify.webhook.url: http:// only to a loopback address, not %q (user names would cross the network in the clear)", u.Hostname())
	default:
		return fmt.Errorf("notify.webhook.url: %q is not http(s)", h.URL)
	}
	for _, v := range []struct {
		key string
		n   int
	}{{"per_minute", h.PerMinute}, {"queue", h.Queue}, {"max_tries", h.MaxTries}} {
		if v.n < 1 {
			return fmt.Errorf("notify.webhook.%s: %d; at least 1", v.key, v.n)
		}
	}
	return nil
}
