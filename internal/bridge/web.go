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

	"github.com/imapwhy/imapwhy/internal/notify/incident"
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
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.T.Title}}</title>
<style>{{.CSS}}
input{font-size:1em;padding:.3em;width:100%;box-sizing:border-box}button{font-size:1em;padding:.4em 1em;margin-top:.5em}
.pw{font-family:ui-monospace,monospace;font-size:1.4em;background:#eef;padding:.5em;user-select:all;word-break:break-all}.err{color:#a00}</style>
</head><body><main>
{{if .Password}}
<h1>{{.T.Connected}}</h1>
<p>{{.User}}: {{.T.UseThis}}</p>
<p class="pw" id="app-password">{{.Password}}</p>
<p>{{.T.Locked}}</p>
{{else if .Own}}
<h1>{{.T.Connected}}</h1>
<p>{{.User}}: {{.T.KeepOwn}}</p>
{{else if .Gone}}
<h1>{{.T.Disconnected}}</h1>
<p>{{.User}}: {{.T.Forgotten}}</p>
{{else}}
<h1>{{.T.Title}}</h1>
<p>{{.T.Intro}}</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/connect{{.Query}}">
<p><label>{{.T.Address}}<br><input name="user" type="email" value="{{.User}}" required></label></p>
<p><label>{{.T.OwnPassword}}<br><input name="password" type="password" autocomplete="new-password"></label></p>
<button type="submit" id="connect">{{.T.SignIn}}</button>
</form>
<h2>{{.T.Disconnect}}</h2>
<form method="post" action="/connect/disconnect{{.Query}}">
<p><label>{{.T.Address}}<br><input name="user" type="email" value="{{.User}}" required></label></p>
<p><label>{{.T.AppPassword}}<br><input name="password" type="password" required></label></p>
<button type="submit" id="disconnect">{{.T.Forget}}</button>
</form>
{{end}}
</main></body></html>`))

// texts are a page's words in one language.
type texts struct {
	Title, Connected, UseThis, Locked, KeepOwn, Disconnected, Forgotten, Intro, Address, OwnPassword,
	SignIn, Disconnect, AppPassword, Forget string
	// Errors.
	BadForm, NotBridged, NoPublicURL, Unreachable, TooMany, NotStarted, NotApproved, Denied, Gone,
	Refused, NotKept, NoMatch string
}

var pageTexts = map[string]texts{
	"en": {
		Title:        "Connect your mail account",
		Connected:    "Connected",
		UseThis:      "in your mail app, use this password for the account. It is shown only this once: copy it now.",
		Locked:       "imapwhy keeps your account's sign-in locked with this password; without it nobody, imapwhy included, can use it.",
		KeepOwn:      "connected. Your mail app keeps using the password you chose.",
		Disconnected: "Disconnected",
		Forgotten:    "imapwhy has forgotten this account's sign-in.",
		Intro:        "Your provider no longer takes passwords from mail apps. Connect the account once here: you sign in with your provider, and your mail app keeps working with a password.",
		Address:      "Mail address",
		OwnPassword:  "App password (optional: leave empty and imapwhy makes one)",
		SignIn:       "Sign in with your provider",
		Disconnect:   "Disconnect",
		AppPassword:  "App password",
		Forget:       "Forget this account",
		BadForm:      "The form could not be read.",
		NotBridged:   "This address does not use the OAuth bridge here. Ask the administrator of imapwhy.",
		NoPublicURL:  "Connecting in the browser is not set up here (the administrator must set web.public_url). Use imapwhy connect in a terminal.",
		Unreachable:  "Your provider's sign-in service cannot be reached right now. Try again in a few minutes.",
		TooMany:      "Too many connections under way. Try again in a few minutes.",
		NotStarted:   "This sign-in was not started here, or took too long. Start again.",
		NotApproved:  "The connection was not approved. If your organization must approve apps, ask your administrator to approve imapwhy, then try again.",
		Denied:       "Your provider did not allow the connection:",
		Gone:         "This provider is no longer configured.",
		Refused:      "Your provider refused the sign-in:",
		NotKept:      "The connection could not be kept:",
		NoMatch:      "That address and app password do not match a connected account.",
	},
	"ja": {
		Title:        "メールアカウントを接続",
		Connected:    "接続しました",
		UseThis:      "メールアプリでは、このアカウントのパスワードとして次を使ってください。表示はこの一度だけです。いまコピーしてください。",
		Locked:       "imapwhyはアカウントのサインインをこのパスワードで鍵をかけて保管します。このパスワードがなければ、imapwhy自身も含めて誰も使えません。",
		KeepOwn:      "接続しました。メールアプリは選んだパスワードのまま使えます。",
		Disconnected: "接続を解除しました",
		Forgotten:    "imapwhyはこのアカウントのサインインを消去しました。",
		Intro:        "お使いのプロバイダは、メールアプリからのパスワードでのサインインを受け付けなくなりました。ここで一度だけアカウントを接続してください。プロバイダにサインインすれば、メールアプリはパスワードのまま使い続けられます。",
		Address:      "メールアドレス",
		OwnPassword:  "アプリ用パスワード(任意: 空欄ならimapwhyが作ります)",
		SignIn:       "プロバイダでサインイン",
		Disconnect:   "接続の解除",
		AppPassword:  "アプリ用パスワード",
		Forget:       "このアカウントを消去",
		BadForm:      "フォームを読み取れませんでした。",
		NotBridged:   "このアドレスはここではOAuthブリッジを使いません。imapwhyの管理者に確認してください。",
		NoPublicURL:  "ここではブラウザでの接続が設定されていません(管理者がweb.public_urlを設定する必要があります)。端末でimapwhy connectを使ってください。",
		Unreachable:  "いまプロバイダのサインインのサービスにつながりません。数分後にやり直してください。",
		TooMany:      "進行中の接続が多すぎます。数分後にやり直してください。",
		NotStarted:   "このサインインはここで始められたものではないか、時間がかかりすぎました。最初からやり直してください。",
		NotApproved:  "接続は承認されませんでした。組織でアプリの承認が必要な場合は、管理者にimapwhyの承認を依頼してからやり直してください。",
		Denied:       "プロバイダが接続を許可しませんでした:",
		Gone:         "このプロバイダはもう設定されていません。",
		Refused:      "プロバイダがサインインを拒否しました:",
		NotKept:      "接続を保存できませんでした:",
		NoMatch:      "そのアドレスとアプリ用パスワードに一致する接続はありません。",
	},
}

type pageData struct {
	User, Password, Error string
	Own, Gone             bool
	Lang, Query           string
	T                     texts
	CSS                   template.CSS
}

// pageIn is the page data in the viewer's language.
func pageIn(r *http.Request) pageData {
	lang := incident.ViewerLanguage(r)
	t, ok := pageTexts[lang]
	if !ok {
		lang, t = "en", pageTexts["en"]
	}
	d := pageData{Lang: lang, T: t, CSS: template.CSS(incident.StyleSheet())}
	if r.URL.Query().Get("lang") != "" {
		d.Query = "?lang=" + lang
	}
	return d
}

func render(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	base := pageIn(r)
	d.Lang, d.T, d.CSS, d.Query = base.Lang, base.T, base.CSS, base.Query
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = page.Execute(w, d)
}

// postedLogin reads the user and password of a posted form (small), or
// answers 400 and returns ok false.
func postedLogin(w http.ResponseWriter, r *http.Request) (user, password string, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		render(w, r, http.StatusBadRequest, pageData{Error: pageIn(r).T.BadForm})
		return "", "", false
	}
	return strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password"), true
}

// connect shows the form (GET) or starts the authorization request (POST).
func (b *Bridge) connect(w http.ResponseWriter, r *http.Request, fs *flows) {
	if r.Method != http.MethodPost {
		render(w, r, http.StatusOK, pageData{User: r.URL.Query().Get("user")})
		return
	}
	if b.opts.PublicURL == "" {
		// The provider must send the browser back to one exact address.
		render(w, r, http.StatusServiceUnavailable, pageData{Error: pageIn(r).T.NoPublicURL})
		return
	}
	user, own, ok := postedLogin(w, r)
	if !ok {
		return
	}
	p := b.provider(user)
	if p == nil {
		render(w, r, http.StatusBadRequest, pageData{User: user, Error: pageIn(r).T.NotBridged})
		return
	}
	if own != "" {
		if why := CheckOwnPassword(own); why != "" {
			render(w, r, http.StatusBadRequest, pageData{User: user, Error: pageIn(r).T.OwnPassword + ": " + why})
			return
		}
	}
	conf, err := p.config(r.Context(), b.redirectURI())
	if err != nil {
		render(w, r, http.StatusBadGateway, pageData{User: user, Error: pageIn(r).T.Unreachable})
		return
	}
	state, binding, verifier := randomHex(16), randomHex(16), oauth2.GenerateVerifier()
	if !fs.put(state, &flow{user: user, provider: p.cfg.Name, verifier: verifier, binding: binding, password: own, expires: time.Now().Add(flowLifetime)}) {
		render(w, r, http.StatusServiceUnavailable, pageData{User: user, Error: pageIn(r).T.TooMany})
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
		render(w, r, http.StatusBadRequest, pageData{Error: pageIn(r).T.NotStarted})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: ConnectPath, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		msg := pageIn(r).T.Denied + " " + e
		if e == "consent_required" || e == "access_denied" {
			msg = pageIn(r).T.NotApproved
		}
		render(w, r, http.StatusForbidden, pageData{User: fl.user, Error: msg})
		return
	}
	p := b.providerNamed(fl.provider)
	if p == nil {
		render(w, r, http.StatusBadRequest, pageData{User: fl.user, Error: pageIn(r).T.Gone})
		return
	}
	conf, err := p.config(r.Context(), b.redirectURI())
	if err != nil {
		render(w, r, http.StatusBadGateway, pageData{User: fl.user, Error: pageIn(r).T.Unreachable})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := conf.Exchange(p.ctx(ctx), q.Get("code"), oauth2.VerifierOption(fl.verifier))
	if err != nil {
		render(w, r, http.StatusBadGateway, pageData{User: fl.user, Error: pageIn(r).T.Refused + " " + safeErr(err).Error()})
		return
	}
	password := fl.password
	if password == "" {
		password = NewPassword()
	}
	if err := b.save(p, fl.user, password, tok); err != nil {
		render(w, r, http.StatusBadGateway, pageData{User: fl.user, Error: pageIn(r).T.NotKept + " " + err.Error()})
		return
	}
	if fl.password != "" {
		render(w, r, http.StatusOK, pageData{User: fl.user, Own: true})
		return
	}
	render(w, r, http.StatusOK, pageData{User: fl.user, Password: password})
}

// disconnect forgets an account whose app password is given.
func (b *Bridge) disconnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Redirect(w, r, ConnectPath, http.StatusSeeOther)
		return
	}
	user, pw, ok := postedLogin(w, r)
	if !ok {
		return
	}
	rec, err := b.opts.Store.Load(user)
	if err == nil {
		_, k, oerr := rec.open(pw)
		clear(k)
		err = oerr
	}
	if err != nil {
		// The same answer for an unknown account and a wrong password.
		render(w, r, http.StatusForbidden, pageData{User: user, Error: pageIn(r).T.NoMatch})
		return
	}
	if err := b.Disconnect(r.Context(), user, pw); err != nil {
		render(w, r, http.StatusInternalServerError, pageData{User: user, Error: pageIn(r).T.NotKept + " " + err.Error()})
		return
	}
	render(w, r, http.StatusOK, pageData{User: user, Gone: true})
}
