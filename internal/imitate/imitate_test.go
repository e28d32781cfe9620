package imitate_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// corpusPreLogin is what each provider sends before login, copied from
// the corpus (diagnose/testdata/provider-responses.jsonl, records #7, #10,
// #18, #20, #22) and Dovecot as observed, independently of the package's own tables.
// The client address is 127.0.0.1.
var corpusPreLogin = map[string]struct {
	greeting, capability, capabilityOK string
}{
	"gmail": {
		"* OK Gimap ready for requests from 127.0.0.1 q4mb70107656lfe",
		"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH",
		"OK Thats all she wrote! q4mb70107656lfe",
	},
	"microsoft365": {
		"* OK The Microsoft Exchange IMAP4 service is ready. [TABPADQAUAAxADIAMwBDAEEAMAAyADMAMwAuAEcAQgBSAFAAMQAyADMALgBQAFIATwBEAC4ATwBVAFQATABPAE8ASwAuAEMATwBNAA==]",
		"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+",
		"OK CAPABILITY completed.",
	},
	"icloud": {
		"* OK [CAPABILITY st11p00mm-iscream022 15E205 XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN] iSCREAM ready to rumble (15E205-0982aaf890fd:18514) st11p00mm-iscream022 [04:19:14:31:21:53]",
		"* CAPABILITY st11p00mm-iscream022 15E205 XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN",
		"OK !!",
	},
	"yahoo": {
		"* OK Welcome! IMAP Server up and ready to accept your request",
		"* CAPABILITY IMAP4rev1 ID MOVE NAMESPACE X-ID-ACLID UIDPLUS LITERAL+ CHILDREN XAPPLEPUSHSERVICE XYMHIGHESTMODSEQ AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=XYMCOOKIE AUTH=XYMECOOKIE AUTH=XYMCOOKIEB64 AUTH=XYMPKI",
		"OK CAPABILITY completed",
	},
	"dovecot": {
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN] Dovecot ready.",
		"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN",
		"OK Pre-login capabilities listed, post-login capabilities have more.",
	},
	"docomo": { // assumed: Dovecot-like
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.",
		"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN",
		"OK Pre-login capabilities listed, post-login capabilities have more.",
	},
	"qq": { // assumed
		"* OK [CAPABILITY IMAP4 IMAP4rev1 ID AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 NAMESPACE] QQMail XMIMAP4Server ready",
		"* CAPABILITY IMAP4 IMAP4rev1 ID AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 NAMESPACE",
		"OK CAPABILITY Completed",
	},
	"netease": { // telnet transcript of imap.163.com; AUTH=PLAIN assumed
		"* OK Coremail System IMap Server Ready(163com[726cd87d72d896a1ac393507346040fa])",
		"* CAPABILITY IMAP4rev1 XLIST SPECIAL-USE ID LITERAL+ XAPPLEPUSHSERVICE UIDPLUS X-CM-EXT-1 AUTH=PLAIN",
		"OK CAPABILITY completed",
	},
}

const dovecotLoggedIn = "OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT NAMESPACE UIDPLUS MOVE] Logged in"

// corpusLogin is what each scenario's login must bring, as on the wire
// ("T" stands for the tag), copied from the corpus records named.
var corpusLogin = map[string][]string{
	"gmail/oauth": {"T OK oauth@gmail.com authenticated (Success)"}, // fingerprint table
	"gmail/oauth-token-refused": { // Google's XOAUTH2 page, #7
		"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K",
		"T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
	},
	"microsoft365/oauth":               {"T OK AUTHENTICATE completed."},                                                                                     // #15
	"microsoft365/oauth-not-connected": {"T OK AUTHENTICATE completed."},                                                                                     // #15
	"microsoft365/oauth-failed":        {"T NO AUTHENTICATE failed."},                                                                                        // #14
	"gmail/app-password-required":      {"T NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"}, // #1
	"gmail/app-password":               {"T OK apppw@gmail.com authenticated (Success)"},                                                                     // fingerprint table
	"gmail/invalid-credentials":        {"T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},                                                        // #2
	"gmail/web-login-required": { // #3
		"* NO [WEBALERT https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbtt...] Web login required.",
		"T NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)",
	},
	"gmail/imap-disabled":                   {"T NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)"}, // #4
	"gmail/imap-disabled-for-domain":        {"T NO [ALERT] IMAP access is disabled for your domain. Please contact your domain administrator for questions about this feature. (Failure)"},      // #5
	"microsoft365/basic-auth-off":           {"T NO LOGIN failed."},                                                                                                                              // #10, #12
	"microsoft365/basic-auth-off-plain":     {"T NO AUTHENTICATE failed."},                                                                                                                       // #13
	"microsoft365/basic-auth-blocked":       {"T NO LOGIN failed. BasicAuthBlocked"},                                                                                                             // #11
	"icloud/apple-id-password":              {"T NO [AUTHENTICATIONFAILED] Authentication failed"},                                                                                               // #22
	"icloud/app-specific-password":          {"T OK LOGIN completed"},                                                                                                                            // assumed
	"yahoo/account-password":                {"T NO [AUTHENTICATIONFAILED] LOGIN Invalid credentials"},                                                                                           // #18
	"yahoo/app-password":                    {"T OK LOGIN completed"},                                                                                                                            // assumed
	"dovecot/logged-in":                     {"T " + dovecotLoggedIn},                                                                                                                            // peers notes
	"dovecot/wrong-password":                {"T NO [AUTHENTICATIONFAILED] Authentication failed."},                                                                                              // peers notes, #30
	"dovecot/login-disabled":                {"T NO [CONTACTADMIN] Login disabled for this user"},                                                                                                // peers notes
	"dovecot/account-disabled":              {"T NO [CONTACTADMIN] Your account is disabled: contact support@example.invalid"},                                                                   // peers notes
	"dovecot/password-expired":              {"T NO [EXPIRED] Authentication failed."},                                                                                                           // Dovecot source
	"dovecot/temporary-failure":             {"T NO [UNAVAILABLE] Temporary authentication failure. [mail:2026-11-27 10:07:51]"},                                                                 // peers notes, #31
	"dovecot/too-many-connections":          {"T NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"},                                               // peers notes
	"docomo/imap-password":                  {"T " + dovecotLoggedIn},                                                                                                                            // assumed
	"docomo/password-trailing-space":        {"T NO [AUTHENTICATIONFAILED] Authentication failed."},                                                                                              // assumed
	"docomo/password-fullwidth":             {"T NO [AUTHENTICATIONFAILED] Authentication failed."},                                                                                              // assumed
	"docomo/d-account-password":             {"T NO [AUTHENTICATIONFAILED] Authentication failed."},                                                                                              // assumed
	"qq/qq-password":                        {"T NO Please using authorized code to login. More information at http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=28&&no=1001256"},            // nylas sync-engine
	"qq/authorization-code":                 {"T OK Success login ok"},                                                                                                                           // assumed
	"netease/web-password":                  {"T NO LOGIN Login error password error"},                                                                                                           // quoted by clients
	"netease/authorization-code":            {"T OK LOGIN completed"},                                                                                                                            // Coremail
	"microsoft365/basic-auth-blocked+PLAIN": {"T NO AUTHENTICATE failed. BasicAuthBlocked"},                                                                                                      // #11 (or)
	"yahoo/account-password+PLAIN":          {"T NO [AUTHENTICATIONFAILED] AUTHENTICATE Invalid credentials"},                                                                                    // #19
}

// startServer starts p with a fresh CA; the server is closed when the test
// ends. The returned config verifies the certificate for p.Host.
func startServer(t *testing.T, p imitate.Provider) (*imitate.Server, *tls.Config) {
	t.Helper()
	ca, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := imitate.Start(p, imitate.Options{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv, &tls.Config{ServerName: p.Host, RootCAs: ca.Pool()}
}

func provider(t *testing.T, id string) imitate.Provider {
	t.Helper()
	p, ok := imitate.Lookup(id)
	if !ok {
		t.Fatalf("no provider %q", id)
	}
	return p
}

// rawConn is a verified TLS connection read line by line.
type rawConn struct{ *testkit.Client }

func dialRaw(t *testing.T, srv *imitate.Server, cfg *tls.Config) *rawConn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testkit.Timeout}, "tcp", srv.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testkit.Timeout))
	return &rawConn{&testkit.Client{T: t, Conn: c, Reader: bufio.NewReader(c)}}
}

// expectEOF checks that the server closed the connection.
func (r *rawConn) expectEOF() {
	r.T.Helper()
	if l, err := r.Reader.ReadString('\n'); err == nil {
		r.T.Fatalf("got %q, want the connection closed", l)
	}
}

// login sends a login for s with tag T: LOGIN with quoted strings, or
// literals for passwords quoted strings cannot carry, or AUTHENTICATE PLAIN
// with an initial response.
func (r *rawConn) login(user, password, mech string) {
	r.T.Helper()
	if mech == "PLAIN" {
		ir := testkit.Plain(user, password)
		r.Send("T AUTHENTICATE PLAIN " + ir + "\r\n")
		return
	}
	if mech == "XOAUTH2" {
		r.Send("T AUTHENTICATE XOAUTH2 " + xoauth2Message(user, password) + "\r\n")
		return
	}
	if isPlainASCII(password) {
		r.Send(fmt.Sprintf("T LOGIN %q %q\r\n", user, password))
		return
	}
	r.Send(fmt.Sprintf("T LOGIN %q {%d}\r\n", user, len(password)))
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		r.T.Fatalf("got %q, want a continuation request", l)
	}
	r.Send(password + "\r\n")
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

func TestGreetingAndCapabilities(t *testing.T) {
	for _, p := range imitate.Providers() {
		t.Run(p.ID, func(t *testing.T) {
			want, ok := corpusPreLogin[p.ID]
			if !ok {
				t.Fatalf("no corpus texts for %s in this test", p.ID)
			}
			srv, cfg := startServer(t, p)
			r := dialRaw(t, srv, cfg)
			if got := r.Line(); got != want.greeting {
				t.Errorf("greeting\n got %q\nwant %q", got, want.greeting)
			}
			r.Send("a1 CAPABILITY\r\n")
			if got := r.Line(); got != want.capability {
				t.Errorf("capability\n got %q\nwant %q", got, want.capability)
			}
			if got, w := r.Line(), "a1 "+want.capabilityOK; got != w {
				t.Errorf("capability OK\n got %q\nwant %q", got, w)
			}
			r.Send("a2 NOOP\r\na3 LOGOUT\r\n")
			if got := r.Line(); !strings.HasPrefix(got, "a2 OK") {
				t.Errorf("NOOP: got %q", got)
			}
			if got := r.Line(); !strings.HasPrefix(got, "* BYE") {
				t.Errorf("LOGOUT: got %q, want a BYE", got)
			}
			if got := r.Line(); !strings.HasPrefix(got, "a3 OK") {
				t.Errorf("LOGOUT: got %q", got)
			}
			r.expectEOF()

			// go-imap's client reads the same capabilities.
			c := dialClient(t, srv, cfg)
			caps, err := c.Capability().Wait()
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range strings.Fields(want.capability)[2:] {
				if !hasCap(caps, name) {
					t.Errorf("imapclient does not see %s in %v", name, caps)
				}
			}
		})
	}
}

// hasCap reports whether set holds name, ignoring case: imapclient
// upper-cases the names it does not know.
func hasCap(set imap.CapSet, name string) bool {
	for c := range set {
		if strings.EqualFold(string(c), name) {
			return true
		}
	}
	return false
}

// scenarioKey names a scenario in corpusLogin.
func scenarioKey(p imitate.Provider, s imitate.Scenario) string { return p.ID + "/" + s.Name }

func TestScenarioLines(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range imitate.Providers() {
		srv, cfg := startServer(t, p)
		for _, s := range p.Scenarios {
			key := scenarioKey(p, s)
			seen[key] = true
			t.Run(key, func(t *testing.T) {
				want, ok := corpusLogin[key]
				if !ok {
					t.Fatalf("no corpus lines for %s in this test", key)
				}
				if got := s.Transcript("T"); !slices.Equal(got, want) {
					t.Errorf("Transcript\n got %q\nwant %q", got, want)
				}
				r := dialRaw(t, srv, cfg)
				r.Line() // greeting
				r.login(s.User, s.Password, s.Command())
				for _, w := range want {
					got := r.Line()
					if got != w {
						t.Errorf("\n got %q\nwant %q", got, w)
					}
					if strings.HasPrefix(got, "+ ") {
						r.Send("\r\n") // the answer to an OAuth error challenge
					}
				}
			})
		}
		// The other mechanism, where the provider names the command.
		for _, s := range p.Scenarios {
			key := scenarioKey(p, s) + "+PLAIN"
			want, ok := corpusLogin[key]
			if !ok {
				continue
			}
			seen[key] = true
			t.Run(key, func(t *testing.T) {
				r := dialRaw(t, srv, cfg)
				r.Line()
				r.login(s.User, s.Password, "PLAIN")
				if got := r.Line(); got != want[0] {
					t.Errorf("\n got %q\nwant %q", got, want[0])
				}
			})
		}
	}
	for key := range corpusLogin {
		if !seen[key] {
			t.Errorf("corpus lines for %s, but no such scenario", key)
		}
	}
}

// TestUnlistedUsers checks the Otherwise rules.
func TestUnlistedUsers(t *testing.T) {
	tests := []struct {
		provider, user, password, mech, want string
	}{
		{"gmail", "someone@gmail.com", "abcdefghijklmnop", "LOGIN", "T OK someone@gmail.com authenticated (Success)"},
		{"gmail", "someone@gmail.com", "ABCDEFGHIJKLMNOP", "LOGIN", "T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},
		{"gmail", " apppw@gmail.com", "my-google-password", "LOGIN", "T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},
		{"gmail", "APPPW@gmail.com", "my-google-password", "PLAIN", "T NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"},
		{"microsoft365", "anyone@contoso.com", "abcdefghijklmnop", "LOGIN", "T NO LOGIN failed."},
		{"microsoft365", "anyone@contoso.com", "x", "PLAIN", "T NO AUTHENTICATE failed."},
		{"icloud", "hanako@me.com", "abcd-efgh-ijkl-mnop", "PLAIN", "T OK AUTHENTICATE completed"},
		{"yahoo", "hanako@yahoo.co.jp", "password", "LOGIN", "T NO [AUTHENTICATIONFAILED] LOGIN Invalid credentials"},
		{"dovecot", "nologin@example.net", "wrong", "LOGIN", "T NO [AUTHENTICATIONFAILED] Authentication failed."},
		{"dovecot", "alice@example.net", "alicepass", "PLAIN", "T " + dovecotLoggedIn},
	}
	servers := map[string]*imitate.Server{}
	configs := map[string]*tls.Config{}
	for _, tt := range tests {
		if servers[tt.provider] == nil {
			servers[tt.provider], configs[tt.provider] = startServer(t, provider(t, tt.provider))
		}
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.user+"/"+tt.mech, func(t *testing.T) {
			r := dialRaw(t, servers[tt.provider], configs[tt.provider])
			r.Line()
			r.login(tt.user, tt.password, tt.mech)
			if got := r.Line(); got != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestScenariosThroughImapclient logs in to every scenario with go-imap's
// client and checks the status response it reports.
func TestScenariosThroughImapclient(t *testing.T) {
	for _, p := range imitate.Providers() {
		srv, cfg := startServer(t, p)
		for _, s := range p.Scenarios {
			t.Run(scenarioKey(p, s), func(t *testing.T) {
				c := dialClient(t, srv, cfg)
				err := clientLogin(c, s.User, s.Password, s.Command())
				if s.OK() {
					if err != nil {
						t.Fatalf("login: %v", err)
					}
					return
				}
				code, text := splitReply(s.ReplyFor(s.Command()))
				var ie *imap.Error
				if !errors.As(err, &ie) {
					t.Fatalf("login: got %v, want an IMAP NO", err)
				}
				if ie.Type != imap.StatusResponseTypeNo || string(ie.Code) != code || ie.Text != text {
					t.Errorf("got %s [%s] %q, want NO [%s] %q", ie.Type, ie.Code, ie.Text, code, text)
				}
			})
		}
	}
}

// splitReply splits "NO [CODE] text" into its code and text.
func splitReply(reply string) (code, text string) {
	m := regexp.MustCompile(`^NO (?:\[([A-Z]+)[^\]]*\] )?(.*)$`).FindStringSubmatch(reply)
	if m == nil {
		return "", reply
	}
	return m[1], m[2]
}

func dialClient(t *testing.T, srv *imitate.Server, cfg *tls.Config) *imapclient.Client {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testkit.Timeout}, "tcp", srv.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(testkit.Timeout))
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

func clientLogin(c *imapclient.Client, user, password, mech string) error {
	switch mech {
	case "PLAIN":
		return c.Authenticate(sasl.NewPlainClient("", user, password))
	case "XOAUTH2":
		return c.Authenticate(oauthsasl.Client{User: user, Token: password})
	}
	return c.Login(user, password).Wait()
}

// TestSessionAfterLogin checks the success path: after the imitation's own
// login reply, go-imap's imapserver serves real IMAP.
func TestSessionAfterLogin(t *testing.T) {
	tests := []struct{ provider, user, password, mech string }{
		{"gmail", "apppw@gmail.com", "abcd efgh ijkl mnop", "LOGIN"},
		{"icloud", "taro@icloud.com", "abcd-efgh-ijkl-mnop", "PLAIN"},
		{"dovecot", "alice@example.net", "alicepass", "LOGIN"},
		{"docomo", "taro@docomo.ne.jp", "Imap0nlyPass", "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			srv, cfg := startServer(t, provider(t, tt.provider))
			c := dialClient(t, srv, cfg)
			if err := clientLogin(c, tt.user, tt.password, tt.mech); err != nil {
				t.Fatalf("login: %v", err)
			}
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatalf("SELECT: %v", err)
			}
			if sel.NumMessages != 1 {
				t.Errorf("INBOX holds %d messages, want 1", sel.NumMessages)
			}
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true, UID: true}).Collect()
			if err != nil {
				t.Fatalf("FETCH: %v", err)
			}
			if len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.Subject != imitate.WelcomeSubject {
				t.Errorf("FETCH gave %+v, want the welcome message", msgs)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("LOGOUT: %v", err)
			}
		})
	}
}

// TestPostLoginCapabilities checks that what the Dovecot-like imitations
// announce in their tagged OK is what imapserver serves after login.
func TestPostLoginCapabilities(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "dovecot"))
	c := dialClient(t, srv, cfg)
	if err := c.Login("alice@example.net", "alicepass").Wait(); err != nil {
		t.Fatal(err)
	}
	announced := c.Caps()
	served, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(imitate.PostLoginCapabilities)
	for _, set := range []imap.CapSet{announced, served} {
		if len(set) != len(want) {
			t.Errorf("got %v, want %v", set, want)
		}
		for _, name := range want {
			if !set.Has(imap.Cap(name)) {
				t.Errorf("%v lacks %s", set, name)
			}
		}
	}
}

// TestPipelinedAfterLogin checks that commands sent together with the
// login reach imapserver, and that its own greeting is not passed on.
func TestPipelinedAfterLogin(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "dovecot"))
	r := dialRaw(t, srv, cfg)
	r.Line()
	r.Send("a1 LOGIN alice@example.net alicepass\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n")
	if got, want := r.Line(), "a1 "+dovecotLoggedIn; got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
	var lines []string
	for {
		l := r.Line()
		lines = append(lines, l)
		if strings.HasPrefix(l, "a3 ") {
			break
		}
	}
	if !slices.Contains(lines, "* 1 EXISTS") || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "a2 OK") }) {
		t.Errorf("SELECT answer missing in %q", lines)
	}
	if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "PREAUTH") }) {
		t.Errorf("imapserver's greeting leaked: %q", lines)
	}
}

func TestAuthenticateContinuation(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "gmail"))
	r := dialRaw(t, srv, cfg)
	r.Line()
	r.Send("a1 AUTHENTICATE PLAIN\r\n")
	if got := r.Line(); got != "+ " {
		t.Fatalf("got %q, want an empty continuation request", got)
	}
	r.Send("*\r\n")
	if got := r.Line(); !strings.HasPrefix(got, "a1 BAD") {
		t.Fatalf("cancel: got %q", got)
	}
	r.Send("a2 AUTHENTICATE PLAIN\r\n")
	r.Line()
	r.Send(testkit.Plain("apppw@gmail.com", "secret") + "\r\n")
	want := "a2 NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"
	if got := r.Line(); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	r.Send("a3 AUTHENTICATE CRAM-MD5\r\n")
	if got := r.Line(); !strings.HasPrefix(got, "a3 NO") {
		t.Errorf("unsupported mechanism: got %q", got)
	}
}

// TestPreLoginBounds checks that garbage and oversized input end the
// connection with a BYE.
func TestPreLoginBounds(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "dovecot"))
	for _, tt := range []struct{ name, send string }{
		{"long line", "a1 LOGIN " + strings.Repeat("x", 9000) + " y\r\n"},
		{"big literal", "a1 LOGIN {100000+}\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, srv, cfg)
			r.Line()
			r.Send(tt.send)
			if got := r.Line(); !strings.HasPrefix(got, "* BYE") {
				t.Errorf("got %q, want BYE", got)
			}
			r.expectEOF()
		})
	}
	t.Run("bad commands", func(t *testing.T) {
		r := dialRaw(t, srv, cfg)
		r.Line()
		for i := range 4 {
			r.Send(fmt.Sprintf("b%d SELECT INBOX\r\n", i))
			if got := r.Line(); !strings.HasPrefix(got, fmt.Sprintf("b%d BAD", i)) {
				t.Fatalf("got %q, want BAD", got)
			}
		}
		r.Send("\"\r\n")
		if got := r.Line(); !strings.HasPrefix(got, "* BYE") {
			t.Errorf("got %q, want BYE", got)
		}
		r.expectEOF()
	})
}

func TestCertificateVerification(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "icloud"))
	wrongName := cfg.Clone()
	wrongName.ServerName = "imap.mail.example.org"
	_, err := tls.DialWithDialer(&net.Dialer{Timeout: testkit.Timeout}, "tcp", srv.Addr(), wrongName)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Errorf("wrong name: got %v, want x509.HostnameError", err)
	}
	otherCA, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	untrusted := cfg.Clone()
	untrusted.RootCAs = otherCA.Pool()
	_, err = tls.DialWithDialer(&net.Dialer{Timeout: testkit.Timeout}, "tcp", srv.Addr(), untrusted)
	var authErr x509.UnknownAuthorityError
	if !errors.As(err, &authErr) {
		t.Errorf("other CA: got %v, want x509.UnknownAuthorityError", err)
	}
}

// TestCloseEndsConnections closes a server with one connection before
// login and one after; both must end, and no goroutine may stay behind
// (TestMain checks).
func TestCloseEndsConnections(t *testing.T) {
	ca, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	p := provider(t, "gmail")
	srv, err := imitate.Start(p, imitate.Options{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{ServerName: p.Host, RootCAs: ca.Pool()}
	pre := dialRaw(t, srv, cfg)
	pre.Line()
	post := dialRaw(t, srv, cfg)
	post.Line()
	post.login("apppw@gmail.com", "abcdefghijklmnop", "LOGIN")
	post.Line()
	post.Send("a2 SELECT INBOX\r\n")
	for l := post.Line(); !strings.HasPrefix(l, "a2 OK"); l = post.Line() {
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	pre.expectEOF()
	post.expectEOF()
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartRefuses(t *testing.T) {
	p := provider(t, "yahoo")
	if srv, err := imitate.Start(p, imitate.Options{Listen: "0.0.0.0:0"}); err == nil {
		srv.Close()
		t.Error("Start listened on a non-loopback address")
	}
	p.Host = ""
	if srv, err := imitate.Start(p, imitate.Options{}); err == nil {
		srv.Close()
		t.Error("Start accepted a provider without a host")
	}
}

// TestProviderData checks the catalog's own consistency: unique IDs and
// scenario names, every scenario reachable with its own user and password
// (not shadowed by an earlier one) and named in the package doc's table.
func TestProviderData(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range imitate.Providers() {
		if ids[p.ID] {
			t.Errorf("provider ID %s twice", p.ID)
		}
		ids[p.ID] = true
		if p.Source == "" {
			t.Errorf("%s: no Source", p.ID)
		}
		names := map[string]bool{}
		for i, s := range p.Scenarios {
			if names[s.Name] {
				t.Errorf("%s: scenario %s twice", p.ID, s.Name)
			}
			names[s.Name] = true
			if !strings.Contains(string(doc), " "+s.User+" ") {
				t.Errorf("%s/%s: doc.go's table lacks %s", p.ID, s.Name, s.User)
			}
			if s.User == "" || s.Password == "" || s.Reply == "" || s.Description == "" || s.Source == "" {
				t.Errorf("%s/%s: incomplete: %+v", p.ID, s.Name, s)
			}
			if s.DescriptionIn("ja") == s.Description {
				t.Errorf("%s/%s: no Japanese description (demo --lang ja)", p.ID, s.Name)
			}
			for _, earlier := range p.Scenarios[:i] {
				if shadows(p, earlier, s) {
					t.Errorf("%s/%s is shadowed by %s", p.ID, s.Name, earlier.Name)
				}
			}
		}
	}
}

// shadows reports whether a, listed before b, catches b's own login.
func shadows(p imitate.Provider, a, b imitate.Scenario) bool {
	if !strings.EqualFold(a.User, b.User) || (a.Mechanism != "" && a.Mechanism != b.Command()) {
		return false
	}
	isApp := p.AppPassword != nil && p.AppPassword.MatchString(b.Password)
	switch a.Rule {
	case imitate.AnyPassword:
		return true
	case imitate.ExactPassword:
		return a.Password == b.Password
	case imitate.AppPasswordForm:
		return isApp
	case imitate.NotAppPasswordForm:
		return !isApp
	}
	return false
}
