package proxy_test

// The OAuth bridge end to end: accounts connected by the device flow and
// by the browser flow against a real OpenID Connect provider
// (internal/oauthtest), then password-only clients (imapclient, Python's
// imaplib) logging in through the proxy to a real Dovecot whose oauth2
// passdb takes only that provider's tokens.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/bridge"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/oauthtest"
	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

const bridgeClientID = "imapwhy-bridge"

type bridgeRig struct {
	op      *oauthtest.Server
	dc      *dovecottest.Server
	e       *e2e
	b       *bridge.Bridge
	store   *bridge.FileStore
	pages   *httptest.Server
	pagePEM []byte
	mu      sync.Mutex
	clients []*http.Client // closed at the end (no idle connections left)
}

// browser is an HTTP client that trusts the provider and imapwhy's pages.
func (r *bridgeRig) browser() *http.Client {
	c := r.op.Browser(r.pagePEM)
	r.mu.Lock()
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	return c
}

func startBridgeRig(t *testing.T) *bridgeRig {
	t.Helper()
	op, dc := oauthtest.StartWithDovecot(t, dovecottest.Options{MaxUserIPConnections: 100, MaxSessions: 100})
	e, cert := newE2E(t, dc)
	r := &bridgeRig{op: op, dc: dc, e: e}
	// imapwhy's pages, where the provider sends the browser back.
	var pages http.Handler = http.NotFoundHandler()
	r.pages = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) { pages.ServeHTTP(w, q) }))
	r.pages.StartTLS()
	t.Cleanup(r.pages.Close)
	r.pagePEM = pemOf(r.pages.Certificate())
	op.AddClient(oauthtest.Client{ID: bridgeClientID, Secret: "bridge-secret", RedirectURI: r.pages.URL + bridge.CallbackPath})

	dir := t.TempDir()
	secret := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secret, []byte("bridge-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
state_dir: %s
log: {level: debug}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms, per_user_logins_per_minute: 1000, per_address_logins_per_minute: 1000, per_address_connections: 500}
listeners:
  - address: 127.0.0.1:0
    tls: implicit
    language: en
    upstream: {address: %q, tls: implicit}
oauth_bridge:
  providers:
    - kind: oidc
      name: test-op
      issuer: %s
      client_id: %s
      client_secret_file: %s
      scopes: [openid, email, %s, offline_access]
      domains: [example.test]
`, dir, dc.IMAPS, op.Issuer, bridgeClientID, secret, oauthtest.MailScope)))
	if err != nil {
		t.Fatal(err)
	}
	r.store, err = bridge.NewFileStore(filepath.Join(dir, "oauth-bridge"))
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: op.CAPool}
	hc := &http.Client{Transport: tr}
	r.clients = append(r.clients, hc)
	t.Cleanup(func() {
		for _, c := range r.clients {
			c.CloseIdleConnections()
		}
	})
	r.b, err = bridge.New(cfg.OAuthBridge, bridge.Options{Store: r.store, PublicURL: r.pages.URL, HTTPClient: hc, Margin: time.Millisecond, Logger: proxy.NewTestLogger(r.e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	pages = r.b.Handler()
	testkit.ShowOnFailure(t, "proxy log", r.e.logs)
	srv, err := proxy.New(cfg, proxy.Options{
		Logger:        proxy.NewTestLogger(r.e.logs),
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		UpstreamRoots: dc.CAPool,
		Bridge:        r.b,
	})
	testkit.Start(t, srv, err)
	r.e.addrs[routes[0]] = srv.Addrs()[0].String()
	return r
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// connectDevice connects user by the device flow, approving the code on
// the provider's device page as the person would.
func (r *bridgeRig) connectDevice(t *testing.T, user, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	approved := make(chan error, 1)
	pw, err := r.b.ConnectDevice(ctx, user, "", func(d bridge.Device) {
		if d.UserCode == "" || !strings.HasPrefix(d.VerificationURI, r.op.Issuer) {
			t.Errorf("device authorization: %+v", d)
		}
		go func() { approved <- r.op.ApproveDevice(ctx, d.UserCode, user, password) }()
	})
	if err != nil {
		t.Fatalf("ConnectDevice: %v", err)
	}
	if err := <-approved; err != nil {
		t.Fatalf("approving the device: %v", err)
	}
	if len(pw) < 24 {
		t.Fatalf("generated app password %q is short", pw)
	}
	proxy.RegisterTestSecrets(pw)
	return pw
}

// connectBrowser walks the /connect pages and the provider's login form
// as a browser does and returns the app password the last page shows.
func (r *bridgeRig) connectBrowser(t *testing.T, user, password string) string {
	t.Helper()
	status, body := r.browserFlow(t, user, user, password)
	m := regexp.MustCompile(`id="app-password">([^<]+)<`).FindSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("callback: HTTP %d\n%s", status, body)
	}
	proxy.RegisterTestSecrets(string(m[1]))
	return string(m[1])
}

// browserFlow connects user's address signing in at the provider as
// signIn; it returns the last page.
func (r *bridgeRig) browserFlow(t *testing.T, user, signIn, password string) (int, []byte) {
	t.Helper()
	ctx := context.Background()
	br := r.browser()
	br.Jar, _ = cookiejar.New(nil)
	resp, err := br.PostForm(r.pages.URL+bridge.ConnectPath, url.Values{"user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authz, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /connect: HTTP %d, %v", resp.StatusCode, err)
	}
	q := authz.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") != r.pages.URL+bridge.CallbackPath || q.Get("state") == "" {
		t.Fatalf("authorization request without PKCE, state or the exact redirect URI: %s", authz)
	}
	resp, err = br.Get(authz.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loginURL, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: HTTP %d, no redirect to the login page", resp.StatusCode)
	}
	back, err := r.op.Login(ctx, br, loginURL.String(), signIn, password)
	if err != nil {
		t.Fatalf("provider login: %v", err)
	}
	if !strings.HasPrefix(back.String(), r.pages.URL+bridge.CallbackPath) {
		t.Fatalf("provider sent the browser to %s", back)
	}
	// The state is checked: a callback from another browser is refused.
	other := r.browser()
	resp, err = other.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback without the browser's cookie: HTTP %d", resp.StatusCode)
	}
	resp, err = br.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, body
}

func (r *bridgeRig) python(t *testing.T, user, password string) string {
	t.Helper()
	const script = `
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
m = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx)
try:
    m.login(sys.argv[4], sys.argv[5])
    typ, data = m.select("INBOX")
    print("OK SELECT INBOX", typ, data)
    m.logout()
except imaplib.IMAP4.error as e:
    print("NO", e)
`
	host, port, _ := strings.Cut(r.e.addrs[routes[0]], ":")
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", script, host, port, r.e.caFile, user, password).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

// login logs in with imapclient's LOGIN and selects INBOX.
func (r *bridgeRig) login(t *testing.T, user, password string) error {
	c := r.e.client(t, routes[0], nil)
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}
	return c.Logout().Wait()
}

func TestOAuthBridgeEndToEnd(t *testing.T) {
	r := startBridgeRig(t)
	// Access tokens live two seconds, so that the test sees them expire.
	r.op.SetLifetime(bridgeClientID, 2*time.Second)

	alicePW := r.connectDevice(t, oauthtest.Alice, oauthtest.AlicePassword)
	t.Run("device flow, then imaplib LOGIN", func(t *testing.T) {
		if out := r.python(t, oauthtest.Alice, alicePW); !strings.Contains(out, "OK SELECT INBOX") {
			t.Errorf("imaplib:\n%s", out)
		}
	})
	t.Run("the state file holds no token in clear", func(t *testing.T) {
		path := r.store.Path(oauthtest.Alice)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		// The provider's refresh tokens start "rt-"; none may be readable.
		if strings.Contains(string(data), "rt-") || strings.Contains(string(data), alicePW) || !strings.Contains(string(data), `"sealed"`) {
			t.Errorf("state file:\n%s", data)
		}
	})

	bobPW := r.connectBrowser(t, oauthtest.Bob, oauthtest.BobPassword)
	t.Run("browser flow, then imapclient LOGIN", func(t *testing.T) {
		if err := r.login(t, oauthtest.Bob, bobPW); err != nil {
			t.Errorf("imapclient: %v", err)
		}
	})

	t.Run("curl AUTHENTICATE PLAIN", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "curl", "-sS", "--cacert", r.e.caFile, "--login-options", "AUTH=PLAIN",
			"--user", oauthtest.Bob+":"+bobPW, "imaps://"+r.e.addrs[routes[0]]+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "INBOX") {
			t.Errorf("curl: %v\n%s", err, out)
		}
	})

	t.Run("a connected address is not taken over by another account", func(t *testing.T) {
		status, body := r.browserFlow(t, oauthtest.Bob, oauthtest.Alice, oauthtest.AlicePassword)
		if status == http.StatusOK || !strings.Contains(string(body), "connected to another account") {
			t.Errorf("connecting Bob's address as Alice: HTTP %d\n%s", status, body)
		}
		if err := r.login(t, oauthtest.Bob, bobPW); err != nil {
			t.Errorf("Bob's connection after the attempt: %v", err)
		}
	})

	t.Run("wrong app password: plain refusal, provider not asked", func(t *testing.T) {
		before := r.op.TokenCalls()
		err := r.login(t, oauthtest.Bob, bobPW+"x")
		if err == nil || !strings.Contains(err.Error(), "refused the user name or password") {
			t.Errorf("login with a wrong app password: %v", err)
		}
		if after := r.op.TokenCalls(); after != before {
			t.Errorf("the provider's token endpoint was asked %d times", after-before)
		}
	})

	t.Run("refresh after expiry", func(t *testing.T) {
		if err := r.login(t, oauthtest.Alice, alicePW); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond)
		before := r.op.Refreshes()
		if err := r.login(t, oauthtest.Alice, alicePW); err != nil {
			t.Fatalf("after the access token expired: %v", err)
		}
		if n := r.op.Refreshes() - before; n != 1 {
			t.Errorf("%d refreshes, want one new access token after expiry", n)
		}
	})

	t.Run("50 sessions at once, one refresh", func(t *testing.T) {
		// A new access token is needed (Bob's last one has expired), and
		// the new one lasts while the sessions start.
		r.op.SetLifetime(bridgeClientID, time.Hour)
		defer r.op.SetLifetime(bridgeClientID, 2*time.Second)
		time.Sleep(2500 * time.Millisecond)
		before := r.op.Refreshes()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- r.login(t, oauthtest.Bob, bobPW)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("session: %v", err)
			}
		}
		if n := r.op.Refreshes() - before; n != 1 {
			t.Errorf("%d refreshes for 50 sessions, want 1", n)
		}
	})

	t.Run("revoked refresh token: reconnect", func(t *testing.T) {
		if r.op.RevokeUser(oauthtest.Alice) == 0 {
			t.Fatal("no refresh token to revoke")
		}
		time.Sleep(2500 * time.Millisecond) // the cached access token expires
		out := r.python(t, oauthtest.Alice, alicePW)
		if !strings.HasPrefix(out, "NO ") || !strings.Contains(out, "Connect the account again") {
			t.Errorf("imaplib after revocation:\n%s", out)
		}
		if logs := r.e.logs.String(); !strings.Contains(logs, `"cause":"oauth.reconnect_required"`) || !strings.Contains(logs, `"oauth_error":"invalid_grant"`) {
			t.Errorf("log has no oauth.reconnect_required after invalid_grant")
		}
		// Connecting again makes it work.
		alicePW = r.connectDevice(t, oauthtest.Alice, oauthtest.AlicePassword)
		if err := r.login(t, oauthtest.Alice, alicePW); err != nil {
			t.Errorf("after connecting again: %v", err)
		}
	})

	t.Run("disconnect forgets the account", func(t *testing.T) {
		br := r.browser()
		for _, tc := range []struct {
			password string
			status   int
		}{{"wrong-" + bobPW, http.StatusForbidden}, {bobPW, http.StatusOK}} {
			resp, err := br.PostForm(r.pages.URL+bridge.DisconnectPath, url.Values{"user": {oauthtest.Bob}, "password": {tc.password}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("disconnect: HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		}
		if _, err := os.Stat(r.store.Path(oauthtest.Bob)); !os.IsNotExist(err) {
			t.Errorf("record still there: %v", err)
		}
		if err := r.login(t, oauthtest.Bob, bobPW); err == nil {
			t.Errorf("login works after disconnect")
		}
	})
	for _, secret := range []string{alicePW, bobPW} {
		if strings.Contains(r.e.logs.String(), secret) {
			t.Errorf("an app password is in the log")
		}
	}
}
