package bridge

// The /connect pages: the authorization code flow with PKCE (RFC 7636),
// state checked and bound to the browser by a cookie, the redirect URI
// exactly public_url + /connect/callback; the app password shown once at
// the end; a button that forgets the account.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

const (
	flowCookie   = "imapwhy_connect"
	flowLifetime = 10 * time.Minute
	maxFlows     = 1000
)

// flow is one browser connection under way, by its state.
type flow struct {
	user, provider, verifier, binding string
	password                          string // the person's own, or "" for a generated one
	expires                           time.Time
}

type flows struct {
	mu sync.Mutex
	m  map[string]*flow
}

func (f *flows) put(state string, fl *flow) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for k, v := range f.m {
		if now.After(v.expires) {
			delete(f.m, k)
		}
	}
	if len(f.m) >= maxFlows {
		return false
	}
	f.m[state] = fl
	return true
}

// take returns and forgets the flow of state when binding (the browser's
// cookie) is the one it was started with.
func (f *flows) take(state, binding string) *flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.m[state]
	if fl == nil || subtle.ConstantTimeCompare([]byte(fl.binding), []byte(binding)) != 1 {
		return nil
	}
	delete(f.m, state)
	if time.Now().After(fl.expires) {
		return nil
	}
	return fl
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Handler serves the pages under Paths.
func (b *Bridge) Handler() http.Handler {
	fs := &flows{m: map[string]*flow{}}
	mux := http.NewServeMux()
	mux.HandleFunc(ConnectPath, func(w http.ResponseWriter, r *http.Request) { b.connect(w, r, fs) })
	mux.HandleFunc(CallbackPath, func(w http.ResponseWriter, r *http.Request) { b.callback(w, r, fs) })
	mux.HandleFunc(DisconnectPath, b.disconnect)
	return mux
}

func (b *Bridge) redirectURI() string {
	return strings.TrimSuffix(b.opts.PublicURL, "/") + CallbackPath
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>imapwhy: connect your mail account</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5}
input{font-size:1em;padding:.3em;width:100%;box-sizing:border-box}button{font-size:1em;padding:.4em 1em;margin-top:.5em}
.pw{font-family:ui-monospace,monospace;font-size:1.4em;background:#eef;padding:.5em;user-select:all;word-break:break-all}.err{color:#a00}</style>
</head><body>
{{if .Password}}
<h1>Connected</h1>
<p>{{.User}} is connected. In your mail app, use this password for the account. It is shown only this once: copy it now.</p>
<p class="pw" id="app-password">{{.Password}}</p>
<p>imapwhy keeps your account's sign-in locked with this password; without it nobody, imapwhy included, can use it.</p>
{{else if .Own}}
<h1>Connected</h1>
<p>{{.User}} is connected. Your mail app keeps using the password you chose.</p>
{{else if .Gone}}
<h1>Disconnected</h1>
<p>imapwhy has forgotten the sign-in of {{.User}}.</p>
{{else}}
<h1>Connect your mail account</h1>
<p>Your provider no longer takes passwords from mail apps. Connect the account once here: you sign in with your provider, and your mail app keeps working with a password.</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/connect">
<p><label>Mail address<br><input name="user" type="email" value="{{.User}}" required></label></p>
<p><label>App password (optional: leave empty and imapwhy makes one)<br><input name="password" type="password" autocomplete="new-password"></label></p>
<button type="submit" id="connect">Sign in with your provider</button>
</form>
<h2>Disconnect</h2>
<form method="post" action="/connect/disconnect">
<p><label>Mail address<br><input name="user" type="email" value="{{.User}}" required></label></p>
<p><label>App password<br><input name="password" type="password" required></label></p>
<button type="submit" id="disconnect">Forget this account</button>
</form>
{{end}}
</body></html>`))

type pageData struct {
	User, Password, Error string
	Own, Gone             bool
}

func render(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = page.Execute(w, d)
}

// connect shows the form (GET) or starts the authorization request (POST).
func (b *Bridge) connect(w http.ResponseWriter, r *http.Request, fs *flows) {
	if r.Method != http.MethodPost {
		render(w, http.StatusOK, pageData{User: r.URL.Query().Get("user")})
		return
	}
	if b.opts.PublicURL == "" {
		// The provider must send the browser back to one exact address.
		render(w, http.StatusServiceUnavailable, pageData{Error: "Connecting in the browser is not set up here (the administrator must set web.public_url). Use imapwhy connect in a terminal."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, pageData{Error: "The form could not be read."})
		return
	}
	user, own := strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password")
	p := b.provider(user)
	if p == nil {
		render(w, http.StatusBadRequest, pageData{User: user, Error: "This address does not use the OAuth bridge here. Ask the administrator of imapwhy."})
		return
	}
	if own != "" {
		if why := CheckOwnPassword(own); why != "" {
			render(w, http.StatusBadRequest, pageData{User: user, Error: "Your app password: " + why})
			return
		}
	}
	conf, err := p.config(r.Context(), b.redirectURI())
	if err != nil {
		render(w, http.StatusBadGateway, pageData{User: user, Error: "Your provider's sign-in service cannot be reached right now. Try again in a few minutes."})
		return
	}
	state, binding, verifier := randomHex(16), randomHex(16), oauth2.GenerateVerifier()
	if !fs.put(state, &flow{user: user, provider: p.cfg.Name, verifier: verifier, binding: binding, password: own, expires: time.Now().Add(flowLifetime)}) {
		render(w, http.StatusServiceUnavailable, pageData{User: user, Error: "Too many connections under way. Try again in a few minutes."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: binding, Path: ConnectPath, MaxAge: int(flowLifetime / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("login_hint", user)}
	if p.cfg.Kind == "google" {
		// Google gives a refresh token only when asked for offline access.
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	http.Redirect(w, r, conf.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

// callback takes the provider's redirect: the state must be one this
// browser started; the code is exchanged with the PKCE verifier.
func (b *Bridge) callback(w http.ResponseWriter, r *http.Request, fs *flows) {
	q := r.URL.Query()
	var fl *flow
	if c, err := r.Cookie(flowCookie); err == nil {
		fl = fs.take(q.Get("state"), c.Value)
	}
	if fl == nil {
		render(w, http.StatusBadRequest, pageData{Error: "This sign-in was not started here, or took too long. Start again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: ConnectPath, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		msg := "Your provider did not allow the connection (" + e + ")."
		if e == "consent_required" || e == "access_denied" {
			msg = "The connection was not approved. If your organization must approve apps, ask your administrator to approve imapwhy, then try again."
		}
		render(w, http.StatusForbidden, pageData{User: fl.user, Error: msg})
		return
	}
	p := b.providerNamed(fl.provider)
	if p == nil {
		render(w, http.StatusBadRequest, pageData{User: fl.user, Error: "This provider is no longer configured."})
		return
	}
	conf, err := p.config(r.Context(), b.redirectURI())
	if err != nil {
		render(w, http.StatusBadGateway, pageData{User: fl.user, Error: "Your provider's sign-in service cannot be reached right now. Try again."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := conf.Exchange(p.ctx(ctx), q.Get("code"), oauth2.VerifierOption(fl.verifier))
	if err != nil {
		render(w, http.StatusBadGateway, pageData{User: fl.user, Error: "Your provider refused the sign-in: " + safeErr(err).Error()})
		return
	}
	password := fl.password
	if password == "" {
		password = NewPassword()
	}
	if err := b.save(p, fl.user, password, tok); err != nil {
		render(w, http.StatusBadGateway, pageData{User: fl.user, Error: "The connection could not be kept: " + err.Error()})
		return
	}
	if fl.password != "" {
		render(w, http.StatusOK, pageData{User: fl.user, Own: true})
		return
	}
	render(w, http.StatusOK, pageData{User: fl.user, Password: password})
}

// disconnect forgets an account whose app password is given.
func (b *Bridge) disconnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Redirect(w, r, ConnectPath, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, pageData{Error: "The form could not be read."})
		return
	}
	user, pw := strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password")
	rec, err := b.opts.Store.Load(user)
	if err == nil {
		_, k, oerr := rec.open(pw)
		clear(k)
		err = oerr
	}
	if err != nil {
		// The same answer for an unknown account and a wrong password.
		render(w, http.StatusForbidden, pageData{User: user, Error: "That address and app password do not match a connected account."})
		return
	}
	if err := b.Disconnect(r.Context(), user, pw); err != nil {
		render(w, http.StatusInternalServerError, pageData{User: user, Error: "The account could not be forgotten: " + err.Error()})
		return
	}
	render(w, http.StatusOK, pageData{User: user, Gone: true})
}
