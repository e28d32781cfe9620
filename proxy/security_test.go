package proxy

// End-to-end tests of what a stranger can and cannot do through the proxy:
// lock the owner out, learn about the real password from the history.

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestStrangerCannotLockOut: 21 wrong logins for alice from one network
// (127.0.0.1) spend that network's per-user budget only; alice's right
// password from another network (127.0.1.1) logs in, and nobody is told
// "from this device" about someone else's attempts.
func TestStrangerCannotLockOut(t *testing.T) {
	r := startProtectRig(t, `failure_delay_base: 1ms, failure_delay_max: 1ms`)
	limited := 0
	for i := range 21 {
		got, alert := r.tryLoginFrom(t, "127.0.0.1", "alice", "guess-"+string(rune('a'+i)))
		if strings.HasPrefix(got, "a NO [UNAVAILABLE] ") {
			limited++
			if strings.Contains(alert, "this device") {
				t.Errorf("the rate limit speaks of this device: %q", alert)
			}
		}
	}
	if limited == 0 {
		t.Fatal("21 wrong logins a minute from one address were never limited")
	}
	if got, _ := r.tryLoginFrom(t, "127.0.1.1", "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
		t.Errorf("the owner from another network: %q", got)
	}
	if msg := diagnose.Message(diagnose.Of(diagnose.CauseClientRateLimited), "en"); strings.Contains(msg, "device") {
		t.Errorf("client.rate_limited message: %q", msg)
	}
}

// TestHistoryOnlyForKnownNetworks: "Caps Lock seems to be on" tells that
// the case-inverted guess is the password; it is said only to a network
// that has logged in as the user before. From another network the same
// typo gets the plain credentials.rejected.
func TestHistoryOnlyForKnownNetworks(t *testing.T) {
	r := startProtectRig(t, quickLimits)
	if got, _ := r.tryLoginFrom(t, "127.0.0.1", "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("first login: %q", got)
	}
	got, alert := r.tryLoginFrom(t, "127.0.1.1", "alice", "ALICEPASS")
	if !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
		t.Fatalf("from another network: %q", got)
	}
	if ev := r.lastFailure(t); ev["cause"] != string(diagnose.CauseCredentialsRejected) {
		t.Errorf("from another network: %v, want credentials.rejected", ev["cause"])
	}
	wantMessage(t, alert, diagnose.CauseCredentialsRejected)
	if _, alert := r.tryLoginFrom(t, "127.0.0.1", "alice", "ALICEPASS"); r.lastFailure(t)["cause"] != string(diagnose.CauseCredentialsCapsLock) {
		t.Errorf("from the owner's network: %v (%q), want credentials.caps_lock", r.lastFailure(t)["cause"], alert)
	}
}

// TestBadUserNameRefused: a user name over 256 bytes, or with control or
// format characters (C0 controls, CR LF, bidi overrides), is refused by the proxy itself
// with client.invalid_username, nothing goes upstream, and the log holds
// the name capped and cleaned.
func TestBadUserNameRefused(t *testing.T) {
	r := startProtectRig(t, quickLimits)
	for _, user := range []string{
		strings.Repeat("a", 4000) + "@example.com",
		"alice\x01admin",
		"\u202eelgoog@example.com",
		"alice\r\nforged",
	} {
		before, failures := r.up.Logins.Load(), len(r.logs.Events("auth_failure"))
		tc := dialTestClient(t, r.srv.Addrs()[0])
		tc.Send(fmt.Sprintf("a LOGIN {%d+}\r\n%s alicepass\r\n", len(user), user))
		lines := tc.Until("a ")
		if got := lines[len(lines)-1]; !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
			t.Errorf("%.20q: %q", user, got)
		}
		testkit.WaitFor(t, func() bool { return len(r.logs.Events("auth_failure")) > failures })
		ev := r.lastFailure(t)
		logged, _ := ev["user"].(string)
		if ev["cause"] != string(diagnose.CauseClientInvalidUsername) || len(logged) > diagnose.MaxUsernameLen ||
			strings.ContainsAny(logged, "\x00\r\n\u202e") {
			t.Errorf("%.20q logged as cause %v, user %.40q (%d bytes)", user, ev["cause"], logged, len(logged))
		}
		if r.up.Logins.Load() != before {
			t.Errorf("%.20q reached the upstream", user)
		}
		tc.Conn.Close()
	}
}

// TestUpstreamEchoesAwkwardPassword: an upstream that echoes the whole
// LOGIN command in its NO gets no password into the log, whatever the
// password is made of: two spaces and a tab (which the detail's cleaning
// collapses), an invalid UTF-8 byte (which it replaces), or a place in the
// echo where the 300-byte detail is cut.
func TestUpstreamEchoesAwkwardPassword(t *testing.T) {
	testkit.CheckNoLeaks(t)
	for _, tc := range []struct{ name, pass, pad string }{
		{"two spaces and a tab", "pa  ss\tw-" + testSecret("spaces"), ""},
		{"invalid UTF-8", "pa\xffss-" + testSecret("utf8"), ""},
		{"cut in the middle", "cut-" + testSecret("cut"), strings.Repeat("x", 228)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := testkit.Serve(t, nil, func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 LITERAL+] fake ready")
				line, err := c.Reader.ReadString('\n')
				if err != nil {
					return
				}
				cmd := strings.TrimRight(line, "\r\n")
				if i := strings.LastIndexByte(cmd, '{'); i >= 0 && strings.HasSuffix(cmd, "+}") {
					var n int
					fmt.Sscanf(cmd[i:], "{%d+}", &n)
					lit := make([]byte, n)
					if _, err := io.ReadFull(c.Reader, lit); err != nil {
						return
					}
					rest, _ := c.Reader.ReadString('\n')
					cmd = cmd[:i] + string(lit) + strings.TrimRight(rest, "\r\n")
				}
				tag, _, _ := strings.Cut(cmd, " ")
				c.Send(tag + " NO [AUTHENTICATIONFAILED] " + tc.pad + "Refused: " + cmd)
				c.WaitClose()
			})
			p := startRig(t, rigConfig(t, config.TLSNone, up, config.TLSNone), Options{})
			cl := rigGreeted(t, p.addr)
			cl.Send(fmt.Sprintf("a LOGIN alice {%d+}\r\n%s\r\n", len(tc.pass), tc.pass))
			cl.Until("a ")
			testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_failure")) > 0 })
			log := p.logs.String()
			detail := fmt.Sprint(p.logs.Events("auth_failure")[0]["detail"])
			secret := tc.pass[strings.IndexByte(tc.pass, '-')+1:]
			if strings.Contains(log, secret[:8]) {
				t.Errorf("the password reached the log: detail %q", detail)
			}
			if !strings.Contains(detail, "Refused") {
				t.Errorf("detail %q: want the server's words kept", detail)
			}
		})
	}
}

// TestRedactSentForms: the base64 PLAIN form is built from the user name
// the login went upstream with (discovery may rewrite it), and the detail
// of a login reply loses quoted strings, literals and base64-looking
// tokens, which may be the credentials in another form.
func TestRedactSentForms(t *testing.T) {
	req := &loginRequest{Mechanism: "PLAIN", Username: "taro@example.jp", Password: "Secr3t-pw"}
	sent := testkit.Plain("taro", "Secr3t-pw")
	if got := redactPassword("BAD "+sent+" invalid", req, "taro"); got != "BAD *** invalid" {
		t.Errorf("PLAIN with the rewritten name: %q", got)
	}
	if got := redactPassword("NO LOGIN taro Secr3", req, "taro"); got != "NO LOGIN taro ***" {
		t.Errorf("an echo cut in the password: %q", got)
	}
	for in, want := range map[string]string{
		`NO [AUTHENTICATIONFAILED] LOGIN taro "Secr3t-pw" failed`:   `NO [AUTHENTICATIONFAILED] LOGIN taro "…" failed`,
		`NO LOGIN taro "unterminated`:                               `NO LOGIN taro "…"`,
		`NO LOGIN taro {9} Secr3t-pw`:                               `NO LOGIN taro {…}`,
		`NO bad response AGJvYgBzZWNyZXQ= rejected`:                 `NO bad response … rejected`,
		`NO see https://support.example.com/accounts/answer/185833`: `NO see https://support.example.com/accounts/answer/185833`,
	} {
		if got := scrubDetail(in); got != want {
			t.Errorf("scrubDetail(%q) = %q, want %q", in, got, want)
		}
	}
}
