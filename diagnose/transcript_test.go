package diagnose

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func parse(t *testing.T, s string) Observation {
	t.Helper()
	o, err := ParseTranscript(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseTranscript: %v", err)
	}
	return o
}

func TestParseTranscript(t *testing.T) {
	o := parse(t, strings.Join([]string{
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Ubuntu) ready.",
		"* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN (after STARTTLS)",
		"(a note)",
		"C: a1 LOGIN \"bob@example.com\" \"secret \"",
		"* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS.",
		"a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
		"",
	}, "\r\n"))
	want := Observation{
		Phase:        PhaseLogin,
		Greeting:     "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Ubuntu) ready.",
		Capabilities: []string{"IMAP4REV1", "SASL-IR", "AUTH=PLAIN", "AUTH=LOGIN"},
		Mechanism:    "LOGIN",
		Untagged:     []Response{{Status: "BAD", Code: "ALERT", Text: "Plaintext authentication not allowed without SSL/TLS."}},
		Reply:        &Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."},
		Typed:        Facts("bob@example.com", "secret "),
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
}

func TestParseTranscriptLines(t *testing.T) {
	cases := []struct {
		name, in string
		reply    Response
		phase    Phase
	}{
		{"bare line with code", "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
			Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Invalid credentials (Failure)"}, PhaseLogin},
		// Text without a status word may be the mail app's own: taken as
		// the NO, marked as not the server's words.
		{"bare text", "LOGIN failed.", Response{Tagged: true, Status: "NO", Text: "LOGIN failed.", FromApp: true}, PhaseLogin},
		{"S: bare text", "S: LOGIN failed.", Response{Tagged: true, Status: "NO", Text: "LOGIN failed."}, PhaseLogin},
		{"bare NO", "NO LOGIN failed.", Response{Tagged: true, Status: "NO", Text: "LOGIN failed."}, PhaseLogin},
		{"S: prefix", "S: a1 NO LOGIN failed.", Response{Tagged: true, Status: "NO", Text: "LOGIN failed."}, PhaseLogin},
		{"code with argument", "* NO [WEBALERT https://accounts.google.com/x?y=1] Web login required.\na NO [ALERT] Please log in via your web browser",
			Response{Tagged: true, Status: "NO", Code: "ALERT", Text: "Please log in via your web browser"}, PhaseLogin},
		{"code inside a client's rendering", "No Response: [REFERRAL imap://u;AUTH=*@mail2.example.com/]",
			Response{Tagged: true, Status: "NO", Code: "REFERRAL", CodeArg: "imap://u;AUTH=*@mail2.example.com/", Text: ""}, PhaseLogin},
		{"lower-case status", "a1 no [unavailable] later", Response{Tagged: true, Status: "NO", Code: "UNAVAILABLE", Text: "later"}, PhaseLogin},
		{"capability OK is not the login", "1000 OK !!\n1001 NO [AUTHENTICATIONFAILED] Authentication failed",
			Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed"}, PhaseLogin},
		{"failure after login", "C1 OK AUTHENTICATE completed.\nC2 BAD User is authenticated but not connected.\n* BYE Connection closed. 14",
			Response{Tagged: true, Status: "BAD", Text: "User is authenticated but not connected."}, PhaseAfterLogin},
		{"BYE after login", "a1 OK Logged in, but initialization failed.\n* BYE Internal error occurred.",
			Response{Status: "BYE", Text: "Internal error occurred."}, PhaseAfterLogin},
		{"login tag known", "C: x LOGIN a b\ny OK Logged in\nx NO nope",
			Response{Tagged: true, Status: "NO", Text: "nope"}, PhaseLogin},
		{"mailbox command refused", "R5 NO EXAMINE Unsafe Login.", Response{Tagged: true, Status: "NO", Text: "EXAMINE Unsafe Login."}, PhaseAfterLogin},
		{"OK with a code", "e OK [CONTACTADMIN]", Response{Tagged: true, Status: "OK", Code: "CONTACTADMIN"}, PhaseLogin},
		{"BYE greeting", "* BYE Too many connections", Response{Status: "BYE", Text: "Too many connections"}, PhaseLogin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, tc.in)
			if o.Reply == nil || !reflect.DeepEqual(*o.Reply, tc.reply) {
				t.Errorf("reply = %+v, want %+v", o.Reply, tc.reply)
			}
			if o.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", o.Phase, tc.phase)
			}
		})
	}
}

func TestParseTranscriptClient(t *testing.T) {
	cases := []struct {
		name, in, mech, user string
		typed                Typed
	}{
		{"atoms", "C: a1 LOGIN bob hunter2\na1 NO x", "LOGIN", "bob", Facts("bob", "hunter2")},
		{"quoted with escapes", `C: a1 LOGIN "bob@x.jp" "a\"b\\c"` + "\na1 NO x", "LOGIN", "bob@x.jp", Facts("bob@x.jp", `a"b\c`)},
		{"literals", "C: x99 LOGIN {3}\n+ OK\nC: bob {8}\n+ OK\nC: pass wd \nx99 NO x", "LOGIN", "bob", Facts("bob", "pass wd ")},
		{"AUTHENTICATE PLAIN with initial response", "C: a AUTHENTICATE PLAIN AGJvYkB4LmpwAHNlY3JldCA=\na NO x", "PLAIN", "bob@x.jp", Facts("bob@x.jp", "secret ")},
		{"AUTHENTICATE PLAIN continued", "C: a AUTHENTICATE PLAIN\n+ \nC: AGJvYkB4LmpwAHNlY3JldCA=\na NO x", "PLAIN", "bob@x.jp", Facts("bob@x.jp", "secret ")},
		{"AUTHENTICATE LOGIN", "C: a AUTHENTICATE LOGIN\n+ VXNlcm5hbWU6\nC: Ym9i\n+ UGFzc3dvcmQ6\nC: c2VjcmV0\na NO x", "LOGIN", "bob", Facts("bob", "secret")},
		{"placeholders are not typed values", "C: a1 LOGIN <user> <password>\na1 NO x", "LOGIN", "", Typed{}},
		{"XOAUTH2", "C: A1 AUTHENTICATE XOAUTH2 <base64 SASL string>\n+ eyJzdGF0dXMiOiI0MDAifQ==\nC: (empty line)\nA1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)", "XOAUTH2", "", Typed{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, tc.in)
			if o.Mechanism != tc.mech || o.Typed.Username != tc.user || !reflect.DeepEqual(o.Typed, tc.typed) {
				t.Errorf("mechanism %q typed %+v, want %q %+v", o.Mechanism, o.Typed, tc.mech, tc.typed)
			}
		})
	}
}

// TestParseTranscriptDropsPassword: the password is nowhere in the result.
func TestParseTranscriptDropsPassword(t *testing.T) {
	const pass = "Zq8-unique-secret-17"
	for _, in := range []string{
		"C: a1 LOGIN bob " + pass + "\na1 NO x",
		"C: a AUTHENTICATE PLAIN AGJvYgBacTgtdW5pcXVlLXNlY3JldC0xNw==\na NO x",
	} {
		o := parse(t, in)
		if got := fmt.Sprintf("%+v %+v", o, *o.Reply); strings.Contains(got, pass) || strings.Contains(got, "unique") {
			t.Errorf("password in observation: %s", got)
		}
		if o.Typed.PasswordLength != len(pass) {
			t.Errorf("facts not computed: %+v", o.Typed)
		}
	}
}

func TestParseTranscriptOtherProtocols(t *testing.T) {
	for in, want := range map[string]string{
		"+OK Dovecot ready.":               "pop3",
		"220 mail.example.com ESMTP":       "smtp",
		"220-mail.example.com ESMTP":       "smtp",
		"HTTP/1.1 400 Bad Request":         "http",
		"<!DOCTYPE html>":                  "http",
		"220 NO [AUTHENTICATIONFAILED] no": "",
	} {
		o := parse(t, in)
		if o.NotIMAP != want {
			t.Errorf("%q: NotIMAP %q, want %q", in, o.NotIMAP, want)
		}
		if want != "" && Classify(o).Cause != CauseUpstreamNotIMAP {
			t.Errorf("%q: not diagnosed as another protocol", in)
		}
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	for _, in := range []string{"", "\n\n", "(only a note)\n", "C: a1 LOGIN bob pass\n"} {
		if _, err := ParseTranscript(strings.NewReader(in)); !errors.Is(err, ErrNoServerLines) {
			t.Errorf("%q: err = %v, want ErrNoServerLines", in, err)
		}
	}
	big := strings.Repeat("* OK x\n", MaxTranscript/7+1)
	if _, err := ParseTranscript(strings.NewReader(big)); !errors.Is(err, ErrTranscriptTooLarge) {
		t.Errorf("over 1 MiB: err = %v", err)
	}
	// Exactly the limit, as one line, is read.
	line := "NO " + strings.Repeat("x", MaxTranscript-3)
	if _, err := ParseTranscript(strings.NewReader(line)); err != nil {
		t.Errorf("1 MiB line: %v", err)
	}
	errRead := errors.New("disk on fire")
	if _, err := ParseTranscript(iotest.ErrReader(errRead)); !errors.Is(err, errRead) {
		t.Errorf("read error: %v", err)
	}
}

func FuzzParseTranscript(f *testing.F) {
	f.Add("* OK Gimap ready\nC: a LOGIN {3}\nC: bob \"x\"\na NO [ALERT] x")
	f.Add("C: a AUTHENTICATE PLAIN\nC: =\n* BYE [UNAVAILABLE\n")
	f.Fuzz(func(t *testing.T, in string) {
		o, err := ParseTranscript(strings.NewReader(in))
		if err != nil {
			return
		}
		d := Classify(o)
		for _, lang := range Languages() {
			checkMessage(t, lang, d, Message(d, lang))
		}
	})
}

func TestUnwrapClientText(t *testing.T) {
	cases := map[string]string{
		`error: b'[AUTHENTICATIONFAILED] Invalid credentials (Failure)'`:                                              "[AUTHENTICATIONFAILED] Invalid credentials (Failure)",
		`Data: [b'LOGIN failed.']`:                                                                                    "LOGIN failed.",
		"IMAP command 'LOGIN <user> <pass>' returned an error: NO [ALERT] Application-specific":                       "NO [ALERT] Application-specific",
		"ERROR: 4 NO [AUTHENTICATIONFAILED] Authentication failed. at /usr/share/perl5/Mail/IMAPClient.pm line 1388.": "4 NO [AUTHENTICATIONFAILED] Authentication failed.",
		"*** IMAP ALERT *** Application-specific password required":                                                   "*** IMAP ALERT *** Application-specific password required",
		"a1 NO [AUTHENTICATIONFAILED] Authentication failed.":                                                         "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
		"LOGIN failed.": "LOGIN failed.",
	}
	for in, want := range cases {
		if got := unwrapClientText(in); got != want {
			t.Errorf("unwrapClientText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOtherProtocolsRefusals: a POP3 or SMTP login refusal pasted on its
// own is that account's login failing, not a server on the wrong port
// (which only a greeting shows).
func TestOtherProtocolsRefusals(t *testing.T) {
	for in, want := range map[string]Cause{
		"-ERR [AUTH] Application-specific password required: https://support.google.com/accounts/answer/185833":                  CauseProviderAppPasswordRequired,
		"534-5.7.9 Application-specific password required. Learn more at https://support.google.com/mail/?p=InvalidSecondFactor": CauseProviderAppPasswordRequired,
		"535 5.7.8 Username and Password not accepted.":                                                                          CauseCredentialsRejected,
		"-ERR Logon failure: unknown user name or bad password.":                                                                 CauseCredentialsRejected,
	} {
		o := parse(t, in)
		if d := Classify(o); o.NotIMAP != "" || d.Cause != want {
			t.Errorf("%q: NotIMAP %q, %s; want %s", in, o.NotIMAP, d.Cause, want)
		}
	}
}
