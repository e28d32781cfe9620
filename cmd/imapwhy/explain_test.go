package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// The corpus copy and its labels live with the diagnose package.
var (
	explainCorpus = filepath.Join("..", "..", "diagnose", "testdata", "provider-responses.jsonl")
	explainLabels = filepath.Join("..", "..", "diagnose", "testdata", "corpus-labels.yaml")
)

func explain(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runExplain(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

type corpusCase struct {
	line       int
	transcript string
	server     string
	expect     []string
}

// corpusCases builds, for each labelled corpus record, the transcript a
// support desk would paste: greeting, capabilities and response, with the
// client's AUTHENTICATE line where the record names an OAuth mechanism.
func corpusCases(t *testing.T) []corpusCase {
	t.Helper()
	records := testkit.ReadCorpus(t, explainCorpus)
	var cases []corpusCase
	for _, l := range testkit.ReadCorpusLabels(t, explainLabels) {
		r := records[l.Line-1]
		var lines []string
		if l.Mechanism != "" && l.Mechanism != "LOGIN" && l.Mechanism != "PLAIN" {
			lines = append(lines, "C: A1 AUTHENTICATE "+l.Mechanism)
		}
		for _, p := range []*string{r.Greeting, r.Capability, r.Response} {
			if p != nil {
				lines = append(lines, *p)
			}
		}
		cases = append(cases, corpusCase{l.Line, strings.Join(lines, "\n"), l.Server, l.Expect})
	}
	return cases
}

// TestExplainCorpus runs every labelled corpus record through
// `imapwhy explain --json` and checks the object.
func TestExplainCorpus(t *testing.T) {
	cases := corpusCases(t)
	hits := 0
	for _, tc := range cases {
		for _, lang := range []string{"en", "ja"} {
			args := []string{"--json", "--lang", lang}
			if tc.server != "" {
				args = append(args, "--server", tc.server)
			}
			code, out, errOut := explain(t, tc.transcript, args...)
			if code != 0 {
				t.Fatalf("line %d: exit %d: %s", tc.line, code, errOut)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("line %d: %v in %s", tc.line, err, out)
			}
			for _, k := range []string{"cause", "code", "confidence", "temporary", "provider", "message", "alternative", "help_url", "detail"} {
				if _, ok := got[k]; !ok {
					t.Errorf("line %d: no %q in %s", tc.line, k, out)
				}
			}
			msg, _ := got["message"].(string)
			if msg == "" || utf8.RuneCountInString(msg) > 200 || strings.ContainsAny(msg, "\r\n") {
				t.Errorf("line %d: bad message %q", tc.line, msg)
			}
			if conf := got["confidence"]; conf != "high" && conf != "medium" && conf != "low" {
				t.Errorf("line %d: confidence %v", tc.line, conf)
			}
			if lang == "en" && slices.Contains(tc.expect, fmt.Sprint(got["cause"])) {
				hits++
			}
		}
	}
	t.Logf("explain: %d/%d corpus records diagnosed as labelled", hits, len(cases))
	if hits < len(cases)*95/100 {
		t.Errorf("explain agrees with the labels on only %d/%d records", hits, len(cases))
	}
}

func TestExplainText(t *testing.T) {
	const transcript = "* OK Gimap ready for requests from 192.0.2.1 x\n" +
		"a1 NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)\n"
	code, out, _ := explain(t, transcript)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"provider.app_password_required", "high", "Gmail", "app password", "AUTHENTICATIONFAILED"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = explain(t, transcript, "--lang", "ja")
	if !strings.Contains(out, "アプリパスワード") {
		t.Errorf("ja output:\n%s", out)
	}
}

// TestExplainAppText: text a mail app showed is not quoted as the server's
// NO; a server's words, bare or unwrapped from a library's message, are.
func TestExplainAppText(t *testing.T) {
	_, out, _ := explain(t, "The user name or password for imap.gmail.com is incorrect.\n")
	if strings.Contains(out, "server said") || !strings.Contains(out, "the mail app showed: The user name or password for imap.gmail.com is incorrect.") {
		t.Errorf("mail app's text:\n%s", out)
	}
	_, out, _ = explain(t, "The user name or password for imap.gmail.com is incorrect.\n", "--json")
	if strings.Contains(out, `"NO `) || !strings.Contains(out, `"detail": "the mail app showed: The user`) {
		t.Errorf("mail app's text, JSON:\n%s", out)
	}
	for _, in := range []string{
		"NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n",
		"b'[AUTHENTICATIONFAILED] Invalid credentials (Failure)'\n",
		"S: LOGIN failed.\n",
	} {
		if _, out, _ := explain(t, in); !strings.Contains(out, "server said: NO ") || strings.Contains(out, "mail app showed") {
			t.Errorf("%q:\n%s", in, out)
		}
	}
}

func TestExplainFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "transcript.txt")
	if err := os.WriteFile(file, []byte("* OK IMAPrev1\nNO Invalid user name or password.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Flags after FILE work too; --user gives the user-name facts only.
	code, out, errOut := explain(t, "", file, "--user", "bob", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got["cause"] != "username.missing_domain" || got["provider"] != "hmailserver" {
		t.Errorf("got %v", got)
	}
	// Without a password, no password fact is claimed: the empty
	// password --user implies must not become password.empty.
	code, out, _ = explain(t, "NO Authentication failed\n", "--user", "bob@example.com", "--json")
	if code != 0 || strings.Contains(out, "password.empty") {
		t.Errorf("exit %d: %s", code, out)
	}
	// --server with a port, and "-" for standard input.
	code, out, _ = explain(t, "2 NO LOGIN failed.\n", "--server", "outlook.office365.com:993", "--json", "-")
	if code != 0 || !strings.Contains(out, `"provider.oauth_required"`) {
		t.Errorf("exit %d: %s", code, out)
	}
}

func TestExplainErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in stderr
	}{
		{"help", "", []string{"-h"}, 0, "Usage: imapwhy explain"},
		{"unknown flag", "", []string{"--colour"}, 2, "flag provided but not defined"},
		{"two files", "", []string{"a", "b"}, 2, "one FILE at most"},
		{"bad language", "NO x", []string{"--lang", "fr"}, 2, "want ja or en"},
		{"missing file", "", []string{filepath.Join(dir, "nope.txt")}, 2, "no such file"},
		{"empty input", "", nil, 2, "no server responses"},
		{"bad port", "NO x", []string{"--server", "imap.example.com:99999"}, 2, "bad port"},
		{"too large", strings.Repeat("x", 1<<20+1), nil, 2, "larger than 1 MiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := explain(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q, want %d and %q", code, errOut, tc.code, tc.want)
			}
			if code != 0 && out != "" {
				t.Errorf("output on error: %q", out)
			}
		})
	}
}

// TestExplainLoginSucceeded: a transcript of a login that worked is not
// explained as a failure; it gets its own exit status.
func TestExplainLoginSucceeded(t *testing.T) {
	for _, in := range []string{
		"a1 OK LOGIN completed\n",
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\nC: a1 LOGIN bob@example.com secret\na1 OK [CAPABILITY IMAP4rev1] Logged in\n",
	} {
		code, out, errOut := explain(t, in)
		if code != explainSucceeded {
			t.Errorf("%q: exit %d, want %d: %s%s", in, code, explainSucceeded, out, errOut)
		}
		if !strings.Contains(out, "login succeeded") || strings.Contains(out, "temporary") {
			t.Errorf("%q: %s", in, out)
		}
		code, out, _ = explain(t, in, "--json", "--lang", "ja")
		var r explainResult
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != explainSucceeded || !r.LoginSucceeded || r.Cause != "" || !strings.Contains(r.Message, "成功") {
			t.Errorf("%q --json: exit %d, %+v (%v)", in, code, r, err)
		}
	}
	// A failure after the OK is still explained.
	code, out, _ := explain(t, "a1 OK LOGIN completed\n* BYE Internal error occurred. Refer to server log for more information.\n")
	if code != explainDiagnosed || strings.Contains(out, "login succeeded") {
		t.Errorf("failure after login: exit %d: %s", code, out)
	}
}

// TestExplainOAuth: pasted XOAUTH2 exchanges, with the base64 challenge.
// The token never shows in the output, in any encoding.
func TestExplainOAuth(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	payload := func(claims string) string { return base64.RawURLEncoding.EncodeToString([]byte(claims)) }
	expired := time.Now().Add(-2 * time.Hour).Unix()
	msJWT := "eyJhbGciOiJSUzI1NiJ9." + payload(fmt.Sprintf(`{"aud":"https://outlook.office.com","scp":"IMAP.AccessAsUser.All","upn":"alice@contoso.example","tid":"t-1","exp":%d}`, expired)) + ".U0VDUkVUU0lHTkFUVVJF"
	gmailChallenge := b64([]byte(`{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`))
	for _, tc := range []struct {
		name, paste, token string
		args               []string
		cause, inText      string
	}{
		{
			name: "Gmail, whole exchange",
			paste: "* OK Gimap ready for requests from 192.0.2.7 a1\n" +
				"C: a1 AUTHENTICATE XOAUTH2 " + b64([]byte("user=bob@gmail.com\x01auth=Bearer ya29.SECRETGOOGLETOKEN\x01\x01")) + "\n" +
				"+ " + gmailChallenge + "\nC: \na1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n",
			token: "ya29.SECRETGOOGLETOKEN",
			cause: "oauth.token_rejected", inText: `challenge:   {"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`,
		},
		{
			name:  "Gmail, server lines only",
			paste: "+ " + gmailChallenge + "\na1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n",
			args:  []string{"--server", "imap.gmail.com"},
			cause: "oauth.token_rejected", inText: "provider:    Gmail",
		},
		{
			name: "Microsoft, expired JWT with continuation",
			paste: "* OK The Microsoft Exchange IMAP4 service is ready.\nC: x AUTHENTICATE XOAUTH2\n+ \n" +
				"C: " + b64([]byte("user=alice@contoso.example\x01auth=Bearer "+msJWT+"\x01\x01")) + "\nx NO AUTHENTICATE failed.\n",
			args:  []string{"--server", "outlook.office365.com"},
			token: msJWT,
			cause: "oauth.token_expired", inText: "token:       JWT for https://outlook.office.com; scopes IMAP.AccessAsUser.All; tenant t-1; expired",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := explain(t, tc.paste, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "cause:       "+tc.cause) || !strings.Contains(out, tc.inText) {
				t.Errorf("output lacks %s / %q:\n%s", tc.cause, tc.inText, out)
			}
			_, jsonOut, _ := explain(t, tc.paste, append(tc.args, "--json")...)
			var res explainResult
			if err := json.Unmarshal([]byte(jsonOut), &res); err != nil {
				t.Fatal(err)
			}
			if res.Cause != tc.cause || res.OAuth == nil {
				t.Errorf("--json: cause %s, oauth %+v", res.Cause, res.OAuth)
			}
			if tc.token != "" {
				for _, secret := range []string{tc.token, tc.token[len(tc.token)-12:], "SECRET", b64([]byte(tc.token))[:16]} {
					if strings.Contains(out+jsonOut, secret) {
						t.Errorf("output contains a piece of the token (%q)", secret)
					}
				}
			}
		})
	}
}
