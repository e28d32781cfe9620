package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// checkTimeout bounds one check in a test; no case should come near it.
const checkTimeout = 30 * time.Second

// scenario is one check and what it must conclude.
type scenario struct {
	name     string // also the golden file's name
	address  string
	password string
	opts     func(e *env) Options
	ok       bool
	failed   string         // the step that fails, "" when none
	cause    diagnose.Cause // the diagnosis, "" when none
	check    func(t *testing.T, r Report)
}

// env is what scenarios point at.
type env struct {
	dc       *dovecottest.Server
	caFile   string
	smtp     string
	closed   string
	gmail    string // a scripted server answering like Gmail asking for a web login
	imapwhy  string // a scripted server answering as imapwhy refusing a login
	notice   string // a scripted server answering as imapwhy letting a login into its notice mailbox
	noTLS    string // a scripted server without STARTTLS
	resolver *net.Resolver
	ports    []string // dynamic ports, replaced in golden files
}

func newEnv(t *testing.T) *env {
	dc := dovecottest.Start(t, dovecottest.Options{})
	if err := dc.Deliver("alice", []byte("Subject: hello\r\n\r\nHello.\r\n")); err != nil {
		t.Fatal(err)
	}
	e := &env{
		dc:      dc,
		caFile:  dc.CAFile(t),
		smtp:    testkit.SMTP(t),
		closed:  testkit.ClosedPort(t),
		gmail:   testkit.ReplyIMAP(t, gmailGreeting, gmailScript),
		imapwhy: testkit.ReplyIMAP(t, imapwhyGreeting, imapwhyRefusal),
		notice:  testkit.ReplyIMAP(t, imapwhyGreeting, imapwhyNotice),
		noTLS: testkit.ReplyIMAP(t, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", map[string][]string{
			"STARTTLS": {"{tag} BAD STARTTLS not supported"},
		}),
	}
	// Only imap.wrong.test exists; every other name is NXDOMAIN: real
	// *net.DNSError values without leaving the machine.
	dns := testkit.NewDNS(t)
	dns.AddIPs("imap.wrong.test", "127.0.0.1")
	// imap.gmail.com gets SERVFAIL: DNS not answering, as when offline.
	dns.Fail("imap.gmail.com")
	e.resolver = dns.Resolver()
	for _, addr := range []string{dc.IMAP, dc.IMAPS, e.smtp, e.closed, e.gmail, e.noTLS, e.imapwhy, e.notice} {
		_, port, _ := net.SplitHostPort(addr)
		e.ports = append(e.ports, port)
	}
	return e
}

// Gmail's answers to a login it wants confirmed in a browser (corpus:
// diagnose/testdata/provider-responses.jsonl, "Web login required").
const gmailGreeting = "* OK Gimap ready for requests from 127.0.0.1 x12mb3495359jab"

// imapwhyGreeting and the scripts below answer as imapwhy does: an
// X-IMAPWHY report for programs before its ALERT.
const imapwhyGreeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN] imapwhy ready."

var imapwhyRefusal = map[string][]string{
	"AUTHENTICATE": {
		"* OK [X-IMAPWHY cause=password.fullwidth confidence=medium code=AUTHENTICATIONFAILED provider=gmail] imapwhy diagnosis",
		"* OK [ALERT] Your password was typed in full-width characters (Japanese input was on). Switch to half-width input and type the password again. Or Gmail wants an app password (2-Step on).",
		"{tag} NO [AUTHENTICATIONFAILED] Your password was typed in full-width characters (Japanese input was on). Switch to half-width input and type the password again. Or Gmail wants an app password (2-Step on).",
	},
}

var imapwhyNotice = map[string][]string{
	"AUTHENTICATE": {
		"* OK [X-IMAPWHY cause=provider.app_password_required confidence=high code=AUTHENTICATIONFAILED provider=gmail notice=1] imapwhy diagnosis",
		"* OK [ALERT] Gmail takes only app passwords from mail apps, not your Google password. Turn on 2-Step Verification and create one: https://myaccount.google.com/apppasswords",
		"{tag} OK [CAPABILITY IMAP4rev1] Logged in",
	},
	"SELECT": {"* 1 EXISTS", "{tag} OK [READ-ONLY] SELECT completed"},
}

var gmailScript = map[string][]string{
	"CAPABILITY": {
		"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH",
		"{tag} OK Thats all she wrote! x12mb3495359jab",
	},
	"AUTHENTICATE": {
		"* NO [WEBALERT https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbtt] Web login required.",
		"{tag} NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)",
	},
}

// server is --server with a host and the port of addr.
func server(host, addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, port)
}

func scenarios() []scenario {
	return []scenario{
		{
			name: "good_implicit", address: "alice", password: "alicepass",
			opts: func(e *env) Options { return Options{Server: e.dc.IMAPS, TLS: "implicit", CAFile: e.caFile} },
			ok:   true,
			check: func(t *testing.T, r Report) {
				if r.IMAP.Messages == nil || *r.IMAP.Messages != 1 {
					t.Errorf("inbox messages = %v, want 1", r.IMAP.Messages)
				}
				if r.IMAP.SoftwareID != "dovecot" || r.IMAP.Mechanism != "PLAIN" {
					t.Errorf("software %q, mechanism %q", r.IMAP.SoftwareID, r.IMAP.Mechanism)
				}
				if r.TLS == nil || !r.TLS.Verified || !r.TLS.NameMatches || r.TLS.Version == "" {
					t.Errorf("tls = %+v", r.TLS)
				}
			},
		},
		{
			name: "good_starttls", address: "alice", password: "alicepass",
			opts: func(e *env) Options { return Options{Server: e.dc.IMAP, TLS: "starttls", CAFile: e.caFile} },
			ok:   true,
			check: func(t *testing.T, r Report) {
				if slices.Contains(r.IMAP.Capabilities, "STARTTLS") || !r.IMAP.StartTLS {
					t.Errorf("capabilities after STARTTLS %q, offered before: %v", r.IMAP.Capabilities, r.IMAP.StartTLS)
				}
			},
		},
		{
			name: "good_discovered", address: "carol@example.test", password: "carolpass",
			opts: func(e *env) Options {
				host, port, _ := net.SplitHostPort(e.dc.IMAPS)
				return Options{CAFile: e.caFile, Discover: discover.New(discover.Options{
					AllowPrivate: true, // the test server is on loopback
					Catalog: func(domain string) (discover.Result, bool) {
						if domain != "example.test" {
							return discover.Result{}, false
						}
						return discover.Result{Host: host, Port: atoi(port), TLS: "implicit", Username: "%EMAILADDRESS%", Provider: "example"}, true
					},
				})}
			},
			ok: true,
			check: func(t *testing.T, r Report) {
				if r.Server.Source != discover.SourceCatalog || r.User != "carol@example.test" {
					t.Errorf("server %+v, user %q", r.Server, r.User)
				}
			},
		},
		{
			name: "wrong_password", address: "alice", password: "wrongpass",
			opts:   func(e *env) Options { return Options{Server: e.dc.IMAPS, CAFile: e.caFile} },
			failed: StepLogin, cause: diagnose.CauseCredentialsRejected,
		},
		{
			name: "wrong_password_ja", address: "alice", password: "wrongpass",
			opts:   func(e *env) Options { return Options{Server: e.dc.IMAPS, CAFile: e.caFile, Lang: "ja"} },
			failed: StepLogin, cause: diagnose.CauseCredentialsRejected,
			check: func(t *testing.T, r Report) {
				// The step lines are Japanese too, not only the checklist.
				japanese := func(s string) bool { return strings.ContainsFunc(s, func(c rune) bool { return c >= 0x3000 }) }
				for _, s := range r.Steps {
					if !japanese(s.Summary) {
						t.Errorf("step %s: %q is not Japanese", s.Name, s.Summary)
					}
					if s.Name != StepCapability {
						continue
					}
					// So are imapwhy's own words in its details (the
					// capabilities themselves are the server's).
					for _, d := range s.Details {
						if label, _, _ := strings.Cut(d, ": "); !japanese(label) {
							t.Errorf("step %s: detail %q is not Japanese", s.Name, d)
						}
					}
				}
			},
		},
		{
			name: "trailing_space", address: "alice", password: "alicepass ",
			opts:   func(e *env) Options { return Options{Server: e.dc.IMAPS, CAFile: e.caFile} },
			failed: StepLogin, cause: diagnose.CausePasswordSurroundingSpace,
		},
		{
			name: "smtp_port_implicit", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.smtp, TLS: "implicit"} },
			failed: StepTLS, cause: diagnose.CauseUpstreamNotIMAP,
		},
		{
			name: "smtp_port_starttls", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.smtp, TLS: "starttls"} },
			failed: StepGreeting, cause: diagnose.CauseUpstreamNotIMAP,
		},
		{
			name: "closed_port", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.closed} },
			failed: StepTCP, cause: diagnose.CauseUpstreamRefused,
		},
		{
			name: "name_not_found", address: "alice@nowhere.test", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: "imap.nowhere.test", Resolver: e.resolver} },
			failed: StepDNS, cause: diagnose.CauseUpstreamDNSNotFound,
		},
		{
			// Offline: DNS does not answer. That is not "the name does not
			// exist", and the catalog still knows the provider.
			name: "dns_not_answering", address: "taro@gmail.com", password: "alicepass",
			opts:   func(e *env) Options { return Options{Resolver: e.resolver} },
			failed: StepDNS, cause: diagnose.CauseNetworkDNSUnavailable,
			check: func(t *testing.T, r Report) {
				if r.Diagnosis == nil || r.Diagnosis.Provider != "gmail" {
					t.Errorf("diagnosis %+v: the provider is not named", r.Diagnosis)
				}
				if s := r.step(StepDNS); strings.Contains(s.Summary, "does not exist") {
					t.Errorf("DNS step: %s", s.Summary)
				}
			},
		},
		{
			name: "certificate_wrong_name", address: "alice", password: "alicepass",
			opts: func(e *env) Options {
				return Options{Server: server("imap.wrong.test", e.dc.IMAPS), CAFile: e.caFile, Resolver: e.resolver}
			},
			failed: StepTLS, cause: diagnose.CauseUpstreamCertificateName,
			check: func(t *testing.T, r Report) {
				if r.TLS == nil || r.TLS.NameMatches || r.TLS.Verified || !slices.Contains(r.TLS.Names, "localhost") {
					t.Errorf("tls = %+v", r.TLS)
				}
			},
		},
		{
			name: "certificate_untrusted", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.dc.IMAPS} },
			failed: StepTLS, cause: diagnose.CauseUpstreamCertificateUntrusted,
			check: func(t *testing.T, r Report) {
				if r.TLS == nil || !r.TLS.NameMatches || r.TLS.Verified {
					t.Errorf("tls = %+v", r.TLS)
				}
			},
		},
		{
			name: "starttls_on_implicit_port", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.dc.IMAPS, TLS: "starttls", CAFile: e.caFile} },
			failed: StepGreeting, cause: diagnose.CauseUpstreamTLSMismatch,
		},
		{
			name: "implicit_on_starttls_port", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.dc.IMAP, TLS: "implicit", CAFile: e.caFile} },
			failed: StepTLS, cause: diagnose.CauseUpstreamTLSMismatch,
		},
		{
			name: "logindisabled", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.dc.Insecure, TLS: "none"} },
			failed: StepLogin, cause: diagnose.CauseServerPrivacyRequired,
			check: func(t *testing.T, r Report) {
				if !r.IMAP.LoginDisabled || r.step(StepCapability).Status != StatusWarning {
					t.Errorf("imap = %+v", r.IMAP)
				}
			},
		},
		{
			// imapwhy on the other end: its own diagnosis, not a guess
			// from its prose.
			name: "imapwhy_refusal", address: "alice@gmail.com", password: "ａｌｉｃｅ",
			opts:   func(e *env) Options { return Options{Server: e.imapwhy, TLS: "none"} },
			failed: StepLogin, cause: diagnose.CausePasswordFullwidth,
		},
		{
			// A notice-mailbox login is no success.
			name: "imapwhy_notice", address: "alice@gmail.com", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.notice, TLS: "none"} },
			failed: StepLogin, cause: diagnose.CauseProviderAppPasswordRequired,
		},
		{
			name: "gmail_web_login", address: "alice@gmail.com", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.gmail, TLS: "none"} },
			failed: StepLogin, cause: diagnose.CauseProviderWebLoginRequired,
			check: func(t *testing.T, r Report) {
				if r.IMAP.SoftwareID != "gmail" || r.Diagnosis.HelpURL == "" {
					t.Errorf("software %q, help %q", r.IMAP.SoftwareID, r.Diagnosis.HelpURL)
				}
			},
		},
		{
			name: "starttls_unavailable", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{Server: e.noTLS, TLS: "starttls"} },
			failed: StepStartTLS, cause: diagnose.CauseUpstreamStartTLSUnavailable,
		},
		{
			name: "not_an_address", address: "alice", password: "alicepass",
			opts:   func(e *env) Options { return Options{} },
			failed: StepDiscovery, cause: diagnose.CauseUsernameMissingDomain,
		},
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// step is the named step of the report, or a zero Step.
func (r Report) step(name string) Step {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return Step{}
}

// TestCheck runs every scenario against a real Dovecot and local peers,
// and compares the human output with testdata/<name>.golden (go test
// -update rewrites them).
func TestCheck(t *testing.T) {
	// Registered first, so it runs after the peers' cleanups.
	testkit.CheckNoLeaks(t)
	e := newEnv(t)
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
			defer cancel()
			opts := sc.opts(e)
			var out bytes.Buffer
			p := NewPrinter(&out, opts.Lang, false)
			var progress []Step
			opts.Progress = func(s Step) {
				progress = append(progress, s)
				s.Duration = 0 // the golden files cannot know it
				p.Step(s)
			}
			p.Begin(sc.address)
			r := Run(ctx, sc.address, sc.password, opts)
			p.Finish(r)

			wantOutcome(t, sc, r)
			wantProgress(t, progress, r)
			if sc.check != nil {
				sc.check(t, r)
			}
			js, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			wantSchema(t, js)
			for _, text := range []string{out.String(), string(js)} {
				if strings.Contains(text, strings.TrimSpace(sc.password)) {
					t.Errorf("the output shows the password:\n%s", text)
				}
			}
			compareGolden(t, sc.name, normalize(out.String(), e.ports))
		})
	}
}

// wantOutcome checks OK, the failed step, the diagnosis and the skipped
// steps after it.
func wantOutcome(t *testing.T, sc scenario, r Report) {
	t.Helper()
	if r.Error != "" {
		t.Fatalf("report error: %s", r.Error)
	}
	if r.OK != sc.ok {
		t.Errorf("OK = %v, want %v", r.OK, sc.ok)
	}
	failed := ""
	for _, s := range r.Steps {
		switch {
		case failed != "" && s.Status != StatusSkipped:
			t.Errorf("step %s after the failed %s: %s", s.Name, failed, s.Status)
		case s.Status == StatusFailed:
			failed = s.Name
			if s.Diagnosis == nil {
				t.Errorf("failed step %s has no diagnosis", s.Name)
			}
		}
	}
	if failed != sc.failed {
		t.Errorf("failed step = %q, want %q\n%s", failed, sc.failed, stepsText(r))
	}
	switch {
	case sc.cause == "" && r.Diagnosis != nil:
		t.Errorf("diagnosis %+v, want none", *r.Diagnosis)
	case sc.cause != "" && r.Diagnosis == nil:
		t.Errorf("no diagnosis, want %s", sc.cause)
	case sc.cause != "" && r.Diagnosis.Cause != sc.cause:
		t.Errorf("cause = %s, want %s\n%s", r.Diagnosis.Cause, sc.cause, stepsText(r))
	}
}

func stepsText(r Report) string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  %s %s: %s %q (%s)\n", s.Name, s.Status, s.Summary, s.Details, s.Error)
	}
	return b.String()
}

// wantProgress: every step was reported once when it started (unless
// skipped) and once when it ended, as in the report.
func wantProgress(t *testing.T, progress []Step, r Report) {
	t.Helper()
	var ended []Step
	for i, s := range progress {
		if s.Status == StatusRunning {
			if i+1 == len(progress) || progress[i+1].Name != s.Name || progress[i+1].Status == StatusRunning {
				t.Errorf("step %s started but did not end next", s.Name)
			}
			continue
		}
		ended = append(ended, s)
	}
	if len(ended) != len(r.Steps) {
		t.Fatalf("progress reported %d ended steps, the report has %d", len(ended), len(r.Steps))
	}
	for i := range ended {
		if ended[i].Name != r.Steps[i].Name || ended[i].Status != r.Steps[i].Status {
			t.Errorf("progress step %d = %s %s, report %s %s", i, ended[i].Name, ended[i].Status, r.Steps[i].Name, r.Steps[i].Status)
		}
	}
}

var (
	dateRE   = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC`)
	cipherRE = regexp.MustCompile(`cipher: TLS_\w+`)
)

// normalize replaces what changes from run to run (durations are zeroed
// before printing): dynamic ports, certificate dates and the cipher suite
// (the client's preference follows the CPU's AES support).
func normalize(s string, ports []string) string {
	s = dateRE.ReplaceAllString(s, "DATE")
	s = cipherRE.ReplaceAllString(s, "cipher: CIPHER")
	for _, p := range ports {
		s = regexp.MustCompile(`\b`+p+`\b`).ReplaceAllString(s, "PORT")
	}
	return s
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestRunInvalidOptions: nothing runs; the report says why.
func TestRunInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"tls without server", Options{TLS: config.TLSStartTLS}},
		{"unknown tls mode", Options{Server: "imap.example.test", TLS: "ssl"}},
		{"bad port", Options{Server: "imap.example.test:99999"}},
		{"empty host", Options{Server: ":993"}},
		{"unknown language", Options{Server: "imap.example.test", Lang: "fr"}},
		{"missing ca file", Options{Server: "imap.example.test", CAFile: filepath.Join(t.TempDir(), "none.pem")}},
		{"ca file without certificates", Options{Server: "imap.example.test", CAFile: writeCAFile(t, []byte("not a certificate"))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			tc.opts.Progress = func(Step) { called = true }
			if err := tc.opts.Validate(); err == nil {
				t.Error("Validate accepted the options")
			}
			r := Run(t.Context(), "alice@example.test", "secret", tc.opts)
			if r.Error == "" || len(r.Steps) != 0 || r.OK || called {
				t.Errorf("report %+v, progress called: %v", r, called)
			}
			js, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			m := mustUnmarshal(t, js).(map[string]any)
			if steps, ok := m["steps"].([]any); !ok || len(steps) != 0 || m["ok"] != false || m["error"] == "" {
				t.Errorf("JSON %s: want steps [], ok false and an error", js)
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
	}{
		{"imap.example.com", "imap.example.com", 0},
		{"imap.example.com:143", "imap.example.com", 143},
		{"127.0.0.1:993", "127.0.0.1", 993},
		{"[::1]:993", "::1", 993},
		{"[::1]", "::1", 0},
		{"::1", "::1", 0},
	}
	for _, tc := range tests {
		host, port, err := parseServer(tc.in)
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("parseServer(%q) = %q %d %v, want %q %d", tc.in, host, port, err, tc.host, tc.port)
		}
	}
	for _, bad := range []string{"", ":993", "imap.example.com:0", "imap.example.com:x", "user@imap.example.com"} {
		if _, _, err := parseServer(bad); err == nil {
			t.Errorf("parseServer(%q) accepted", bad)
		}
	}
}

// TestDefaultMode: the TLS mode and port when --tls or the port is left out.
func TestDefaultMode(t *testing.T) {
	tests := []struct {
		server, tls string
		port        int
		mode        string
	}{
		{"imap.example.com", "", 993, "implicit"},
		{"imap.example.com:143", "", 143, "starttls"},
		{"imap.example.com:1993", "", 1993, "implicit"},
		{"imap.example.com", "starttls", 143, "starttls"},
		{"imap.example.com", "none", 143, "none"},
	}
	for _, tc := range tests {
		s, err := Options{Server: tc.server, TLS: tc.tls}.settle()
		if err != nil || s.port != tc.port || s.mode != tc.mode {
			t.Errorf("%s --tls %q: port %d mode %q (%v), want %d %q", tc.server, tc.tls, s.port, s.mode, err, tc.port, tc.mode)
		}
	}
}

// TestDiscoveredPrivateRefused: a server found by discovery on a loopback
// address is not probed, unless the user names it with --server.
func TestDiscoveredPrivateRefused(t *testing.T) {
	var dialled bool
	opts := Options{
		Discover: discover.New(discover.Options{Catalog: func(string) (discover.Result, bool) {
			return discover.Result{Host: "127.0.0.1", Port: 993, TLS: "implicit"}, true
		}}),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled = true
			return nil, errors.New("must not dial")
		},
		Timeout: 10 * time.Second,
	}
	r := Run(context.Background(), "taro@corp.test", "pw", opts)
	if r.OK || dialled {
		t.Fatalf("a discovered loopback server was probed: ok=%v dialled=%v", r.OK, dialled)
	}
	var dns *Step
	for i := range r.Steps {
		if r.Steps[i].Name == "dns" {
			dns = &r.Steps[i]
		}
	}
	if dns == nil || dns.Status != StatusFailed || !strings.Contains(dns.Summary, "private") {
		t.Errorf("dns step: %+v", dns)
	}
}

// TestConnectLocalFailure: when this computer cannot open the connection
// (out of file descriptors), check says so in the connect step and
// diagnoses a temporary failure at low confidence: not the password, which
// was never sent, and not a server that does not answer.
func TestConnectLocalFailure(t *testing.T) {
	opts := Options{
		Server: "127.0.0.1:993",
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", syscall.EMFILE)}
		},
		Timeout: 10 * time.Second,
	}
	r := Run(context.Background(), "taro@example.com", "pw", opts)
	connect := r.step("tcp")
	if r.OK || connect.Status != StatusFailed || !strings.Contains(connect.Summary, "too many open files") {
		t.Fatalf("connect step %+v\n%s", connect, stepsText(r))
	}
	d := r.Diagnosis
	if d == nil || d.Cause != diagnose.CauseServerTemporaryFailure || d.Confidence != diagnose.Low || d.Code != "UNAVAILABLE" {
		t.Fatalf("diagnosis %+v, want server.temporary_failure at low confidence", d)
	}
	if strings.Contains(d.Message, "refused") || strings.Contains(d.Message, "did not answer") {
		t.Errorf("message %q asserts what was not seen", d.Message)
	}
}
