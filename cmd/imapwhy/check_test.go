package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/oauthtest"
)

// checkCmd runs `imapwhy check` with stdin and returns its exit status and
// output.
func checkCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runCheck(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCheckUsage: usage errors exit 2 before anything is dialled (the
// servers named here do not exist).
func TestCheckUsage(t *testing.T) {
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // a part of it
	}{
		{"no address", "pw\n", []string{"--password-stdin"}, 2, "want one ADDRESS, got 0"},
		{"two addresses", "pw\n", []string{"a@example.invalid", "b@example.invalid", "--password-stdin"}, 2, "want one ADDRESS, got 2"},
		{"password flag", "", []string{"a@example.invalid", "--password=secret"}, 2, "never taken from the command line"},
		{"password flag, single dash", "", []string{"-password", "secret", "a@example.invalid"}, 2, "never taken from the command line"},
		{"unknown flag", "pw\n", []string{"a@example.invalid", "--nope"}, 2, "flag provided but not defined"},
		{"bad tls", "pw\n", []string{"a@example.invalid", "--server", "imap.example.invalid", "--tls", "ssl"}, 2, `tls "ssl"`},
		{"tls without server", "pw\n", []string{"a@example.invalid", "--tls", "starttls", "--password-stdin"}, 2, "tls needs server"},
		{"bad port", "pw\n", []string{"a@example.invalid", "--server", "imap.example.invalid:0", "--password-stdin"}, 2, "port"},
		{"bad lang", "pw\n", []string{"a@example.invalid", "--server", "imap.example.invalid", "--lang", "fr", "--password-stdin"}, 2, `lang "fr"`},
		{"missing ca file", "pw\n", []string{"a@example.invalid", "--server", "imap.example.invalid", "--ca-file", "/nonexistent/ca.pem", "--password-stdin"}, 2, "ca-file"},
		{"no terminal for the prompt", "pw\n", []string{"a@example.invalid", "--server", "imap.example.invalid"}, 2, "use --password-stdin"},
		{"empty stdin", "", []string{"a@example.invalid", "--server", "imap.example.invalid", "--password-stdin"}, 2, "standard input is empty"},
		{"help", "", []string{"--help"}, 0, "Usage: imapwhy check ADDRESS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkCmd(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestFirstLine(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"secret\n", "secret"},
		{"secret\r\n", "secret"},
		{"secret \n", "secret "},
		{" \tsecret\t \r\n", " \tsecret\t "},
		{"secret\nsecond line\n", "secret"},
		{"secret", "secret"},
		{"secret\r", "secret\r"}, // a lone CR is not a line end
		{"\n", ""},
		{"ｓｅｃｒｅｔ\n", "ｓｅｃｒｅｔ"},
		{strings.Repeat("x", maxPassword) + "\r\n", strings.Repeat("x", maxPassword)},
	}
	for _, tc := range tests {
		got, err := firstLine(strings.NewReader(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("firstLine(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", strings.Repeat("x", maxPassword+1) + "\n"} {
		if got, err := firstLine(strings.NewReader(in)); err == nil {
			t.Errorf("firstLine(%d bytes) = %q, want an error", len(in), got)
		}
	}
}

// TestCheckDovecot runs `imapwhy check` against a real Dovecot, the
// password on standard input.
func TestCheckDovecot(t *testing.T) {
	dc := dovecottest.Start(t, dovecottest.Options{})
	caFile := dc.CAFile(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string // parts of stdout
		cause string   // with --json: the diagnosis, "" for none
	}{
		{
			name: "good login", stdin: "alicepass\n",
			args: []string{"alice", "--server", dc.IMAPS, "--ca-file", caFile, "--password-stdin"},
			code: 0, want: []string{"imapwhy check alice\n", "INBOX has 0 messages", "Result: OK: the login and INBOX work."},
		},
		{
			name: "good login, CRLF after the password", stdin: "alicepass\r\n",
			args: []string{"--server", dc.IMAP, "--tls", "starttls", "alice", "--ca-file", caFile, "--password-stdin", "--json"},
			code: 0, want: []string{`"ok": true`, `"inbox_messages": 0`},
		},
		{
			name: "wrong password", stdin: "wrong\n",
			args: []string{"alice", "--server", dc.IMAPS, "--ca-file", caFile, "--password-stdin", "--json"},
			code: 1, cause: "credentials.rejected",
		},
		{
			name: "a trailing space typed", stdin: "alicepass \n",
			args: []string{"alice", "--password-stdin", "--server", dc.IMAPS, "--ca-file", caFile, "--json"},
			code: 1, cause: "password.surrounding_space",
		},
		{
			name: "a trailing space, in Japanese", stdin: "alicepass \n",
			args: []string{"alice", "--password-stdin", "--server", dc.IMAPS, "--ca-file", caFile, "--lang", "ja"},
			code: 1, want: []string{"結果: login の段階で失敗しました。", "診断: パスワードの前後に空白が付いて送信されました"},
		},
		{
			name: "untrusted without --ca-file", stdin: "alicepass\n",
			args: []string{"alice", "--password-stdin", "--server", dc.IMAPS, "--json"},
			code: 1, cause: "upstream.certificate_untrusted",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkCmd(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout+stderr, "alicepass") {
				t.Errorf("the output shows the password:\n%s%s", stdout, stderr)
			}
			if tc.cause != "" {
				var r struct {
					OK        bool
					Diagnosis struct{ Cause string }
				}
				if err := json.Unmarshal([]byte(stdout), &r); err != nil {
					t.Fatalf("--json output: %v\n%s", err, stdout)
				}
				if r.OK || r.Diagnosis.Cause != tc.cause {
					t.Errorf("ok %v, cause %q; want %q", r.OK, r.Diagnosis.Cause, tc.cause)
				}
			}
		})
	}
}

// TestCheckOAuthTokenStdin: `imapwhy check --oauth-token-stdin` against
// Dovecot checking a real provider's tokens: what the token is for and
// when it expires, the login, the diagnosis; never the token.
func TestCheckOAuthTokenStdin(t *testing.T) {
	op, dc := oauthtest.StartWithDovecot(t, dovecottest.Options{})
	caFile := dc.CAFile(t)
	good := op.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword})
	noScope := op.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword, Scopes: []string{"openid", "email"}, Lifetime: -time.Hour})
	args := []string{oauthtest.Alice, "--server", dc.IMAPS, "--ca-file", caFile, "--oauth-token-stdin"}

	code, stdout, stderr := checkCmd(t, good+"\n", args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, good[20:44]) {
		t.Errorf("the output holds a piece of the token")
	}
	for _, want := range []string{"token: JWT for imap-server; scopes openid email imap; expires ", "(AUTHENTICATE XOAUTH2)", "Result: OK"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = checkCmd(t, "  "+noScope+"  \r\n", append(args, "--json")...)
	if code != 1 || !strings.Contains(stdout, `"cause": "oauth.token_expired"`) || !strings.Contains(stdout, `"expired": true`) ||
		!strings.Contains(stdout, `"status": "401"`) {
		t.Errorf("expired token without the scope: exit %d\n%s", code, stdout)
	}
	for _, tok := range []string{good, noScope} {
		if strings.Contains(stdout, tok[20:44]) {
			t.Errorf("the output holds a piece of the token")
		}
	}

	if code, _, stderr := checkCmd(t, good+"\n", append(args, "--password-stdin")...); code != 2 || !strings.Contains(stderr, "one secret at a time") {
		t.Errorf("both secrets: exit %d, %s", code, stderr)
	}
	if code, _, stderr := checkCmd(t, "\n", args...); code != 2 || !strings.Contains(stderr, "no token") {
		t.Errorf("no token: exit %d, %s", code, stderr)
	}
}
