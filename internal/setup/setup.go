// Package setup serves what puts a device on imapwhy: the set-up page
// (/setup: an address in, the device's settings out), an Apple
// configuration profile (CA, Mail account, home-screen icon of the status
// page), the local CA certificate, Thunderbird's autoconfig file, and a
// live view of the device's first logins. Plain HTTP serves the same
// behind a short-lived Link, for the first contact.
package setup

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/notify/incident"
)

// Listener is one of imapwhy's IMAP listeners as a mail app is set up for
// it: its port and TLS mode ("implicit" or "starttls").
type Listener struct {
	Port int
	TLS  string
}

// Options configure the handler.
type Options struct {
	// CAFile is the local CA certificate (PEM) to install on devices; ""
	// when imapwhy's certificate is from a public authority.
	CAFile string
	// CAFingerprint is the CA's "SHA256 AB:CD:..." shown to compare.
	CAFingerprint string
	// Listeners are the IMAP listeners to set mail apps up for: the first
	// implicit-TLS one goes into profiles. At least one.
	Listeners []Listener
	// IMAPHost is the host name devices reach imapwhy at; "": the host the
	// page was requested at (this PC's address on the home network).
	IMAPHost string
	// WebPort is the port of the HTTPS status page, for the home-screen
	// icon; 0: no icon. StatusURL, when set, is used instead (a gateway's
	// public address).
	WebPort   int
	StatusURL string
	// Events feeds the live view; nil: no live view.
	Events *Events
	// Log receives served profiles (never with the address).
	Log zerolog.Logger
}

// Handler serves the set-up pages. Mount it for "/setup", "/setup/",
// "/mail/config-v1.1.xml" and "/.well-known/autoconfig/"; Paths lists them.
type Handler struct {
	opts    Options
	mux     *http.ServeMux
	webPort atomic.Int32 // SetWebPort; Options.WebPort until set
	ls      atomic.Pointer[[]Listener]
}

// SetListeners replaces Options.Listeners once the listeners are bound
// (a configured port 0 becomes the port the system chose).
func (h *Handler) SetListeners(ls []Listener) {
	if len(ls) > 0 {
		h.ls.Store(&ls)
	}
}

func (h *Handler) listeners() []Listener { return *h.ls.Load() }

// SetWebPort sets the status page's port once the web server is bound.
func (h *Handler) SetWebPort(port int) { h.webPort.Store(int32(port)) }

// Paths are the patterns a Handler answers, for an http.ServeMux.
var Paths = []string{"/setup", "/setup/", "/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"}

// New returns the handler.
func New(o Options) (*Handler, error) {
	if len(o.Listeners) == 0 {
		return nil, errors.New("setup: no IMAP listener to set devices up for")
	}
	h := &Handler{opts: o, mux: http.NewServeMux()}
	h.webPort.Store(int32(o.WebPort))
	h.ls.Store(&o.Listeners)
	h.mux.HandleFunc("GET /setup", h.page)
	h.mux.HandleFunc("GET /setup/{$}", h.page)
	h.mux.HandleFunc("GET /setup/profile.mobileconfig", h.profile)
	h.mux.HandleFunc("GET /setup/ca.pem", h.ca)
	h.mux.HandleFunc("GET /setup/ca.crt", h.ca)
	h.mux.HandleFunc("GET /setup/events", h.events)
	h.mux.HandleFunc("GET /mail/config-v1.1.xml", h.autoconfig)
	h.mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", h.autoconfig)
	return h, nil
}

// base is the path prefix of links on a page: "" over HTTPS, the Link's
// prefix over plain HTTP.
type baseKey struct{}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !incident.PageHeaders(w, r, contentSecurityPolicy) {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// PlainHandler serves h over plain HTTP under the link's prefix only; any
// other path, and the link once expired, get an explanation and nothing
// else.
func (h *Handler) PlainHandler(l *Link) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/s/")
		token, path, _ := strings.Cut(rest, "/")
		match, live := false, false
		if ok {
			match, live = l.check(token)
		}
		if !live {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			code := http.StatusNotFound
			if match {
				code = http.StatusGone
			}
			w.WriteHeader(code)
			fmt.Fprintln(w, textFor(incident.ViewerLanguage(r)).LinkExpired)
			return
		}
		r2 := r.Clone(withBase(r.Context(), l.Prefix()))
		r2.URL.Path = "/" + path
		r2.URL.RawPath = ""
		h.ServeHTTP(w, r2)
	})
}

// imapHost is the host devices reach imapwhy at.
func (h *Handler) imapHost(r *http.Request) string {
	if h.opts.IMAPHost != "" {
		return h.opts.IMAPHost
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		host = "localhost"
	}
	return host
}

// statusURL is the status page's address, "" if none.
func (h *Handler) statusURL(r *http.Request) string {
	if h.opts.StatusURL != "" {
		return h.opts.StatusURL
	}
	port := int(h.webPort.Load())
	if port == 0 {
		return ""
	}
	return "https://" + net.JoinHostPort(h.imapHost(r), strconv.Itoa(port)) + "/"
}

// mailListener is the listener profiles use: implicit TLS if there is one.
func (h *Handler) mailListener() Listener {
	ls := h.listeners()
	for _, l := range ls {
		if l.TLS == "implicit" {
			return l
		}
	}
	return ls[0]
}

func (h *Handler) account(r *http.Request, email string) account {
	l := h.mailListener()
	return account{Email: email, IMAPHost: h.imapHost(r), IMAPPort: l.Port, IMAPTLS: l.TLS, SMTP: smtpFor(email)}
}

// readCA reads the CA certificate: its PEM and parsed form.
func (h *Handler) readCA() ([]byte, *x509.Certificate, error) {
	if h.opts.CAFile == "" {
		return nil, nil, nil
	}
	b, err := os.ReadFile(h.opts.CAFile)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no certificate", h.opts.CAFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", h.opts.CAFile, err)
	}
	return pem.EncodeToMemory(blk), c, nil
}

func (h *Handler) ca(w http.ResponseWriter, r *http.Request) {
	pemBytes, c, err := h.readCA()
	if err != nil {
		h.opts.Log.Error().Err(err).Str("event", "setup_ca_unreadable").Msg("local CA certificate")
		http.Error(w, "certificate unavailable", http.StatusInternalServerError)
		return
	}
	if c == nil {
		http.Error(w, textFor(incident.ViewerLanguage(r)).NoCA, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	if strings.HasSuffix(r.URL.Path, ".crt") {
		// Android's installer and Windows open DER .crt files; the .pem
		// link serves the same certificate as text.
		w.Header().Set("Content-Disposition", `attachment; filename="imapwhy-ca.crt"`)
		w.Write(c.Raw)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="imapwhy-ca.pem"`)
	w.Write(pemBytes)
}

func (h *Handler) profile(w http.ResponseWriter, r *http.Request) {
	email, err := parseEmail(r.URL.Query().Get("email"))
	if err != nil {
		http.Error(w, "email: "+err.Error(), http.StatusBadRequest)
		return
	}
	_, c, err := h.readCA()
	if err != nil {
		h.opts.Log.Error().Err(err).Str("event", "setup_ca_unreadable").Msg("local CA certificate")
		http.Error(w, "certificate unavailable", http.StatusInternalServerError)
		return
	}
	in := profileInput{account: h.account(r, email), Lang: incident.ViewerLanguage(r), StatusURL: h.statusURL(r)}
	if c != nil {
		in.CADER, in.CAName, in.CAFingerprint = c.Raw, c.Subject.CommonName, h.opts.CAFingerprint
	}
	h.opts.Log.Info().Str("event", "setup_profile").Str("client", clientAddr(r).String()).
		Str("imap_host", in.IMAPHost).Msg("configuration profile served")
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="imapwhy.mobileconfig"`)
	w.Write(buildProfile(in))
}

func (h *Handler) autoconfig(w http.ResponseWriter, r *http.Request) {
	var email, domain string
	if q := r.URL.Query().Get("emailaddress"); q != "" {
		var err error
		if email, err = parseEmail(q); err != nil {
			http.Error(w, "emailaddress: "+err.Error(), http.StatusBadRequest)
			return
		}
		_, domain, _ = strings.Cut(email, "@")
	}
	smtp := smtpServer{Host: "smtp.%EMAILDOMAIN%", Port: 587, TLS: "starttls", Guess: true}
	if email != "" {
		smtp = smtpFor(email)
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Write(autoconfigFile(domain, email, h.imapHost(r), h.listeners(), smtp))
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	if h.opts.Events == nil {
		http.NotFound(w, r)
		return
	}
	email, _ := parseEmail(r.URL.Query().Get("email"))
	h.opts.Events.serveStream(w, r, clientAddr(r), email)
}

// clientAddr is the viewer's IP address.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

//go:embed web/setup.html
var pageHTML string

//go:embed web/setup.css
var setupCSS string

//go:embed web/live.js
var liveJS string

var (
	pageCSS = incident.StyleSheet() + setupCSS
	// contentSecurityPolicy lets through exactly the page's own style
	// sheet and script, the event stream, downloads and the form.
	contentSecurityPolicy = "default-src 'none'; style-src " + hashSource(pageCSS) + "; script-src " + hashSource(incident.TimeScript()) + " " + hashSource(liveJS) +
		"; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	pageTemplate = template.Must(template.New("setup").Funcs(template.FuncMap{"links": incident.Linkify, "groups": fingerprintGroups}).Parse(pageHTML))
)

// fingerprintGroups lets a fingerprint wrap only between its groups
// ("AB:<wbr>CD"), so that no group is cut in two across lines while the
// person compares it with the one the phone shows.
func fingerprintGroups(fp string) template.HTML {
	groups := strings.Split(fp, ":")
	for i, g := range groups {
		groups[i] = template.HTMLEscapeString(g)
	}
	return template.HTML(strings.Join(groups, ":<wbr>"))
}

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// pageData is what the set-up page's template gets.
type pageData struct {
	T                          *uiText
	CSS                        template.CSS
	JS, TimeJS                 template.JS
	Base                       string
	Email                      string
	BadEmail                   bool
	Device                     string // "apple", "android" or "other"
	Account                    account
	SecurityIMAP, SecuritySMTP string
	HasCA                      bool
	CAName                     string
	Fingerprint                string
	AppleSteps                 []string
	Live                       bool
	Events                     []liveRow
	LastSeq                    uint64
}

type liveRow struct {
	Kind, Headline, Message, Link, Time string
	Steps                               []string
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	lang := incident.ViewerLanguage(r)
	t := textFor(lang)
	d := pageData{T: t, CSS: template.CSS(pageCSS), JS: template.JS(liveJS), TimeJS: template.JS(incident.TimeScript()), Base: baseOf(r.Context()), Device: device(r.UserAgent())}
	if q := r.URL.Query().Get("email"); q != "" {
		email, err := parseEmail(q)
		d.Email, d.BadEmail = q, err != nil
		if err == nil {
			d.Email = email
			d.Account = h.account(r, email)
			d.SecurityIMAP = security(t, d.Account.IMAPTLS)
			d.SecuritySMTP = security(t, d.Account.SMTP.TLS)
		}
	}
	_, c, err := h.readCA()
	if err != nil {
		h.opts.Log.Error().Err(err).Str("event", "setup_ca_unreadable").Msg("local CA certificate")
	}
	if c != nil {
		d.HasCA, d.CAName, d.Fingerprint = true, c.Subject.CommonName, h.opts.CAFingerprint
	}
	for _, s := range t.AppleSteps {
		if strings.Contains(s, "%s") {
			s = fmt.Sprintf(s, d.CAName)
		}
		d.AppleSteps = append(d.AppleSteps, s)
	}
	if h.opts.Events != nil {
		d.Live = true
		user := ""
		if !d.BadEmail {
			user = d.Email
		}
		evs, last := h.opts.Events.since(clientAddr(r), user, 0)
		d.LastSeq = last
		for i := len(evs) - 1; i >= 0; i-- {
			d.Events = append(d.Events, row(t, evs[i]))
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, d); err != nil {
		h.opts.Log.Debug().Err(err).Msg("set-up page not written")
	}
}

// row is an event as the page shows it before the script takes over.
func row(t *uiText, ev Event) liveRow {
	lr := liveRow{Kind: ev.Kind, Message: ev.Message, Steps: ev.Steps, Link: ev.Link, Time: ev.Time.UTC().Format(time.RFC3339)}
	switch ev.Kind {
	case KindLogin:
		lr.Headline = fmt.Sprintf(t.LiveOK, ev.User)
	case KindRefused:
		lr.Headline = fmt.Sprintf(t.LiveRefused, ev.User)
	default:
		lr.Headline = t.LiveUntrusted
	}
	return lr
}

func security(t *uiText, tls string) string {
	if tls == "starttls" {
		return t.STARTTLS
	}
	return t.SSLOn
}

// device guesses the viewer's kind of device from its User-Agent, to show
// its section first.
func device(ua string) string {
	switch {
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"), strings.Contains(ua, "Macintosh"):
		return "apple"
	case strings.Contains(ua, "Android"):
		return "android"
	}
	return "other"
}
