package main

import (
	"bytes"
	"errors"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// demoBlock returns the printed block of one scenario: from its "-- name:"
// line to the next blank line.
func demoBlock(t *testing.T, out, name string) string {
	t.Helper()
	i := strings.Index(out, "\n-- "+name+":")
	if i < 0 {
		t.Fatalf("no scenario %s in the output:\n%s", name, out)
	}
	block := out[i+1:]
	if j := strings.Index(block, "\n\n"); j >= 0 {
		block = block[:j]
	}
	return block
}

// nowLine returns the "imapwhy:" line of a block.
func nowLine(t *testing.T, block string) string {
	t.Helper()
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "imapwhy:") {
			return l
		}
	}
	t.Fatalf("no imapwhy line in\n%s", block)
	return ""
}

func runDemoOnce(t *testing.T, lang string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runDemo([]string{"--once", "--listen", "127.0.0.1:0", "--lang", lang}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestDemoOnceEnglish(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("os/signal.loop"))
	out := runDemoOnce(t, "en")

	gmail := demoBlock(t, out, "app-password-required")
	if !strings.Contains(gmail, "a1 NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)") {
		t.Errorf("the Gmail block lacks Google's raw line:\n%s", gmail)
	}
	if now := nowLine(t, gmail); !regexp.MustCompile(`(?i)app(lication)?[- ]?(specific[- ])?password`).MatchString(now) {
		t.Errorf("imapwhy's Gmail explanation does not name app passwords: %s", now)
	}

	ms := demoBlock(t, out, "basic-auth-off")
	if !strings.Contains(ms, "a1 NO LOGIN failed.") {
		t.Errorf("the Microsoft block lacks the raw line:\n%s", ms)
	}
	if now := nowLine(t, ms); !regexp.MustCompile(`(?i)oauth|sign in with microsoft`).MatchString(now) {
		t.Errorf("imapwhy's Microsoft explanation does not point to OAuth: %s", now)
	}

	ok := demoBlock(t, out, "app-password")
	if now := nowLine(t, ok); !strings.Contains(now, "Welcome to the imitation") {
		t.Errorf("the successful login did not read INBOX through the proxy: %s", now)
	}
	// OAuth: Gmail's challenge is shown and explained, Exchange's bare
	// refusal is read from the token, and its after-login BAD is the
	// mailbox.
	gchal := demoBlock(t, out, "oauth-token-refused")
	if !strings.Contains(gchal, "+ eyJzdGF0dXMiOiI0MDEi") || !strings.Contains(nowLine(t, gchal), "refused the sign-in token") {
		t.Errorf("the Gmail OAuth block:\n%s", gchal)
	}
	if now := nowLine(t, demoBlock(t, out, "oauth-failed")); !strings.Contains(now, "issued for another service") {
		t.Errorf("the Microsoft Graph token: %s", now)
	}
	if now := nowLine(t, demoBlock(t, out, "oauth-not-connected")); !strings.Contains(now, "AUTHORIZATIONFAILED") || !strings.Contains(now, "mailbox cannot be opened") {
		t.Errorf("the mailbox without IMAP: %s", now)
	}
	if strings.Contains(out, "could not be tried") {
		t.Errorf("some logins could not be tried:\n%s", out)
	}
}

func TestDemoOnceJapanese(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("os/signal.loop"))
	out := runDemoOnce(t, "ja")
	japanese := regexp.MustCompile(`[\p{Hiragana}\p{Katakana}\p{Han}]`)
	for _, name := range []string{"app-password-required", "basic-auth-off", "password-trailing-space"} {
		if now := nowLine(t, demoBlock(t, out, name)); !japanese.MatchString(now) {
			t.Errorf("%s: imapwhy's answer is not in Japanese: %s", name, now)
		}
	}
	// The incident link is on its own line, not also at the end of the NO
	// (where the Japanese NO carries it, having room for it).
	if n := strings.Count(demoBlock(t, out, "incident-page"), "/why/"); n != 1 {
		t.Errorf("the incident link is shown %d times:\n%s", n, demoBlock(t, out, "incident-page"))
	}
	// The scenario lines too: every "-- name: description" is Japanese.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "-- ") && !japanese.MatchString(l) {
			t.Errorf("scenario line not in Japanese: %s", l)
		}
	}
}

func TestDemoFlags(t *testing.T) {
	tests := [][]string{
		{"--lang", "fr", "--once"},
		{"--listen", "nonsense", "--once"},
		{"--listen", "127.0.0.1:65534", "--once"}, // no room for every provider
		{"extra"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		if code := runDemo(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit status %d, want 2", args, code)
		}
	}
}

// TestDemoPortInUse checks that a demo that cannot bind stops what it had
// started and says why.
func TestDemoPortInUse(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("os/signal.loop"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := runDemo([]string{"--once", "--listen", ln.Addr().String()}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), ln.Addr().String()) {
		t.Errorf("exit status %d, stderr %q; want 1 and the address in use", code, stderr.String())
	}
}

// TestDemoChannels: the demo shows the ways imapwhy reaches people whose
// app hides the server's words: the incident page link, the shield
// holding back a repeated wrong password, the notice mailbox; every case
// shows its user and password; both fingerprints are named.
func TestDemoChannels(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("os/signal.loop"))
	out := runDemoOnce(t, "en")
	if !regexp.MustCompile(`status page \(failures from this PC, with their fixes\): https://127\.0\.0\.1:\d+/`).MatchString(out) {
		t.Errorf("no status page link:\n%s", out)
	}
	if b := demoBlock(t, out, "incident-page"); !regexp.MustCompile(`LOGIN wrong@gmail.com / "wrong-password"\n.*\n\s+incident page: https://127\.0\.0\.1:\d+/why/[a-z0-9]+`).MatchString(b) {
		t.Errorf("incident page block:\n%s", b)
	}
	shieldBlock := demoBlock(t, out, "shield")
	if strings.Count(shieldBlock, `LOGIN apppw@gmail.com / "still-wrong"`) != 3 || strings.Count(shieldBlock, "held back by the shield") != 1 ||
		!strings.HasSuffix(strings.TrimSpace(shieldBlock), "(held back by the shield: not sent to the provider)") {
		t.Errorf("shield block (the third try held back):\n%s", shieldBlock)
	}
	if now := nowLine(t, demoBlock(t, out, "notice-mailbox")); !strings.Contains(now, `"Why your mail app cannot get your mail"`) {
		t.Errorf("notice mailbox: %s", now)
	}
	for _, name := range []string{"app-password-required", "invalid-credentials"} {
		if b := demoBlock(t, out, name); !regexp.MustCompile(`(LOGIN|PLAIN) \S+ / "`).MatchString(b) {
			t.Errorf("%s: no user and password shown:\n%s", name, b)
		}
	}
}

// TestDemoDefaultPortTaken: with the default ports taken and no --listen,
// the demo takes free ones and says so.
func TestDemoDefaultPortTaken(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("os/signal.loop"))
	// Take the default port; if something else holds it already, that is
	// the case under test all the same.
	if ln, err := net.Listen("tcp", demoDefaultBase); err == nil {
		defer ln.Close()
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runDemo([]string{"--once", "--lang", "en"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	_, port, _ := net.SplitHostPort(demoDefaultBase)
	if !strings.Contains(stdout.String(), "port "+port+" is taken: using free ports instead (choose with --listen)") {
		t.Errorf("the demo does not say it moved:\n%s", stdout.String())
	}
}
