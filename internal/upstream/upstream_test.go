package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/imapwire"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// upstreamTestTimeout bounds a login that should not wait for anything.
const upstreamTestTimeout = 10 * time.Second

// upstreamLogin runs login against addr and checks what no case may break:
// no session on error, no password in the error.
func upstreamLogin(t *testing.T, ctx context.Context, cfg Config, req Credentials, client net.Addr) (*Session, *diagnose.Observation, error) {
	t.Helper()
	if cfg.LoginTimeout == 0 {
		cfg.LoginTimeout = upstreamTestTimeout
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = upstreamTestTimeout
	}
	obs := &diagnose.Observation{}
	up, err := Login(ctx, cfg, req, client, obs)
	if err != nil {
		if up != nil {
			t.Errorf("login returned a session with error %v", err)
		}
		if req.Password != "" && strings.Contains(err.Error(), req.Password) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if up != nil {
		t.Cleanup(func() { up.Conn.Close() })
	}
	return up, obs, err
}

// upstreamWantObs compares obs with want, which leaves out where the login
// went (Host, Port, TLSMode).
func upstreamWantObs(t *testing.T, obs *diagnose.Observation, want diagnose.Observation) {
	t.Helper()
	got := *obs
	got.Host, got.Port, got.TLSMode = "", 0, ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("observation\n got: %s\nwant: %s", upstreamFormatObs(got), upstreamFormatObs(want))
	}
}

func upstreamFormatObs(o diagnose.Observation) string {
	reply := "<nil>"
	if o.Reply != nil {
		reply = fmt.Sprintf("%+v", *o.Reply)
	}
	return fmt.Sprintf("phase=%q net=%q notIMAP=%q greeting=%q caps=%q starttls=%v mech=%q untagged=%+v reply=%s",
		o.Phase, o.NetError, o.NotIMAP, o.Greeting, o.Capabilities, o.StartTLSOffered, o.Mechanism, o.Untagged, reply)
}

// upstreamFields is an expected capability list as the Observation keeps it.
func upstreamFields(s string) []string { return strings.Fields(strings.ToUpper(s)) }

// TestUpstreamLoginMemServer logs in to go-imap's imapserver over each TLS
// mode, uses the connection, and fails with a wrong password.
func TestUpstreamLoginMemServer(t *testing.T) {
	pki := testkit.NewPKI(t)
	const secureGreeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN] IMAP server ready"
	greetings := map[string]string{
		"implicit": secureGreeting,
		"starttls": "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- STARTTLS LOGINDISABLED] IMAP server ready",
		"none":     secureGreeting,
	}
	for _, mode := range []string{"implicit", "starttls", "none"} {
		t.Run(mode, func(t *testing.T) {
			addr := testkit.MemServer(t, mode, mode == "none", pki)
			cfg := Config{Address: addr, TLS: mode, ServerName: "localhost", TLSConfig: &tls.Config{RootCAs: pki.Roots}}
			pre := diagnose.Observation{
				Phase:           diagnose.PhaseLogin,
				ServerName:      "localhost",
				Greeting:        greetings[mode],
				Capabilities:    upstreamFields("IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN"),
				StartTLSOffered: mode == "starttls",
				Mechanism:       "PLAIN",
			}

			up, obs, err := upstreamLogin(t, t.Context(), cfg, Credentials{User: "alice", Password: "alicepass"}, nil)
			if err != nil {
				t.Fatalf("login: %v (%s)", err, upstreamFormatObs(*obs))
			}
			if obs.Reply == nil || obs.Reply.Status != "OK" || obs.Reply.Code != "CAPABILITY" {
				t.Errorf("reply: %s", upstreamFormatObs(*obs))
			}
			if !slices.Contains(up.Caps, "IMAP4rev1") || slices.Contains(up.Caps, "LOGINDISABLED") || !slices.Equal(up.Caps, imapwire.Caps(obs.Reply.CodeArg)) {
				t.Errorf("post-login caps = %q", up.Caps)
			}
			obs.Reply = nil
			upstreamWantObs(t, obs, pre)
			upstreamSelectInbox(t, up)

			_, obs, err = upstreamLogin(t, t.Context(), cfg, Credentials{User: "alice", Password: "wrong"}, nil)
			if err == nil {
				t.Fatal("login with a wrong password succeeded")
			}
			pre.Reply = &diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed"}
			upstreamWantObs(t, obs, pre)
		})
	}
}

// upstreamSelectInbox shows that the connection login returned is usable.
func upstreamSelectInbox(t *testing.T, up *Session) {
	t.Helper()
	up.Conn.SetDeadline(time.Now().Add(upstreamTestTimeout))
	if _, err := up.Conn.Write([]byte("x SELECT INBOX\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := imapwire.ReadResponse(up.Reader, responseLimits)
		if err != nil {
			t.Fatalf("reading the SELECT reply: %v", err)
		}
		if r.Kind == imapwire.Tagged {
			if r.Tag != "x" || r.Name != "OK" {
				t.Fatalf("SELECT INBOX: %q", r.Line)
			}
			return
		}
	}
}

// TestUpstreamMemServerRefusals: real imapserver refusals before login.
func TestUpstreamMemServerRefusals(t *testing.T) {
	pki := testkit.NewPKI(t)
	tests := []struct {
		name     string
		insecure bool   // plaintext logins allowed
		tls      string // the client's
		wantErr  error
		want     diagnose.Observation
	}{
		{"logindisabled", false, "none", ErrNoMechanism, diagnose.Observation{
			Phase:        diagnose.PhaseLogin,
			Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- LOGINDISABLED] IMAP server ready",
			Capabilities: upstreamFields("IMAP4rev1 SASL-IR LITERAL- LOGINDISABLED"),
		}},
		{"starttls unavailable", true, "starttls", ErrNoStartTLS, diagnose.Observation{
			Phase:        diagnose.PhaseStartTLS,
			Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN] IMAP server ready",
			Capabilities: upstreamFields("IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := testkit.MemServer(t, "none", tt.insecure, pki)
			_, obs, err := upstreamLogin(t, t.Context(), Config{Address: addr, TLS: tt.tls}, Credentials{User: "alice", Password: "alicepass"}, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v", err)
			}
			upstreamWantObs(t, obs, tt.want)
		})
	}
}

// upstreamScript is one scripted-server case: the server's side of the
// exchange (which checks the client's exact lines) and the Observation the
// login must leave.
type upstreamScript struct {
	name    string
	tls     string // "" means none
	req     Credentials
	sendID  bool
	timeout time.Duration
	play    func(c *testkit.Conn)
	want    diagnose.Observation
	wantErr error                          // for errors.Is; nil with want.Phase set means "any error"
	ok      bool                           // the login must succeed
	after   func(t *testing.T, u *Session) // checks on a successful login
}

const upstreamGmailGreeting = "* OK Gimap ready for requests from 192.0.2.7 is27mb3495359jab"

var upstreamGmailCaps = "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH"

func upstreamScripts() []upstreamScript {
	alice := Credentials{User: "alice", Password: "alicepass"}
	jorg := Credentials{User: "jörg", Password: "pässwörd"} // not ASCII: sent as literals
	return []upstreamScript{
		{
			name: "gmail webalert",
			req:  Credentials{User: "someone@gmail.com", Password: "secret"},
			play: func(c *testkit.Conn) {
				upstreamCapabilityAsked(c, upstreamGmailGreeting, upstreamGmailCaps, "Thats all she wrote! is27mb3495359jab")
				c.Expect("a2 AUTHENTICATE PLAIN " + testkit.Plain("someone@gmail.com", "secret"))
				c.Send("* NO [WEBALERT https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbtt] Web login required.",
					"a2 NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				Greeting:     upstreamGmailGreeting,
				Capabilities: upstreamFields(upstreamGmailCaps),
				Mechanism:    "PLAIN",
				Untagged: []diagnose.Response{{Status: "NO", Code: "WEBALERT",
					CodeArg: "https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbtt", Text: "Web login required."}},
				Reply: &diagnose.Response{Tagged: true, Status: "NO", Code: "ALERT",
					Text: "Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)"},
			},
		},
		{
			name: "logindisabled only",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 LITERAL+ LOGINDISABLED] ready")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 LITERAL+ LOGINDISABLED] ready",
				Capabilities: upstreamFields("IMAP4rev1 LITERAL+ LOGINDISABLED"),
			},
			wantErr: ErrNoMechanism,
		},
		{
			name: "oauth only, logindisabled",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER LOGINDISABLED] ready")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER LOGINDISABLED] ready",
				Capabilities: upstreamFields("IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER LOGINDISABLED"),
			},
			wantErr: ErrNoMechanism,
		},
		{
			// Without LOGINDISABLED, LOGIN is allowed (RFC 9051 6.2.3): try it
			// and let the server's answer speak.
			name: "oauth only, login allowed",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready")
				c.Expect(`a1 LOGIN "alice" "alicepass"`)
				c.Send("a1 NO LOGIN failed.")
				c.ExpectEOF()
			},
			want: upstreamLoginObs("IMAP4rev1 SASL-IR AUTH=XOAUTH2", "LOGIN", &diagnose.Response{Tagged: true, Status: "NO", Text: "LOGIN failed."}),
		},
		{
			name: "authzid needs PLAIN",
			req:  Credentials{User: "admin", Password: "adminpass", Authzid: "alice"},
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] ready")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 AUTH=LOGIN"),
			},
			wantErr: ErrNoMechanism,
		},
		{
			name: "bye greeting",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* BYE [UNAVAILABLE] Too many connections from your IP")
			},
			want: diagnose.Observation{
				Phase:    diagnose.PhaseGreeting,
				Greeting: "* BYE [UNAVAILABLE] Too many connections from your IP",
				Reply:    &diagnose.Response{Status: "BYE", Code: "UNAVAILABLE", Text: "Too many connections from your IP"},
			},
		},
		{
			name: "preauth greeting",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* PREAUTH [CAPABILITY IMAP4rev1] Logged in as nobody")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:    diagnose.PhaseGreeting,
				NetError: diagnose.NetProtocol,
				Greeting: "* PREAUTH [CAPABILITY IMAP4rev1] Logged in as nobody",
			},
		},
		{
			name: "over-long greeting",
			req:  alice,
			play: testkit.Says("* OK " + strings.Repeat("x", responseLimits.MaxLine)),
			want: diagnose.Observation{Phase: diagnose.PhaseGreeting, NetError: diagnose.NetProtocol},
		},
		{
			name:    "never greets",
			req:     alice,
			timeout: time.Second,
			play:    func(c *testkit.Conn) { c.WaitClose() },
			want:    diagnose.Observation{Phase: diagnose.PhaseGreeting, NetError: diagnose.NetTimeout},
		},
		{
			name: "closed mid-login",
			req:  alice,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				NetError:     diagnose.NetReset,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 SASL-IR AUTH=PLAIN"),
				Mechanism:    "PLAIN",
			},
		},
		{
			name: "reply with a foreign tag",
			req:  alice,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
				c.Send("zz9 OK Logged in")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				NetError:     diagnose.NetProtocol,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 SASL-IR AUTH=PLAIN"),
				Mechanism:    "PLAIN",
			},
		},
		{
			name: "starttls not offered",
			tls:  "starttls",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseStartTLS,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 AUTH=PLAIN"),
			},
			wantErr: ErrNoStartTLS,
		},
		{
			name: "starttls refused",
			tls:  "starttls",
			req:  alice,
			play: func(c *testkit.Conn) {
				upstreamCapabilityAsked(c, "* OK ready", "IMAP4rev1 STARTTLS LOGINDISABLED", "done")
				c.Expect("a2 STARTTLS")
				c.Send("a2 NO [UNAVAILABLE] TLS is broken here")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:           diagnose.PhaseStartTLS,
				Greeting:        "* OK ready",
				Capabilities:    upstreamFields("IMAP4rev1 STARTTLS LOGINDISABLED"),
				StartTLSOffered: true,
				Reply:           &diagnose.Response{Tagged: true, Status: "NO", Code: "UNAVAILABLE", Text: "TLS is broken here"},
			},
		},
		{
			name: "bytes after the STARTTLS OK",
			tls:  "starttls",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready")
				c.Expect("a1 STARTTLS")
				c.Send("a1 OK Begin TLS negotiation now", "* CAPABILITY IMAP4rev1 AUTH=PLAIN")
				c.ExpectEOF()
			},
			want: diagnose.Observation{
				Phase:           diagnose.PhaseStartTLS,
				NetError:        diagnose.NetProtocol,
				Greeting:        "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready",
				Capabilities:    upstreamFields("IMAP4rev1 STARTTLS LOGINDISABLED"),
				StartTLSOffered: true,
			},
			wantErr: ErrStartTLSInjection,
		},
		{
			name: "synchronising literals",
			req:  jorg,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1] ready")
				c.Expect("a1 LOGIN {5}")
				c.Send("+ Ready for literal data")
				c.Expect("jörg {10}")
				c.Send("+ Ready for literal data")
				c.Expect("pässwörd")
				c.Send("a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
				c.WaitClose()
			},
			ok:   true,
			want: upstreamLoginObs("IMAP4rev1", "LOGIN", &diagnose.Response{Tagged: true, Status: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1 IDLE", Text: "Logged in"}),
			after: func(t *testing.T, u *Session) {
				if !slices.Equal(u.Caps, strings.Fields("IMAP4rev1 IDLE")) {
					t.Errorf("caps = %q", u.Caps)
				}
			},
		},
		{
			name: "literal refused before the continuation",
			req:  Credentials{User: "alice", Password: "pässwörd"},
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1] ready")
				c.Expect(`a1 LOGIN "alice" {10}`)
				c.Send("a1 BAD [CLIENTBUG] 8-bit passwords are not accepted")
				c.ExpectEOF()
			},
			want: upstreamLoginObs("IMAP4rev1", "LOGIN", &diagnose.Response{Tagged: true, Status: "BAD", Code: "CLIENTBUG", Text: "8-bit passwords are not accepted"}),
		},
		{
			name: "literal+",
			req:  jorg,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready")
				c.Expect("a1 LOGIN {5+}")
				c.Expect("jörg {10+}")
				c.Expect("pässwörd")
				c.Send("a1 OK [CAPABILITY IMAP4rev1] Logged in")
				c.WaitClose()
			},
			ok:   true,
			want: upstreamLoginObs("IMAP4rev1 LITERAL+", "LOGIN", &diagnose.Response{Tagged: true, Status: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1", Text: "Logged in"}),
		},
		{
			name: "quoted specials",
			req:  Credentials{User: `al"ice`, Password: `pa\ss word`},
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1] ready")
				c.Expect(`a1 LOGIN "al\"ice" "pa\\ss word"`)
				c.Send("a1 NO [AUTHENTICATIONFAILED] Authentication failed.")
				c.ExpectEOF()
			},
			want: upstreamLoginObs("IMAP4rev1", "LOGIN", &diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."}),
		},
		{
			name: "authenticate by continuation",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready")
				c.Expect("a1 AUTHENTICATE PLAIN")
				c.Send("+ ")
				c.Expect(testkit.Plain("alice", "alicepass"))
				c.Send("a1 OK [CAPABILITY IMAP4rev1] Logged in")
				c.WaitClose()
			},
			ok:   true,
			want: upstreamLoginObs("IMAP4rev1 AUTH=PLAIN", "PLAIN", &diagnose.Response{Tagged: true, Status: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1", Text: "Logged in"}),
		},
		{
			name: "authenticate cancelled on a second challenge",
			req:  alice,
			play: func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready")
				c.Expect("a1 AUTHENTICATE PLAIN " + testkit.Plain("alice", "alicepass"))
				c.Send("+ bW9yZT8=")
				c.Expect("*")
				c.Send("a1 BAD Authentication cancelled")
				c.ExpectEOF()
			},
			want: upstreamLoginObs("IMAP4rev1 AUTH=PLAIN SASL-IR", "PLAIN", &diagnose.Response{Tagged: true, Status: "BAD", Text: "Authentication cancelled"}),
		},
		{
			// Dovecot when the client asked CAPABILITY before: the post-login
			// list comes untagged.
			name: "untagged capability with the OK",
			req:  alice,
			play: func(c *testkit.Conn) {
				upstreamCapabilityAsked(c, "* OK ready", "IMAP4rev1 LITERAL+ AUTH=PLAIN", "Pre-login capabilities listed")
				c.Expect("a2 AUTHENTICATE PLAIN")
				c.Send("+ ")
				c.Expect(testkit.Plain("alice", "alicepass"))
				c.Send("* CAPABILITY IMAP4rev1 IDLE MOVE", "a2 OK Logged in")
				c.WaitClose()
			},
			ok: true,
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				Greeting:     "* OK ready",
				Capabilities: upstreamFields("IMAP4rev1 LITERAL+ AUTH=PLAIN"),
				Mechanism:    "PLAIN",
				Untagged:     []diagnose.Response{{Status: "CAPABILITY", Text: "IMAP4rev1 IDLE MOVE"}},
				Reply:        &diagnose.Response{Tagged: true, Status: "OK", Text: "Logged in"},
			},
			after: func(t *testing.T, u *Session) {
				if !slices.Equal(u.Caps, strings.Fields("IMAP4rev1 IDLE MOVE")) {
					t.Errorf("caps = %q", u.Caps)
				}
			},
		},
		{
			name: "capabilities asked after login",
			req:  alice,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
				c.Send("a1 OK Logged in")
				c.Expect("a2 CAPABILITY")
				c.Send("* CAPABILITY IMAP4rev1 X-TEST", "a2 OK done", "* 3 EXISTS")
				c.WaitClose()
			},
			ok: true,
			want: diagnose.Observation{
				Phase:        diagnose.PhaseAfterLogin,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 SASL-IR AUTH=PLAIN"),
				Mechanism:    "PLAIN",
				Reply:        &diagnose.Response{Tagged: true, Status: "OK", Text: "Logged in"},
			},
			after: func(t *testing.T, u *Session) {
				if !slices.Equal(u.Caps, strings.Fields("IMAP4rev1 X-TEST")) {
					t.Errorf("caps = %q", u.Caps)
				}
				upstreamWantLine(t, u, "* 3 EXISTS")
			},
		},
		{
			// Dovecot's "badstorage" user: OK, then BYE.
			name: "bye after login",
			req:  alice,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
				c.Send("a1 OK Logged in")
				c.Expect("a2 CAPABILITY")
				c.Send("* BYE Internal error occurred. Refer to server log for more information.")
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseAfterLogin,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 SASL-IR AUTH=PLAIN"),
				Mechanism:    "PLAIN",
				Reply:        &diagnose.Response{Status: "BYE", Text: "Internal error occurred. Refer to server log for more information."},
			},
		},
		{
			name: "bye during login",
			req:  alice,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
				c.Send("* BAD [ALERT] Slow down", "* BYE [UNAVAILABLE] Server shutting down")
			},
			want: diagnose.Observation{
				Phase:        diagnose.PhaseLogin,
				Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready",
				Capabilities: upstreamFields("IMAP4rev1 SASL-IR AUTH=PLAIN"),
				Mechanism:    "PLAIN",
				Untagged: []diagnose.Response{
					{Status: "BAD", Code: "ALERT", Text: "Slow down"},
					{Status: "BYE", Code: "UNAVAILABLE", Text: "Server shutting down"},
				},
				Reply: &diagnose.Response{Status: "BYE", Code: "UNAVAILABLE", Text: "Server shutting down"},
			},
		},
		{
			name: "bytes after the OK stay buffered",
			req:  alice,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
				c.Send("a1 OK [CAPABILITY IMAP4rev1] Logged in", "* 1 EXISTS", "* OK [ALERT] Welcome")
				c.WaitClose()
			},
			ok:   true,
			want: upstreamLoginObs("IMAP4rev1 SASL-IR AUTH=PLAIN", "PLAIN", &diagnose.Response{Tagged: true, Status: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1", Text: "Logged in"}),
			after: func(t *testing.T, u *Session) {
				upstreamWantLine(t, u, "* 1 EXISTS")
				upstreamWantLine(t, u, "* OK [ALERT] Welcome")
			},
		},
		{
			name:   "id with the client's address",
			req:    alice,
			sendID: true,
			play: func(c *testkit.Conn) {
				host, port, _ := net.SplitHostPort(c.Conn.LocalAddr().String())
				c.Send("* OK [CAPABILITY IMAP4rev1 ID SASL-IR AUTH=PLAIN] ready")
				c.Expect(`a1 ID ("x-originating-ip" "192.0.2.7" "x-originating-port" "50123" "x-connected-ip" "` + host + `" "x-connected-port" "` + port + `")`)
				c.Send(`* ID ("name" {7}`, `Dovecot)`, "a1 OK ID completed.")
				c.Expect("a2 AUTHENTICATE PLAIN " + testkit.Plain("alice", "alicepass"))
				c.Send("a2 OK [CAPABILITY IMAP4rev1] Logged in")
				c.WaitClose()
			},
			ok:   true,
			want: upstreamLoginObs("IMAP4rev1 ID SASL-IR AUTH=PLAIN", "PLAIN", &diagnose.Response{Tagged: true, Status: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1", Text: "Logged in"}),
		},
		{
			name:   "no id without the capability",
			req:    alice,
			sendID: true,
			play: func(c *testkit.Conn) {
				greetAlicePlain(c)
				c.Send("a1 NO [AUTHENTICATIONFAILED] Authentication failed.")
				c.ExpectEOF()
			},
			want: upstreamLoginObs("IMAP4rev1 SASL-IR AUTH=PLAIN", "PLAIN", &diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."}),
		},
	}
}

// upstreamWantLine reads one line from the returned session's reader.
func upstreamWantLine(t *testing.T, u *Session, want string) {
	t.Helper()
	u.Conn.SetReadDeadline(time.Now().Add(upstreamTestTimeout))
	line, _, err := imapwire.ReadLine(u.Reader, nil, responseLimits.MaxLine)
	if err != nil || string(line) != want {
		t.Errorf("after login: read %q, %v; want %q", line, err, want)
	}
}

// TestUpstreamScripted runs login against scripted servers and compares
// both the client's lines (in the script) and the Observation.
func TestUpstreamScripted(t *testing.T) {
	for _, tc := range upstreamScripts() {
		t.Run(tc.name, func(t *testing.T) {
			addr := testkit.Serve(t, nil, tc.play)
			mode := tc.tls
			if mode == "" {
				mode = "none"
			}
			cfg := Config{Address: addr, TLS: mode, SendID: tc.sendID, LoginTimeout: tc.timeout}
			client := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 50123}
			up, obs, err := upstreamLogin(t, t.Context(), cfg, tc.req, client)
			switch {
			case tc.ok && err != nil:
				t.Errorf("login: %v", err)
			case !tc.ok && err == nil:
				t.Errorf("login succeeded")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !tc.ok && err != nil {
				if ue, ok := errors.AsType[*Error](err); !ok || ue.Phase != obs.Phase {
					t.Errorf("err = %v: want an Error of phase %q", err, obs.Phase)
				}
			}
			upstreamWantObs(t, obs, tc.want)
			if up != nil && tc.after != nil {
				tc.after(t, up)
			}
			if up != nil {
				up.Conn.Close() // lets the script finish
			}
		})
	}
}

// TestUpstreamGreetingNotIMAP: another protocol answers a plaintext connection.
func TestUpstreamGreetingNotIMAP(t *testing.T) {
	tests := []struct{ greeting, notIMAP string }{
		{"+OK Dovecot ready.", "pop3"},
		{"220 mx.example.com ESMTP Postfix", "smtp"},
		{"220-mx.example.com ESMTP multi-line", "smtp"},
		{"HTTP/1.1 400 Bad Request", "http"},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", "other"},
		{"a1 OK what", "other"},
	}
	for _, tc := range tests {
		t.Run(tc.notIMAP+" "+tc.greeting, func(t *testing.T) {
			addr := testkit.Serve(t, nil, func(c *testkit.Conn) {
				c.Send(tc.greeting)
				c.ExpectEOF()
			})
			_, obs, err := upstreamLogin(t, t.Context(), Config{Address: addr, TLS: "starttls"}, Credentials{User: "alice", Password: "alicepass"}, nil)
			if err == nil {
				t.Fatal("login succeeded")
			}
			upstreamWantObs(t, obs, diagnose.Observation{
				Phase:    diagnose.PhaseGreeting,
				NetError: diagnose.NetProtocol,
				NotIMAP:  tc.notIMAP,
				Greeting: tc.greeting,
			})
		})
	}
}

// TestUpstreamRefusesUnsafeCredentials: CR, LF and NUL never reach the wire;
// nothing is dialled.
func TestUpstreamRefusesUnsafeCredentials(t *testing.T) {
	tests := []struct {
		name string
		req  Credentials
	}{
		{"CRLF in the user name", Credentials{User: "alice\r\na2 DELETE INBOX", Password: "alicepass"}},
		{"CRLF in the password", Credentials{User: "alice", Password: "secret\r\na2 DELETE INBOX"}},
		{"LF in the password", Credentials{User: "alice", Password: "sec\nret"}},
		{"NUL in the password", Credentials{User: "alice", Password: "sec\x00ret"}},
		{"CR in the authorization identity", Credentials{User: "alice", Password: "secret", Authzid: "bob\r"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Address: "127.0.0.1:1", TLS: "implicit", Dial: func(context.Context, string, string) (net.Conn, error) {
				t.Error("dialled with unsafe credentials")
				return nil, errors.New("no")
			}}
			_, obs, err := upstreamLogin(t, t.Context(), cfg, tc.req, nil)
			if !errors.Is(err, ErrUnsafeCredentials) {
				t.Errorf("err = %v", err)
			}
			upstreamWantObs(t, obs, diagnose.Observation{Phase: diagnose.PhaseProxy})
		})
	}
}

// TestUpstreamConnectionFacts: typed connection failures become NetError facts.
func TestUpstreamConnectionFacts(t *testing.T) {
	pki := testkit.NewPKI(t)
	imapGreeting := testkit.Says("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready")
	tests := []struct {
		name  string
		setup func(t *testing.T) Config
		want  diagnose.Observation
	}{
		{
			name: "refused",
			setup: func(t *testing.T) Config {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				return Config{Address: addr, TLS: "implicit"}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseDial, NetError: diagnose.NetRefused},
		},
		{
			name: "dns not found",
			setup: func(t *testing.T) Config {
				return Config{Address: "imap.example.invalid:993", TLS: "implicit", Dial: testkit.NewDNS(t).Dial()}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseDial, NetError: diagnose.NetDNSNotFound},
		},
		{
			name: "dial timeout",
			setup: func(t *testing.T) Config {
				hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
					<-ctx.Done()
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
				}
				return Config{Address: "192.0.2.1:993", TLS: "implicit", DialTimeout: 200 * time.Millisecond, Dial: hang}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseDial, NetError: diagnose.NetTimeout},
		},
		{
			// The process is out of file descriptors: the socket call
			// fails, as the net package reports it. Nothing was sent.
			name:  "out of file descriptors",
			setup: dialFailing(os.NewSyscallError("socket", syscall.EMFILE)),
			want:  diagnose.Observation{Phase: diagnose.PhaseDial, NetError: diagnose.NetLocal},
		},
		{
			name:  "out of ephemeral ports",
			setup: dialFailing(os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)),
			want:  diagnose.Observation{Phase: diagnose.PhaseDial, NetError: diagnose.NetLocal},
		},
		{
			// A local firewall rule, say: no fact names it, and it says
			// nothing about the credentials.
			name:  "dial failure of no known kind",
			setup: dialFailing(os.NewSyscallError("connect", syscall.EPERM)),
			want:  diagnose.Observation{Phase: diagnose.PhaseDial, NetError: diagnose.NetOther},
		},
		{
			name: "tls handshake timeout",
			setup: func(t *testing.T) Config {
				addr := testkit.Serve(t, nil, func(c *testkit.Conn) { c.WaitClose() })
				return Config{Address: addr, TLS: "implicit", DialTimeout: 300 * time.Millisecond}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetTimeout},
		},
		{
			name: "tls to a plaintext imap port",
			setup: func(t *testing.T) Config {
				return Config{Address: testkit.Serve(t, nil, imapGreeting), TLS: "implicit"}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetTLSToPlain},
		},
		{
			name: "tls to pop3",
			setup: func(t *testing.T) Config {
				return Config{Address: testkit.Serve(t, nil, testkit.Says("+OK Dovecot ready.")), TLS: "implicit"}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetTLSToPlain, NotIMAP: "pop3"},
		},
		{
			name: "tls to smtp",
			setup: func(t *testing.T) Config {
				return Config{Address: testkit.Serve(t, nil, testkit.Says("220 mx.example.com ESMTP")), TLS: "implicit"}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetTLSToPlain, NotIMAP: "smtp"},
		},
		{
			// An HTTP server says nothing first; it answers the ClientHello
			// as a bad request.
			name: "tls to http",
			setup: func(t *testing.T) Config {
				return Config{Address: testkit.Serve(t, nil, func(c *testkit.Conn) {
					c.Reader.Peek(1)
					c.Send("HTTP/1.1 400 Bad Request", "Connection: close", "")
				}), TLS: "implicit"}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetTLSToPlain, NotIMAP: "http"},
		},
		{
			name: "plaintext to a tls port",
			setup: func(t *testing.T) Config {
				good := pki.Good
				addr := testkit.Serve(t, &good, testkit.Says("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready"))
				return Config{Address: addr, TLS: "starttls", LoginTimeout: 5 * time.Second}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseGreeting, NetError: diagnose.NetPlainToTLS},
		},
		{
			name: "certificate for another name",
			setup: func(t *testing.T) Config {
				cert := pki.OtherName
				return Config{Address: testkit.Serve(t, &cert, imapGreeting), TLS: "implicit", ServerName: "localhost", TLSConfig: &tls.Config{RootCAs: pki.Roots}}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetCertName, ServerName: "localhost"},
		},
		{
			name: "expired certificate",
			setup: func(t *testing.T) Config {
				cert := pki.Expired
				return Config{Address: testkit.Serve(t, &cert, imapGreeting), TLS: "implicit", ServerName: "localhost", TLSConfig: &tls.Config{RootCAs: pki.Roots}}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetCertExpired, ServerName: "localhost"},
		},
		{
			name: "self-signed certificate",
			setup: func(t *testing.T) Config {
				cert := pki.SelfSigned
				return Config{Address: testkit.Serve(t, &cert, imapGreeting), TLS: "implicit", TLSConfig: &tls.Config{RootCAs: pki.Roots}}
			},
			want: diagnose.Observation{Phase: diagnose.PhaseTLS, NetError: diagnose.NetCertUntrusted},
		},
		{
			name: "self-signed certificate after starttls",
			setup: func(t *testing.T) Config {
				addr := upstreamMemServerWithCert(t, pki.SelfSigned)
				return Config{Address: addr, TLS: "starttls", TLSConfig: &tls.Config{RootCAs: pki.Roots}}
			},
			want: diagnose.Observation{
				Phase:           diagnose.PhaseTLS,
				NetError:        diagnose.NetCertUntrusted,
				Greeting:        "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- STARTTLS LOGINDISABLED] IMAP server ready",
				Capabilities:    upstreamFields("IMAP4rev1 SASL-IR LITERAL- STARTTLS LOGINDISABLED"),
				StartTLSOffered: true,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.setup(t)
			_, obs, err := upstreamLogin(t, t.Context(), cfg, Credentials{User: "alice", Password: "alicepass"}, nil)
			if err == nil {
				t.Fatal("login succeeded")
			}
			upstreamWantObs(t, obs, tc.want)
		})
	}
}

// dialFailing is a case's setup whose dial fails with err.
func dialFailing(err error) func(*testing.T) Config {
	return func(*testing.T) Config {
		return Config{Address: "imap.example.com:993", TLS: "implicit", Dial: dialFails(err)}
	}
}

// dialFails is a DialFunc that fails with err as net.Dialer does.
func dialFails(err error) DialFunc {
	return func(_ context.Context, network, _ string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
}

// upstreamMemServerWithCert is an imapserver offering STARTTLS with cert.
func upstreamMemServerWithCert(t *testing.T, cert tls.Certificate) string {
	pki := &testkit.PKI{Good: cert}
	return testkit.MemServer(t, "starttls", false, pki)
}

// TestUpstreamCancel: cancelling the context ends a login that waits.
func TestUpstreamCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := testkit.Serve(t, nil, func(c *testkit.Conn) {
		cancel()
		c.WaitClose()
	})
	_, obs, err := upstreamLogin(t, ctx, Config{Address: addr, TLS: "none", LoginTimeout: time.Minute}, Credentials{User: "alice", Password: "alicepass"}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if obs.NetError != diagnose.NetOK {
		t.Errorf("NetError = %q after our own cancel", obs.NetError)
	}
}

// BenchmarkUpstreamLogin measures a whole login (dial, greeting,
// AUTHENTICATE PLAIN, OK) against imapmemserver over loopback, plaintext.
func BenchmarkUpstreamLogin(b *testing.B) {
	addr := testkit.MemServer(b, "none", true, testkit.NewPKI(b))
	cfg := Config{Address: addr, TLS: "none"}
	req := Credentials{User: "alice", Password: "alicepass"}
	for b.Loop() {
		up, err := Login(b.Context(), cfg, req, nil, &diagnose.Observation{})
		if err != nil {
			b.Fatal(err)
		}
		up.Conn.Close()
	}
}

func TestUpstreamMechanism(t *testing.T) {
	tests := []struct {
		caps    string
		authzid bool
		want    string
	}{
		{"IMAP4REV1 AUTH=PLAIN AUTH=LOGIN", false, "PLAIN"},
		{"IMAP4REV1 AUTH=LOGIN", false, "LOGIN"},
		{"IMAP4REV1", false, "LOGIN"},
		{"IMAP4REV1 AUTH=XOAUTH2", false, "LOGIN"},
		{"IMAP4REV1 AUTH=XOAUTH2 LOGINDISABLED", false, ""},
		{"IMAP4REV1 AUTH=PLAIN LOGINDISABLED", false, ""},
		{"IMAP4REV1 STARTTLS LOGINDISABLED", false, ""},
		{"IMAP4REV1 AUTH=PLAIN", true, "PLAIN"},
		{"IMAP4REV1", true, ""},
	}
	for _, tc := range tests {
		cred := Credentials{User: "alice", Password: "secret"}
		if tc.authzid {
			cred.Authzid = "admin"
		}
		if got := ChooseMechanism(strings.Fields(tc.caps), cred); got != tc.want {
			t.Errorf("ChooseMechanism(%q, authzid=%v) = %q, want %q", tc.caps, tc.authzid, got, tc.want)
		}
	}
}

// greetAlicePlain greets with SASL-IR and AUTH=PLAIN and expects alice's
// AUTHENTICATE PLAIN with its initial response: the start of most logins
// played here.
func greetAlicePlain(c *testkit.Conn) {
	c.Send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready")
	c.Expect("a1 AUTHENTICATE PLAIN " + testkit.Plain("alice", "alicepass"))
}

// upstreamCapabilityAsked sends greeting (with no capabilities in it) and
// answers the client's CAPABILITY with caps and a tagged OK with text ok.
func upstreamCapabilityAsked(c *testkit.Conn, greeting, caps, ok string) {
	c.Send(greeting)
	c.Expect("a1 CAPABILITY")
	c.Send("* CAPABILITY "+caps, "a1 OK "+ok)
}

// upstreamLoginObs is the observation of a login that ended in reply after
// the greeting "* OK [CAPABILITY caps] ready" and the mechanism mech.
func upstreamLoginObs(caps, mech string, reply *diagnose.Response) diagnose.Observation {
	return diagnose.Observation{
		Phase:        diagnose.PhaseLogin,
		Greeting:     "* OK [CAPABILITY " + caps + "] ready",
		Capabilities: upstreamFields(caps),
		Mechanism:    mech,
		Reply:        reply,
	}
}
