package proxy_test

// OAuth logins end to end: clients with tokens from a real OpenID Connect
// provider (internal/oauthtest) through the proxy to a real Dovecot whose
// oauth2 passdb asks that provider; and to the imitations of Gmail and
// Microsoft 365 (internal/imitate), whose texts and challenge are read as
// they come.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/internal/oauthtest"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/proxy"
)

// oauthRig is the provider, Dovecot checking its tokens, and the proxy in
// front with an implicit-TLS and a STARTTLS listener.
type oauthRig struct {
	op     *oauthtest.Server
	dc     *dovecottest.Server
	e      *e2e // addrs for routes[0] (implicit) and routes[2] (STARTTLS), pool, caFile, logs
	tokens []string
	seen   lockedBuffer // what the clients saw: replies, curl's and Python's output; what OnRefusal got
	// refusals counts the refusals OnRefusal got.
	refusals atomic.Int64
}

func startOAuthRig(t *testing.T) *oauthRig {
	t.Helper()
	op, dc := oauthtest.StartWithDovecot(t, dovecottest.Options{})
	e, cert := newE2E(t, dc)
	r := &oauthRig{op: op, dc: dc, e: e}
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
state_dir: %s
log: {level: debug}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms, per_address_logins_per_minute: -1, per_user_logins_per_minute: -1}
listeners:
  - address: 127.0.0.1:0
    tls: implicit
    language: en
    upstream: {address: %q, tls: implicit, oauth: {audiences: [%s], scopes: [%s]}}
  - address: 127.0.0.3:0
    tls: starttls
    language: en
    upstream: {address: %q, tls: implicit, oauth: {audiences: [%s], scopes: [%s]}}
  - address: 127.0.0.4:0
    tls: implicit
    language: en
    upstream: {address: auto}
routes:
  - {domain: example.test, upstream: {address: %q, tls: implicit, oauth: {audiences: [%s], scopes: [%s]}}}
`, t.TempDir(), dc.IMAPS, oauthtest.ResourceID, oauthtest.MailScope, dc.IMAPS, oauthtest.ResourceID, oauthtest.MailScope,
		dc.IMAPS, oauthtest.ResourceID, oauthtest.MailScope)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.checkNoTokenFragment(t) }) // after the proxy's shutdown
	// The shield is on, as in local mode: it must leave tokens alone.
	sh, err := shield.Open(cfg.Shield, cfg.StateDir, shield.Options{OnError: func(err error) { t.Errorf("shield: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	srv := startE2EProxy(t, cfg, proxy.Options{
		Shield:        sh,
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		UpstreamRoots: dc.CAPool,
		// What incident pages, webhooks and notices are made from is
		// searched for tokens too.
		OnRefusal: func(_ context.Context, rf proxy.Refusal) proxy.Answer {
			b, _ := json.Marshal(rf)
			r.seen.Write(append(b, '\n'))
			r.refusals.Add(1)
			return proxy.Answer{}
		},
	}, r.e.logs)
	addrs := srv.Addrs()
	r.e.addrs[routes[0]] = addrs[0].String()
	r.e.addrs[routes[2]] = addrs[1].String()
	r.e.addrs[autoRoute] = addrs[2].String()
	return r
}

// autoRoute is the rig's listener with upstream auto: the user's domain
// picks the server (a routes entry sends example.test to Dovecot).
var autoRoute = route{client: config.TLSImplicit, upstream: "auto"}

// token gets a token and registers it as a secret.
func (r *oauthRig) token(t *testing.T, req oauthtest.TokenRequest) string {
	t.Helper()
	tok := r.op.Token(t, req)
	proxy.RegisterTestSecrets(tok)
	r.tokens = append(r.tokens, tok)
	return tok
}

// tokenFragments are pieces of every form a token travels in: the token,
// and the base64 XOAUTH2 and OAUTHBEARER messages for each user.
func (r *oauthRig) tokenFragments() []string {
	const size = 24
	var out []string
	for _, tok := range r.tokens {
		forms := []string{tok}
		for _, user := range []string{oauthtest.Alice, oauthtest.Bob} {
			forms = append(forms,
				base64.StdEncoding.EncodeToString([]byte("user="+user+"\x01auth=Bearer "+tok+"\x01\x01")),
				base64.StdEncoding.EncodeToString([]byte("n,a="+user+",\x01auth=Bearer "+tok+"\x01\x01")))
		}
		for _, f := range forms {
			// The first 60 bytes are the same for every JWT of this
			// provider (its header): look beyond them, one window per
			// size bytes.
			for i := 60; i+size <= len(f); i += size {
				out = append(out, f[i:i+size])
			}
		}
	}
	return out
}

// checkNoTokenFragment searches the proxy's log and everything the
// clients saw for any piece of any token.
func (r *oauthRig) checkNoTokenFragment(t *testing.T) {
	t.Helper()
	seen := r.e.logs.String() + r.seen.String()
	for _, frag := range r.tokenFragments() {
		if strings.Contains(seen, frag) {
			t.Errorf("a token fragment %q is in the proxy's log or a reply", frag)
			return
		}
	}
	if r.refusals.Load() > 0 && !strings.Contains(seen, `"Message":`) {
		t.Errorf("the refusals given to OnRefusal were not searched")
	}
	t.Logf("searched %d token fragments in %d bytes of log, replies and refusals (%d): none found", len(r.tokenFragments()), len(seen), r.refusals.Load())
}

func TestOAuthEndToEnd(t *testing.T) {
	r := startOAuthRig(t)
	alice := oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword}

	t.Run("imapclient OAUTHBEARER: SELECT, FETCH, IDLE", func(t *testing.T) {
		tok := r.token(t, alice)
		got := make(chan uint32, 4)
		c := r.e.client(t, routes[0], &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				got <- *d.NumMessages
			}
		}})
		// Dovecot is no provider the catalog knows: the OAuth mechanisms
		// are taken, but advertised only once a login saw Dovecot offer them.
		if c.Caps().Has("AUTH=OAUTHBEARER") || c.Caps().Has("AUTH=XOAUTH2") {
			t.Errorf("OAuth advertised before the upstream was seen to take it: %v", c.Caps())
		}
		if err := c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: oauthtest.Alice, Token: tok})); err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		msg := []byte("From: bob@example.test\r\nSubject: oauth\r\n\r\nhello over a token\r\n")
		uid := appendMessage(t, c, msg)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("SELECT: %v", err)
		}
		if body := fetchMessage(t, c, uid); string(body) != string(msg) {
			t.Errorf("FETCH gave %q", body)
		}
		idle, err := c.Idle()
		if err != nil {
			t.Fatalf("IDLE: %v", err)
		}
		if err := r.dc.Deliver(oauthtest.Alice, []byte("Subject: while idle\r\n\r\nnew\r\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			if n < 2 {
				t.Errorf("EXISTS %d during IDLE, want 2 or more", n)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("no EXISTS during IDLE")
		}
		if err := idle.Close(); err != nil {
			t.Errorf("IDLE done: %v", err)
		}
		if err := idle.Wait(); err != nil {
			t.Errorf("IDLE: %v", err)
		}
		if err := c.Logout().Wait(); err != nil {
			t.Errorf("LOGOUT: %v", err)
		}
	})

	t.Run("upstream auto: the user in the SASL message picks the server", func(t *testing.T) {
		tok := r.token(t, alice)
		c := r.e.client(t, autoRoute, nil)
		if !c.Caps().Has("AUTH=XOAUTH2") || !c.Caps().Has("AUTH=OAUTHBEARER") {
			t.Errorf("upstream auto does not advertise the OAuth mechanisms: %v", c.Caps())
		}
		if err := c.Authenticate(oauthsasl.Client{User: oauthtest.Alice, Token: tok}); err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("SELECT: %v", err)
		}
		// The route's upstream.oauth tells a token for another service.
		other := r.token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword, Audience: []string{oauthtest.OtherAudience}})
		c = r.e.client(t, autoRoute, nil)
		var ie *imap.Error
		if err := c.Authenticate(oauthsasl.Client{User: oauthtest.Alice, Token: other}); !errors.As(err, &ie) || !strings.Contains(ie.Text, "issued for another service") {
			t.Errorf("a token for another service through the route: %v", err)
		}
	})

	t.Run("imapclient XOAUTH2 after STARTTLS", func(t *testing.T) {
		tok := r.token(t, alice)
		c := r.e.client(t, routes[2], nil)
		if err := c.Authenticate(oauthsasl.Client{User: oauthtest.Alice, Token: tok}); err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("SELECT: %v", err)
		}
	})

	t.Run("curl --oauth2-bearer", func(t *testing.T) {
		if c := r.e.client(t, routes[0], nil); !c.Caps().Has("AUTH=OAUTHBEARER") || !c.Caps().Has("AUTH=XOAUTH2") {
			t.Errorf("after a login the proxy does not advertise the OAuth mechanisms: %v", c.Caps())
		}
		tok := r.token(t, alice)
		out := r.curl(t, tok, oauthtest.Alice, 0)
		if !strings.Contains(out, "* LIST") && !strings.Contains(out, "INBOX") {
			t.Errorf("curl listed no mailbox:\n%s", out)
		}
		r.curl(t, r.token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword, Lifetime: -time.Minute}), oauthtest.Alice, 67)
	})

	t.Run("python imaplib", func(t *testing.T) {
		tok := r.token(t, alice)
		if out := r.python(t, tok, oauthtest.Alice); !strings.Contains(out, "OK SELECT INBOX") {
			t.Errorf("imaplib:\n%s", out)
		}
		bad := r.token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword, Scopes: []string{"openid", "email"}})
		if out := r.python(t, bad, oauthtest.Alice); !strings.HasPrefix(out, "NO ") || !strings.Contains(out, "lacks the permission to read mail") {
			t.Errorf("imaplib with a token without the mail scope:\n%s", out)
		}
	})

	expired, other, noScope, bobs := alice, alice, alice, alice
	expired.Lifetime = -time.Minute
	other.Audience = []string{oauthtest.OtherAudience}
	noScope.Scopes = []string{"openid", "email"}
	bobs.User, bobs.Password = oauthtest.Bob, oauthtest.BobPassword
	for _, tc := range []struct {
		name   string
		req    oauthtest.TokenRequest
		cause  string
		phrase string
	}{
		{"expired", expired, "oauth.token_expired", "has expired"},
		{"wrong audience", other, "oauth.wrong_audience", "issued for another service"},
		{"missing scope", noScope, "oauth.scope_missing", "lacks the permission to read mail"},
		{"wrong user", bobs, "oauth.user_mismatch", "does not match the account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := r.token(t, tc.req)
			// Three times each: the same refused token again and again is
			// still explained, never answered from the shield's history.
			for _, rt := range []route{routes[0], routes[2], routes[0], routes[2], routes[0], routes[2]} {
				c := r.e.client(t, rt, nil)
				var err error
				if rt == routes[0] {
					err = c.Authenticate(oauthsasl.Client{User: oauthtest.Alice, Token: tok})
				} else {
					err = c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: oauthtest.Alice, Token: tok}))
				}
				var ie *imap.Error
				if !errors.As(err, &ie) {
					t.Fatalf("%v: authenticate: %v, want a NO", rt, err)
				}
				r.seen.Write([]byte(ie.Error() + "\n"))
				if !strings.Contains(ie.Text, tc.phrase) {
					t.Errorf("%v: NO %q does not say %q", rt, ie.Text, tc.phrase)
				}
			}
			if !r.logHas(tc.cause) {
				t.Errorf("no auth_failure with cause %s in the log", tc.cause)
			}
		})
	}
}

// TestOAuthSuccessLog: a token login logs what the token is for, never the
// token (checkNoTokenFragment searches the log).
func TestOAuthSuccessLog(t *testing.T) {
	r := startOAuthRig(t)
	tok := r.token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword})
	c := r.e.client(t, routes[0], nil)
	if err := c.Authenticate(oauthsasl.Client{Mechanism: "OAUTHBEARER", User: oauthtest.Alice, Token: tok}); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	found := false
	for _, line := range strings.Split(r.e.logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["event"] == "auth_success" {
			found = ev["mechanism"] == "OAUTHBEARER" && ev["token_form"] == "jwt" && ev["token_expires"] != nil &&
				fmt.Sprint(ev["token_audience"]) == "[imap-server]" && ev["preferred_username"] == nil
		}
	}
	if !found {
		t.Errorf("no auth_success with the token's audience and expiry:\n%s", r.e.logs)
	}
	// The search itself: 48 bytes of a token, or of its base64 message,
	// anywhere are found.
	msg := base64.StdEncoding.EncodeToString([]byte("n,a=" + oauthtest.Alice + ",\x01auth=Bearer " + tok + "\x01\x01"))
	for _, leak := range []string{tok[len(tok)/2 : len(tok)/2+48], msg[len(msg)-60 : len(msg)-12]} {
		hit := false
		for _, f := range r.tokenFragments() {
			hit = hit || strings.Contains("a log line "+leak+" and more", f)
		}
		if !hit {
			t.Errorf("the token search misses %q", leak)
		}
	}
}

// logHas reports whether the log has an auth_failure event with cause and
// the token's audience and expiry.
func (r *oauthRig) logHas(cause string) bool {
	for _, line := range strings.Split(r.e.logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		if ev["event"] == "auth_failure" && ev["cause"] == cause && ev["token_form"] == "jwt" && ev["token_expires"] != nil {
			return true
		}
	}
	return false
}

// curl lists the mailboxes with --oauth2-bearer through the implicit-TLS
// listener and returns its output; want is its exit code.
func (r *oauthRig) curl(t *testing.T, token, user string, want int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "-sS", "-v", "--cacert", r.e.caFile,
		"--user", user+":", "--oauth2-bearer", token, "imaps://"+r.e.addrs[routes[0]]+"/")
	out, err := cmd.CombinedOutput()
	r.seen.Write(out)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Errorf("curl exit %d, want %d:\n%s", code, want, out)
	}
	return string(out)
}

// python logs in with imaplib's authenticate and a callable (no SASL-IR:
// the message goes on the continuation line), then selects INBOX.
func (r *oauthRig) python(t *testing.T, token, user string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	host, port, _ := strings.Cut(r.e.addrs[routes[0]], ":")
	script := `
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
m = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx)
msg = "user=%s\x01auth=Bearer %s\x01\x01" % (sys.argv[4], sys.stdin.read())
try:
    m.authenticate("XOAUTH2", lambda challenge: msg)
except imaplib.IMAP4.error as e:
    print("NO", e)
    sys.exit(0)
typ, _ = m.select("INBOX")
print(typ, "SELECT INBOX")
m.logout()
`
	cmd := exec.CommandContext(ctx, "python3", "-c", script, host, port, r.e.caFile, user)
	cmd.Stdin = strings.NewReader(token)
	out, err := cmd.CombinedOutput()
	r.seen.Write(out)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

// TestOAuthThroughImitations: OAuth logins through the proxy to the
// imitations of Gmail and Microsoft 365: their texts and challenge, read as
// they come.
func TestOAuthThroughImitations(t *testing.T) {
	ca, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "state_dir: %s\nlimits: {failure_delay_base: 1ms, failure_delay_max: 1ms}\nlisteners:\n", t.TempDir())
	provs := map[string]imitate.Provider{}
	for i, id := range []string{"gmail", "microsoft365"} {
		p, _ := imitate.Lookup(id)
		srv, err := imitate.Start(p, imitate.Options{CA: ca})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		provs[id] = p
		fmt.Fprintf(&yaml, "  - {address: %s:0, tls: implicit, language: en, upstream: {address: %q, tls: implicit, server_name: %s}}\n",
			listenHosts[i], srv.Addr(), p.Host)
	}
	cfg, err := config.Parse(strings.NewReader(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	cert, caPEM := newProxyCert(t)
	logs := &lockedBuffer{}
	srv := startE2EProxy(t, cfg, proxy.Options{
		UpstreamRoots: ca.Pool(),
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}, logs)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addrs := srv.Addrs()
	listener := map[string]string{"gmail": addrs[0].String(), "microsoft365": addrs[1].String()}

	scenario := func(provider, name string) imitate.Scenario {
		for _, s := range provs[provider].Scenarios {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no scenario %s/%s", provider, name)
		return imitate.Scenario{}
	}
	for _, tc := range []struct {
		provider, scenario, mech string
		ok                       bool
		code, phrase, cause      string
	}{
		// Microsoft offers only XOAUTH2: an OAUTHBEARER client's token goes
		// with XOAUTH2.
		{"microsoft365", "oauth", "OAUTHBEARER", true, "", "", ""},
		{"microsoft365", "oauth-failed", "XOAUTH2", false, "AUTHENTICATIONFAILED", "issued for another service", "oauth.wrong_audience"},
		{"microsoft365", "oauth-not-connected", "OAUTHBEARER", false, "AUTHORIZATIONFAILED", "mailbox cannot be opened", "oauth.mailbox_not_enabled"},
		{"gmail", "oauth", "XOAUTH2", true, "", "", ""},
		{"gmail", "oauth-token-refused", "OAUTHBEARER", false, "AUTHENTICATIONFAILED", "refused the sign-in token", "oauth.token_rejected"},
	} {
		t.Run(tc.provider+"/"+tc.scenario+"/"+tc.mech, func(t *testing.T) {
			s := scenario(tc.provider, tc.scenario)
			addr := listener[tc.provider]
			host := strings.Split(addr, ":")[0]
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: host})
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(e2eTimeout))
			c := imapclient.New(conn, nil)
			defer c.Close()
			if !c.Caps().Has("AUTH=XOAUTH2") {
				t.Errorf("a known OAuth provider's listener does not advertise XOAUTH2: %v", c.Caps())
			}
			err = c.Authenticate(oauthsasl.Client{Mechanism: tc.mech, User: s.User, Token: s.Password})
			if tc.ok {
				if err != nil {
					t.Fatalf("authenticate: %v", err)
				}
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Errorf("SELECT: %v", err)
				}
				return
			}
			var ie *imap.Error
			if !errors.As(err, &ie) {
				t.Fatalf("authenticate: %v, want a NO", err)
			}
			if string(ie.Code) != tc.code || !strings.Contains(ie.Text, tc.phrase) {
				t.Errorf("NO [%s] %q, want [%s] saying %q", ie.Code, ie.Text, tc.code, tc.phrase)
			}
			if !strings.Contains(logs.String(), `"cause":"`+tc.cause+`"`) {
				t.Errorf("no %s in the log", tc.cause)
			}
		})
	}
	if !strings.Contains(logs.String(), `"oauth_status":"401","oauth_scope":"https://mail.google.com/"`) {
		t.Errorf("Gmail's decoded challenge is not in the log")
	}
	if !strings.Contains(logs.String(), `"mechanism":"OAUTHBEARER","upstream"`) {
		t.Errorf("no OAUTHBEARER login in the log")
	}
}
