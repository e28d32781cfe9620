package incident

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

//go:embed web/*.html web/style.css web/time.js
var webFiles embed.FS

// css is the one style sheet, inlined into every page so that a page
// saved on a phone still reads well; cssHash lets exactly it through the
// Content-Security-Policy.
var (
	css     = mustRead("web/style.css")
	cssHash = hashSource(css)
)

var pages = template.Must(template.New("").Funcs(template.FuncMap{"counts": newCountTable, "links": Linkify}).
	ParseFS(webFiles, "web/*.html"))

// timeJS shows the times of a page in the viewer's time zone; timeHash
// lets exactly it through the Content-Security-Policy.
var (
	timeJS   = mustRead("web/time.js")
	timeHash = hashSource(timeJS)
)

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func mustRead(name string) string {
	b, err := webFiles.ReadFile(name)
	if err != nil {
		panic("incident: " + err.Error())
	}
	return string(b)
}

// contentSecurityPolicy allows nothing but the inline style sheet and the
// time-zone script: no other scripts, no images, frames or forms, and no
// external anything.
var contentSecurityPolicy = "default-src 'none'; style-src " + cssHash + "; script-src " + timeHash +
	"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// HandlerOptions configures the web pages.
type HandlerOptions struct {
	// Local selects local mode: the status page shows each viewer the
	// failures from the viewer's own IP address, without credentials.
	// Otherwise (gateway mode) it needs Admin.
	Local bool
	// Admin are the status page's credentials in gateway mode; nil: the
	// status page is refused (incident pages still work).
	Admin *Admin
	// Log receives refused admin logins (never the password typed).
	Log zerolog.Logger
	// Location is the time zone of the times shown; nil: time.Local.
	Location *time.Location
}

// Admin are HTTP Basic credentials: a user name and a bcrypt hash.
type Admin struct {
	User string
	Hash []byte
}

// handler serves the pages.
type handler struct {
	st   *Store
	opts HandlerOptions
	auth *authGuard
	mux  *http.ServeMux
}

// NewHandler returns the handler for the incident pages (/why/<id>) and the
// status page (/). Every response carries a strict Content-Security-Policy,
// no-referrer (an incident link must not leak to the provider's help page)
// and no-store.
func NewHandler(st *Store, o HandlerOptions) http.Handler {
	if o.Location == nil {
		o.Location = time.Local
	}
	h := &handler{st: st, opts: o, mux: http.NewServeMux()}
	if o.Admin != nil {
		h.auth = newAuthGuard(*o.Admin, st.now)
	}
	h.mux.HandleFunc("GET /why/{id}", h.why)
	h.mux.HandleFunc("GET /{$}", h.status)
	h.mux.HandleFunc("/", h.notFound)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !PageHeaders(w, r, contentSecurityPolicy) {
		h.message(w, r, http.StatusMethodNotAllowed, textFor(viewerLanguage(r)).MethodRefused)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// pageData is what every page template gets.
type pageData struct {
	T     *uiText
	Title string
	CSS   template.CSS
	JS    template.JS
}

func newPage(lang, title string) pageData {
	t := textFor(lang)
	return pageData{T: t, Title: title, CSS: template.CSS(css), JS: template.JS(timeJS)}
}

// whyData is the incident page: the incident's message and general steps,
// nothing else about it (no user name, no address).
type whyData struct {
	pageData
	In         Incident
	Steps      []string
	HelpURL    string
	Expires    string
	ExpiresUTC string
}

func (h *handler) why(w http.ResponseWriter, r *http.Request) {
	in, ok := h.st.Get(r.PathValue("id"))
	if !ok {
		h.notFound(w, r)
		return
	}
	// The page speaks the language the mail app was answered in, unless
	// the viewer chose one; the message stays as the app showed it.
	lang := in.Lang
	if l, ok := chosenLanguage(r); ok {
		lang = l
	}
	t := textFor(lang)
	d := whyData{
		pageData:   newPage(lang, t.WhyTitle),
		In:         in,
		Steps:      Steps(in.Cause, lang),
		HelpURL:    safeHelpURL(in.HelpURL),
		Expires:    in.Time.Add(h.st.TTL()).In(h.opts.Location).Format("15:04 MST"),
		ExpiresUTC: in.Time.Add(h.st.TTL()).UTC().Format(time.RFC3339),
	}
	h.render(w, http.StatusOK, "why.html", d)
}

// safeHelpURL lets only https links through to an href.
func safeHelpURL(u string) string {
	if strings.HasPrefix(u, "https://") && !strings.ContainsAny(u, " \"'<>") {
		return u
	}
	return ""
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	lang := viewerLanguage(r)
	h.render(w, http.StatusNotFound, "notfound.html", newPage(lang, textFor(lang).NotFoundTitle))
}

// messageData is a page with one sentence.
type messageData struct {
	pageData
	Text string
}

func (h *handler) message(w http.ResponseWriter, r *http.Request, code int, text string) {
	lang := viewerLanguage(r)
	h.render(w, code, "message.html", messageData{newPage(lang, http.StatusText(code)), text})
}

func (h *handler) render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		h.opts.Log.Error().Err(err).Str("event", "web_template_failed").Str("template", name).Msg("page not rendered")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// chosenLanguage is the language the viewer chose with ?lang=, if any.
func chosenLanguage(r *http.Request) (string, bool) {
	if l := r.URL.Query().Get("lang"); l != "" {
		return Language(l), true
	}
	return "", false
}

// viewerLanguage is ?lang=, else the first language of Accept-Language
// the pages speak, else English.
func viewerLanguage(r *http.Request) string {
	if l, ok := chosenLanguage(r); ok {
		return l
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if slices.Contains(languages, base) {
			return base
		}
	}
	return languages[0]
}

// remoteAddr is the viewer's IP address.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// statusData is the status page.
type statusData struct {
	pageData
	Local      bool
	Kept       string
	Untrusted  []string // one line per device that refused the certificate
	Incidents  []statusRow
	Chart      chart
	ByUser     []countRow
	ByCause    []countRow
	ByProvider []countRow
}

type statusRow struct {
	When, WhenUTC, User, Message, Cause, Link string
	Notice                                    bool
}

// statusListMax bounds the rows of the status page's list.
const statusListMax = 200

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	lang := viewerLanguage(r)
	t := textFor(lang)
	var keep func(*Incident) bool
	if h.opts.Local {
		viewer := remoteAddr(r)
		keep = func(in *Incident) bool { return viewer.IsValid() && in.Client.Unmap() == viewer }
	} else if !h.authorize(w, r, t) {
		return
	}
	all := h.st.Recent(keep, 0)
	if _, chosen := chosenLanguage(r); !chosen && len(all) > 0 && all[0].Lang != "" {
		// The page speaks the language the mail app was answered in (the
		// listener's), like the messages it lists.
		lang = Language(all[0].Lang)
		t = textFor(lang)
	}
	d := statusData{
		pageData: newPage(lang, t.StatusTitle),
		Local:    h.opts.Local,
		Kept:     shortDuration(h.st.TTL()),
	}
	for _, u := range h.st.UntrustedDevices() {
		// Every viewer sees these: the person setting a phone up looks
		// from the PC, and the line holds no user name.
		d.Untrusted = append(d.Untrusted, fmt.Sprintf(t.Untrusted, u.Client))
	}
	for i, in := range all {
		if i == statusListMax {
			break
		}
		d.Incidents = append(d.Incidents, statusRow{
			When:    in.Time.In(h.opts.Location).Format("01-02 15:04:05"),
			WhenUTC: in.Time.UTC().Format(time.RFC3339),
			User:    in.User,
			Message: in.Message,
			Cause:   string(in.Cause),
			Link:    Path(in.ID),
			Notice:  in.Notice,
		})
	}
	if !h.opts.Local {
		d.ByUser = countBy(all, func(in Incident) string { return in.User }, t.Unknown)
		d.ByCause = countBy(all, func(in Incident) string { return string(in.Cause) }, t.Unknown)
		d.ByProvider = countBy(all, func(in Incident) string { return cmp.Or(in.ProviderName, in.Provider) }, t.Unknown)
		d.Chart = newChart(h.st.Hourly(), h.opts.Location)
	}
	h.render(w, http.StatusOK, "status.html", d)
}

// authorize checks the admin's credentials; on failure it has answered.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, t *uiText) bool {
	if h.auth == nil {
		h.message(w, r, http.StatusForbidden, t.Unauthorized)
		return false
	}
	switch h.auth.check(r) {
	case authOK:
		return true
	case authLimited:
		w.Header().Set("Retry-After", "60")
		h.message(w, r, http.StatusTooManyRequests, t.TooMany)
	case authRefused:
		h.opts.Log.Warn().Str("event", "web_admin_refused").Str("client", r.RemoteAddr).
			Msg("status page: wrong admin user name or password")
		fallthrough
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="imapwhy", charset="UTF-8"`)
		h.message(w, r, http.StatusUnauthorized, t.Unauthorized)
	}
	return false
}

// countRow is one line of a "by ..." table.
type countRow struct {
	Key string
	N   int
}

// countTableMax bounds the rows of each "by ..." table.
const countTableMax = 15

func countBy(ins []Incident, key func(Incident) string, unknown string) []countRow {
	n := map[string]int{}
	for _, in := range ins {
		n[cmp.Or(key(in), unknown)]++
	}
	rows := make([]countRow, 0, len(n))
	for k, v := range n {
		rows = append(rows, countRow{k, v})
	}
	slices.SortFunc(rows, func(a, b countRow) int {
		return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Key, b.Key))
	})
	if len(rows) > countTableMax {
		rows = rows[:countTableMax]
	}
	return rows
}

// countTable is the argument of the "counts" template.
type countTable struct {
	Title, Key, Count string
	Rows              []countRow
}

func newCountTable(title, key, count string, rows []countRow) countTable {
	return countTable{title, key, count, rows}
}

// shortDuration writes 1h for 1h0m0s and 90m as 1h30m.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
